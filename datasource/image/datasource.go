// Package image is the strata-image data source: it resolves an image in
// the catalog by channel, version or tag to the version a build should use,
// refusing what a build must not: a revoked version, one whose content is
// gone, an unknown image, an empty channel.
package image

import (
	"context"
	"errors"
	"fmt"
	"log"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/packer-plugin-sdk/hcl2helper"
	"github.com/zclconf/go-cty/cty"

	catalogdb "github.com/strata-build/packer-plugin-strata/catalog"
	_ "github.com/strata-build/packer-plugin-strata/catalog/postgres"
	_ "github.com/strata-build/packer-plugin-strata/catalog/sqlite"
	"github.com/strata-build/packer-plugin-strata/internal/hint"
	"github.com/strata-build/packer-plugin-strata/internal/storeroot"
	"github.com/strata-build/packer-plugin-strata/layer"
	"github.com/strata-build/packer-plugin-strata/registry"
)

// Datasource is strata-image.
type Datasource struct {
	config Config
}

func (d *Datasource) ConfigSpec() hcldec.ObjectSpec { return d.config.FlatMapstructure().HCL2Spec() }

func (d *Datasource) OutputSpec() hcldec.ObjectSpec { return (&FlatDatasourceOutput{}).HCL2Spec() }

func (d *Datasource) Configure(raws ...interface{}) error { return d.config.prepare(raws...) }

// Execute resolves the image. Packer runs it at validate and build time.
func (d *Datasource) Execute() (cty.Value, error) {
	c := &d.config
	null := cty.NullVal(cty.DynamicPseudoType)
	store, err := storeroot.Resolve(c.StoreDir)
	if err != nil {
		store = storeroot.Default
	}
	url := c.Catalog
	if url == "" {
		url = catalogdb.URLFor(store)
	}
	cat, err := catalogdb.OpenExisting(url)
	if err != nil {
		return null, fmt.Errorf("strata-image: %w", err)
	}
	defer cat.Close()
	cat.ContentExists = catalogdb.ContentInStore(filepath.Join(store, "layers"))
	ctx := context.Background()
	v, err := resolve(ctx, cat, c, url)
	if err != nil {
		return null, err
	}
	// A multi-architecture version answers with its image of the build's
	// architecture.
	pv, ok := v.ForArch(c.Architecture)
	if !ok {
		return null, fmt.Errorf("strata-image: %s has no %s image (it has %s); build and register %s for %s under this version, or set architecture to one it has (and the strata-chroot build's too)",
			v.Ref(), c.Architecture, strings.Join(v.Architectures(), ", "), c.Name, c.Architecture)
	}
	v = pv
	if err := pullMissing(ctx, cat, v, filepath.Join(store, "layers"), c.InsecureRegistries); err != nil {
		return null, fmt.Errorf("strata-image: %w", err)
	}
	if !cat.ContentExists(v) {
		return null, fmt.Errorf("strata-image: the content of %s (%s) is gone: its files are not on disk and its image is not in the layer store %s; %s",
			v.Ref(), v.ImageID, filepath.Join(store, "layers"), goneAdvice(c))
	}
	stale, err := cat.Stale(ctx, v.Image, v.Version)
	if err != nil {
		return null, fmt.Errorf("strata-image: %w", err)
	}
	return hcl2helper.HCL2ValueFromConfig(outputOf(v, c.Channel, stale), d.OutputSpec()), nil
}

func goneAdvice(c *Config) string {
	if c.Channel != "" {
		return "roll the channel back (`" + hint.Rollback(c.Name, c.Channel) + "`) or build and promote a new version"
	}
	return "pick another version, or build a new one"
}

