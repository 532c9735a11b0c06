//go:generate packer-sdc struct-markdown

package chroot

import (
	"os"
	"path"
	"slices"
	"strings"

	"github.com/strata-build/packer-plugin-strata/export"
	"github.com/strata-build/packer-plugin-strata/internal/debarch"
)

// DiskConfig shapes the `disk` output: a GPT disk image (`disk.raw`) that
// boots under UEFI, with an EFI system partition holding the boot loader,
// the image's own kernel and initramfs, and a root partition made from the
// finished image. The partitions are made as files (mkfs.vfat and mtools,
// mke2fs -d or mksquashfs) and put together with sfdisk: nothing is mounted
// and no loop device is used. The root is found by its partition UUID, and
// the partition types are those of the Discoverable Partitions
// Specification. With `source_date_epoch` the same image gives the same
// disk, byte for byte: every identifier is derived from the image ID.
type DiskConfig struct {
	// The whole disk's size, such as `4G` (binary units); the root
	// partition takes what the EFI system partition leaves. Defaults to
	// what the image needs plus `free_space`. Set at most one of the two.
	Size string `mapstructure:"size" required:"false"`
	// Free space the root file system gets beyond the image's content, such
	// as `2G`, for an `ext4` root. Defaults to `512M`. The raw disk is
	// sparse: free space costs no room on the build host.
	FreeSpace string `mapstructure:"free_space" required:"false"`
	// The root file system: `ext4` (read-write) or `squashfs` (read-only,
	// compressed with `squashfs_compression`; `/etc` and `/var` become
	// writable overlays in memory, through the disk's fstab, and what is
	// written there is gone at the next boot). Defaults to `ext4`.
	RootFilesystem string `mapstructure:"root_filesystem" required:"false"`
	// The UEFI boot loader: `systemd-boot` (the image's own
	// /usr/lib/systemd/boot/efi/systemd-bootx64.efi, systemd-bootaa64.efi
	// for arm64, when it has the systemd-boot-efi package, else the build
	// host's; an amd64 host has no arm64 one: install systemd-boot-efi in
	// an arm64 image) or `grub` (one EFI program made with the build host's
	// grub-mkimage from grub-efi-amd64-bin, its configuration built in; for
	// arm64 the modules of grub-efi-arm64-bin, the host's or else the
	// image's). Never a program of another architecture than the image's.
	// Defaults to `systemd-boot`.
	Bootloader string `mapstructure:"bootloader" required:"false"`
	// The image's kernel to boot: `auto` (the only /boot/vmlinuz-* of the
	// image; several are an error that lists them) or a version such as
	// `6.1.0-28-cloud-amd64`. It must be the image's architecture
	// (linux-image-cloud-arm64 for arm64; a gzip-compressed vmlinuz goes
	// on the ESP decompressed). Its initramfs (/boot/initrd.img-VERSION) must
	// be there and able to mount the root file system. Defaults to `auto`.
	Kernel string `mapstructure:"kernel" required:"false"`
	// More kernel parameters, appended to `root=PARTUUID=<root partition>
	// ro console=ttyS0` (`console=ttyAMA0` for arm64), such as `quiet
	// systemd.show_status=0`.
	KernelCmdline string `mapstructure:"kernel_cmdline" required:"false"`
	// Also write `disk.qcow2` (qemu-img convert; sparse), for QEMU and
	// OpenStack. Defaults to `false`.
	QCOW2 bool `mapstructure:"qcow2" required:"false"`

	size, free int64
}

// DefaultDiskFreeSpace is the free space of a disk's ext4 root.
const DefaultDiskFreeSpace = "512M"

// bootPaths are what a booting image needs from its tree: minimize must
// not remove them when the build writes a disk.
var bootPaths = []string{"/boot", "/usr/lib/modules", "/lib/modules", "/usr/lib/firmware", "/lib/firmware"}

