package chroot

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-build/packer-plugin-strata/export"
)

func TestPrepareDiskDefaults(t *testing.T) {
	h := withHostSources(t, "deb http://mirror.test/debian bookworm main\n")
	raw := baseConfig(t)
	raw["formats"] = []string{"disk"}
	c := Config{host: h}
	if _, err := c.Prepare(raw); err != nil {
		t.Fatal(err)
	}
	o := c.diskOptions()
	want := export.DiskOptions{FreeSpace: 512 << 20, RootFilesystem: "ext4", Bootloader: "systemd-boot", Kernel: "auto", Architecture: "amd64"}
	if o != want {
		t.Errorf("disk options %+v, want %+v", o, want)
	}
	raw["disk"] = map[string]interface{}{"size": "4G", "root_filesystem": "squashfs", "bootloader": "grub", "kernel": "6.1.0-9-cloud-amd64", "kernel_cmdline": "quiet", "qcow2": true}
	if _, err := c.Prepare(raw); err != nil {
		t.Fatal(err)
	}
	o = c.diskOptions()
	want = export.DiskOptions{Size: 4 << 30, RootFilesystem: "squashfs", Bootloader: "grub", Kernel: "6.1.0-9-cloud-amd64", KernelCmdline: "quiet", QCOW2: true, Architecture: "amd64"}
	if o != want {
		t.Errorf("disk options %+v, want %+v", o, want)
	}
}

// Every mistake in the disk block at once, each naming its option and the
// fix; and minimize may not take what the disk boots.
func TestPrepareDiskErrors(t *testing.T) {
	h := withHostSources(t, "deb http://mirror.test/debian bookworm main\n")
	raw := baseConfig(t)
	raw["formats"] = []string{"disk"}
	raw["disk"] = map[string]interface{}{"size": "4G", "free_space": "1G", "root_filesystem": "btrfs", "bootloader": "lilo", "kernel": "../x", "kernel_cmdline": "a\nb"}
	raw["minimize"] = map[string]interface{}{"remove_files": []string{"/usr/lib/modules/*/kernel/drivers/gpu", "/usr/share/zoneinfo/right/*", "/*"}, "remove_packages": []string{"initramfs-tools"}}
	c := Config{host: h}
	_, err := c.Prepare(raw)
	for _, w := range []string{"disk: set size or free_space, not both", `disk.root_filesystem: "btrfs"`, `disk.bootloader: "lilo"`, `disk.kernel: "../x"`,
		"disk.kernel_cmdline: must be one line", `minimize.remove_files: "/usr/lib/modules/*/kernel/drivers/gpu" would remove part of /usr/lib/modules`,
		`minimize.remove_files: "/*" would remove part of /boot`, `minimize.remove_packages: "initramfs-tools"`} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("want %q in %v", w, err)
		}
	}
	if err != nil && strings.Contains(err.Error(), "zoneinfo") {
		t.Errorf("a glob that reaches nothing boot needs was refused: %v", err)
	}
	raw = baseConfig(t)
	raw["disk"] = map[string]interface{}{"qcow2": true}
	if _, err := c.Prepare(raw); err == nil || !strings.Contains(err.Error(), `formats does not list "disk"`) {
		t.Errorf("a disk block without the format: %v", err)
	}
}

func TestPrepareDiskHostTools(t *testing.T) {
	h := newFakeHost(withHostSources(t, "deb http://mirror.test/debian bookworm main\n").Root())
	for _, p := range []string{"mkfs.vfat", "mcopy", "mmd", "sfdisk", "qemu-img", "mke2fs", "debugfs", "grub-mkimage", "mksquashfs"} {
		h.missing[p] = true
	}
	raw := baseConfig(t)
	raw["formats"] = []string{"disk"}
	raw["disk"] = map[string]interface{}{"qcow2": true, "bootloader": "grub"}
	c := Config{host: h}
	_, err := c.Prepare(raw)
	for _, w := range []string{"install dosfstools", "install mtools", "install fdisk", "install qemu-utils", "install e2fsprogs", "install grub-common"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("want %q in %v", w, err)
		}
	}
}

// An arm64 disk on an amd64 host: accepted with systemd-boot and with GRUB
// (whose arm64 modules the export takes from the image when the host has
// none: Debian builds grub-efi-arm64-bin for arm64 only); its boot check
// needs qemu-system-aarch64 and AAVMF, each error naming its Debian
// package, and KVM is refused for the foreign architecture.
func TestPrepareDiskArm64(t *testing.T) {
	h := withBootHost(t, true, true).(*fakeHost)
	aavmf := filepath.Join(h.Root(), "usr/share/AAVMF")
	os.MkdirAll(aavmf, 0o755)
	for _, n := range []string{"AAVMF_CODE.fd", "AAVMF_VARS.fd"} {
		os.WriteFile(filepath.Join(aavmf, n), nil, 0o644)
	}
	raw := baseConfig(t)
	raw["architecture"] = "arm64"
	raw["formats"] = []string{"disk"}
	raw["bootcheck"] = map[string]interface{}{"enabled": true}
	for _, bl := range []string{"systemd-boot", "grub"} {
		raw["disk"] = map[string]interface{}{"bootloader": bl}
		c := Config{host: h}
		if _, err := c.Prepare(raw); err != nil {
			t.Fatalf("%s: %v", bl, err)
		}
		if o := c.diskOptions(); o.Architecture != "arm64" || o.Bootloader != bl {
			t.Errorf("disk options %+v", o)
		}
	}
	delete(raw, "disk")
	h.missing["qemu-system-aarch64"] = true
	os.RemoveAll(aavmf)
	raw["bootcheck"] = map[string]interface{}{"enabled": true, "accel": "kvm"}
	c := Config{host: h}
	_, err := c.Prepare(raw)
	for _, w := range []string{"needs qemu-system-aarch64 on the build host; install the Debian package qemu-system-arm",
		"/usr/share/AAVMF/AAVMF_CODE.fd is missing (install the Debian package qemu-efi-aarch64)",
		"bootcheck.accel: kvm runs only the build host's own architecture (amd64), and architecture is arm64"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("want %q in %v", w, err)
		}
	}
	if err != nil && (strings.Contains(err.Error(), "qemu-system-x86") || strings.Contains(err.Error(), "ovmf")) {
		t.Errorf("an arm64 boot check asked for amd64's QEMU or firmware: %v", err)
	}
}

// On an arm64 host, GRUB for an arm64 disk comes from the host as amd64's
// does on an amd64 host: without grub-efi-arm64-bin it is refused by name.
func TestPrepareDiskGrubNativeArm64(t *testing.T) {
	if _, err := os.Stat(export.GrubModulesDir("arm64")); err == nil {
		t.Skip("this host has GRUB's arm64-efi modules")
	}
	h := newFakeHost(withHostSources(t, "deb http://mirror.test/debian bookworm main\n").Root())
	h.arch = "arm64"
	raw := baseConfig(t)
	raw["architecture"] = "arm64"
	raw["formats"] = []string{"disk"}
	raw["disk"] = map[string]interface{}{"bootloader": "grub"}
	c := Config{host: h}
	if _, err := c.Prepare(raw); err == nil || !strings.Contains(err.Error(), "/usr/lib/grub/arm64-efi); install grub-efi-arm64-bin") {
		t.Errorf("grub without arm64-efi modules on an arm64 host: %v", err)
	}
}