// resolve finds the version the configuration names, with errors that say
// what to do.
func resolve(ctx context.Context, cat *catalogdb.Catalog, c *Config, url string) (*catalogdb.Version, error) {
	switch {
	case c.Channel != "":
		v, err := cat.Resolve(ctx, c.Name, c.Channel)
		switch {
		case errors.Is(err, catalogdb.ErrRevoked):
			return nil, fmt.Errorf("strata-image: %w: `%s` moves it back to the version before", err, hint.Rollback(c.Name, c.Channel))
		case errors.Is(err, catalogdb.ErrNotFound):
			return nil, notFound(ctx, cat, c, url, err)
		case err != nil:
			return nil, fmt.Errorf("strata-image: %w", err)
		}
		return v, nil
	case c.Version != "":
		v, err := cat.Get(ctx, c.Name, c.Version)
		if errors.Is(err, catalogdb.ErrNotFound) {
			return nil, notFound(ctx, cat, c, url, err)
		}
		if err != nil {
			return nil, fmt.Errorf("strata-image: %w", err)
		}
		if v.Revoked {
			return nil, fmt.Errorf("strata-image: %s is revoked (%s); pick another version, or `%s` if the revocation was a mistake",
				v.Ref(), v.RevokedReason, hint.Restore(c.Name, c.Version))
		}
		return v, nil
	}
	v, err := cat.ResolveTag(ctx, c.Name, c.Tag)
	switch {
	case errors.Is(err, catalogdb.ErrNotFound):
		if _, verr := cat.Versions(ctx, c.Name); verr == nil {
			return nil, fmt.Errorf("strata-image: no version of %s is tagged %q; register one with tags = [%q]", c.Name, c.Tag, c.Tag)
		}
		return nil, notFound(ctx, cat, c, url, err)
	case err != nil:
		return nil, fmt.Errorf("strata-image: %w", err)
	}
	return v, nil
}

// notFound says which of image, version or channel is missing, and what to
// do about it.
func notFound(ctx context.Context, cat *catalogdb.Catalog, c *Config, url string, err error) error {
	vs, verr := cat.Versions(ctx, c.Name)
	if errors.Is(verr, catalogdb.ErrNotFound) {
		return fmt.Errorf("strata-image: image %q is not in the catalog %s; register it first (post-processor \"strata-catalog\" or strata register), or check name and catalog",
			c.Name, catalogdb.RedactURL(url))
	}
	if c.Channel != "" {
		// The hint names a version it can take: the newest not revoked
		// whose content is there.
		for i := len(vs) - 1; i >= 0; i-- {
			if vs[i].Revoked {
				continue
			}
			if full, err := cat.Get(ctx, c.Name, vs[i].Version); err == nil && cat.ContentExists(full) {
				return fmt.Errorf("strata-image: channel %q of %s points at no version yet; promote one first, such as the newest usable one: `%s`",
					c.Channel, c.Name, hint.Promote(c.Name, vs[i].Version, c.Channel))
			}
		}
		return fmt.Errorf("strata-image: channel %q of %s points at no version yet, and every version of %s is revoked or its content gone; build and register a new one",
			c.Channel, c.Name, c.Name)
	}
	return fmt.Errorf("strata-image: %w; `%s` lists what there is", err, hint.Versions(c.Name))
}

// pullMissing fetches v's image into the layer store from a registry
// reference the catalog recorded, when the store lacks any of its layers:
// a build host that did not build the parent builds on it all the same.
func pullMissing(ctx context.Context, cat *catalogdb.Catalog, v *catalogdb.Version, layers string, insecure []string) error {
	if len(v.Layers) == 0 || len(v.RegistryRefs()) == 0 {
		return nil
	}
	if s, err := layer.OpenExisting(layers); err == nil {
		if img, err := s.Image(v.ImageID); err == nil && s.Complete(img) == nil {
			return nil
		}
	}
	store, err := layer.Open(layers)
	if err != nil {
		return err
	}
	p, err := cat.Pull(ctx, store, v, registry.Options{Insecure: insecure})
	if err != nil {
		return err
	}
	p.Release()
	log.Printf("strata-image: pulled %s (%s): %d layer(s) fetched", v.Ref(), p.Digest, p.Layers)
	return nil
}
