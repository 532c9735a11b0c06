package binfmt

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const aarch64Rule = `:qemu-aarch64:M::\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:/usr/libexec/qemu-binfmt/aarch64-binfmt-P:FPC`

func TestParseEntry(t *testing.T) {
	e, err := ParseEntry("qemu-aarch64", []byte("enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: POCF\noffset 0\nmagic 7f454c46\nmask ffffff\n"))
	if err != nil || !e.Enabled || !e.Fixed() || e.Interpreter != "/usr/libexec/qemu-binfmt/aarch64-binfmt-P" || e.Flags != "POCF" {
		t.Fatalf("%+v %v", e, err)
	}
	e, err = ParseEntry("qemu-arm", []byte("disabled\ninterpreter /usr/bin/qemu-arm\nflags: OC\n"))
	if err != nil || e.Enabled || e.Fixed() {
		t.Fatalf("%+v %v", e, err)
	}
	if _, err := ParseEntry("status", []byte("enabled\n")); err == nil {
		t.Fatal("the status file is no entry")
	}
}

func TestParseRule(t *testing.T) {
	r, err := ParseRule(aarch64Rule)
	if err != nil || r.Name != "qemu-aarch64" || r.Flags != "FPC" || !r.Fixed() || r.Interpreter != "/usr/libexec/qemu-binfmt/aarch64-binfmt-P" {
		t.Fatalf("%+v %v", r, err)
	}
	if r, err := ParseRule(":qemu-arm:M::\\x7fELF:\\xff:/usr/bin/qemu-arm:"); err != nil || r.Fixed() {
		t.Fatalf("%+v %v", r, err)
	}
	for _, bad := range []string{"", ":x", ":../x:M::a:b:/i:F", ":x:Q::a:b:/i:F", ":register:M::a:b:/i:F"} {
		if _, err := ParseRule(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// fakeSystem is a binfmt_misc in directories: mounting creates status and
// register, a write to register creates the handler's file, "-1" to a
// handler removes it.
type fakeSystem struct {
	*System
	calls []string
}

func newFake(t *testing.T, mounted bool, conf string) *fakeSystem {
	d := t.TempDir()
	f := &fakeSystem{}
	s := &System{Dir: filepath.Join(d, "proc"), ConfDirs: []string{filepath.Join(d, "etc"), filepath.Join(d, "lib")}, LeaseDir: filepath.Join(d, "run")}
	for _, dir := range []string{s.Dir, s.ConfDirs[0], s.ConfDirs[1]} {
		os.MkdirAll(dir, 0o755)
	}
	s.Mount = func(dir string) error {
		f.calls = append(f.calls, "mount")
		os.WriteFile(filepath.Join(dir, "status"), []byte("enabled\n"), 0o644)
		return os.WriteFile(filepath.Join(dir, "register"), nil, 0o200)
	}
	s.Unmount = func(dir string) error {
		f.calls = append(f.calls, "unmount")
		os.Remove(filepath.Join(dir, "status"))
		return os.Remove(filepath.Join(dir, "register"))
	}
	s.Write = func(path string, data []byte) error {
		if filepath.Base(path) == "register" {
			r, err := ParseRule(string(data))
			if err != nil {
				return err
			}
			f.calls = append(f.calls, "register "+r.Name)
			return os.WriteFile(filepath.Join(s.Dir, r.Name), []byte("enabled\ninterpreter "+r.Interpreter+"\nflags: "+r.Flags+"\n"), 0o644)
		}
		if string(data) == "-1" {
			f.calls = append(f.calls, "unregister "+filepath.Base(path))
			return os.Remove(path)
		}
		return os.WriteFile(path, data, 0o644)
	}
	if mounted {
		s.Mount(s.Dir)
		f.calls = nil
	}
	if conf != "" {
		os.WriteFile(filepath.Join(s.ConfDirs[1], "qemu-aarch64.conf"), []byte("# qemu\n"+conf+"\n"), 0o644)
	}
	f.System = s
	return f
}

func (f *fakeSystem) state(t *testing.T) string {
	t.Helper()
	names, _ := os.ReadDir(f.Dir)
	var n []string
	for _, e := range names {
		n = append(n, e.Name())
	}
	return strings.Join(n, " ")
}

func TestAcquireMountsRegistersAndTheLastReleaseUndoes(t *testing.T) {
	f := newFake(t, false, aarch64Rule)
	before := f.state(t)
	a, err := f.Acquire("aarch64")
	if err != nil {
		t.Fatal(err)
	}
	if !a.Handler.Fixed() || len(a.Did) != 2 {
		t.Fatalf("%+v", a)
	}
	// Registered with F and P only: never C (a setuid foreign binary's
	// emulator as root with its caller's environment), never O.
	if a.Handler.Flags != "PF" {
		t.Fatalf("registered with flags %q, want PF", a.Handler.Flags)
	}
	// A second build shares the mount and the handler.
	b, err := f.Acquire("aarch64")
	if err != nil || len(b.Did) != 0 {
		t.Fatalf("%+v %v", b, err)
	}
	if err := a.Release(); err != nil {
		t.Fatal(err)
	}
	if got := f.state(t); got != "qemu-aarch64 register status" {
		t.Fatalf("the first release took away what the second build uses: %q", got)
	}
	if err := b.Release(); err != nil {
		t.Fatal(err)
	}
	if got := f.state(t); got != before {
		t.Fatalf("after: %q, before: %q", got, before)
	}
	if got := strings.Join(f.calls, ","); got != "mount,register qemu-aarch64,unregister qemu-aarch64,unmount" {
		t.Fatal(got)
	}
	// Released twice is nothing.
	if err := b.Release(); err != nil {
		t.Fatal(err)
	}
}

func TestAcquireUsesTheHostsHandlerAndLeavesIt(t *testing.T) {
	f := newFake(t, true, "")
	os.WriteFile(filepath.Join(f.Dir, "qemu-aarch64"), []byte("enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: POCF\n"), 0o644)
	l, err := f.Acquire("aarch64")
	if err != nil || len(l.Did) != 0 {
		t.Fatalf("%+v %v", l, err)
	}
	l.Release()
	if len(f.calls) != 0 || f.state(t) != "qemu-aarch64 register status" {
		t.Fatalf("%v %s", f.calls, f.state(t))
	}
}

func TestAcquireRefuses(t *testing.T) {
	t.Run("a handler without F", func(t *testing.T) {
		f := newFake(t, true, "")
		os.WriteFile(filepath.Join(f.Dir, "qemu-aarch64"), []byte("enabled\ninterpreter /usr/bin/qemu-aarch64\nflags: OC\n"), 0o644)
		_, err := f.Acquire("aarch64")
		if err == nil || !strings.Contains(err.Error(), "no F flag") {
			t.Fatal(err)
		}
	})
	t.Run("no handler, no qemu-user-static", func(t *testing.T) {
		f := newFake(t, false, "")
		_, err := f.Acquire("aarch64")
		if err == nil || !strings.Contains(err.Error(), "install qemu-user-static") {
			t.Fatal(err)
		}
		// What it mounted for the check is taken down again.
		if got := strings.Join(f.calls, ","); got != "mount,unmount" || f.state(t) != "" {
			t.Fatalf("%s %q", got, f.state(t))
		}
	})
	t.Run("a binfmt.d rule without F", func(t *testing.T) {
		f := newFake(t, true, ":qemu-aarch64:M::\\x7fELF:\\xff:/usr/bin/qemu-aarch64:OC")
		_, err := f.Acquire("aarch64")
		if err == nil || !strings.Contains(err.Error(), "without the F flag") {
			t.Fatal(err)
		}
		if len(f.calls) != 0 {
			t.Fatal(f.calls)
		}
	})
}

func TestStaleLeasesDoNotHoldTheMount(t *testing.T) {
	f := newFake(t, false, aarch64Rule)
	l, err := f.Acquire("aarch64")
	if err != nil {
		t.Fatal(err)
	}
	// A killed build's lease: its process is gone.
	os.WriteFile(filepath.Join(f.LeaseDir, "lease-999999999-qemu-aarch64-1"), nil, 0o600)
	l.Release()
	if f.state(t) != "" {
		t.Fatal(f.state(t))
	}
}

// A lease is live while its file's lock is held, not while some process
// has its PID: a killed build's PID may belong to another process now.
func TestALeaseWhosePIDIsReusedIsStale(t *testing.T) {
	f := newFake(t, false, aarch64Rule)
	l, err := f.Acquire("aarch64")
	if err != nil {
		t.Fatal(err)
	}
	// A killed build's lease whose PID is this (live) process's.
	os.WriteFile(filepath.Join(f.LeaseDir, fmt.Sprintf("lease-%d-qemu-aarch64-1", os.Getpid())), nil, 0o600)
	l.Release()
	if f.state(t) != "" {
		t.Fatalf("a lease nobody holds kept %q", f.state(t))
	}
}

// Strata's undo removes a handler only while it is the one strata
// registered: one the host put in its place since stays.
func TestReleaseLeavesAHandlerTheHostReplaced(t *testing.T) {
	f := newFake(t, true, aarch64Rule)
	l, err := f.Acquire("aarch64")
	if err != nil {
		t.Fatal(err)
	}
	hosts := "enabled\ninterpreter /usr/local/bin/qemu-aarch64-own\nflags: F\n"
	os.WriteFile(filepath.Join(f.Dir, "qemu-aarch64"), []byte(hosts), 0o644)
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(f.Dir, "qemu-aarch64")); string(got) != hosts {
		t.Fatalf("the host's handler was removed: %q", got)
	}
	if _, err := os.Stat(filepath.Join(f.LeaseDir, markRegister+"qemu-aarch64")); !os.IsNotExist(err) {
		t.Fatalf("the mark stays: %v", err)
	}
}

// The mount's mark is written before the mount: a build killed between
// them never leaves a mount nobody knows strata made.
func TestTheMountsMarkComesFirst(t *testing.T) {
	f := newFake(t, false, aarch64Rule)
	mount := f.Mount
	f.Mount = func(dir string) error {
		if _, err := os.Stat(filepath.Join(f.LeaseDir, markMounted)); err != nil {
			t.Errorf("mounted before the mark: %v", err)
		}
		return mount(dir)
	}
	l, err := f.Acquire("aarch64")
	if err != nil {
		t.Fatal(err)
	}
	l.Release()
	// A failed mount leaves no mark.
	f.Mount = func(string) error { return errors.New("no") }
	if _, err := f.Acquire("aarch64"); err == nil {
		t.Fatal("acquired without a mount")
	}
	if _, err := os.Stat(filepath.Join(f.LeaseDir, markMounted)); !os.IsNotExist(err) {
		t.Fatalf("mark left: %v", err)
	}
}
