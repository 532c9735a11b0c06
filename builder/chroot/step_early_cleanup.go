package chroot

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/strata-build/packer-plugin-strata/internal/mount"
)

// stepEarlyCleanup takes the chroot down (policy-rc.d, resolv.conf,
// processes, runtime mounts) before the export, so the tree is complete and
// quiet when it is read. The image root itself stays mounted.
//
// Reads stateConfig, stateLedger, stateUndos.
type stepEarlyCleanup struct{}

func (s *stepEarlyCleanup) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	ui := uiOf(state)
	// Nothing in the chroot may run while the builder puts files back.
	cfg := configOf(state)
	n, err := mount.KillRootedUnderSince(cfg.MountPath, ledgerOf(state).Owner().Start, 5*time.Second)
	if n > 0 {
		ui.Message(fmt.Sprintf("stopped %d process(es) still running in the chroot", n))
	}
	if err != nil {
		return halt(state, err)
	}
	if err := (&stepEarlyCleanupUndos{}).run(state); err != nil {
		return halt(state, err)
	}
	return multistep.ActionContinue
}

// stepEarlyCleanupUndos runs every undo, latest first, stopping at the
// first that fails (its step's Cleanup tries it again).
type stepEarlyCleanupUndos struct{}

func (stepEarlyCleanupUndos) run(state multistep.StateBag) error {
	ui := uiOf(state)
	undos := undosOf(state)
	for i := len(undos) - 1; i >= 0; i-- {
		if err := undos[i].run(ui); err != nil {
			return fmt.Errorf("tearing down %s: %w", undos[i].name, err)
		}
	}
	return nil
}

func (s *stepEarlyCleanup) Cleanup(multistep.StateBag) {}