// prepareDisk checks the disk block and the host tools the disk format
// needs. It runs after prepareOutputs (formats is filled in).
func (c *Config) prepareDisk(add func(format string, a ...interface{})) {
	wanted := slices.Contains(c.Formats, "disk")
	if c.Disk != nil && !wanted {
		add("disk: the block is set but formats does not list \"disk\"; add \"disk\" to formats or remove the block")
	}
	if !wanted {
		return
	}
	if c.Disk == nil {
		c.Disk = &DiskConfig{}
	}
	d := c.Disk
	if d.Size != "" && d.FreeSpace != "" {
		add("disk: set size or free_space, not both: size is the whole disk, free_space what the root gets beyond the image")
	}
	if d.FreeSpace == "" {
		d.FreeSpace = DefaultDiskFreeSpace
	}
	if d.RootFilesystem == "" {
		d.RootFilesystem = export.RootExt4
	}
	if d.Bootloader == "" {
		d.Bootloader = export.SystemdBoot
	}
	if d.Kernel == "" {
		d.Kernel = "auto"
	}
	if d.Size != "" {
		if n, err := ParseSize(d.Size); err != nil {
			add("disk.size: %v", err)
		} else if n < 512<<20 {
			add("disk.size: %q is less than 512M; a disk holds an EFI system partition of 260M, a kernel and the image: make it larger, or leave size out to get what the image needs", d.Size)
		} else {
			d.size = n
		}
	}
	if n, err := ParseSize(d.FreeSpace); err != nil {
		add("disk.free_space: %v", err)
	} else if n > maxExt4FreeSpace {
		add("disk.free_space: %q is more than 16T; almost certainly a typo", d.FreeSpace)
	} else {
		d.free = n
	}
	if d.RootFilesystem != export.RootExt4 && d.RootFilesystem != export.RootSquashfs {
		add("disk.root_filesystem: %q is not a root file system a disk can have; use \"ext4\" or \"squashfs\"", d.RootFilesystem)
	}
	if d.Bootloader != export.SystemdBoot && d.Bootloader != export.Grub {
		add("disk.bootloader: %q is not a boot loader; use \"systemd-boot\" or \"grub\"", d.Bootloader)
	}
	if d.Kernel != "auto" && (strings.ContainsAny(d.Kernel, "/ \t\n") || d.Kernel == "." || d.Kernel == "..") {
		add("disk.kernel: %q is not a kernel version; use \"auto\" or the VERSION of the image's /boot/vmlinuz-VERSION", d.Kernel)
	}
	if strings.ContainsAny(d.KernelCmdline, "\n\r\x00") {
		add("disk.kernel_cmdline: must be one line")
	}
	// What makes a disk on the build host, by Debian package.
	tools := []struct{ tool, pkg string }{
		{"mkfs.vfat", "dosfstools"}, {"mmd", "mtools"}, {"mcopy", "mtools"}, {"sfdisk", "fdisk"},
	}
	if d.RootFilesystem == export.RootSquashfs {
		tools = append(tools, struct{ tool, pkg string }{"mksquashfs", "squashfs-tools"})
	} else {
		tools = append(tools, struct{ tool, pkg string }{"mke2fs", "e2fsprogs"}, struct{ tool, pkg string }{"debugfs", "e2fsprogs"})
	}
	if d.QCOW2 {
		tools = append(tools, struct{ tool, pkg string }{"qemu-img", "qemu-utils"})
	}
	if d.Bootloader == export.Grub {
		tools = append(tools, struct{ tool, pkg string }{"grub-mkimage", "grub-common"})
		// amd64's modules come from the build host. A foreign
		// architecture's may come from the image (Debian builds
		// grub-efi-arm64-bin for arm64 only): the export checks the image
		// for them before it writes anything.
		host, _ := c.host.Arch()
		if a, ok := debarch.Lookup(c.Architecture); ok && a.Disk != nil && debarch.RunsNatively(host, c.Architecture) {
			if fi, err := os.Stat(export.GrubModulesDir(c.Architecture)); err != nil || !fi.IsDir() {
				add("disk.bootloader: grub needs GRUB's EFI modules on the build host (%s); install %s", export.GrubModulesDir(c.Architecture), a.Disk.GrubPackage)
			}
		}
	}
	for _, t := range tools {
		if _, err := c.host.LookPath(t.tool); err != nil {
			add("formats: disk needs %s on the build host; install %s", t.tool, t.pkg)
		}
	}
	// Minimize must leave what the disk boots: the kernel and initramfs in
	// /boot, the kernel's modules and the firmware.
	if c.Minimize != nil {
		for _, g := range c.Minimize.RemoveFiles {
			for _, p := range bootPaths {
				if globReaches(g, p) {
					add("minimize.remove_files: %q would remove part of %s, which the disk needs to boot; narrow the glob, or leave \"disk\" out of formats", g, p)
					break
				}
			}
		}
		for _, p := range c.Minimize.RemovePackages {
			if strings.HasPrefix(p, "linux-image") || strings.HasPrefix(p, "initramfs-tools") || p == "systemd-sysv" || p == "udev" {
				add("minimize.remove_packages: %q is what the disk boots with; keep it, or leave \"disk\" out of formats", p)
			}
		}
	}
}

// globReaches says whether the absolute glob g matches the directory p or
// anything below or above it.
func globReaches(g, p string) bool {
	gs := strings.Split(strings.Trim(path.Clean(g), "/"), "/")
	ps := strings.Split(strings.Trim(p, "/"), "/")
	for i := 0; i < len(gs) && i < len(ps); i++ {
		if ok, _ := path.Match(gs[i], ps[i]); !ok {
			return false
		}
	}
	return true
}

// diskOptions are the disk block's options for the export.
func (c *Config) diskOptions() export.DiskOptions {
	d := c.Disk
	if d == nil {
		return export.DiskOptions{}
	}
	o := export.DiskOptions{Size: d.size, RootFilesystem: d.RootFilesystem, Bootloader: d.Bootloader,
		Kernel: d.Kernel, KernelCmdline: d.KernelCmdline, QCOW2: d.QCOW2, Architecture: c.Architecture}
	if d.size == 0 {
		o.FreeSpace = d.free
	}
	return o
}
