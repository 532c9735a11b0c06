package chroot

import (
	"context"
	"fmt"

	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/strata-build/packer-plugin-strata/internal/inroot"
	"github.com/strata-build/packer-plugin-strata/internal/mount"
	"github.com/strata-build/packer-plugin-strata/layer"
)

// stepImageView mounts the committed image read-only at mount_path for the
// export: an overlay of its layers, or the one layer bound read-only. It is
// the last thing the build unmounts.
//
// Reads stateConfig, stateLedger, stateLayers, stateImage; writes stateRoot.
type stepImageView struct {
	rec  *mount.MountRecord
	root *inroot.Root
}

func (s *stepImageView) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	cfg := configOf(state)
	img := state.Get(stateImage).(*layer.Image)
	lowers, err := layersOf(state).LowerDirs(img)
	if err != nil {
		return halt(state, err)
	}
	spec := mount.Spec{FSType: "bind", Source: lowers[0], Target: cfg.MountPath, Options: "ro"}
	if len(lowers) > 1 {
		spec = mount.Spec{FSType: "overlay", Source: "overlay", Target: cfg.MountPath, Options: "ro," + layer.OverlayOptions(lowers, "", "")}
	}
	if s.rec, err = mountHost(ledgerOf(state), spec); err != nil {
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
	if s.rec == nil {
		return
	}
	if err := unmountRecords(uiOf(state), ledgerOf(state), []mount.MountRecord{*s.rec}); err != nil {
		uiOf(state).Error(fmt.Sprintf("unmounting the image view: %v", err))
		return
	}
	s.rec = nil
}
