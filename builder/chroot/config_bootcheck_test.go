package chroot

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/strata-build/packer-plugin-strata/boot"
)

func withBootHost(t *testing.T, qemu, firmware bool) {
	t.Helper()
	oq, of := findQEMU, findFirmware
	t.Cleanup(func() { findQEMU, findFirmware = oq, of })
	findQEMU = func() (string, error) {
		if !qemu {
			return "", errors.New("missing")
		}
		return "/usr/bin/qemu-system-x86_64", nil
	}
	findFirmware = func() error {
		if !firmware {
			return errors.New("missing")
		}
		return nil
	}
}

func TestPrepareBootcheckDefaults(t *testing.T) {
	withHostSources(t, "deb http://mirror.test/debian bookworm main\n")
	withBootHost(t, true, true)
	raw := baseConfig(t)
	raw["formats"] = []string{"disk"}
	raw["bootcheck"] = map[string]interface{}{"enabled": true}
	var c Config
	if _, err := c.Prepare(raw); err != nil {
		t.Fatal(err)
	}
	b := c.Bootcheck
	if b.timeout != boot.DefaultTimeout || b.Expect != boot.DefaultExpect || b.Memory != 1024 || b.Accel != "auto" {
		t.Errorf("defaults: %+v", b)
	}
	raw["bootcheck"] = map[string]interface{}{"enabled": true, "timeout": "5m", "expect": "login: $", "memory": 512, "accel": "tcg"}
	c = Config{}
	if _, err := c.Prepare(raw); err != nil {
		t.Fatal(err)
	}
	if b := c.Bootcheck; b.timeout != 5*time.Minute || b.Expect != "login: $" || b.Memory != 512 || b.Accel != "tcg" {
		t.Errorf("set: %+v", b)
	}
}

func TestPrepareBootcheckErrors(t *testing.T) {
	withHostSources(t, "deb http://mirror.test/debian bookworm main\n")
	withBootHost(t, false, false)
	raw := baseConfig(t)
	raw["formats"] = []string{"tar.zst"}
	raw["bootcheck"] = map[string]interface{}{"enabled": true, "timeout": "soon", "expect": "(", "memory": 16, "accel": "hvf"}
	var c Config
	_, err := c.Prepare(raw)
	for _, w := range []string{
		`bootcheck: enabled needs the disk output to boot: add "disk" to formats`,
		`bootcheck.timeout: "soon"`,
		`bootcheck.expect: "("`,
		"bootcheck.memory: 16 MiB",
		`bootcheck.accel: "hvf" is not one of auto, kvm, tcg`,
		"install the Debian package qemu-system-x86",
		"install the Debian package ovmf",
	} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("want %q in %v", w, err)
		}
	}
	// Disabled, its values are still checked, but it needs neither the
	// disk output nor QEMU.
	raw["bootcheck"] = map[string]interface{}{"enabled": false, "accel": "hvf"}
	c = Config{}
	_, err = c.Prepare(raw)
	if err == nil || !strings.Contains(err.Error(), "bootcheck.accel") || strings.Contains(err.Error(), "formats") || strings.Contains(err.Error(), "qemu") {
		t.Errorf("disabled bootcheck: %v", err)
	}
}
