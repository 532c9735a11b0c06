package chroot

import (
	"context"
	"fmt"

	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/strata-build/packer-plugin-strata/internal/inroot"
	"github.com/strata-build/packer-plugin-strata/layer"
)

// stepImageView mounts the committed image read-only at mount_path for the
// export: an overlay of its layers, or the one layer bound read-only. It is
// the last thing the build unmounts.
//
// Reads stateConfig, stateLedger, stateLayers, stateImage; writes stateRoot.
type stepImageView struct {
	view *layer.View
	root *inroot.Root
}

func (s *stepImageView) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	cfg := configOf(state)
	img := state.Get(stateImage).(*layer.Image)
	var err error
	if s.view, err = layersOf(state).MountView(img, cfg.MountPath, ledgerOf(state)); err != nil {
		return halt(state, fmt.Errorf("mounting the image for the export: %w", err))
	}
	if s.root, err = inroot.Open(cfg.MountPath); err != nil {
		return halt(state, err)
	}
	state.Put(stateRoot, s.root)
	return multistep.ActionContinue
}

func (s *stepImageView) Cleanup(state multistep.StateBag) {
	if s.root != nil {
		s.root.Close()
	}
	lazy, err := s.view.Unmount()
	warnLazy(uiOf(state), lazy)
	if err != nil {
		uiOf(state).Error(err.Error())
	}
}
