// Package debarch names Debian's architectures and what each is called
// elsewhere: the CPU name QEMU's user-mode emulators and their binfmt_misc
// handlers use, the OCI platform (architecture and variant), and, for the
// architectures strata makes bootable disks of, what such a disk and its
// boot check are made with.
package debarch

import (
	"fmt"
	"os/exec"
	"runtime"
	"slices"
	"sort"
	"strings"
)

// Arch is one Debian architecture.
type Arch struct {
	// Name is dpkg's (`dpkg --print-architecture`).
	Name string
	// QEMU is the CPU name of qemu-<cpu>-static and its binfmt_misc
	// handler `qemu-<cpu>`.
	QEMU string
	// OCI and Variant are the OCI image config's architecture and variant.
	OCI, Variant string
	// Go is GOARCH for it, when Go has one.
	Go string
	// PE is the machine type of its UEFI programs (PE/COFF), when UEFI
	// runs on it.
	PE uint16
	// Disk is what a UEFI disk of this architecture boots with; nil for
	// the architectures strata makes no disks of.
	Disk *Disk
}

// Disk is what a bootable UEFI disk of one architecture is made and booted
// with, by the names UEFI, GRUB, systemd, the kernel and Debian give them.
type Disk struct {
	// EFI is the UEFI architecture suffix: the removable-media boot path
	// is /EFI/BOOT/BOOT<EFI in capitals>.EFI and systemd-boot's program
	// systemd-boot<EFI>.efi.
	EFI string
	// Grub is grub-mkimage's target (-O); GrubPackage the Debian package
	// with its modules in /usr/lib/grub/<Grub>.
	Grub, GrubPackage string
	// RootType is the root partition's GPT type of the Discoverable
	// Partitions Specification, RootName systemd's name for it.
	RootType, RootName string
	// Console is the kernel's name for the serial console of QEMU's
	// machine (and of most servers of the architecture).
	Console string
	// Kernel is the Debian kernel package a template installs.
	Kernel string
	// QEMU is the system emulator that boots the disk, QEMUPackage its
	// Debian package; Firmware the Debian package of its UEFI firmware.
	QEMU, QEMUPackage, Firmware string
}

var (
	amd64Disk = &Disk{EFI: "x64", Grub: "x86_64-efi", GrubPackage: "grub-efi-amd64-bin",
		RootType: "4f68bce3-e8cd-4db1-96e7-fbcaf984b709", RootName: "root-x86-64", Console: "ttyS0",
		Kernel: "linux-image-cloud-amd64", QEMU: "qemu-system-x86_64", QEMUPackage: "qemu-system-x86", Firmware: "ovmf"}
	arm64Disk = &Disk{EFI: "aa64", Grub: "arm64-efi", GrubPackage: "grub-efi-arm64-bin",
		RootType: "b921b045-1df0-41c3-af44-4c6f280d3fae", RootName: "root-arm64", Console: "ttyAMA0",
		Kernel: "linux-image-cloud-arm64", QEMU: "qemu-system-aarch64", QEMUPackage: "qemu-system-arm", Firmware: "qemu-efi-aarch64"}
)

// DiskArches lists the architectures with a Disk.
func DiskArches() []string {
	var n []string
	for _, a := range arches {
		if a.Disk != nil {
			n = append(n, a.Name)
		}
	}
	return n
}

// arches are Debian's release and ports architectures.
var arches = []Arch{
	{Name: "amd64", QEMU: "x86_64", OCI: "amd64", Go: "amd64", PE: 0x8664, Disk: amd64Disk},
	{Name: "arm64", QEMU: "aarch64", OCI: "arm64", Variant: "v8", Go: "arm64", PE: 0xaa64, Disk: arm64Disk},
	{Name: "armhf", QEMU: "arm", OCI: "arm", Variant: "v7", Go: "arm", PE: 0x1c2},
	{Name: "armel", QEMU: "arm", OCI: "arm", Variant: "v5"},
	{Name: "i386", QEMU: "i386", OCI: "386", Go: "386", PE: 0x14c},
	{Name: "ppc64el", QEMU: "ppc64le", OCI: "ppc64le", Go: "ppc64le"},
	{Name: "s390x", QEMU: "s390x", OCI: "s390x", Go: "s390x"},
	{Name: "riscv64", QEMU: "riscv64", OCI: "riscv64", Go: "riscv64", PE: 0x5064},
	{Name: "mips64el", QEMU: "mips64el", OCI: "mips64le", Go: "mips64le"},
	{Name: "mipsel", QEMU: "mipsel", OCI: "mipsle", Go: "mipsle"},
	{Name: "loong64", QEMU: "loongarch64", OCI: "loong64", Go: "loong64", PE: 0x6264},
	{Name: "alpha", QEMU: "alpha", OCI: "alpha"},
	{Name: "hppa", QEMU: "hppa", OCI: "hppa"},
	{Name: "m68k", QEMU: "m68k", OCI: "m68k"},
	{Name: "powerpc", QEMU: "ppc", OCI: "ppc"},
	{Name: "ppc64", QEMU: "ppc64", OCI: "ppc64", Go: "ppc64"},
	{Name: "sh4", QEMU: "sh4", OCI: "sh4"},
	{Name: "sparc64", QEMU: "sparc64", OCI: "sparc64"},
}

// Lookup is the architecture dpkg calls name.
func Lookup(name string) (Arch, bool) {
	i := slices.IndexFunc(arches, func(a Arch) bool { return a.Name == name })
	if i < 0 {
		return Arch{}, false
	}
	return arches[i], true
}

// FromOCI is the Debian architecture of an OCI architecture and variant
// (an empty variant matches the first of that architecture).
func FromOCI(arch, variant string) (Arch, bool) {
	for _, a := range arches {
		if a.OCI == arch && (variant == "" || variant == a.Variant) {
			return a, true
		}
	}
	return Arch{}, false
}

// FromPE is the architecture whose UEFI programs have the PE machine type m.
func FromPE(m uint16) (Arch, bool) {
	i := slices.IndexFunc(arches, func(a Arch) bool { return a.PE != 0 && a.PE == m })
	if i < 0 {
		return Arch{}, false
	}
	return arches[i], true
}

// Names lists every architecture name, sorted.
func Names() []string {
	var n []string
	for _, a := range arches {
		n = append(n, a.Name)
	}
	sort.Strings(n)
	return n
}

// Native is the architecture of the process itself (for a build host whose
// dpkg can't say), "" when Go's is none of Debian's.
func Native() string {
	for _, a := range arches {
		if a.Go == runtime.GOARCH {
			return a.Name
		}
	}
	return ""
}

// RunsNatively tells whether a host of architecture host runs target's
// programs without an emulator: the same architecture, or the 32-bit one
// the 64-bit kernel runs (i386 on amd64).
func RunsNatively(host, target string) bool {
	return host == target || host == "amd64" && target == "i386"
}

// Host is the build host's architecture: what `dpkg --print-architecture`
// says, else Native's.
func Host() (string, error) {
	out, err := exec.Command("dpkg", "--print-architecture").Output()
	if a := strings.TrimSpace(string(out)); err == nil && a != "" {
		return a, nil
	}
	if a := Native(); a != "" {
		return a, nil
	}
	return "", fmt.Errorf("dpkg --print-architecture: %v", err)
}
