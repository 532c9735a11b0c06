// Package binfmt reads and changes the kernel's binfmt_misc handlers, for
// builds of an image whose programs the build host runs through QEMU's
// user-mode emulators (qemu-user-static).
//
// A build takes a Lease for the emulator it needs: binfmt_misc is mounted
// if it is not, the handler is registered from qemu-user-static's
// binfmt.d file if it is not, and the last lease given back undoes exactly
// that (and nothing the host had before), so concurrent builds share one
// mount and one handler. Only handlers with the F flag are used: the
// kernel then holds the emulator open itself, and nothing of the host is
// copied into the image.
package binfmt

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Entry is a registered handler: /proc/sys/fs/binfmt_misc/<name>.
type Entry struct {
	Name        string
	Enabled     bool
	Interpreter string
	// Flags are the handler's flag letters (P, O, C, F).
	Flags string
}

// Fixed tells whether the kernel opened the interpreter when the handler
// was registered (the F flag), so that it runs in any chroot.
func (e Entry) Fixed() bool { return strings.Contains(e.Flags, "F") }

// ParseEntry reads a handler's file in binfmt_misc.
func ParseEntry(name string, data []byte) (Entry, error) {
	e := Entry{Name: name}
	seen := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "enabled":
			e.Enabled, seen = true, true
		case line == "disabled":
			seen = true
		case strings.HasPrefix(line, "interpreter "):
			e.Interpreter = strings.TrimPrefix(line, "interpreter ")
		case strings.HasPrefix(line, "flags:"):
			e.Flags = strings.TrimSpace(strings.TrimPrefix(line, "flags:"))
		}
	}
	if !seen || e.Interpreter == "" {
		return Entry{}, fmt.Errorf("binfmt_misc %s: not a handler entry", name)
	}
	return e, nil
}

// Rule is a registration line as binfmt.d files hold them:
// `:name:type:offset:magic:mask:interpreter:flags`.
type Rule struct {
	Line        string
	Name        string
	Interpreter string
	Flags       string
}

// Registration is the line strata writes to register r: its own flags cut
// to F and P. C would run a setuid foreign binary's emulator as root with
// its caller's environment (QEMU_* variables: local root for anyone who can
// reach such a binary in an image), O opens binaries their caller can't
// read; builds run as root and need neither.
func (r Rule) Registration() string {
	sep := r.Line[:1]
	f := strings.Split(r.Line[1:], sep)
	flags := ""
	for _, c := range "PF" {
		if strings.ContainsRune(r.Flags, c) {
			flags += string(c)
		}
	}
	if len(f) == 7 {
		f[6] = flags
	} else {
		f = append(f, flags)
	}
	return sep + strings.Join(f, sep)
}

// Fixed tells whether the rule registers with the F flag.
func (r Rule) Fixed() bool { return strings.Contains(r.Flags, "F") }

// ParseRule parses one registration line. The first character is the
// field separator (":" in every file Debian ships).
func ParseRule(line string) (Rule, error) {
	line = strings.TrimSpace(line)
	if len(line) < 2 {
		return Rule{}, errors.New("empty binfmt rule")
	}
	f := strings.Split(line[1:], line[:1])
	if len(f) < 6 || len(f) > 7 || f[0] == "" || f[5] == "" || (f[1] != "M" && f[1] != "E") {
		return Rule{}, fmt.Errorf("not a binfmt rule: %q", line)
	}
	if strings.ContainsAny(f[0], "/") || f[0] == "." || f[0] == ".." || f[0] == "status" || f[0] == "register" {
		return Rule{}, fmt.Errorf("binfmt rule %q: bad name", f[0])
	}
	r := Rule{Line: line, Name: f[0], Interpreter: f[5]}
	if len(f) == 7 {
		r.Flags = f[6]
	}
	return r, nil
}

// ReadRule is the rule for name in a binfmt.d file: its first line that is
// not a comment and names it.
func ReadRule(path, name string) (Rule, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Rule{}, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		r, err := ParseRule(line)
		if err != nil {
			return Rule{}, fmt.Errorf("%s: %w", path, err)
		}
		if r.Name == name {
			return r, nil
		}
	}
	return Rule{}, fmt.Errorf("%s: no rule for %s", path, name)
}

// System is the host's binfmt_misc: where it is mounted, where binfmt.d
// files are, where builds keep their leases, and how it is mounted. Tests
// give directories of their own and mount functions that only create
// files.
type System struct {
	// Dir is binfmt_misc's mount point: /proc/sys/fs/binfmt_misc.
	Dir string
	// ConfDirs are searched in order for qemu-<cpu>.conf.
	ConfDirs []string
	// LeaseDir holds the builds' leases and what strata did for them.
	LeaseDir string
	// Mount mounts binfmt_misc at Dir; Unmount takes it down.
	Mount, Unmount func(dir string) error
	// Write writes to a file in Dir (register, a handler's file): the
	// kernel acts on it. Nil: os.WriteFile.
	Write func(path string, data []byte) error
}

