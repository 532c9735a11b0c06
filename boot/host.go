package boot

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/strata-build/packer-plugin-strata/internal/debarch"
)

// machine is how QEMU boots one architecture's UEFI disk.
type machine struct {
	// board is QEMU's -machine; cpu its -cpu under TCG ("" for QEMU's
	// default).
	board, cpu string
	// firmware lists the UEFI code and variables files of the Debian
	// package debarch.Disk.Firmware names, best first. Both must be the
	// size of their pflash unit (AAVMF's are padded to 64 MiB).
	firmware [][2]string
}

var machines = map[string]machine{
	// q35 with Debian's ovmf.
	"amd64": {board: "q35", firmware: [][2]string{
		{"/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd"},
		{"/usr/share/OVMF/OVMF_CODE.fd", "/usr/share/OVMF/OVMF_VARS.fd"},
	}},
	// virt with Debian's qemu-efi-aarch64 (AAVMF): its PL011 UART is the
	// serial console (ttyAMA0). A Cortex-A72 runs Debian's kernel and,
	// without the pointer authentication of -cpu max, runs faster under
	// TCG.
	"arm64": {board: "virt", cpu: "cortex-a72", firmware: [][2]string{
		{"/usr/share/AAVMF/AAVMF_CODE.fd", "/usr/share/AAVMF/AAVMF_VARS.fd"},
	}},
}

// machineOf is the machine of arch ("" is amd64), or an error naming the
// architectures Check boots.
func machineOf(arch string) (machine, *debarch.Disk, error) {
	if arch == "" {
		arch = "amd64"
	}
	a, ok := debarch.Lookup(arch)
	m, known := machines[arch]
	if !ok || !known || a.Disk == nil {
		var names []string
		for _, n := range debarch.DiskArches() {
			if _, ok := machines[n]; ok {
				names = append(names, n)
			}
		}
		return machine{}, nil, fmt.Errorf("boot: no machine boots a %s disk; Check boots %s", arch, strings.Join(names, " and "))
	}
	return m, a.Disk, nil
}

// QEMUFor is the QEMU program that boots a disk of the Debian architecture
// arch ("" is amd64) and the Debian package that has it.
func QEMUFor(arch string) (program, pkg string, err error) {
	_, d, err := machineOf(arch)
	if err != nil {
		return "", "", err
	}
	return d.QEMU, d.QEMUPackage, nil
}

// FindFirmware returns the host's OVMF code and variables files.
func FindFirmware() (code, vars string, err error) { return FindFirmwareIn("/") }

// FindFirmwareIn is FindFirmware for a host whose files are under root.
func FindFirmwareIn(root string) (code, vars string, err error) {
	return FindFirmwareFor(root, "amd64")
}

// FindFirmwareFor returns the UEFI code and variables files that boot a
// disk of arch ("" is amd64) on a host whose files are under root, or an
// error naming the Debian package that has them.
func FindFirmwareFor(root, arch string) (code, vars string, err error) {
	m, d, err := machineOf(arch)
	if err != nil {
		return "", "", err
	}
	for _, c := range m.firmware {
		if _, err := os.Stat(filepath.Join(root, c[0])); err == nil {
			vars := filepath.Join(root, c[1])
			if _, err := os.Stat(vars); err != nil {
				vars = ""
			}
			return filepath.Join(root, c[0]), vars, nil
		}
	}
	return "", "", fmt.Errorf("boot: no UEFI firmware: %s is missing (install the Debian package %s)", m.firmware[0][0], d.Firmware)
}

// FindQEMU returns the path of qemu-system-x86_64, or an error naming the
// Debian package that provides it.
func FindQEMU() (string, error) {
	p, err := exec.LookPath(DefaultQEMU)
	if err != nil {
		return "", fmt.Errorf("boot: %s not found in PATH (install the Debian package qemu-system-x86)", DefaultQEMU)
	}
	return p, nil
}

func varsBeside(code string) string {
	base := filepath.Base(code)
	if !strings.Contains(base, "CODE") {
		return ""
	}
	v := filepath.Join(filepath.Dir(code), strings.Replace(base, "CODE", "VARS", 1))
	// The secure-boot code files share the plain variables file.
	for _, cand := range []string{v, strings.NewReplacer(".secboot", "", ".ms", "", ".snakeoil", "").Replace(v)} {
		if _, err := os.Stat(cand); err == nil {
			return cand
		}
	}
	return ""
}
