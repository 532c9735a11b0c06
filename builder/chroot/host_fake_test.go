package chroot

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/strata-build/packer-plugin-strata/internal/binfmt"
	"github.com/strata-build/packer-plugin-strata/internal/hostexec"
	"github.com/strata-build/packer-plugin-strata/internal/mount"
	"github.com/strata-build/packer-plugin-strata/layer"
)

// fakeHost is a build host that changes nothing: it records every effect
// in calls, in order, keeps a mount table of its own, and fails an effect
// whose call is a key of fail (once). Its files are read under root.
//
// Calls read "mount <fstype> <target>" ("mount view <target>" for an image
// view), "unmount <target>", "kill <dir>",
// "recover" and "run <argv>".
type fakeHost struct {
	root   string
	calls  []string
	fail   map[string]error
	mounts []fakeMount
	nextID int
	// missing programs LookPath does not find; paths those it finds
	// elsewhere than /usr/bin.
	missing map[string]bool
	paths   map[string]string
	// run is what a host program does, when it does anything.
	run func(cmd *exec.Cmd) error
	// killed is how many processes KillChroot reports.
	killed int
	// arch is the host's architecture ("amd64" when empty); binfmt its
	// binfmt_misc (fakeBinfmt).
	arch   string
	binfmt *binfmt.System
}

type fakeMount struct {
	mount.Info
	made string // a file the mount brought (a devpts' ptmx)
}

func newFakeHost(root string) *fakeHost {
	return &fakeHost{root: root, fail: map[string]error{}, missing: map[string]bool{}, nextID: 100}
}

// do records call and returns its injected failure, once.
func (f *fakeHost) do(call string) error {
	f.calls = append(f.calls, call)
	err := f.fail[call]
	delete(f.fail, call)
	return err
}

func (f *fakeHost) mounted(spec mount.Spec, target string) error {
	if err := f.do("mount " + spec.FSType + " " + target); err != nil {
		return err
	}
	f.nextID++
	m := fakeMount{Info: mount.Info{ID: f.nextID, MountPoint: target, FSType: spec.FSType, Source: spec.Source, Options: spec.Options}}
	if spec.FSType == "devpts" {
		// A new devpts instance comes with its ptmx.
		m.made = filepath.Join(target, "ptmx")
		if err := os.WriteFile(m.made, nil, 0o666); err != nil {
			return err
		}
	}
	f.mounts = append(f.mounts, m)
	return nil
}

func (f *fakeHost) Mount(spec mount.Spec) error { return f.mounted(spec, spec.Target) }

func (f *fakeHost) MountRecorded(rec mount.Recorder, spec mount.Spec) (*mount.MountRecord, error) {
	if err := rec.Intend(spec.Target, spec.FSType); err != nil {
		return nil, err
	}
	if err := f.Mount(spec); err != nil {
		rec.Unmounted(spec.Target)
		return nil, err
	}
	id := f.mounts[len(f.mounts)-1].ID
	if err := rec.Mounted(spec.Target, id); err != nil {
		return nil, err
	}
	return &mount.MountRecord{Target: spec.Target, FSType: spec.FSType, ID: id}, nil
}