func (s *System) write(path string, data []byte) error {
	if s.Write != nil {
		return s.Write(path, data)
	}
	return os.WriteFile(path, data, 0)
}

// Host is the build host's own binfmt_misc.
func Host() *System {
	return &System{
		Dir:      "/proc/sys/fs/binfmt_misc",
		ConfDirs: []string{"/etc/binfmt.d", "/run/binfmt.d", "/usr/lib/binfmt.d"},
		LeaseDir: "/run/strata/binfmt",
		Mount: func(dir string) error {
			return syscall.Mount("binfmt_misc", dir, "binfmt_misc", syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC, "")
		},
		Unmount: func(dir string) error { return syscall.Unmount(dir, 0) },
	}
}

// Package is the Debian package whose binfmt.d files register QEMU's
// handlers with the F flag.
const Package = "qemu-user-static"

// Lease is one build's use of a handler; Release gives it back.
type Lease struct {
	s    *System
	file string
	// held is the lease file, open and flocked shared for the lease's
	// life: a lease is live while some process holds its lock, which the
	// kernel lets go when that process dies (a PID can be reused).
	held *os.File
	// Handler is the handler the build's programs run through.
	Handler Entry
	// Did says what the lease changed on the host (mounted binfmt_misc,
	// registered the handler): empty when it used what was there.
	Did []string
}

const (
	markMounted  = "mounted"     // strata mounted binfmt_misc
	markRegister = "registered-" // + handler name: strata registered it
)

func (s *System) mounted() bool {
	_, err := os.Stat(filepath.Join(s.Dir, "status"))
	return err == nil
}

