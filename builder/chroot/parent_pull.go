package chroot

import (
	"context"
	"fmt"
	"os"
	"strings"

	catalogdb "github.com/strata-build/packer-plugin-strata/catalog"
	_ "github.com/strata-build/packer-plugin-strata/catalog/postgres"
	_ "github.com/strata-build/packer-plugin-strata/catalog/sqlite"
	"github.com/strata-build/packer-plugin-strata/internal/storeroot"
	"github.com/strata-build/packer-plugin-strata/layer"
	"github.com/strata-build/packer-plugin-strata/registry"
)

// pullParent fetches parent (a full image ID) into the store's layer store
// from a registry reference the catalog recorded for a version with that
// image ID: a parent built and pushed on another build host. The catalog is
// $STRATA_CATALOG, else the store's own; plain-http registries are those
// $STRATA_INSECURE_REGISTRIES lists (comma-separated). pulled is false when
// no catalog knows a pushed version of it. ctx is the build's: an
// interrupted build (Ctrl-C) stops the pull, also while it waits for
// another build's pull of the same layer.
func pullParent(ctx context.Context, layout storeroot.Layout, parent string) (pulled bool, err error) {
	if catalogdb.ValidDigest("parent", parent) != nil {
		return false, nil // a prefix or a name: only the store resolves it
	}
	cat, err := catalogdb.OpenExisting(catalogdb.URLFor(layout.Root))
	if err != nil {
		return false, nil
	}
	defer cat.Close()
	var vs []*catalogdb.Version
	if err := cat.Store().View(ctx, func(tx catalogdb.Tx) error {
		vs, err = tx.VersionsByImageID(parent)
		return err
	}); err != nil {
		return false, ctx.Err() // an interrupted build stops; no catalog answer is no pull
	}
	var insecure []string
	if v := os.Getenv("STRATA_INSECURE_REGISTRIES"); v != "" {
		insecure = strings.Split(v, ",")
	}
	for _, v := range vs {
		if len(v.RegistryRefs()) == 0 {
			continue
		}
		full, err := cat.Get(ctx, v.Image, v.Version)
		if err != nil {
			return false, err
		}
		// The parent may be another architecture's image of the version
		// (v is that architecture's view): its image is what is pulled.
		if pv, ok := full.ForArch(v.Architecture); ok {
			full = pv
		}
		store, err := layer.Open(layout.Layers())
		if err != nil {
			return false, err
		}
		p, err := cat.Pull(ctx, store, full, registry.Options{Insecure: insecure})
		if err != nil {
			return false, fmt.Errorf("%s is not in the store; pulling it (%s): %w", parent, full.Ref(), err)
		}
		p.Release()
		return true, nil
	}
	return false, nil
}
