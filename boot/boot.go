// Package boot boots a disk image under QEMU (UEFI firmware, serial console,
// no network) and watches the console for the line that means the system is
// up: the boot check of a build and of strata-test. The disk is never
// written: QEMU runs it in snapshot mode with its overlay in a private
// temporary directory. No VM outlives Check: QEMU runs in a process group of
// its own that is killed on success, failure, timeout and cancellation.
package boot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/strata-build/packer-plugin-strata/internal/debarch"
	"github.com/strata-build/packer-plugin-strata/internal/hostexec"
)

// Defaults of Options.
const (
	DefaultTimeout   = 120 * time.Second
	DefaultMemoryMiB = 1024
	// DefaultExpect matches the line systemd prints on the console when
	// multi-user.target is reached ("Reached target multi-user.target -
	// Multi-User System." in systemd 252, "Reached target Multi-User
	// System." in older ones).
	DefaultExpect = `Reached target.*(multi-user\.target|Multi-User System)`
	// DefaultQEMU is the program Check runs.
	DefaultQEMU = "qemu-system-x86_64"
	// TailLines is how many console lines Result.Console and errors keep.
	TailLines = 50
)

// Accelerators Options.Accel takes.
const (
	AccelAuto = "auto"
	AccelKVM  = "kvm"
	AccelTCG  = "tcg"
)

// Accels lists the values Options.Accel takes ("" means auto).
var Accels = []string{AccelAuto, AccelKVM, AccelTCG}

// Options control one boot.
type Options struct {
	// Disk is a raw or qcow2 disk image (qcow2 when its name ends in
	// .qcow2). It is opened in snapshot mode and never modified.
	Disk string
	// Firmware is an OVMF code file; "" finds Debian's ovmf package's. Its
	// variables file is copied into a private temporary directory.
	Firmware string
	// Vars is the OVMF variables file to copy; "" takes the one beside
	// Firmware (OVMF_CODE*.fd → OVMF_VARS*.fd) when there is one.
	Vars string
	// Timeout bounds a boot (each, when one is retried: see
	// emulatedTimerPanic); 0 means DefaultTimeout.
	Timeout time.Duration
	// Expect is a regular expression for the console line that means
	// success; "" means DefaultExpect.
	Expect string
	// MemoryMiB is the VM's memory; 0 means DefaultMemoryMiB.
	MemoryMiB int
	// Accel is "auto" ("" too: KVM when a probe boot under it really works,
	// else TCG), "kvm" or "tcg".
	Accel string
	// Console, when set, receives a live copy of the serial console, a line
	// at a time, with terminal escapes removed.
	Console io.Writer
	// Tracker learns of QEMU's process group, so a killed build's VM is
	// found and killed by the next.
	Tracker hostexec.Tracker
	// QEMU is the program to run; "" means DefaultQEMU from PATH. Tests
	// pass a fake.
	QEMU string
	// Kernel, Initrd and Append boot a kernel directly (QEMU's -kernel,
	// -initrd, -append) instead of through the disk's boot loader; the
	// firmware is then QEMU's own unless Firmware is set (strata-test).
	Kernel, Initrd, Append string
	// Drives are more raw disk images, attached read-only after Disk
	// (the first is /dev/vdb in a Linux guest).
	Drives []string
	// Arch is the disk's Debian architecture: "" and "amd64" boot under
	// qemu-system-x86_64 (q35, OVMF), "arm64" under qemu-system-aarch64
	// (virt, AAVMF, a Cortex-A72; TCG unless the host is arm64 too).
	Arch string

	machine machine
}

// Result is what a successful boot measured.
type Result struct {
	// Accel is the accelerator the VM ran under: "kvm" or "tcg".
	Accel string
	// BootTime runs from the kernel's start to the expected line:
	// systemd's own "Startup finished" sum (kernel + initrd + userspace)
	// when the console shows it, else the host's clock from the kernel's
	// first console line to the match.
	BootTime time.Duration
	// BootTimeSource says which: "systemd" or "console".
	BootTimeSource string
	// Total runs from starting QEMU to the match (firmware included).
	Total time.Duration
	// Console holds the last TailLines lines of the console.
	Console []string
	// Matched is the console line that matched Expect.
	Matched string
	// Retries counts the boots before this one that failed at the
	// kernel's timer check under emulation (see emulatedTimerPanic).
	Retries int
}

