package registry

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/strata-build/packer-plugin-strata/export"
	"github.com/strata-build/packer-plugin-strata/layer"
)

// Pushed is what a push did.
type Pushed struct {
	// Digest is the manifest's digest, "sha256:<hex>", the same for every
	// reference pushed.
	Digest string
	// Refs are the references written, as given.
	Refs []string
	// Blobs and Bytes count the blob uploads the registries took; blobs
	// they had already (or mounted from another repository) are not sent.
	Blobs int64
	Bytes int64
}

// PushOptions tune a push.
type PushOptions struct {
	Options
	// MountFrom is a reference of an image in the same registry whose
	// layers the pushed image shares (its parent's): the registry is asked
	// to mount those blobs from there instead of receiving them.
	MountFrom string
}

// Push uploads img from the store to every reference in refs
// (host/repository:tag): the first reference of each repository gets the
// blobs the registry lacks and the manifest, the others the tag alone.
func Push(ctx context.Context, store *layer.Store, img *layer.Image, refs []string, opt PushOptions) (*Pushed, error) {
	parsed, err := parseRefs(refs, opt.Options)
	if err != nil {
		return nil, err
	}
	var oci v1.Image
	oci, err = export.Image(ctx, store, img, opt.compression())
	if err != nil {
		return nil, fmt.Errorf("push %s: %w", refs[0], err)
	}
	d, err := oci.Digest()
	if err != nil {
		return nil, err
	}
	var from *name.Repository
	parentLayers := 0
	if opt.MountFrom != "" {
		r, err := opt.ParseReference(opt.MountFrom)
		if err != nil {
			return nil, err
		}
		repo := r.Context()
		from = &repo
		// The parent's layers are the image's first ones; every other
		// blob is the image's own, looked for in the target repository.
		parentLayers = len(img.Layers) - 1
		if p, err := store.Image(img.Parent); err == nil && len(p.Layers) <= len(img.Layers) {
			parentLayers = len(p.Layers)
		} else if img.Parent == "" {
			parentLayers = len(img.Layers)
		}
	}
	c := &counter{next: opt.transport()}
	if i, err := pushImage(ctx, opt.Options, c, parsed, oci, parentLayers, from); err != nil {
		return nil, fmt.Errorf("push %s: %w", refs[i], err)
	}
	return &Pushed{Digest: d.String(), Refs: refs, Blobs: c.blobs.Load(), Bytes: c.sent.Load()}, nil
}

// Tag points ref (host/repository:tag) at the manifest digest already in
// that repository: a channel tag moving to another version.
func Tag(ctx context.Context, ref, digest string, opt Options) error {
	r, err := opt.ParseReference(ref)
	if err != nil {
		return err
	}
	tag, ok := r.(name.Tag)
	if !ok {
		return fmt.Errorf("tag %s: name a tag, not a digest", ref)
	}
	src := r.Context().Digest(digest)
	ro := opt.remoteOptions(ctx, nil)
	desc, err := remote.Get(src, ro...)
	if err != nil {
		return fmt.Errorf("tag %s: %s is not in the registry: %w", ref, src, err)
	}
	if err := remote.Tag(tag, desc, ro...); err != nil {
		return fmt.Errorf("tag %s: %w", ref, err)
	}
	return nil
}
