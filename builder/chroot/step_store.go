package chroot

import (
	"context"
	"fmt"

	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/strata-build/packer-plugin-strata/internal/storeroot"
	"github.com/strata-build/packer-plugin-strata/layer"
)

// stepStore first checks the build host's state for this build (checkHost:
// every directory where it leads, their owners and contents, -force, the
// parent), before anything is created. Then it makes sure the store root
// exists and is closed to the build host's other users: owned by root, mode
// 0700, under parents that only root can change. Nothing under it is
// trusted before that holds. Then it opens the layer store, which removes
// what an interrupted commit left.
//
// Uses cfg; sets layers.
type stepStore struct{}

func (s *stepStore) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	cfg := configOf(state)
	if err := cfg.checkHost(ctx); err != nil {
		return halt(state, err)
	}
	for _, d := range []struct{ opt, dir string }{{"store_dir", cfg.StoreDir}, {"package_cache.dir", cfg.PackageCache.Dir}} {
		if err := storeroot.Ensure(d.dir); err != nil {
			return halt(state, fmt.Errorf("%s: %w", d.opt, err))
		}
	}
	store, err := layer.Open(storeroot.Layout{Root: cfg.StoreDir}.Layers())
	if err != nil {
		return halt(state, fmt.Errorf("store_dir: %w", err))
	}
	buildOf(state).layers = store
	return multistep.ActionContinue
}

func (s *stepStore) Cleanup(multistep.StateBag) {}
