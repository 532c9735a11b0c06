package chroot

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	"golang.org/x/sys/unix"

	"github.com/strata-build/packer-plugin-strata/internal/mount"
	"github.com/strata-build/packer-plugin-strata/internal/storeroot"
)

// Parts of a work dir.
const (
	upperDirName   = "upper"    // the new layer
	ovlWorkDirName = "ovl-work" // overlayfs' own work dir
	emptyLowerName = "lower-empty"
	lockName       = ".lock"
)

// stepWorkDir takes the work dir for this build: it locks it against a
// concurrent build, undoes exactly what a killed earlier build recorded in
// its ledger (that build's processes and mounts, nothing else), refuses
// mounts it did not make, and starts a fresh ledger.
//
// Uses cfg; sets ledger.
type stepWorkDir struct {
	lock   *os.File
	ledger *mount.Ledger
}

func (s *stepWorkDir) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	cfg := configOf(state)
	ui := uiOf(state)
	if err := storeroot.Ensure(cfg.WorkDir); err != nil {
		return halt(state, fmt.Errorf("work_dir: %w", err))
	}
	lock, err := os.OpenFile(filepath.Join(cfg.WorkDir, lockName), os.O_CREATE|os.O_RDWR|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return halt(state, fmt.Errorf("work_dir: %w", err))
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		return halt(state, fmt.Errorf("work_dir %s is in use by another running build; give this build its own work_dir", cfg.WorkDir))
	}
	s.lock = lock
	if err := cfg.recheckDirs(); err != nil {
		return halt(state, err)
	}
	if err := os.WriteFile(filepath.Join(cfg.WorkDir, workMarker), nil, 0o600); err != nil {
		return halt(state, fmt.Errorf("work_dir: %w", err))
	}

	prior, err := mount.ReadLedger(cfg.WorkDir)
	if err != nil {
		return halt(state, fmt.Errorf("work_dir: reading what the last build left: %w", err))
	}
	if prior != nil {
		rep, err := buildOf(state).host.Recover(prior)
		if !rep.Empty() {
			ui.Say(fmt.Sprintf("Cleaned up after an earlier build in %s: stopped %d process(es), unmounted %d mount(s), removed %d unfinished file(s)",
				cfg.WorkDir, rep.Killed, len(rep.Unmounted), len(rep.Removed)))
		}
		for _, l := range rep.Lazy {
			ui.Error("Warning: lazily unmounted stale mount " + l)
		}
		if err != nil {
			return halt(state, fmt.Errorf("cleaning up after the earlier build in %s: %w", cfg.WorkDir, err))
		}
	}
	for _, dir := range []string{cfg.WorkDir, cfg.MountPath} {
		if err := refuseForeignMounts(dir, nil); err != nil {
			return halt(state, err)
		}
	}
	for _, leftover := range []string{cfg.MountPath, upperDirName, ovlWorkDirName, emptyLowerName} {
		p := leftover
		if !filepath.IsAbs(p) {
			p = filepath.Join(cfg.WorkDir, p)
		}
		if err := removeUnmounted(p, p == cfg.MountPath && !within(p, cfg.WorkDir)); err != nil {
			return halt(state, err)
		}
	}
	s.ledger, err = mount.NewLedger(cfg.WorkDir)
	if err != nil {
		return halt(state, fmt.Errorf("work_dir: %w", err))
	}
	buildOf(state).ledger = s.ledger
	return multistep.ActionContinue
}

func (s *stepWorkDir) Cleanup(state multistep.StateBag) {
	if s.lock == nil {
		return
	}
	defer s.lock.Close()
	if s.ledger == nil {
		return
	}
	cfg := configOf(state)
	ui := uiOf(state)
	st := s.ledger.State()
	table, err := buildOf(state).host.Table()
	if err != nil || len(mount.Owned(table, st.Mounts)) > 0 || len(st.Groups) > 0 {
		// Keep the ledger: the next build with this work dir undoes it.
		ui.Error(fmt.Sprintf("Some of this build's mounts or processes are still there; the next build with work_dir %s cleans them up", cfg.WorkDir))
		return
	}
	if err := cfg.recheckDirs(); err != nil {
		ui.Error(err.Error())
		return
	}
	for _, p := range []string{filepath.Join(cfg.WorkDir, upperDirName), filepath.Join(cfg.WorkDir, ovlWorkDirName), filepath.Join(cfg.WorkDir, emptyLowerName), cfg.MountPath} {
		if err := removeUnmounted(p, p == cfg.MountPath && !within(p, cfg.WorkDir)); err != nil {
			ui.Error(err.Error())
			return
		}
	}
	if err := s.ledger.Close(); err != nil {
		ui.Error(fmt.Sprintf("removing %s: %v", mount.LedgerName, err))
	}
}

// refuseForeignMounts fails when anything is mounted at or under dir that
// the given records did not make: a build never unmounts (or deletes
// through) someone else's mount.
func refuseForeignMounts(dir string, recs []mount.MountRecord) error {
	foreign, err := mount.ForeignUnder(dir, recs)
	if err != nil {
		return err
	}
	if len(foreign) == 0 {
		return nil
	}
	var pts []string
	for _, m := range foreign {
		pts = append(pts, m.MountPoint)
	}
	return fmt.Errorf("%s has mounts this build did not make: %s; unmount them or choose another directory (the build never removes what it did not mount)",
		dir, strings.Join(pts, ", "))
}

// removeUnmounted removes a tree the build made, but only when nothing at
// all is mounted under it: a recursive delete through a mount would reach
// the host. keepDir empties dir and leaves it (a mount_path of the user's).
func removeUnmounted(dir string, keepDir bool) error {
	if _, err := os.Lstat(dir); os.IsNotExist(err) {
		return nil
	}
	if err := mount.Verify(dir); err != nil {
		return fmt.Errorf("not removing %s: %w", dir, err)
	}
	if !keepDir {
		return os.RemoveAll(dir)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}
