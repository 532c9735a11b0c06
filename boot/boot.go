// Package boot boots a disk image under QEMU (UEFI firmware, serial console,
// no network) and watches the console for the line that means the system is
// up: the boot check of a build and of strata-test. The disk is never
// written: QEMU runs it in snapshot mode with its overlay in a private
// temporary directory. No VM outlives Check: QEMU runs in a process group of
// its own that is killed on success, failure, timeout and cancellation.
package boot

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/strata-build/packer-plugin-strata/internal/hostexec"
	"github.com/strata-build/packer-plugin-strata/internal/mount"
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
	// Timeout bounds the whole boot; 0 means DefaultTimeout.
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

// Lines on the console that end a boot early as a failure.
var fatal = []struct {
	re     *regexp.Regexp
	reason string
}{
	{regexp.MustCompile(`Kernel panic - not syncing`), "kernel panic"},
	{regexp.MustCompile(`UEFI Interactive Shell`), "the firmware found nothing to boot and started the UEFI shell"},
	{regexp.MustCompile(`You are in emergency mode|Entering emergency mode`), "systemd entered emergency mode"},
	{regexp.MustCompile(`Dropping to a shell!`), "the initramfs could not mount the root file system and dropped to a shell"},
	{regexp.MustCompile(`KVM internal error`), "KVM internal error (try accel tcg)"},
}

var (
	// ansi matches terminal escape sequences (OVMF draws with them).
	ansi = regexp.MustCompile(`\x1b(\[[0-9;=?]*[A-Za-z]|[()][0-9A-Za-z]|[=>78cDEHM])`)
	// kernelStart is the kernel's first console line.
	kernelStart = regexp.MustCompile(`Linux version [0-9]|^\[\s*0\.0+\] `)
	// startupFinished is systemd's summary once the default target is up.
	startupFinished = regexp.MustCompile(`Startup finished in (.*) = `)
	startupPart     = regexp.MustCompile(`((?:[0-9.]+(?:h|min|s|ms|us|µs)\s*)+)\((\w+)\)`)
)

