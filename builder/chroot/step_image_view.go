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
// Uses cfg, ledger, layers, image; sets view.
type stepImageView struct {
	rec  *mount.MountRecord
	root *inroot.Root
}

func (s *stepImageView) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	b := buildOf(state)
	cfg := b.cfg
	lowers, err := b.layers.LowerDirs(b.image)
	if err != nil {
		return halt(state, err)
	}
	spec := mount.Spec{FSType: "bind", Source: lowers[0], Target: cfg.MountPath, Options: "ro"}
	if len(lowers) > 1 {
		spec = mount.Spec{FSType: "overlay", Source: "overlay", Target: cfg.MountPath, Options: "ro," + layer.OverlayOptions(lowers, "", "")}
	}
	if s.rec, err = mountHost(b.host, b.ledger, spec); err != nil {
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
	if s.rec == nil {
		return
	}
	if err := unmountRecords(uiOf(state), b.host, b.ledger, []mount.MountRecord{*s.rec}); err != nil {
		uiOf(state).Error(fmt.Sprintf("unmounting the image view: %v", err))
		return
	}
	s.rec = nil
}
