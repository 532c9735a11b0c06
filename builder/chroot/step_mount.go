package chroot

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/strata-build/packer-plugin-strata/internal/inroot"
	"github.com/strata-build/packer-plugin-strata/internal/mount"
)

// stepMount mounts proc, sys, dev, dev/pts, dev/ptmx, dev/shm, run and the
// extra chroot_mounts, each resolved inside the image at the moment it is
// made. Its undo stops every process rooted in the chroot, unmounts
// everything mounted on the image root (its own mounts, and whatever hooks
// and provisioners mounted there), removes the mount points it created and
// checks that only the root itself is still mounted.
//
// Uses cfg, ledger, root; pushes an undo.
type stepMount struct {
	undo *undo
}

func (s *stepMount) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	b := buildOf(state)
	cfg := b.cfg
	ui := uiOf(state)
	root := b.root
	ledger := b.ledger

	plan := planMounts(cfg.ChrootMounts)
	var done []*madeMount
	s.undo = b.pushUndo("mounts", func(ui packersdk.Ui) error {
		return teardownChroot(ui, b.host, root, ledger, cfg.MountPath, done)
	})
	ui.Say(fmt.Sprintf("Mounting %d file systems in %s ...", len(plan), cfg.MountPath))
	for _, m := range plan {
		made, err := mountInImage(b.host, root, ledger, m)
		if made != nil && (made.ID != 0 || len(made.created) > 0) {
			done = append(done, made)
		}
		if err != nil {
			return halt(state, fmt.Errorf("mounting %s: %w", m.Target, err))
		}
		ui.Message(fmt.Sprintf("mounted %s (%s)", m.Target, m.FSType))
	}
	return multistep.ActionContinue
}

func (s *stepMount) Cleanup(state multistep.StateBag) { cleanupUndo(state, s.undo) }

// teardownChroot stops the chroot's processes, unmounts everything on the
// image root (children first), removes the mount points the build created
// and verifies that nothing but the root itself is mounted at or under it.
func teardownChroot(ui packersdk.Ui, h host, root *inroot.Root, ledger *mount.Ledger, mountPath string, made []*madeMount) error {
	start := time.Now()
	n, err := h.KillChroot(mountPath, ledger.Owner().Start, 5*time.Second)
	if n > 0 {
		ui.Message(fmt.Sprintf("stopped %d process(es) still running in the chroot", n))
	}
	if err != nil {
		return err
	}
	var recs []mount.MountRecord
	for _, m := range made {
		if m.ID != 0 {
			recs = append(recs, m.MountRecord)
		}
	}
	if err := unmountRecords(ui, h, ledger, recs); err != nil {
		return err
	}
	rootRec, err := rootRecord(ledger, mountPath)
	if err != nil {
		return err
	}
	extra, lazy, err := h.UnmountBelow(rootRec)
	for _, l := range lazy {
		ui.Error("Warning: lazily unmounted " + l)
	}
	if err != nil {
		return err
	}
	if len(extra) > 0 {
		ui.Message(fmt.Sprintf("unmounted %d more mount(s) made inside the chroot", len(extra)))
	}
	for i := len(made) - 1; i >= 0; i-- {
		if err := removeCreated(root, made[i]); err != nil {
			return fmt.Errorf("removing the mount point %s the build created: %w", made[i].InImage, err)
		}
	}
	ms, err := h.Under(mountPath)
	if err != nil {
		return err
	}
	for _, m := range ms {
		if m.ID != rootRec.ID {
			return fmt.Errorf("still mounted in the chroot: %s", m.MountPoint)
		}
	}
	ui.Message(fmt.Sprintf("Chroot torn down in %s; nothing is mounted in %s", time.Since(start).Round(time.Millisecond), mountPath))
	return nil
}

// rootRecord is the ledger's record of the image root's own mount.
func rootRecord(ledger *mount.Ledger, mountPath string) (mount.MountRecord, error) {
	for _, r := range ledger.State().Mounts {
		if r.Target == mountPath && r.ID != 0 {
			return r, nil
		}
	}
	return mount.MountRecord{}, fmt.Errorf("the ledger has no mount of the image root %s", mountPath)
}
