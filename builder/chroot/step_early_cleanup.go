package chroot

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
)

// stepEarlyCleanup takes the chroot down (policy-rc.d, resolv.conf,
// processes, runtime mounts) before the export, so the tree is complete and
// quiet when it is read. The image root itself stays mounted.
//
// Uses cfg, ledger; runs the undos.
type stepEarlyCleanup struct{}

func (s *stepEarlyCleanup) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	b := buildOf(state)
	ui := uiOf(state)
	// Nothing in the chroot may run while the builder puts files back.
	n, err := b.host.KillChroot(b.cfg.MountPath, b.ledger.Owner().Start, 5*time.Second)
	if n > 0 {
		ui.Message(fmt.Sprintf("stopped %d process(es) still running in the chroot", n))
	}
	if err != nil {
		return halt(state, err)
	}
	if err := b.runUndos(ui); err != nil {
		return halt(state, err)
	}
	return multistep.ActionContinue
}

func (s *stepEarlyCleanup) Cleanup(multistep.StateBag) {}
