package chroot

import (
	"context"
	"fmt"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// stepEarlyCleanup takes the chroot down (policy-rc.d, resolv.conf, processes,
// mounts) before the export, so the tree is complete and quiet when it is read.
type stepEarlyCleanup struct{}

func (s *stepEarlyCleanup) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	ui := state.Get("ui").(packersdk.Ui)
	undos := undosOf(state)
	for i := len(undos) - 1; i >= 0; i-- {
		if err := undos[i].run(ui); err != nil {
			return halt(state, fmt.Errorf("tearing down %s: %w", undos[i].name, err))
		}
	}
	return multistep.ActionContinue
}

func (s *stepEarlyCleanup) Cleanup(multistep.StateBag) {}

// halt records err for Packer and stops the build.
func halt(state multistep.StateBag, err error) multistep.StepAction {
	state.Put("error", err)
	state.Get("ui").(packersdk.Ui).Error(err.Error())
	return multistep.ActionHalt
}
