package boot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strata-build/packer-plugin-strata/internal/debarch"
)

// fakeQEMU is a stand-in for qemu-system-x86_64: it records its arguments
// and pid, starts a child that would outlive it if its group were not
// killed, and plays the console FAKE_MODE names. Under accel=kvm it plays
// FAKE_KVM instead ("ok": OVMF's boot manager, "broken": KVM internal
// error).
const fakeQEMU = `#!/bin/bash
dir=$(dirname "$0")
echo "$@" >> "$dir/args"
echo $$ >> "$dir/pids"
sleep 1000 & echo $! >> "$dir/pids"
case "$*" in *accel=kvm*)
  echo kvm >> "$dir/probes"
  case "$FAKE_KVM" in
    ok) printf '\033[2J\033[01;01HBdsDxe: loading Boot0001 "UEFI Misc Device"\r\n'; sleep 1000;;
    *) echo 'KVM internal error. Suberror: 1' >&2; echo 'EAX=00000000' >&2; sleep 1000;;
  esac
  [ "$FAKE_MODE" = probe ] && exit 0
esac
case "$FAKE_MODE" in
  systemd)
    printf '\033[2J\033[01;01H\033[=3hBdsDxe: starting Boot0001\r\n'
    echo '[    0.000000] Linux version 6.1.0-28-cloud-amd64'
    echo '[    1.500000] Run /init as init process'
    echo '[  OK  ] Reached target multi-user.target - Multi-User System.'
    echo '[   12.000000] systemd[1]: Startup finished in 1.002s (firmware) + 500ms (loader) + 2.5s (kernel) + 3s (initrd) + 1min 4.5s (userspace) = 1min 11.502s.'
    sleep 1000;;
  console)
    sleep 0.6
    echo '[    0.000000] Linux version 6.1.0-28-cloud-amd64'
    sleep 0.6
    echo 'Welcome to Debian GNU/Linux 12 (bookworm)!'
    echo 'custom: ready'
    sleep 1000;;
  panic)
    echo '[    0.000000] Linux version 6.1.0-28-cloud-amd64'
    echo '[    2.000000] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)'
    echo '[    2.000001] CPU: 0 PID: 1 Comm: swapper/0 Not tainted'
    echo '[    2.000002] ---[ end Kernel panic - not syncing ]---'
    sleep 1000;;
  timerpanic|timerpanic-always)
    echo run >> "$dir/timer-runs"
    if [ "$FAKE_MODE" = timerpanic-always ] || [ "$(wc -l < "$dir/timer-runs")" -lt 3 ]; then
      echo '[    0.000000] Linux version 6.1.0-50-cloud-amd64'
      echo '[    0.056000] Kernel panic - not syncing: IO-APIC + timer doesn'"'"'t work!  Boot with apic=debug and send a report.'
      echo '[    0.056000] ---[ end Kernel panic - not syncing: IO-APIC + timer doesn'"'"'t work! ]---'
    else
      echo '[    0.000000] Linux version 6.1.0-50-cloud-amd64'
      echo '[  OK  ] Reached target multi-user.target - Multi-User System.'
    fi
    sleep 1000;;
  chatty)
    for i in $(seq 1 60); do echo "line $i"; done
    sleep 1000;;
  die)
    echo 'BdsDxe: starting Boot0001'
    echo 'qemu-system-x86_64: -drive file=x: Could not open x' >&2
    exit 1;;
  shell)
    printf '\033[2J\033[01;01HUEFI Interactive Shell v2.2\r\nShell> '
    sleep 1000;;
esac
`

type fake struct {
	dir, qemu string
}

