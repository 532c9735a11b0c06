package boot

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Firmware files of Debian's ovmf package, best first.
var firmwareCandidates = [][2]string{
	{"/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd"},
	{"/usr/share/OVMF/OVMF_CODE.fd", "/usr/share/OVMF/OVMF_VARS.fd"},
}

// FindFirmware returns the host's OVMF code and variables files.
func FindFirmware() (code, vars string, err error) { return FindFirmwareIn("/") }

// FindFirmwareIn is FindFirmware for a host whose files are under root.
func FindFirmwareIn(root string) (code, vars string, err error) {
	for _, c := range firmwareCandidates {
		if _, err := os.Stat(filepath.Join(root, c[0])); err == nil {
			vars := filepath.Join(root, c[1])
			if _, err := os.Stat(vars); err != nil {
				vars = ""
			}
			return filepath.Join(root, c[0]), vars, nil
		}
	}
	return "", "", errors.New("boot: no UEFI firmware: /usr/share/OVMF/OVMF_CODE_4M.fd is missing (install the Debian package ovmf)")
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