// Error is a failed boot: why, and the console's last lines.
type Error struct {
	Reason  string
	Accel   string
	Console []string
	// Stderr is what QEMU itself printed last (its own errors).
	Stderr []string
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "boot check failed: %s", e.Reason)
	if e.Accel != "" {
		fmt.Fprintf(&b, " (accel %s)", e.Accel)
	}
	if len(e.Stderr) > 0 {
		fmt.Fprintf(&b, "\nqemu: %s", strings.Join(e.Stderr, "\nqemu: "))
	}
	if len(e.Console) == 0 {
		b.WriteString("\n(the console printed nothing)")
	} else {
		fmt.Fprintf(&b, "\nlast %d console lines:\n%s", len(e.Console), strings.Join(e.Console, "\n"))
	}
	return b.String()
}

// Check boots opt.Disk and waits for opt.Expect on the console.
func Check(ctx context.Context, opt Options) (*Result, error) {
	if err := opt.fill(); err != nil {
		return nil, err
	}
	expect, err := regexp.Compile(opt.Expect)
	if err != nil {
		return nil, fmt.Errorf("boot: expect %q is not a regular expression: %w", opt.Expect, err)
	}
	if _, err := os.Stat(opt.Disk); err != nil {
		return nil, fmt.Errorf("boot: disk: %w", err)
	}
	accel := opt.Accel
	if accel == AccelAuto {
		accel = AccelTCG
		// KVM runs the host's own architecture only; the probe boots
		// OVMF.
		if opt.Arch == "amd64" && opt.native() && ProbeKVM(ctx, opt.QEMU, opt.Firmware, opt.Vars, opt.Tracker) {
			accel = AccelKVM
		}
	}
	for attempt := 1; ; attempt++ {
		res, err := boot(ctx, opt, expect, accel)
		if res != nil {
			res.Retries = attempt - 1
		}
		var be *Error
		if err == nil || !errors.As(err, &be) || !emulatedTimerPanic(be) || attempt == emulatedTimerAttempts {
			return res, err
		}
		// The kernel's check of the timer interrupt failed under TCG: the
		// emulator's timer thread did not get the host's CPU in time (a
		// loaded build host), not a fault of the image. Boot it again.
		if opt.Console != nil {
			fmt.Fprintf(opt.Console, "strata: the emulated kernel's timer check failed (QEMU's timer starved on a busy host, not the image); booting again (%d of %d)\n",
				attempt+1, emulatedTimerAttempts)
		}
	}
}

// emulatedTimerAttempts is how many times Check boots a disk whose kernel
// panics at its timer check under TCG.
const emulatedTimerAttempts = 3

// emulatedTimerPanic says whether a failed boot is Linux's "IO-APIC +
// timer doesn't work" panic under TCG: at boot the kernel waits a few
// ticks for the timer interrupt, and under emulation on a loaded host
// QEMU's timer thread can miss them all.
func emulatedTimerPanic(e *Error) bool {
	if e.Accel != AccelTCG || e.Reason != "kernel panic" {
		return false
	}
	for _, l := range e.Console {
		if strings.Contains(l, "IO-APIC + timer doesn't work") {
			return true
		}
	}
	return false
}

