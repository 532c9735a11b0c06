package chroot

import (
	"errors"
	"strings"
	"testing"

	"github.com/strata-build/packer-plugin-strata/export"
)

func TestPrepareDiskDefaults(t *testing.T) {
	withHostSources(t, "deb http://mirror.test/debian bookworm main\n")
	raw := baseConfig(t)
	raw["formats"] = []string{"disk"}
	var c Config
	if _, err := c.Prepare(raw); err != nil {
		t.Fatal(err)
	}
	o := c.diskOptions()
	want := export.DiskOptions{FreeSpace: 512 << 20, RootFilesystem: "ext4", Bootloader: "systemd-boot", Kernel: "auto"}
	if o != want {
		t.Errorf("disk options %+v, want %+v", o, want)
	}
	raw["disk"] = map[string]interface{}{"size": "4G", "root_filesystem": "squashfs", "bootloader": "grub", "kernel": "6.1.0-9-cloud-amd64", "kernel_cmdline": "quiet", "qcow2": true}
	if _, err := c.Prepare(raw); err != nil {
		t.Fatal(err)
	}
	o = c.diskOptions()
	want = export.DiskOptions{Size: 4 << 30, RootFilesystem: "squashfs", Bootloader: "grub", Kernel: "6.1.0-9-cloud-amd64", KernelCmdline: "quiet", QCOW2: true}
	if o != want {
		t.Errorf("disk options %+v, want %+v", o, want)
	}
}

// Every mistake in the disk block at once, each naming its option and the
// fix; and minimize may not take what the disk boots.
func TestPrepareDiskErrors(t *testing.T) {
	withHostSources(t, "deb http://mirror.test/debian bookworm main\n")
	raw := baseConfig(t)
	raw["formats"] = []string{"disk"}
	raw["disk"] = map[string]interface{}{"size": "4G", "free_space": "1G", "root_filesystem": "btrfs", "bootloader": "lilo", "kernel": "../x", "kernel_cmdline": "a\nb"}
	raw["minimize"] = map[string]interface{}{"remove_files": []string{"/usr/lib/modules/*/kernel/drivers/gpu", "/usr/share/zoneinfo/right/*", "/*"}, "remove_packages": []string{"initramfs-tools"}}
	var c Config
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
	withHostSources(t, "deb http://mirror.test/debian bookworm main\n")
	old := lookPath
	lookPath = func(string) (string, error) { return "", errors.New("not found") }
	t.Cleanup(func() { lookPath = old })
	raw := baseConfig(t)
	raw["formats"] = []string{"disk"}
	raw["disk"] = map[string]interface{}{"qcow2": true, "bootloader": "grub"}
	var c Config
	_, err := c.Prepare(raw)
	for _, w := range []string{"install dosfstools", "install mtools", "install fdisk", "install qemu-utils", "install e2fsprogs", "install grub-common"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("want %q in %v", w, err)
		}
	}
}
