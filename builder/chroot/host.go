package chroot

import (
	"os"
	"os/exec"
	"time"

	"github.com/strata-build/packer-plugin-strata/internal/binfmt"
	"github.com/strata-build/packer-plugin-strata/internal/debarch"
	"github.com/strata-build/packer-plugin-strata/internal/hostexec"
	"github.com/strata-build/packer-plugin-strata/internal/mount"
	"github.com/strata-build/packer-plugin-strata/layer"
)

// host is every effect the build has on the build host beyond files in its
// own directories: mounts and unmounts, host programs and the processes in
// the chroot, and where the host's own files are read. The builder runs on
// osHost; the step tests on a fake that records the calls.
type host interface {
	// MountRecorded mounts spec on the host path spec.Target, written down
	// in rec first; UnmountRecorded takes recs down (and what is stacked on
	// them, children first) and forgets them in rec.
	MountRecorded(rec mount.Recorder, spec mount.Spec) (*mount.MountRecord, error)
	UnmountRecorded(rec mount.Recorder, recs []mount.MountRecord) (lazy []string, err error)
	// MountView mounts img read-only at target, recorded in rec
	// (layer.Store.MountView); unmount takes it down.
	MountView(layers *layer.Store, img *layer.Image, target string, rec mount.Recorder) (unmount func() (lazy []string, err error), err error)
	// MountAt mounts spec on what target holds open (a path resolved inside
	// an image); reopen opens the path again once something is mounted on it.
	MountAt(spec mount.Spec, target *os.File, reopen func() (*os.File, error)) error
	// MountIDOf is the kernel's ID of the mount f is on.
	MountIDOf(f *os.File) (int, error)
	// UnmountBelow unmounts what is stacked on or below rec, but not rec.
	UnmountBelow(rec mount.MountRecord) (unmounted, lazy []string, err error)
	// Under lists the mounts at or below dir, deepest first; Table all.
	Under(dir string) ([]mount.Info, error)
	Table() ([]mount.Info, error)
	// KillChroot stops the processes rooted at or under dir that started
	// after since, waiting up to grace before it kills them.
	KillChroot(dir string, since uint64, grace time.Duration) (int, error)
	// Recover undoes what the ledger of a killed earlier build lists.
	Recover(st *mount.State) (mount.Recovery, error)
	// Run runs cmd in a process group of its own that t records, passing
	// each line it prints to each; Output returns what it printed.
	Run(cmd *exec.Cmd, t hostexec.Tracker, each func(string)) error
	Output(cmd *exec.Cmd, t hostexec.Tracker) ([]byte, error)
	// LookPath finds a host program.
	LookPath(name string) (string, error)
	// Arch is the host's dpkg architecture (`dpkg --print-architecture`).
	Arch() (string, error)
	// Binfmt is the host's binfmt_misc, for builds of a foreign
	// architecture.
	Binfmt() *binfmt.System
	// Root is where the host's own files are read from (its apt sources and
	// keyrings, resolv.conf, hostname, mmdebstrap's hooks): "/".
	Root() string
}

// osHost is the build host itself. Its files are read under root ("/"
// when empty): a test that mounts for real gives its own.
type osHost struct{ root string }

func (osHost) MountRecorded(rec mount.Recorder, spec mount.Spec) (*mount.MountRecord, error) {
	return mount.MountRecorded(rec, spec)
}
func (osHost) UnmountRecorded(rec mount.Recorder, recs []mount.MountRecord) ([]string, error) {
	return mount.UnmountRecorded(rec, recs)
}
func (osHost) MountView(layers *layer.Store, img *layer.Image, target string, rec mount.Recorder) (func() ([]string, error), error) {
	v, err := layers.MountView(img, target, rec)
	if err != nil {
		return nil, err
	}
	return v.Unmount, nil
}
func (osHost) MountAt(spec mount.Spec, target *os.File, reopen func() (*os.File, error)) error {
	return mount.MountAt(spec, target, reopen)
}
func (osHost) MountIDOf(f *os.File) (int, error) { return mount.IDOf(f) }
func (osHost) UnmountBelow(rec mount.MountRecord) ([]string, []string, error) {
	return mount.UnmountBelow(rec)
}
func (osHost) Under(dir string) ([]mount.Info, error) { return mount.Under(dir) }
func (osHost) Table() ([]mount.Info, error)           { return mount.Table() }
func (osHost) KillChroot(dir string, since uint64, grace time.Duration) (int, error) {
	return mount.KillRootedUnderSince(dir, since, grace)
}
func (osHost) Recover(st *mount.State) (mount.Recovery, error) { return mount.Recover(st) }
func (osHost) Run(cmd *exec.Cmd, t hostexec.Tracker, each func(string)) error {
	return hostexec.Lines(cmd, t, each)
}
func (osHost) Output(cmd *exec.Cmd, t hostexec.Tracker) ([]byte, error) {
	return hostexec.Output(cmd, t)
}
func (osHost) LookPath(name string) (string, error) { return exec.LookPath(name) }

func (osHost) Arch() (string, error) { return debarch.Host() }

func (osHost) Binfmt() *binfmt.System { return binfmt.Host() }

func (h osHost) Root() string {
	if h.root == "" {
		return "/"
	}
	return h.root
}

// hostPath is p (absolute, as on the host) under h's root.
func hostPath(h host, p string) string {
	if h.Root() == "/" {
		return p
	}
	return h.Root() + p
}
