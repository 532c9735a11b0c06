package test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"golang.org/x/sys/unix"

	"github.com/strata-build/packer-plugin-strata/internal/hostexec"
	"github.com/strata-build/packer-plugin-strata/internal/inroot"
	"github.com/strata-build/packer-plugin-strata/internal/mount"
	"github.com/strata-build/packer-plugin-strata/layer"
)

// Container mode: the checks run chrooted in a throwaway overlay of the image.

// runContainer runs the runner with chroot in an overlay of the image's
// trees (read-only lowers) with a tmpfs upper: every write a check makes
// lands in memory and is gone with it. Every mount is written down in a
// ledger in the run's own directory under runsDir and taken down, children
// first; every process whose root is the overlay is killed before. A run
// killed before that is undone by the next one (newRunDir).
func runContainer(ctx context.Context, j job) (_ *outcome, err error) {
	tmp, err := newRunDir(runsDir)
	if err != nil {
		return nil, err
	}
	ledger, err := mount.NewLedger(tmp)
	if err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	root := filepath.Join(tmp, "root")
	if err := ledger.SetMountPath(root); err != nil {
		ledger.Close()
		os.RemoveAll(tmp)
		return nil, err
	}
	var recs []mount.MountRecord
	defer func() {
		if _, kerr := mount.KillRootedUnder(root, 2*time.Second); kerr != nil && err == nil {
			err = kerr
		}
		slices.Reverse(recs)
		if _, uerr := mount.UnmountRecorded(ledger, recs); uerr != nil {
			if err == nil {
				err = uerr
			}
			return // leave the directory (and ledger) for whoever looks
		}
		ledger.Close()
		os.RemoveAll(tmp)
	}()
	scratch := filepath.Join(tmp, "scratch")
	for _, d := range []string{root, scratch} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return nil, err
		}
	}
	r, err := mount.MountRecorded(ledger, mount.Spec{FSType: "tmpfs", Source: "strata-test", Target: scratch, Options: "nosuid,nodev,mode=0700"})
	if err != nil {
		return nil, fmt.Errorf("mounting the tmpfs for the overlay's upper dir: %w", err)
	}
	recs = append(recs, *r)
	upper, work := filepath.Join(scratch, "upper"), filepath.Join(scratch, "work")
	for _, d := range []string{upper, work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return nil, err
		}
	}
	// Volatile: what the checks write is thrown away.
	r, err = mount.MountRecorded(ledger, mount.Spec{FSType: "overlay", Source: "strata-test", Target: root, Options: layer.VolatileOverlayOptions(j.Lowers, upper, work)})
	if err != nil {
		return nil, fmt.Errorf("mounting the image's overlay: %w", err)
	}
	recs = append(recs, *r)
	img, err := inroot.Open(root)
	if err != nil {
		return nil, err
	}
	defer img.Close()
	for _, s := range []mount.Spec{
		{FSType: "proc", Source: "proc", Target: "/proc", Options: "nosuid,nodev,noexec"},
		{FSType: "bind", Source: "/dev", Target: "/dev", Options: "ro,nosuid,noexec"},
		{FSType: "tmpfs", Source: "run", Target: "/run", Options: "nosuid,nodev,mode=0755"},
		{FSType: "tmpfs", Source: "tmp", Target: "/tmp", Options: "nosuid,nodev,mode=1777"},
		{FSType: "bind", Source: j.Dir, Target: GuestDir, Options: "ro,nosuid,nodev"},
	} {
		r, err := mountIn(img, ledger, s)
		if err != nil {
			return nil, err
		}
		recs = append(recs, *r)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithTimeout(ctx, j.Timeout)
	defer cancel()
	sink := &lineSink{live: j.Live}
	out := &outcome{Started: time.Now()}
	cmd := hostexec.Command(runCtx, "chroot", root, "/bin/sh", GuestDir+"/run.sh", ModeContainer)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", "HOME=/root", "TERM=dumb"}
	cmd.Dir = "/"
	rerr := hostexec.Lines(cmd, ledger, sink.add)
	out.Finished = time.Now()
	out.Checks = out.Finished.Sub(out.Started)
	out.Lines = sink.lines
	if runCtx.Err() == context.DeadlineExceeded && ctx.Err() == nil {
		return out, fmt.Errorf("the run took longer than timeout = %s", j.Timeout)
	}
	if ctx.Err() != nil {
		return out, ctx.Err()
	}
	if rerr != nil && !parseLines(out.Lines).end {
		return out, fmt.Errorf("the runner failed: %w", rerr)
	}
	return out, nil
}

// mountIn mounts s at its target inside the image, resolved without
// following any of the image's links out of it, and refused when a link
// inside the image moves the target (a /tmp that points at /run).
func mountIn(img *inroot.Root, ledger *mount.Ledger, s mount.Spec) (*mount.MountRecord, error) {
	at, _, err := img.MkdirAll(s.Target, 0o755)
	if err != nil {
		return nil, fmt.Errorf("%s in the image: %w", s.Target, err)
	}
	defer at.Close()
	host, err := img.HostPathAt(at, s.Target)
	if err != nil {
		return nil, err
	}
	if err := ledger.Intend(host, s.FSType); err != nil {
		return nil, err
	}
	spec := s
	spec.Target = host
	if err := mount.MountAt(spec, at, func() (*os.File, error) { return img.OpenPath(s.Target) }); err != nil {
		ledger.Unmounted(host)
		return nil, fmt.Errorf("mounting %s at %s in the image: %w", s.FSType, s.Target, err)
	}
	id, err := mount.IDAt(host)
	if err != nil {
		return nil, err
	}
	if err := ledger.Mounted(host, id); err != nil {
		return nil, err
	}
	return &mount.MountRecord{Target: host, FSType: s.FSType, ID: id}, nil
}

// runsDir holds the container runs' directories. It is root's alone, not
// /tmp: the next run trusts the ledgers it finds there to say what a
// killed run mounted, so nobody else may plant one.
const runsDir = "/run/strata/test"

// newRunDir makes a directory for one run in dir, first undoing what
// killed runs left there: their processes, their mounts (only those their
// ledgers recorded), then their directories.
func newRunDir(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("strata-test: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return "", fmt.Errorf("strata-test: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR || int(st.Uid) != os.Geteuid() || st.Mode&0o077 != 0 {
		return "", fmt.Errorf("strata-test: %s must be a directory only this user can use (mode 0700); remove it and run again", dir)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("strata-test: %w", err)
	}
	for _, e := range ents {
		if err := recoverRun(filepath.Join(dir, e.Name())); err != nil {
			return "", fmt.Errorf("strata-test: cleaning up after a killed run in %s: %w", filepath.Join(dir, e.Name()), err)
		}
	}
	return os.MkdirTemp(dir, "run-")
}

// recoverRun undoes one killed run's leftovers in dir and removes it; a run
// still alive, or one that has not written its ledger yet, is left alone.
func recoverRun(dir string) error {
	st, err := mount.ReadLedger(dir)
	if err != nil || st == nil || mount.Alive(st.Owner.PID, st.Owner.Start) {
		return nil
	}
	if _, err := mount.Recover(st); err != nil {
		return err
	}
	if err := mount.Verify(dir); err != nil {
		return err
	}
	return os.RemoveAll(dir)
}
