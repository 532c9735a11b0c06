//go:generate packer-sdc struct-markdown

package chroot

import (
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/strata-build/packer-plugin-strata/boot"
)

// BootcheckConfig boots the finished `disk` output under QEMU
// (qemu-system-x86_64 with Debian's OVMF UEFI firmware; for an arm64 image
// qemu-system-aarch64's virt machine with AAVMF, Debian's
// qemu-efi-aarch64; a serial console, no network, the disk in snapshot
// mode so it is never written) and fails
// the build unless the console shows `expect` within `timeout`; the
// failure shows the console's last 50 lines. The result (passed, the
// accelerator, the boot time from the kernel's start to the expected line)
// is recorded in artifact.json. It needs `"disk"` in `formats`, and the
// Debian packages qemu-system-x86 and ovmf on the build host
// (qemu-system-arm and qemu-efi-aarch64 for arm64).
type BootcheckConfig struct {
	// Boot the disk after the export. Defaults to `false`.
	Enabled bool `mapstructure:"enabled" required:"false"`
	// The whole boot's time limit, firmware included, as a Go duration
	// such as `90s` or `5m`. Defaults to `120s`; a boot under TCG (no
	// working KVM) takes 20 to 60 seconds of one core, more on a busy host,
	// and an arm64 disk's (always TCG on another host) several minutes:
	// give it `10m`.
	Timeout string `mapstructure:"timeout" required:"false"`
	// A regular expression (Go syntax) for the console line that means the
	// image is up, such as `"login: $"` or a line a unit of yours prints.
	// Defaults to the line systemd prints when `multi-user.target` is
	// reached: `Reached target.*(multi-user\.target|Multi-User System)`.
	Expect string `mapstructure:"expect" required:"false"`
	// The VM's memory in MiB. Defaults to `1024`.
	Memory int `mapstructure:"memory" required:"false"`
	// The accelerator: `auto` boots under KVM when a short probe boot of
	// the firmware under it works (on some hosts /dev/kvm opens but the
	// firmware dies under it) and under TCG otherwise; `kvm` or `tcg` force
	// one. A disk of another architecture than the build host's (arm64 on
	// amd64) always runs under TCG: `auto` does not probe KVM and `kvm` is
	// refused. Defaults to `auto`.
	Accel string `mapstructure:"accel" required:"false"`

	timeout time.Duration
}

// prepareBootcheck checks the bootcheck block and fills in its defaults.
func (c *Config) prepareBootcheck(add func(format string, a ...interface{})) {
	b := c.Bootcheck
	if b == nil {
		return
	}
	if b.Timeout == "" {
		b.timeout = boot.DefaultTimeout
	} else if d, err := time.ParseDuration(b.Timeout); err != nil || d <= 0 {
		add("bootcheck.timeout: %q is not a positive duration such as \"90s\" or \"5m\"", b.Timeout)
	} else {
		b.timeout = d
	}
	if b.Expect == "" {
		b.Expect = boot.DefaultExpect
	} else if _, err := regexp.Compile(b.Expect); err != nil {
		add("bootcheck.expect: %q is not a regular expression: %v", b.Expect, err)
	}
	if b.Memory == 0 {
		b.Memory = boot.DefaultMemoryMiB
	} else if b.Memory < 128 || b.Memory > 1<<20 {
		add("bootcheck.memory: %d MiB is out of range; use 128 to 1048576 (default %d)", b.Memory, boot.DefaultMemoryMiB)
	}
	if b.Accel == "" {
		b.Accel = boot.AccelAuto
	} else if boot.ValidAccel(b.Accel) != nil {
		add("bootcheck.accel: %q is not one of %s", b.Accel, strings.Join(boot.Accels, ", "))
	}
	if !b.Enabled {
		return
	}
	if !slices.Contains(c.Formats, "disk") {
		add("bootcheck: enabled needs the disk output to boot: add \"disk\" to formats, or set bootcheck { enabled = false }")
	}
	qemu, pkg, err := boot.QEMUFor(c.Architecture)
	if err != nil {
		// The disk output refuses the architecture already.
		return
	}
	if _, err := c.host.LookPath(qemu); err != nil {
		add("bootcheck: needs %s on the build host; install the Debian package %s", qemu, pkg)
	}
	if _, _, err := boot.FindFirmwareFor(c.host.Root(), c.Architecture); err != nil {
		add("bootcheck: needs UEFI firmware on the build host: %s", strings.TrimPrefix(err.Error(), "boot: no UEFI firmware: "))
	}
	host, _ := c.host.Arch()
	if b.Accel == boot.AccelKVM && host != c.Architecture {
		add("bootcheck.accel: kvm runs only the build host's own architecture (%s), and architecture is %s; use \"tcg\" or \"auto\" (TCG for a foreign architecture)", host, c.Architecture)
	}
}