// afterMatch is how long Check keeps reading after the match for systemd's
// "Startup finished" line, and after a panic for its trace.
var afterMatch = 3 * time.Second

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
		if ProbeKVM(ctx, opt.QEMU, opt.Firmware, opt.Vars, opt.Tracker) {
			accel = AccelKVM
		}
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	tmp, err := os.MkdirTemp("", "strata-boot-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	args, err := qemuArgs(opt.Firmware, opt.Vars, tmp, accel, opt.MemoryMiB)
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
	if o.QEMU == "" {
		o.QEMU = DefaultQEMU
	}
	if o.Firmware == "" {
		code, vars, err := FindFirmware()
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
	for _, p := range []*string{&o.Disk, &o.Firmware, &o.Vars} {
		if *p != "" {
			abs, err := filepath.Abs(*p)
			if err != nil {
				return err
			}
			*p = abs
		}
	}
	return nil
}

// ValidAccel says whether a is an accelerator Options.Accel takes.
func ValidAccel(a string) error {
	for _, v := range Accels {
		if a == v {
			return nil
		}
	}
	return fmt.Errorf("boot: accel %q is not one of %s", a, strings.Join(Accels, ", "))
}

// Firmware files of Debian's ovmf package, best first.
var firmwareCandidates = [][2]string{
	{"/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd"},
	{"/usr/share/OVMF/OVMF_CODE.fd", "/usr/share/OVMF/OVMF_VARS.fd"},
}

// FindFirmware returns the host's OVMF code and variables files.
func FindFirmware() (code, vars string, err error) {
	for _, c := range firmwareCandidates {
		if _, err := os.Stat(c[0]); err == nil {
			if _, err := os.Stat(c[1]); err != nil {
				c[1] = ""
			}
			return c[0], c[1], nil
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

// qemuArgs are the machine's arguments but the disk: q35, UEFI with a
// private copy of the variables in tmp, serial console on stdout, no
// display, no network, no reboot (a panic or a reboot ends the run).
func qemuArgs(code, vars, tmp, accel string, mem int) ([]string, error) {
	args := []string{
		"-machine", "q35,accel=" + accel,
		"-m", strconv.Itoa(mem),
		"-smp", "1",
		"-nodefaults", "-display", "none", "-monitor", "none",
		"-serial", "stdio",
		"-nic", "none",
		"-no-reboot",
		"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=" + qemuPath(code),
	}
	if accel == AccelKVM {
		args = append(args, "-cpu", "host")
	}
	if vars != "" {
		data, err := os.ReadFile(vars)
		if err != nil {
			return nil, fmt.Errorf("boot: firmware variables: %w", err)
		}
		own := filepath.Join(tmp, "OVMF_VARS.fd")
		if err := os.WriteFile(own, data, 0o600); err != nil {
			return nil, err
		}
		args = append(args, "-drive", "if=pflash,format=raw,unit=1,file="+qemuPath(own))
	}
	return args, nil
}

// qemuPath escapes a path for a -drive option (a comma is doubled).
func qemuPath(p string) string { return strings.ReplaceAll(p, ",", ",,") }

// vm is one running QEMU.
type vm struct {
	cmd     *exec.Cmd
	lines   chan string
	tracker hostexec.Tracker
	done    chan struct{} // closed once QEMU has exited and been reaped
	stopped chan struct{} // closed when Check no longer reads the console
	waitErr error
	mu      sync.Mutex
	stderr  []string
	once    sync.Once
}

func startVM(qemu string, args []string, tmp string, t hostexec.Tracker) (*vm, error) {
	cmd := exec.Command(qemu, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C", "TMPDIR="+tmp)
	cmd.Dir = tmp
	// A group of its own (killed whole by stop) that dies with us.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// Our own pipes, not StdoutPipe: Wait must not close them while the
	// console is still being read.
	stdout, stdoutW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	stderr, stderrW, err := os.Pipe()
	if err != nil {
		stdout.Close()
		stdoutW.Close()
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = stdoutW, stderrW
	err = cmd.Start()
	stdoutW.Close()
	stderrW.Close()
	if err != nil {
		stdout.Close()
		stderr.Close()
		return nil, fmt.Errorf("boot: starting %s: %w", qemu, err)
	}
	v := &vm{cmd: cmd, lines: make(chan string, 256), tracker: t, done: make(chan struct{}), stopped: make(chan struct{})}
	go func() {
		v.waitErr = cmd.Wait()
		// Whatever of the group outlived QEMU goes too, so the console
		// pipes close.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		close(v.done)
	}()
	if t != nil {
		st, _ := mount.StartTime(cmd.Process.Pid)
		t.GroupStarted(cmd.Process.Pid, st)
	}
	var readers sync.WaitGroup
	readers.Add(2)
	go func() {
		defer readers.Done()
		defer stdout.Close()
		scanLines(stdout, func(l string) {
			select {
			case v.lines <- l:
			case <-v.stopped:
			}
		})
	}()
	go func() {
		defer readers.Done()
		defer stderr.Close()
		scanLines(stderr, func(l string) {
			v.mu.Lock()
			v.stderr = append(v.stderr, l)
			if len(v.stderr) > 10 {
				v.stderr = v.stderr[1:]
			}
			v.mu.Unlock()
			// QEMU reports a KVM failure on stderr; show it to the
			// watcher like a console line.
			if strings.Contains(l, "KVM internal error") {
				select {
				case v.lines <- l:
				case <-v.stopped:
				}
			}
		})
	}()
	go func() {
		readers.Wait()
		close(v.lines)
	}()
	return v, nil
}

// scanLines splits r at newlines (and carriage returns: OVMF redraws
// lines), removes terminal escapes and passes each non-empty line on.
func scanLines(r io.Reader, each func(string)) {
	br := bufio.NewReaderSize(r, 64*1024)
	var cur []byte
	flush := func() {
		l := strings.TrimRight(ansi.ReplaceAllString(string(cur), ""), " \t")
		cur = cur[:0]
		if strings.TrimSpace(l) != "" {
			each(l)
		}
	}
	for {
		b, err := br.ReadByte()
		if err != nil {
			flush()
			return
		}
		switch {
		case b == '\n' || b == '\r':
			flush()
		case len(cur) < 4096:
			cur = append(cur, b)
		}
	}
}

// wait waits for QEMU to exit.
func (v *vm) wait() { <-v.done }

// stop kills QEMU's whole group and waits for it: nothing of the VM
// outlives Check.
func (v *vm) stop() {
	pgid := v.cmd.Process.Pid
	v.once.Do(func() { close(v.stopped) })
	select {
	case <-v.done:
		// Reaped, and its group killed then: the number may be another's now.
	default:
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
	v.wait()
	if v.tracker != nil {
		v.tracker.GroupEnded(pgid)
	}
}

func (v *vm) exitStatus() string {
	if v.waitErr == nil {
		return "exit status 0"
	}
	return v.waitErr.Error()
}

func (v *vm) stderrTail() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]string(nil), v.stderr...)
}

// watcher keeps the console's tail and systemd's startup summary.
type watcher struct {
	expect  *regexp.Regexp
	console io.Writer
	tail    []string
	matched string
	systemd time.Duration
}

func (w *watcher) add(line string) {
	if w.console != nil {
		fmt.Fprintln(w.console, line)
	}
	w.tail = append(w.tail, line)
	if len(w.tail) > TailLines {
		w.tail = w.tail[len(w.tail)-TailLines:]
	}
	if d, ok := ParseStartupFinished(line); ok {
		w.systemd = d
	}
}

func (w *watcher) fail(reason, accel string, stderr []string) *Error {
	return &Error{Reason: reason, Accel: accel, Console: append([]string(nil), w.tail...), Stderr: stderr}
}

func (w *watcher) result(accel string, start, kernelAt, matchAt time.Time) *Result {
	r := &Result{Accel: accel, Total: matchAt.Sub(start), Console: append([]string(nil), w.tail...), Matched: w.matched}
	switch {
	case w.systemd > 0:
		r.BootTime, r.BootTimeSource = w.systemd, "systemd"
	case !kernelAt.IsZero():
		r.BootTime, r.BootTimeSource = matchAt.Sub(kernelAt), "console"
	default:
		// The kernel printed nothing (no console=ttyS0): all we know is
		// the whole run.
		r.BootTime, r.BootTimeSource = r.Total, "total"
	}
	return r
}

// ParseStartupFinished reads systemd's "Startup finished in 1.2s (firmware)
// + 800ms (loader) + 2.1s (kernel) + 3.4s (initrd) + 10.2s (userspace) =
// 17.7s." and returns the time from the kernel's start: kernel + initrd +
// userspace.
func ParseStartupFinished(line string) (time.Duration, bool) {
	m := startupFinished.FindStringSubmatch(line)
	if m == nil {
		return 0, false
	}
	var sum time.Duration
	found := false
	for _, p := range startupPart.FindAllStringSubmatch(m[1], -1) {
		switch p[2] {
		case "kernel", "initrd", "userspace":
		default:
			continue
		}
		d, err := parseTimespan(p[1])
		if err != nil {
			return 0, false
		}
		sum += d
		found = true
	}
	return sum, found
}

// parseTimespan reads systemd's "1min 2.345s", "345ms", "1h 2min".
func parseTimespan(s string) (time.Duration, error) {
	s = strings.NewReplacer("min", "m", "µs", "us", " ", "").Replace(strings.TrimSpace(s))
	return time.ParseDuration(s)
}

// probes caches ProbeKVM per QEMU and firmware for the process's life.
var probes sync.Map

// ProbeKVM boots the firmware alone under KVM for a few seconds and says
// whether it got as far as its boot manager. /dev/kvm opening says
// nothing: on some hosts OVMF dies under it with "KVM internal error".
// The answer is cached per process.
func ProbeKVM(ctx context.Context, qemu, code, vars string, t hostexec.Tracker) bool {
	key := qemu + "\x00" + code
	if v, ok := probes.Load(key); ok {
		return v.(bool)
	}
	ok := probeKVM(ctx, qemu, code, vars, t)
	if ctx.Err() == nil {
		probes.Store(key, ok)
	}
	return ok
}

// probeTimeout bounds the probe: OVMF reaches its boot manager in about a
// second under KVM.
var probeTimeout = 10 * time.Second

var probeOK = regexp.MustCompile(`BdsDxe|UEFI Interactive Shell|Shell>`)

func probeKVM(ctx context.Context, qemu, code, vars string, t hostexec.Tracker) bool {
	if _, err := os.Stat("/dev/kvm"); err != nil && qemu == DefaultQEMU {
		return false
	}
	tmp, err := os.MkdirTemp("", "strata-kvmprobe-")
	if err != nil {
		return false
	}
	defer os.RemoveAll(tmp)
	args, err := qemuArgs(code, vars, tmp, AccelKVM, 128)
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	v, err := startVM(qemu, args, tmp, t)
	if err != nil {
		return false
	}
	defer v.stop()
	for {
		select {
		case l, ok := <-v.lines:
			if !ok || strings.Contains(l, "KVM internal error") {
				return false
			}
			if probeOK.MatchString(l) {
				return true
			}
		case <-ctx.Done():
			return false
		}
	}
}