func (f *fakeHost) UnmountRecorded(rec mount.Recorder, recs []mount.MountRecord) ([]string, error) {
	if _, _, err := f.UnmountOwned(recs); err != nil {
		return nil, err
	}
	for _, r := range recs {
		if err := rec.Unmounted(r.Target); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// MountView records "mount view <target>".
func (f *fakeHost) MountView(_ *layer.Store, img *layer.Image, target string, rec mount.Recorder) (func() ([]string, error), error) {
	r, err := f.MountRecorded(rec, mount.Spec{FSType: "view", Source: img.ID, Target: target, Options: "ro"})
	if err != nil {
		return nil, err
	}
	return func() ([]string, error) { return f.UnmountRecorded(rec, []mount.MountRecord{*r}) }, nil
}

func (f *fakeHost) MountAt(spec mount.Spec, target *os.File, _ func() (*os.File, error)) error {
	p, err := fdPath(target)
	if err != nil {
		return err
	}
	return f.mounted(spec, p)
}

func fdPath(fh *os.File) (string, error) {
	return os.Readlink("/proc/self/fd/" + strconv.Itoa(int(fh.Fd())))
}

// MountIDAt is the latest mount at path, else 1 (the host's root).
func (f *fakeHost) MountIDAt(path string) (int, error) {
	for i := len(f.mounts) - 1; i >= 0; i-- {
		if f.mounts[i].MountPoint == path {
			return f.mounts[i].ID, nil
		}
	}
	return 1, nil
}

func (f *fakeHost) MountIDOf(fh *os.File) (int, error) {
	p, err := fdPath(fh)
	if err != nil {
		return 0, err
	}
	return f.MountIDAt(p)
}

func atOrUnder(p, dir string) bool { return p == dir || within(p, dir) }

// unmount takes down the mounts pick chooses, deepest and latest first,
// stopping at the first injected failure.
func (f *fakeHost) unmount(pick func(fakeMount) bool) (unmounted []string, err error) {
	var todo []fakeMount
	for i := len(f.mounts) - 1; i >= 0; i-- {
		if pick(f.mounts[i]) {
			todo = append(todo, f.mounts[i])
		}
	}
	sort.SliceStable(todo, func(i, j int) bool {
		return strings.Count(todo[i].MountPoint, "/") > strings.Count(todo[j].MountPoint, "/")
	})
	for _, m := range todo {
		if err := f.do("unmount " + m.MountPoint); err != nil {
			return unmounted, err
		}
		if m.made != "" {
			os.Remove(m.made)
		}
		for i := range f.mounts {
			if f.mounts[i].ID == m.ID {
				f.mounts = append(f.mounts[:i], f.mounts[i+1:]...)
				break
			}
		}
		unmounted = append(unmounted, m.MountPoint)
	}
	return unmounted, nil
}

func (f *fakeHost) UnmountOwned(recs []mount.MountRecord) ([]string, []string, error) {
	un, err := f.unmount(func(m fakeMount) bool {
		for _, r := range recs {
			if (m.MountPoint == r.Target && (m.ID == r.ID || r.ID == 0 && m.FSType == r.FSType)) ||
				within(m.MountPoint, r.Target) {
				return true
			}
		}
		return false
	})
	return un, nil, err
}

func (f *fakeHost) UnmountBelow(rec mount.MountRecord) ([]string, []string, error) {
	un, err := f.unmount(func(m fakeMount) bool { return m.ID != rec.ID && atOrUnder(m.MountPoint, rec.Target) })
	return un, nil, err
}

func (f *fakeHost) Under(dir string) ([]mount.Info, error) {
	var out []mount.Info
	for i := len(f.mounts) - 1; i >= 0; i-- {
		if atOrUnder(f.mounts[i].MountPoint, dir) {
			out = append(out, f.mounts[i].Info)
		}
	}
	return out, nil
}

func (f *fakeHost) Table() ([]mount.Info, error) { return f.Under("/") }

func (f *fakeHost) KillChroot(dir string, _ uint64, _ time.Duration) (int, error) {
	if err := f.do("kill " + dir); err != nil {
		return 0, err
	}
	return f.killed, nil
}

func (f *fakeHost) Recover(st *mount.State) (mount.Recovery, error) {
	var r mount.Recovery
	if err := f.do("recover"); err != nil {
		return r, err
	}
	un, _, err := f.UnmountOwned(st.Mounts)
	r.Unmounted = un
	return r, err
}

func (f *fakeHost) Run(cmd *exec.Cmd, _ hostexec.Tracker, each func(string)) error {
	_, err := f.Output(cmd, nil)
	return err
}

func (f *fakeHost) Output(cmd *exec.Cmd, _ hostexec.Tracker) ([]byte, error) {
	if err := f.do("run " + strings.Join(cmd.Args, " ")); err != nil {
		return nil, err
	}
	if f.run != nil {
		return nil, f.run(cmd)
	}
	return nil, nil
}

func (f *fakeHost) LookPath(name string) (string, error) {
	if f.missing[name] {
		return "", fmt.Errorf("%s: %w", name, exec.ErrNotFound)
	}
	if p, ok := f.paths[name]; ok {
		return p, nil
	}
	return "/usr/bin/" + name, nil
}

func (f *fakeHost) Root() string { return f.root }

func (f *fakeHost) Arch() (string, error) {
	if f.arch == "" {
		return "amd64", nil
	}
	return f.arch, nil
}

// Binfmt is a binfmt_misc in directories under the host root: mounting
// ("binfmt mount") creates status and register, a registration ("binfmt
// register <name>") the handler's file, "-1" ("binfmt unregister <name>")
// removes it; qemu-user-static's binfmt.d files are the test's to write.
func (f *fakeHost) Binfmt() *binfmt.System {
	if f.binfmt != nil {
		return f.binfmt
	}
	s := &binfmt.System{
		Dir:      filepath.Join(f.root, "proc/sys/fs/binfmt_misc"),
		ConfDirs: []string{filepath.Join(f.root, "usr/lib/binfmt.d")},
		LeaseDir: filepath.Join(f.root, "run/strata/binfmt"),
	}
	os.MkdirAll(s.Dir, 0o755)
	os.MkdirAll(s.ConfDirs[0], 0o755)
	s.Mount = func(dir string) error {
		if err := f.do("binfmt mount"); err != nil {
			return err
		}
		os.WriteFile(filepath.Join(dir, "status"), []byte("enabled\n"), 0o644)
		return os.WriteFile(filepath.Join(dir, "register"), nil, 0o200)
	}
	s.Unmount = func(dir string) error {
		if err := f.do("binfmt unmount"); err != nil {
			return err
		}
		os.Remove(filepath.Join(dir, "status"))
		return os.Remove(filepath.Join(dir, "register"))
	}
	s.Write = func(path string, data []byte) error {
		if filepath.Base(path) == "register" {
			r, err := binfmt.ParseRule(string(data))
			if err != nil {
				return err
			}
			if err := f.do("binfmt register " + r.Name); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(s.Dir, r.Name), []byte("enabled\ninterpreter "+r.Interpreter+"\nflags: "+r.Flags+"\n"), 0o644)
		}
		if string(data) == "-1" {
			if err := f.do("binfmt unregister " + filepath.Base(path)); err != nil {
				return err
			}
			return os.Remove(path)
		}
		return os.WriteFile(path, data, 0o644)
	}
	f.binfmt = s
	return s
}

var errInjected = errors.New("injected failure")