// boot is one boot of the disk under accel.
func boot(ctx context.Context, opt Options, expect *regexp.Regexp, accel string) (*Result, error) {
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	tmp, err := os.MkdirTemp("", "strata-boot-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	args, err := qemuArgs(opt.machine, opt.Firmware, opt.Vars, tmp, accel, opt.MemoryMiB)
	if err != nil {
		return nil, err
	}
	format := "raw"
	if strings.HasSuffix(opt.Disk, ".qcow2") {
		format = "qcow2"
	}
	// snapshot=on: writes go to a temporary overlay in TMPDIR (tmp), the
	// disk itself is only read.
	args = append(args, "-drive", "file="+qemuPath(opt.Disk)+",format="+format+",if=virtio,snapshot=on")
	for _, d := range opt.Drives {
		args = append(args, "-drive", "file="+qemuPath(d)+",format=raw,if=virtio,readonly=on")
	}
	if opt.Kernel != "" {
		args = append(args, "-kernel", opt.Kernel)
		if opt.Initrd != "" {
			args = append(args, "-initrd", opt.Initrd)
		}
		args = append(args, "-append", opt.Append)
	}

	runCtx, cancel := context.WithTimeout(ctx, opt.Timeout)
	defer cancel()
	start := time.Now()
	vm, err := startVM(opt.QEMU, args, tmp, opt.Tracker)
	if err != nil {
		return nil, err
	}
	defer vm.stop()

	w := watcher{expect: expect, console: opt.Console}
	var deadline <-chan time.Time // runs once matched or failed, for the lines after
	var kernelAt, matchAt time.Time
	var failReason string
	for {
		select {
		case line, ok := <-vm.lines:
			if !ok {
				vm.wait()
				if !matchAt.IsZero() {
					return w.result(accel, start, kernelAt, matchAt), nil
				}
				reason := failReason
				if reason == "" {
					reason = "qemu exited before the expected line appeared: " + vm.exitStatus()
				}
				return nil, w.fail(reason, accel, vm.stderrTail())
			}
			now := time.Now()
			w.add(line)
			if kernelAt.IsZero() && kernelStart.MatchString(line) {
				kernelAt = now
			}
			if !matchAt.IsZero() {
				if w.systemd > 0 {
					return w.result(accel, start, kernelAt, matchAt), nil
				}
				continue
			}
			if failReason != "" {
				continue
			}
			if expect.MatchString(line) {
				matchAt = now
				w.matched = line
				if w.systemd > 0 {
					return w.result(accel, start, kernelAt, matchAt), nil
				}
				deadline = time.After(afterMatch)
				continue
			}
			for _, f := range fatal {
				if f.re.MatchString(line) {
					failReason = f.reason
					deadline = time.After(afterMatch)
					break
				}
			}
		case <-deadline:
			if !matchAt.IsZero() {
				return w.result(accel, start, kernelAt, matchAt), nil
			}
			return nil, w.fail(failReason, accel, vm.stderrTail())
		case <-runCtx.Done():
			if ctx.Err() != nil {
				return nil, fmt.Errorf("boot: %w", ctx.Err())
			}
			return nil, w.fail(fmt.Sprintf("no console line matched %q within %s", opt.Expect, opt.Timeout), accel, vm.stderrTail())
		}
	}
}

func (o *Options) fill() error {
	if o.Disk == "" {
		return errors.New("boot: no disk given")
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Expect == "" {
		o.Expect = DefaultExpect
	}
	if o.MemoryMiB == 0 {
		o.MemoryMiB = DefaultMemoryMiB
	}
	if o.Accel == "" {
		o.Accel = AccelAuto
	}
	if err := ValidAccel(o.Accel); err != nil {
		return err
	}
	if o.Arch == "" {
		o.Arch = "amd64"
	}
	m, d, err := machineOf(o.Arch)
	if err != nil {
		return err
	}
	o.machine = m
	if o.Accel == AccelKVM && !o.native() {
		return fmt.Errorf("boot: accel kvm runs only the build host's own architecture (%s), and the disk is %s: use accel tcg (or auto)", debarch.Native(), o.Arch)
	}
	if o.QEMU == "" {
		o.QEMU = d.QEMU
	}
	if o.Firmware == "" && o.Kernel != "" {
		// A direct kernel boot needs no UEFI firmware.
	} else if o.Firmware == "" {
		code, vars, err := FindFirmwareFor("/", o.Arch)
		if err != nil {
			return err
		}
		o.Firmware = code
		if o.Vars == "" {
			o.Vars = vars
		}
	} else if o.Vars == "" {
		o.Vars = varsBeside(o.Firmware)
	}
	// QEMU runs in a temporary directory: relative paths would miss.
	for _, p := range []*string{&o.Disk, &o.Firmware, &o.Vars, &o.Kernel, &o.Initrd} {
		if *p != "" {
			abs, err := filepath.Abs(*p)
			if err != nil {
				return err
			}
			*p = abs
		}
	}
	for i, d := range o.Drives {
		abs, err := filepath.Abs(d)
		if err != nil {
			return err
		}
		o.Drives[i] = abs
	}
	return nil
}

// native says whether the disk's architecture is the build host's (KVM
// can run it).
func (o *Options) native() bool { return o.Arch == debarch.Native() }

// ValidAccel says whether a is an accelerator Options.Accel takes.
func ValidAccel(a string) error {
	for _, v := range Accels {
		if a == v {
			return nil
		}
	}
	return fmt.Errorf("boot: accel %q is not one of %s", a, strings.Join(Accels, ", "))
}
