package chroot

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/strata-build/packer-plugin-strata/internal/bytesize"
	"github.com/strata-build/packer-plugin-strata/internal/debarch"
	"github.com/strata-build/packer-plugin-strata/layer"
)

// stepCommit takes the image root down, clears build-time state from the
// new layer, drops what the layer repeats of its parent, and commits it: the
// upper dir moves into the layer store under its diffID, and the image (the
// parent's layers plus this one, with its OCI config) is stored under its
// ID. A build that fails after this removes the image and the layer again
// (the layer only when no other image uses it).
//
// Uses cfg, ledger, layers, rootfs (takes it down, closing root); sets image.
type stepCommit struct {
	store        *layer.Store
	image        *layer.Image
	layer        *layer.Layer
	newImage     bool
	newLayer     bool
	releaseLayer func()
	releaseImage func()
}

func (s *stepCommit) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	b := buildOf(state)
	cfg := b.cfg
	ui := uiOf(state)
	s.store = b.layers
	rootfs := b.rootfs
	if err := rootfs.check.wait(ctx, ui); err != nil {
		return halt(state, err)
	}
	if err := b.unmountRootfs(ui); err != nil {
		return halt(state, err)
	}
	ui.Say("Committing the layer ...")
	start := time.Now()
	removed, err := scrubBuildState(rootfs.upper, rootfs.lowers)
	if err != nil {
		return halt(state, fmt.Errorf("clearing build-time state: %w", err))
	}
	if len(removed) > 0 {
		ui.Message(fmt.Sprintf("build-time state left out of the layer: %s", summarize(removed, 8)))
	}
	if rootfs.parent != nil {
		n, err := layer.PruneUnchanged(rootfs.upper, rootfs.lowers)
		if err != nil {
			return halt(state, fmt.Errorf("comparing the layer with its parent: %w", err))
		}
		if n > 0 {
			ui.Message(fmt.Sprintf("%d entries the parent already has left out of the layer", n))
		}
	}
	clamp, _ := cfg.clampTime()
	// The layer and the image come back held, until Cleanup: no gc can take
	// them before the build is done.
	s.layer, s.newLayer, s.releaseLayer, err = s.store.Commit(ctx, rootfs.upper, layer.CommitOptions{ClampTime: clamp})
	if err != nil {
		return halt(state, fmt.Errorf("committing the layer: %w", err))
	}
	spec := layer.ImageSpec{
		Parent:    rootfs.parent,
		Layer:     s.layer,
		Created:   cfg.created(),
		CreatedBy: "strata-chroot " + cfg.PackerBuildName + ": " + sourceLabel(cfg),
		Labels:    cfg.imageLabels(),
	}
	if a, ok := debarch.Lookup(cfg.Architecture); ok {
		spec.Architecture, spec.Variant = a.OCI, a.Variant
	}
	s.image, s.newImage, s.releaseImage, err = s.store.PutImage(spec)
	if err != nil {
		return halt(state, fmt.Errorf("storing the image: %w", err))
	}
	reuse := ""
	if !s.newLayer {
		reuse = ", already in the store"
	}
	ui.Message(fmt.Sprintf("Layer %s: %s in %d entries%s", s.layer.DiffID, bytesize.Human(s.layer.Size), s.layer.Entries, reuse))
	ui.Message(fmt.Sprintf("Image %s: %d layer(s), committed in %s", s.image.ID, len(s.image.Layers), time.Since(start).Round(time.Millisecond)))
	b.image = s.image
	return multistep.ActionContinue
}

func (s *stepCommit) Cleanup(state multistep.StateBag) {
	// Our own holds go first: removing what this build made takes them
	// exclusively.
	if s.releaseImage != nil {
		s.releaseImage()
	}
	if s.releaseLayer != nil {
		s.releaseLayer()
	}
	_, cancelled := state.GetOk(multistep.StateCancelled)
	_, halted := state.GetOk(multistep.StateHalted)
	if s.image == nil || (!cancelled && !halted) {
		return
	}
	ui := uiOf(state)
	if s.newImage {
		if err := s.store.RemoveImage(s.image.ID); err != nil {
			ui.Error(fmt.Sprintf("removing the image of the failed build: %v", err))
			return
		}
	}
	if s.newLayer {
		if err := s.store.RemoveLayerIfUnused(s.layer.DiffID); err != nil {
			ui.Error(fmt.Sprintf("removing the layer of the failed build: %v", err))
		}
	}
}

// clampTime is source_date_epoch as a time, when set.
func (c *Config) clampTime() (time.Time, bool) {
	if c.SourceDateEpoch == nil {
		return time.Time{}, false
	}
	return time.Unix(*c.SourceDateEpoch, 0).UTC(), true
}

// created is the image's creation time: source_date_epoch, else now.
func (c *Config) created() time.Time {
	if t, ok := c.clampTime(); ok {
		return t
	}
	return time.Now().UTC()
}

// imageLabels are labels plus the version label.
func (c *Config) imageLabels() map[string]string {
	out := map[string]string{}
	for k, v := range c.Labels {
		out[k] = v
	}
	if c.ImageVersion != "" {
		out["org.opencontainers.image.version"] = c.ImageVersion
	}
	return out
}

func summarize(list []string, n int) string {
	if len(list) <= n {
		return strings.Join(list, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(list[:n], ", "), len(list)-n)
}