func (s *System) lock() (func(), error) {
	if err := os.MkdirAll(s.LeaseDir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(s.LeaseDir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}

// Acquire makes sure binfmt_misc runs cpu's programs (qemu-<cpu>) through a
// handler with the F flag, and holds that until Release.
func (s *System) Acquire(cpu string) (l *Lease, err error) {
	unlock, err := s.lock()
	if err != nil {
		return nil, fmt.Errorf("binfmt leases: %w", err)
	}
	defer unlock()
	l = &Lease{s: s}
	name := "qemu-" + cpu
	// What this call changed is undone when it fails.
	defer func() {
		if err != nil {
			s.releaseLocked()
		}
	}()
	if !s.mounted() {
		// The mark first: a build killed between the two leaves a mark
		// (the next release finds nothing mounted, or undoes the mount),
		// never a mount nobody knows strata made.
		if err := os.WriteFile(filepath.Join(s.LeaseDir, markMounted), nil, 0o600); err != nil {
			return nil, err
		}
		if err := s.Mount(s.Dir); err != nil {
			os.Remove(filepath.Join(s.LeaseDir, markMounted))
			return nil, fmt.Errorf("mounting binfmt_misc at %s: %w", s.Dir, err)
		}
		l.Did = append(l.Did, "mounted binfmt_misc at "+s.Dir)
	}
	if st, err := os.ReadFile(filepath.Join(s.Dir, "status")); err == nil && strings.TrimSpace(string(st)) == "disabled" {
		return nil, fmt.Errorf("binfmt_misc is disabled on this host (%s/status); enable it with `echo 1 > %s/status`", s.Dir, s.Dir)
	}
	entry := filepath.Join(s.Dir, name)
	if _, err := os.Stat(entry); os.IsNotExist(err) {
		conf := ""
		for _, d := range s.ConfDirs {
			if _, err := os.Stat(filepath.Join(d, name+".conf")); err == nil {
				conf = filepath.Join(d, name+".conf")
				break
			}
		}
		if conf == "" {
			return nil, fmt.Errorf("the build host has no binfmt_misc handler %s and no %s.conf to register one: install %s", name, name, Package)
		}
		r, err := ReadRule(conf, name)
		if err != nil {
			return nil, err
		}
		if !r.Fixed() {
			return nil, fmt.Errorf("%s registers %s without the F flag; the builder copies no emulator into the image: install %s, whose handlers have it", conf, name, Package)
		}
		// The mark holds the line registered: the undo removes the
		// handler only while it is still the one strata registered.
		if err := os.WriteFile(filepath.Join(s.LeaseDir, markRegister+name), []byte(r.Registration()), 0o600); err != nil {
			return nil, err
		}
		if err := s.write(filepath.Join(s.Dir, "register"), []byte(r.Registration())); err != nil {
			os.Remove(filepath.Join(s.LeaseDir, markRegister+name))
			return nil, fmt.Errorf("registering %s from %s: %w", name, conf, err)
		}
		l.Did = append(l.Did, "registered "+name+" from "+conf)
	}
	data, err := os.ReadFile(entry)
	if err != nil {
		return nil, fmt.Errorf("binfmt_misc handler %s: %w", name, err)
	}
	e, err := ParseEntry(name, data)
	if err != nil {
		return nil, err
	}
	if !e.Enabled {
		return nil, fmt.Errorf("the binfmt_misc handler %s is disabled; enable it with `echo 1 > %s`", name, entry)
	}
	if !e.Fixed() {
		return nil, fmt.Errorf("the binfmt_misc handler %s (%s) has no F flag, so the emulator would have to be copied into the image, which the builder never does: register it from %s's binfmt.d file (flags F), e.g. `update-binfmts --disable %s` and `systemctl restart systemd-binfmt`", name, e.Interpreter, Package, name)
	}
	l.Handler = e
	f, err := os.CreateTemp(s.LeaseDir, fmt.Sprintf("lease-%d-%s-", os.Getpid(), name))
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("binfmt lease: %w", err)
	}
	l.file, l.held = f.Name(), f
	return l, nil
}

// Release gives the lease back; the last lease undoes what strata did.
func (l *Lease) Release() error {
	if l == nil || l.file == "" {
		return nil
	}
	unlock, err := l.s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	os.Remove(l.file)
	l.held.Close()
	err = l.s.releaseLocked()
	l.file, l.held = "", nil
	return err
}

// releaseLocked removes the leases no process holds and undoes the
// registrations and the mount no live lease needs any more.
func (s *System) releaseLocked() error {
	names, err := os.ReadDir(s.LeaseDir)
	if err != nil {
		return err
	}
	live := map[string]bool{} // handler names live leases use
	leases := 0
	for _, n := range names {
		rest, ok := strings.CutPrefix(n.Name(), "lease-")
		if !ok {
			continue
		}
		_, handler, _ := strings.Cut(rest, "-")
		if !held(filepath.Join(s.LeaseDir, n.Name())) {
			os.Remove(filepath.Join(s.LeaseDir, n.Name()))
			continue
		}
		if i := strings.LastIndex(handler, "-"); i > 0 {
			handler = handler[:i]
		}
		live[handler] = true
		leases++
	}
	var errs []error
	for _, n := range names {
		handler, ok := strings.CutPrefix(n.Name(), markRegister)
		if !ok || live[handler] {
			continue
		}
		entry := filepath.Join(s.Dir, handler)
		if ours, err := s.registeredByStrata(filepath.Join(s.LeaseDir, n.Name()), entry); err == nil && ours {
			if err := s.write(entry, []byte("-1")); err != nil {
				errs = append(errs, fmt.Errorf("unregistering %s: %w", handler, err))
				continue
			}
		}
		os.Remove(filepath.Join(s.LeaseDir, n.Name()))
	}
	if leases == 0 {
		if _, err := os.Stat(filepath.Join(s.LeaseDir, markMounted)); err == nil {
			if s.mounted() {
				if err := s.Unmount(s.Dir); err != nil {
					return errors.Join(append(errs, fmt.Errorf("unmounting binfmt_misc at %s: %w", s.Dir, err))...)
				}
			}
			os.Remove(filepath.Join(s.LeaseDir, markMounted))
		}
	}
	return errors.Join(errs...)
}

// held tells whether some process holds the lease file's lock.
func held(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	return errors.Is(err, syscall.EWOULDBLOCK)
}

// registeredByStrata tells whether the handler entry is still the one the
// mark says strata registered (same interpreter, same flags): a handler
// the host put in its place since is not strata's to remove. A mark
// without a line (from an older strata) trusts the name.
func (s *System) registeredByStrata(mark, entry string) (bool, error) {
	data, err := os.ReadFile(entry)
	if err != nil {
		return false, err
	}
	line, err := os.ReadFile(mark)
	if err != nil {
		return false, err
	}
	if len(bytes.TrimSpace(line)) == 0 {
		return true, nil
	}
	r, err := ParseRule(string(line))
	if err != nil {
		return false, err
	}
	e, err := ParseEntry(r.Name, data)
	if err != nil {
		return false, err
	}
	return e.Interpreter == r.Interpreter && sameLetters(e.Flags, r.Flags), nil
}

// sameLetters tells whether two flag strings hold the same letters.
func sameLetters(a, b string) bool {
	has := func(s string, c rune) bool { return strings.ContainsRune(s, c) }
	for _, c := range a + b {
		if has(a, c) != has(b, c) {
			return false
		}
	}
	return true
}
