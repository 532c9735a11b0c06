package chroot

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"golang.org/x/sys/unix"

	"github.com/strata-build/packer-plugin-strata/internal/mount"
)

// stepWorkDir takes the work dir for this build: it locks it against a
// concurrent build, cleans what a killed earlier build left there (processes
// in its chroot, mounts) and starts an empty root file system directory.
type stepWorkDir struct {
	lock *os.File
	root string
}

func (s *stepWorkDir) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	cfg := state.Get("config").(*Config)
	ui := state.Get("ui").(packersdk.Ui)
	if err := os.MkdirAll(cfg.WorkDir, 0o755); err != nil {
		return halt(state, fmt.Errorf("work_dir: %w", err))
	}
	lock, err := os.OpenFile(filepath.Join(cfg.WorkDir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return halt(state, fmt.Errorf("work_dir: %w", err))
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		return halt(state, fmt.Errorf("work_dir %s is in use by another running build; give this build its own work_dir", cfg.WorkDir))
	}
	s.lock = lock

	rep, err := mount.CleanUnder(cfg.WorkDir)
	if rep.Killed > 0 || len(rep.Unmounted) > 0 {
		ui.Say(fmt.Sprintf("Cleaned up after an earlier build in %s: stopped %d process(es), unmounted %d mount(s)", cfg.WorkDir, rep.Killed, len(rep.Unmounted)))
	}
	for _, l := range rep.Lazy {
		ui.Error("Warning: lazily unmounted stale mount " + l)
	}
	if err != nil {
		return halt(state, fmt.Errorf("cleaning stale mounts under %s: %w", cfg.WorkDir, err))
	}
	s.root = filepath.Join(cfg.WorkDir, "rootfs")
	if err := os.RemoveAll(s.root); err != nil {
		return halt(state, fmt.Errorf("removing the old tree %s: %w", s.root, err))
	}
	if err := os.Mkdir(s.root, 0o755); err != nil {
		return halt(state, err)
	}
	state.Put("mount_path", s.root)
	return multistep.ActionContinue
}

func (s *stepWorkDir) Cleanup(state multistep.StateBag) {
	if s.lock == nil {
		return
	}
	ui := state.Get("ui").(packersdk.Ui)
	defer s.lock.Close()
	// Removing a tree with something still mounted in it would delete
	// through the mount into the host; never do that.
	if err := mount.Verify(filepath.Dir(s.root)); err != nil {
		ui.Error(fmt.Sprintf("Not removing %s: %v", s.root, err))
		return
	}
	if err := os.RemoveAll(s.root); err != nil {
		ui.Error(fmt.Sprintf("Removing %s: %v", s.root, err))
	}
}
