// Package debarch names Debian's architectures and what each is called
// elsewhere: the CPU name QEMU's user-mode emulators and their binfmt_misc
// handlers use, and the OCI platform (architecture and variant).
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
}

// arches are Debian's release and ports architectures.
var arches = []Arch{
	{Name: "amd64", QEMU: "x86_64", OCI: "amd64", Go: "amd64"},
	{Name: "arm64", QEMU: "aarch64", OCI: "arm64", Variant: "v8", Go: "arm64"},
	{Name: "armhf", QEMU: "arm", OCI: "arm", Variant: "v7", Go: "arm"},
	{Name: "armel", QEMU: "arm", OCI: "arm", Variant: "v5"},
	{Name: "i386", QEMU: "i386", OCI: "386", Go: "386"},
	{Name: "ppc64el", QEMU: "ppc64le", OCI: "ppc64le", Go: "ppc64le"},
	{Name: "s390x", QEMU: "s390x", OCI: "s390x", Go: "s390x"},
	{Name: "riscv64", QEMU: "riscv64", OCI: "riscv64", Go: "riscv64"},
	{Name: "mips64el", QEMU: "mips64el", OCI: "mips64le", Go: "mips64le"},
	{Name: "mipsel", QEMU: "mipsel", OCI: "mipsle", Go: "mipsle"},
	{Name: "loong64", QEMU: "loongarch64", OCI: "loong64", Go: "loong64"},
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
