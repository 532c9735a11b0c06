package chroot

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/strata-build/packer-plugin-strata/internal/mount"
)

// stepMount mounts proc, sys, dev, dev/pts, dev/shm, run and the extra
// chroot_mounts. Its undo stops every process rooted in the chroot, unmounts
// in reverse order and checks that nothing is left mounted under the work dir.
type stepMount struct {
	undo *undo
}

func (s *stepMount) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	cfg := state.Get("config").(*Config)
	ui := state.Get("ui").(packersdk.Ui)
	root := state.Get("mount_path").(string)

	plan, err := planMounts(root, cfg.ChrootMounts)
	if err != nil {
		return halt(state, err)
	}
	var done []plannedMount
	s.undo = pushUndo(state, "mounts", func(ui packersdk.Ui) error {
		return teardownChroot(ui, root, cfg.WorkDir, done)
	})
	ui.Say(fmt.Sprintf("Mounting %d file systems in %s ...", len(plan), root))
	for _, m := range plan {
		if err := mount.EnsureTarget(m.Target, m.File); err != nil {
			return halt(state, fmt.Errorf("creating mount point %s: %w", m.InImage, err))
		}
		if err := mount.Mount(m.Spec); err != nil {
			return halt(state, fmt.Errorf("mounting %s: %w", m.InImage, err))
		}
		done = append(done, m)
		ui.Message(fmt.Sprintf("mounted %s (%s)", m.InImage, m.FSType))
	}
	return multistep.ActionContinue
}

func (s *stepMount) Cleanup(state multistep.StateBag) {
	ui := state.Get("ui").(packersdk.Ui)
	if err := s.undo.run(ui); err != nil {
		ui.Error(err.Error())
	}
}

// teardownChroot stops the chroot's processes, unmounts what was mounted in
// reverse, and then verifies that nothing at all is mounted under workDir.
func teardownChroot(ui packersdk.Ui, root, workDir string, mounted []plannedMount) error {
	start := time.Now()
	n, err := mount.KillRootedUnder(root, 5*time.Second)
	if n > 0 {
		ui.Message(fmt.Sprintf("stopped %d process(es) still running in the chroot", n))
	}
	if err != nil {
		return err
	}
	for i := len(mounted) - 1; i >= 0; i-- {
		m := mounted[i]
		res, err := mount.Unmount(m.Target, 20, 250*time.Millisecond)
		if err != nil {
			return fmt.Errorf("unmounting %s: %w", m.InImage, err)
		}
		if res.Lazy {
			ui.Error(fmt.Sprintf("Warning: %s stayed busy after %d tries and was unmounted lazily", m.InImage, res.Attempts))
		}
	}
	// Anything else under the work dir (a hook's mount, a nested one) goes too.
	if left, err := mount.Under(workDir); err == nil && len(left) > 0 {
		rep, err := mount.CleanUnder(workDir)
		for _, l := range rep.Lazy {
			ui.Error("Warning: lazily unmounted " + l)
		}
		if err != nil {
			return err
		}
		ui.Message(fmt.Sprintf("unmounted %d more mount(s) left under %s", len(rep.Unmounted), workDir))
	}
	if err := mount.Verify(workDir); err != nil {
		return err
	}
	ui.Message(fmt.Sprintf("Chroot torn down in %s; nothing is mounted under %s", time.Since(start).Round(time.Millisecond), workDir))
	return nil
}