func newFake(t *testing.T) *fake {
	t.Helper()
	dir := t.TempDir()
	f := &fake{dir: dir, qemu: filepath.Join(dir, "qemu")}
	if err := os.WriteFile(f.qemu, []byte(fakeQEMU), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"code.fd", "vars.fd", "disk.raw"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	old := afterMatch
	afterMatch = 300 * time.Millisecond
	t.Cleanup(func() { afterMatch = old })
	return f
}

func (f *fake) options(accel string) Options {
	return Options{
		Disk:     filepath.Join(f.dir, "disk.raw"),
		Firmware: filepath.Join(f.dir, "code.fd"),
		Vars:     filepath.Join(f.dir, "vars.fd"),
		Accel:    accel,
		Timeout:  20 * time.Second,
		QEMU:     f.qemu,
	}
}

func (f *fake) read(name string) string {
	b, _ := os.ReadFile(filepath.Join(f.dir, name))
	return string(b)
}

// assertNoneAlive checks that no process the fake started (QEMU or its
// child) is alive: every one has been killed and reaped.
func (f *fake) assertNoneAlive(t *testing.T) {
	t.Helper()
	pids := strings.Fields(f.read("pids"))
	if len(pids) == 0 {
		t.Fatal("the fake qemu never ran")
	}
	// The child is reparented to init, which reaps it a moment later.
	deadline := time.Now().Add(5 * time.Second)
	for _, p := range pids {
		pid, _ := strconv.Atoi(p)
		for alive(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("process %d of the fake qemu is still alive", pid)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// A zombie is dead; it only waits for its parent to reap it.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || !strings.HasPrefix(s[i+1:], " Z")
}

type recorder struct{ started, ended []int }

func (r *recorder) GroupStarted(pgid int, _ uint64) { r.started = append(r.started, pgid) }
func (r *recorder) GroupEnded(pgid int)             { r.ended = append(r.ended, pgid) }

func TestCheckSystemdReached(t *testing.T) {
	f := newFake(t)
	t.Setenv("FAKE_MODE", "systemd")
	var console bytes.Buffer
	rec := &recorder{}
	opt := f.options(AccelTCG)
	opt.Console = &console
	opt.Tracker = rec
	res, err := Check(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	f.assertNoneAlive(t)
	if res.Accel != AccelTCG {
		t.Errorf("accel %q, want tcg", res.Accel)
	}
	// kernel + initrd + userspace, not firmware and loader.
	if want := 2500*time.Millisecond + 3*time.Second + 64500*time.Millisecond; res.BootTime != want || res.BootTimeSource != "systemd" {
		t.Errorf("boot time %s from %s, want %s from systemd", res.BootTime, res.BootTimeSource, want)
	}
	if !strings.Contains(res.Matched, "Reached target multi-user.target") {
		t.Errorf("matched %q", res.Matched)
	}
	if res.Total <= 0 || res.Total > 20*time.Second {
		t.Errorf("total %s", res.Total)
	}
	// Terminal escapes are gone from the console copy and the tail.
	if strings.Contains(console.String(), "\x1b") || !strings.Contains(console.String(), "BdsDxe: starting Boot0001\n") {
		t.Errorf("console copy:\n%q", console.String())
	}
	if len(res.Console) != 5 || res.Console[0] != "BdsDxe: starting Boot0001" {
		t.Errorf("console tail %q", res.Console)
	}
	if len(rec.started) != 1 || len(rec.ended) != 1 || rec.started[0] != rec.ended[0] {
		t.Errorf("tracker saw groups started %v ended %v", rec.started, rec.ended)
	}
	args := f.read("args")
	for _, want := range []string{
		"-machine q35,accel=tcg", "-nic none", "-no-reboot", "-serial stdio", "-display none",
		"file=" + opt.Disk + ",format=raw,if=virtio,snapshot=on",
		"if=pflash,format=raw,unit=0,readonly=on,file=" + opt.Firmware,
		"-m 1024",
	} {
		if !strings.Contains(args, want) {
			t.Errorf("qemu args lack %q: %s", want, args)
		}
	}
	// The variables are a private copy, never the host's file.
	if strings.Contains(args, "file="+opt.Vars) || !strings.Contains(args, "unit=1,file=") {
		t.Errorf("qemu args should use a copy of the vars file: %s", args)
	}
	if strings.Contains(f.read("probes"), "kvm") {
		t.Error("accel tcg must not probe KVM")
	}
}

func TestCheckCustomExpectTimesFromConsole(t *testing.T) {
	f := newFake(t)
	t.Setenv("FAKE_MODE", "console")
	opt := f.options(AccelTCG)
	opt.Expect = `^custom: ready$`
	// A relative path works although QEMU runs elsewhere.
	os.WriteFile(filepath.Join(f.dir, "disk.qcow2"), nil, 0o644)
	wd, _ := os.Getwd()
	t.Cleanup(func() { os.Chdir(wd) })
	os.Chdir(f.dir)
	opt.Disk = "disk.qcow2"
	res, err := Check(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	f.assertNoneAlive(t)
	// The fake waits 0.6 s, prints the kernel's first line, waits 0.6 s
	// and prints the expected line: the boot time counts the second wait
	// and not the first. The margins are wide because a loaded host may
	// read either line late (CI saw 199.8 ms for a 200 ms wait).
	if res.BootTimeSource != "console" || res.BootTime < 300*time.Millisecond || res.BootTime > res.Total-300*time.Millisecond {
		t.Errorf("boot time %s from %s (total %s): want the host clock from the kernel's first line", res.BootTime, res.BootTimeSource, res.Total)
	}
	if !strings.Contains(f.read("args"), "file="+filepath.Join(f.dir, "disk.qcow2")+",format=qcow2") {
		t.Errorf("a .qcow2 disk should be opened as qcow2: %s", f.read("args"))
	}
}

func TestCheckPanicFailsEarlyWithTail(t *testing.T) {
	f := newFake(t)
	t.Setenv("FAKE_MODE", "panic")
	opt := f.options(AccelTCG)
	opt.Timeout = time.Hour
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := Check(ctx, opt)
	f.assertNoneAlive(t)
	var be *Error
	if !errors.As(err, &be) {
		t.Fatalf("want a boot error, got %v", err)
	}
	if be.Reason != "kernel panic" {
		t.Errorf("reason %q", be.Reason)
	}
	// The lines after the panic (its trace) are in the tail too.
	if len(be.Console) != 4 || !strings.Contains(be.Console[3], "end Kernel panic") {
		t.Errorf("tail %q", be.Console)
	}
	if !strings.Contains(err.Error(), "Unable to mount root fs") {
		t.Errorf("error lacks the console tail: %v", err)
	}
}

// The kernel's timer check failing under TCG (QEMU's timer thread
// starved on a busy host) is retried, up to three boots in all; any other
// panic, or the same under KVM, is not.
func TestCheckRetriesEmulatedTimerPanic(t *testing.T) {
	f := newFake(t)
	t.Setenv("FAKE_MODE", "timerpanic")
	var console bytes.Buffer
	opt := f.options(AccelTCG)
	opt.Console = &console
	res, err := Check(context.Background(), opt)
	f.assertNoneAlive(t)
	if err != nil {
		t.Fatalf("the third boot passes: %v", err)
	}
	if res.Retries != 2 || strings.Count(f.read("timer-runs"), "run") != 3 {
		t.Errorf("retries %d, boots %q", res.Retries, f.read("timer-runs"))
	}
	if !strings.Contains(console.String(), "booting again (3 of 3)") {
		t.Errorf("the console does not say it boots again:\n%s", console.String())
	}

	f = newFake(t)
	t.Setenv("FAKE_MODE", "timerpanic-always")
	_, err = Check(context.Background(), f.options(AccelTCG))
	var be *Error
	if !errors.As(err, &be) || be.Reason != "kernel panic" || strings.Count(f.read("timer-runs"), "run") != 3 {
		t.Errorf("always panicking: %v after %q", err, f.read("timer-runs"))
	}

	// Another panic is the image's: no retry.
	f = newFake(t)
	t.Setenv("FAKE_MODE", "panic")
	if _, err := Check(context.Background(), f.options(AccelTCG)); err == nil || strings.Count(f.read("args"), "\n") != 1 {
		t.Errorf("a root-fs panic: %v, booted %d times", err, strings.Count(f.read("args"), "\n"))
	}
	if emulatedTimerPanic(&Error{Accel: AccelKVM, Reason: "kernel panic", Console: []string{"Kernel panic - not syncing: IO-APIC + timer doesn't work!"}}) {
		t.Error("under KVM the timer panic is not emulation's")
	}
}

func TestCheckUEFIShellFails(t *testing.T) {
	f := newFake(t)
	t.Setenv("FAKE_MODE", "shell")
	_, err := Check(context.Background(), f.options(AccelTCG))
	f.assertNoneAlive(t)
	var be *Error
	if !errors.As(err, &be) || !strings.Contains(be.Reason, "UEFI shell") {
		t.Fatalf("want the UEFI shell failure, got %v", err)
	}
}

func TestCheckTimeoutKeepsLast50Lines(t *testing.T) {
	f := newFake(t)
	t.Setenv("FAKE_MODE", "chatty")
	opt := f.options(AccelTCG)
	opt.Timeout = 1500 * time.Millisecond
	_, err := Check(context.Background(), opt)
	f.assertNoneAlive(t)
	var be *Error
	if !errors.As(err, &be) {
		t.Fatalf("want a boot error, got %v", err)
	}
	if !strings.Contains(be.Reason, "within 1.5s") {
		t.Errorf("reason %q", be.Reason)
	}
	if len(be.Console) != TailLines || be.Console[0] != "line 11" || be.Console[49] != "line 60" {
		t.Errorf("tail has %d lines: %q … %q", len(be.Console), be.Console[0], be.Console[len(be.Console)-1])
	}
}

func TestCheckQEMUDiesWithItsError(t *testing.T) {
	f := newFake(t)
	t.Setenv("FAKE_MODE", "die")
	_, err := Check(context.Background(), f.options(AccelTCG))
	f.assertNoneAlive(t)
	var be *Error
	if !errors.As(err, &be) {
		t.Fatalf("want a boot error, got %v", err)
	}
	if !strings.Contains(be.Reason, "qemu exited") || !strings.Contains(err.Error(), "Could not open x") || !strings.Contains(err.Error(), "BdsDxe") {
		t.Errorf("error lacks the reason, qemu's message or the console: %v", err)
	}
}

func TestCheckCancel(t *testing.T) {
	f := newFake(t)
	t.Setenv("FAKE_MODE", "chatty")
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		// Cancel once the VM runs.
		for !strings.Contains(f.read("pids"), "\n") {
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
	}()
	opt := f.options(AccelTCG)
	opt.Timeout = time.Hour
	_, err := Check(ctx, opt)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("want context.Canceled, got %v", err)
	}
	f.assertNoneAlive(t)
}

func TestAutoFallsBackToTCGWhenKVMBreaks(t *testing.T) {
	f := newFake(t)
	t.Setenv("FAKE_MODE", "systemd")
	t.Setenv("FAKE_KVM", "broken")
	for i := 0; i < 2; i++ {
		res, err := Check(context.Background(), f.options(AccelAuto))
		if err != nil {
			t.Fatal(err)
		}
		if res.Accel != AccelTCG {
			t.Errorf("accel %q, want the fallback tcg", res.Accel)
		}
	}
	f.assertNoneAlive(t)
	// Probed once; the answer is cached for the process.
	if n := strings.Count(f.read("probes"), "kvm"); n != 1 {
		t.Errorf("KVM probed %d times, want 1", n)
	}
	if !strings.Contains(f.read("args"), "accel=tcg") {
		t.Error("the boot did not run under tcg")
	}
}

func TestAutoUsesKVMWhenItWorks(t *testing.T) {
	f := newFake(t)
	t.Setenv("FAKE_MODE", "probe")
	t.Setenv("FAKE_KVM", "ok")
	if !ProbeKVM(context.Background(), f.qemu, filepath.Join(f.dir, "code.fd"), "", nil) {
		t.Fatal("probe failed although the firmware reached its boot manager under KVM")
	}
	f.assertNoneAlive(t)
}

func TestExplicitKVMFailsOnInternalError(t *testing.T) {
	f := newFake(t)
	t.Setenv("FAKE_MODE", "systemd")
	t.Setenv("FAKE_KVM", "broken")
	_, err := Check(context.Background(), f.options(AccelKVM))
	f.assertNoneAlive(t)
	var be *Error
	if !errors.As(err, &be) || !strings.Contains(be.Reason, "KVM internal error") || be.Accel != AccelKVM {
		t.Fatalf("want the KVM failure, got %v", err)
	}
	if strings.Count(f.read("probes"), "kvm") != 1 {
		t.Error("accel kvm should boot under KVM once, without a probe")
	}
}

func TestOptionErrors(t *testing.T) {
	f := newFake(t)
	for name, opt := range map[string]Options{
		"accel":  {Disk: "x", Accel: "hvf", Firmware: "c"},
		"expect": {Disk: filepath.Join(f.dir, "disk.raw"), Expect: "(", Firmware: "c"},
		"disk":   {Disk: filepath.Join(f.dir, "missing.raw"), Firmware: "c"},
	} {
		if _, err := Check(context.Background(), opt); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: got %v", name, err)
		}
	}
}

func TestParseStartupFinished(t *testing.T) {
	for line, want := range map[string]time.Duration{
		"[   12.3] systemd[1]: Startup finished in 2.5s (kernel) + 10.25s (userspace) = 12.75s.":                                    12750 * time.Millisecond,
		"Startup finished in 900ms (firmware) + 120ms (loader) + 1.1s (kernel) + 2s (initrd) + 1min 2.5s (userspace) = 1min 6.62s.": 65600 * time.Millisecond,
	} {
		got, ok := ParseStartupFinished(line)
		if !ok || got != want {
			t.Errorf("%q: got %s %v, want %s", line, got, ok, want)
		}
	}
	if _, ok := ParseStartupFinished("Reached target multi-user.target"); ok {
		t.Error("parsed a line that is no summary")
	}
}

func TestScanLinesStripsEscapes(t *testing.T) {
	var got []string
	scanLines(strings.NewReader("\x1b[2J\x1b[01;01H\x1b[=3hBdsDxe: a\r\n\r\n\x1b[1m\x1b[33mShell> \x1b[0m"), func(l string) { got = append(got, l) })
	if strings.Join(got, "|") != "BdsDxe: a|Shell>" {
		t.Errorf("got %q", got)
	}
}

func TestVarsBeside(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"OVMF_CODE_4M.fd", "OVMF_VARS_4M.fd", "OVMF_CODE_4M.secboot.fd"} {
		os.WriteFile(filepath.Join(dir, n), nil, 0o644)
	}
	want := filepath.Join(dir, "OVMF_VARS_4M.fd")
	for _, code := range []string{"OVMF_CODE_4M.fd", "OVMF_CODE_4M.secboot.fd"} {
		if got := varsBeside(filepath.Join(dir, code)); got != want {
			t.Errorf("%s: got %q", code, got)
		}
	}
	if got := varsBeside(filepath.Join(dir, "custom.fd")); got != "" {
		t.Errorf("custom.fd: got %q", got)
	}
}

// TestCheckDirectKernel: a direct kernel boot (strata-test) passes
// -kernel, -initrd and -append, attaches the extra drives read-only after
// the disk, and needs no UEFI firmware.
func TestCheckDirectKernel(t *testing.T) {
	f := newFake(t)
	t.Setenv("FAKE_MODE", "console")
	for _, n := range []string{"linux", "initrd", "tests.tar"} {
		os.WriteFile(filepath.Join(f.dir, n), []byte(n), 0o644)
	}
	opt := Options{Disk: filepath.Join(f.dir, "disk.raw"), Accel: AccelTCG, Timeout: 20 * time.Second, QEMU: f.qemu,
		Expect: `^custom: ready$`, Kernel: filepath.Join(f.dir, "linux"), Initrd: filepath.Join(f.dir, "initrd"),
		Append: "root=PARTUUID=x ro console=ttyS0", Drives: []string{filepath.Join(f.dir, "tests.tar")}}
	if _, err := Check(context.Background(), opt); err != nil {
		t.Fatal(err)
	}
	f.assertNoneAlive(t)
	args := f.read("args")
	disk := strings.Index(args, "file="+opt.Disk+",format=raw,if=virtio,snapshot=on")
	extra := strings.Index(args, "file="+opt.Drives[0]+",format=raw,if=virtio,readonly=on")
	if disk < 0 || extra < disk {
		t.Errorf("the extra drive should follow the disk, read-only: %s", args)
	}
	for _, want := range []string{"-kernel " + opt.Kernel, "-initrd " + opt.Initrd, "-append root=PARTUUID=x ro console=ttyS0"} {
		if !strings.Contains(args, want) {
			t.Errorf("qemu args lack %q: %s", want, args)
		}
	}
	if strings.Contains(args, "pflash") {
		t.Errorf("a direct kernel boot got firmware: %s", args)
	}
}

// An arm64 disk boots on QEMU's virt machine with AAVMF in two pflash
// units (the variables a private copy), a Cortex-A72 under TCG, and never
// under KVM on a host of another architecture: auto does not probe it,
// kvm is refused.
func TestCheckArm64(t *testing.T) {
	if debarch.Native() == "arm64" {
		t.Skip("on an arm64 host KVM may run an arm64 disk")
	}
	f := newFake(t)
	t.Setenv("FAKE_MODE", "systemd")
	t.Setenv("FAKE_KVM", "ok")
	opt := f.options(AccelAuto)
	opt.Arch = "arm64"
	res, err := Check(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	f.assertNoneAlive(t)
	if res.Accel != AccelTCG || f.read("probes") != "" {
		t.Errorf("accel %s, probes %q: a foreign architecture runs under TCG, unprobed", res.Accel, f.read("probes"))
	}
	args := f.read("args")
	for _, want := range []string{
		"-machine virt,accel=tcg", "-cpu cortex-a72", "-serial stdio", "-nodefaults", "-no-reboot",
		"if=pflash,format=raw,unit=0,readonly=on,file=" + opt.Firmware,
		"file=" + opt.Disk + ",format=raw,if=virtio,snapshot=on",
	} {
		if !strings.Contains(args, want) {
			t.Errorf("qemu args lack %q: %s", want, args)
		}
	}
	if strings.Contains(args, "q35") || strings.Contains(args, "file="+opt.Vars) || !strings.Contains(args, "unit=1,file=") {
		t.Errorf("qemu args: %s", args)
	}
	opt.Accel = AccelKVM
	if _, err := Check(context.Background(), opt); err == nil || !strings.Contains(err.Error(), "use accel tcg") {
		t.Errorf("accel kvm for arm64 on this host: %v", err)
	}
	opt.Arch = "riscv64"
	opt.Accel = AccelTCG
	if _, err := Check(context.Background(), opt); err == nil || !strings.Contains(err.Error(), "amd64 and arm64") {
		t.Errorf("riscv64: %v", err)
	}
}

// The QEMU program and firmware of each architecture, and the Debian
// packages the errors name.
func TestMachineOfArch(t *testing.T) {
	for arch, want := range map[string][3]string{
		"":      {"qemu-system-x86_64", "qemu-system-x86", "install the Debian package ovmf"},
		"amd64": {"qemu-system-x86_64", "qemu-system-x86", "install the Debian package ovmf"},
		"arm64": {"qemu-system-aarch64", "qemu-system-arm", "install the Debian package qemu-efi-aarch64"},
	} {
		prog, pkg, err := QEMUFor(arch)
		if err != nil || prog != want[0] || pkg != want[1] {
			t.Errorf("%q: %s %s %v", arch, prog, pkg, err)
		}
		root := t.TempDir()
		if _, _, err := FindFirmwareFor(root, arch); err == nil || !strings.Contains(err.Error(), want[2]) {
			t.Errorf("%q without firmware: %v", arch, err)
		}
	}
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "usr/share/AAVMF"), 0o755)
	for _, n := range []string{"AAVMF_CODE.fd", "AAVMF_VARS.fd"} {
		os.WriteFile(filepath.Join(root, "usr/share/AAVMF", n), nil, 0o644)
	}
	code, vars, err := FindFirmwareFor(root, "arm64")
	if err != nil || code != filepath.Join(root, "usr/share/AAVMF/AAVMF_CODE.fd") || vars != filepath.Join(root, "usr/share/AAVMF/AAVMF_VARS.fd") {
		t.Errorf("AAVMF: %s %s %v", code, vars, err)
	}
	if _, _, err := FindFirmwareFor(root, "amd64"); err == nil {
		t.Error("AAVMF taken for amd64")
	}
	if _, _, err := QEMUFor("s390x"); err == nil {
		t.Error("s390x has no machine")
	}
}
