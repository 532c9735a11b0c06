package chroot

import (
	"context"
	"fmt"

	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/strata-build/packer-plugin-strata/internal/inroot"
)

// stepImageView mounts the committed image read-only at mount_path for the
// export: an overlay of its layers, or the one layer bound read-only. It is
// the last thing the build unmounts.
//
// Uses cfg, ledger, layers, image; sets view.
type stepImageView struct {
	unmount func() (lazy []string, err error)
	root    *inroot.Root
}

func (s *stepImageView) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	b := buildOf(state)
	cfg := b.cfg
	var err error
	if s.unmount, err = b.host.MountView(b.layers, b.image, cfg.MountPath, b.ledger); err != nil {
		return halt(state, fmt.Errorf("mounting the image for the export: %w", err))
	}
	if s.root, err = inroot.Open(cfg.MountPath); err != nil {
		return halt(state, err)
	}
	b.view = s.root
	return multistep.ActionContinue
}

func (s *stepImageView) Cleanup(state multistep.StateBag) {
	b := buildOf(state)
	if s.root != nil {
		s.root.Close()
		s.root, b.view = nil, nil
	}
	if s.unmount == nil {
		return
	}
	lazy, err := s.unmount()
	warnLazy(uiOf(state), lazy)
	if err != nil {
		uiOf(state).Error(err.Error())
		return
	}
	s.unmount = nil
}
