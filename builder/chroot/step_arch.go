package chroot

import (
	"context"
	"fmt"

	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/strata-build/packer-plugin-strata/internal/binfmt"
	"github.com/strata-build/packer-plugin-strata/internal/debarch"
)

// stepArch makes sure, before anything is mounted, that the host runs the
// image's programs: for a foreign architecture, a binfmt_misc handler with
// the F flag for its QEMU emulator (binfmt.System.Acquire mounts
// binfmt_misc and registers qemu-user-static's handler when needed).
// Cleanup gives the lease back, and the last build holding one undoes what
// was done for it.
//
// Uses cfg, host.
type stepArch struct {
	lease *binfmt.Lease
}

func (s *stepArch) Run(_ context.Context, state multistep.StateBag) multistep.StepAction {
	build := buildOf(state)
	cfg := build.cfg
	hostArch, err := build.host.Arch()
	if err != nil {
		return halt(state, fmt.Errorf("architecture: %w", err))
	}
	if debarch.RunsNatively(hostArch, cfg.Architecture) {
		return multistep.ActionContinue
	}
	a, _ := debarch.Lookup(cfg.Architecture)
	l, err := build.host.Binfmt().Acquire(a.QEMU)
	if err != nil {
		return halt(state, fmt.Errorf("architecture %s on this host (%s): %w", cfg.Architecture, hostArch, err))
	}
	s.lease = l
	ui := uiOf(state)
	for _, d := range l.Did {
		ui.Message("binfmt_misc: " + d + " (undone after the build)")
	}
	ui.Say(fmt.Sprintf("Building for %s on this host (%s): its programs run through %s (flags %s)", cfg.Architecture, hostArch, l.Handler.Interpreter, l.Handler.Flags))
	return multistep.ActionContinue
}

func (s *stepArch) Cleanup(state multistep.StateBag) {
	if s.lease == nil {
		return
	}
	if err := s.lease.Release(); err != nil {
		uiOf(state).Error("binfmt_misc: " + err.Error())
	}
	s.lease = nil
}
