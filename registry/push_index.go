package registry

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/strata-build/packer-plugin-strata/export"
	"github.com/strata-build/packer-plugin-strata/layer"
)

// PushIndex uploads imgs, one image per platform (a multi-architecture
// version), from the store and an OCI image index of them to every
// reference in refs: each image's blobs the registry lacks, its manifest,
// then the index, so that the index never names a manifest the
// repository does not have. A client pulls the image of its platform
// (`docker pull`, `skopeo copy --override-arch`). Each image's platform is
// its config's (os, architecture, variant). Pushed.Digest is the index's.
func PushIndex(ctx context.Context, store *layer.Store, imgs []*layer.Image, refs []string, opt PushOptions) (*Pushed, error) {
	parsed, err := parseRefs(refs, opt.Options)
	if err != nil {
		return nil, err
	}
	compression := opt.compression()
	var adds []mutate.IndexAddendum
	seen := map[string]string{}
	for _, img := range imgs {
		oci, err := export.Image(ctx, store, img, compression)
		if err != nil {
			return nil, fmt.Errorf("push %s: %w", refs[0], err)
		}
		cf, err := oci.ConfigFile()
		if err != nil {
			return nil, err
		}
		p := v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}
		if other, dup := seen[p.String()]; dup {
			return nil, fmt.Errorf("push %s: %s and %s are both %s images; an index holds one image per platform", refs[0], other, img.ID, p.String())
		}
		seen[p.String()] = img.ID
		mt, err := oci.MediaType()
		if err != nil {
			return nil, err
		}
		adds = append(adds, mutate.IndexAddendum{Add: oci, Descriptor: v1.Descriptor{MediaType: mt, Platform: &p}})
	}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), adds...)
	d, err := idx.Digest()
	if err != nil {
		return nil, err
	}
	return upload(ctx, opt.Options, parsed, refs, idx, d, func(ref name.Reference, ro ...remote.Option) error {
		return remote.WriteIndex(ref, idx, ro...)
	})
}

// parseRefs parses the references a push goes to; there must be one.
func parseRefs(refs []string, opt Options) ([]name.Reference, error) {
	if len(refs) == 0 {
		return nil, fmt.Errorf("push: no reference to push to")
	}
	parsed := make([]name.Reference, len(refs))
	for i, r := range refs {
		p, err := opt.ParseReference(r)
		if err != nil {
			return nil, err
		}
		parsed[i] = p
	}
	return parsed, nil
}

// upload writes t (digest d) to the first reference of each repository in
// parsed with write (its blobs and manifests) and tags the others, which
// need the manifest alone; Pushed counts the blob bytes sent.
func upload(ctx context.Context, opt Options, parsed []name.Reference, refs []string, t remote.Taggable, d v1.Hash,
	write func(name.Reference, ...remote.Option) error) (*Pushed, error) {
	c := &counter{next: opt.transport()}
	ro := opt.remoteOptions(ctx, c)
	done := map[string]bool{}
	for i, ref := range parsed {
		repo := ref.Context().String()
		var err error
		if done[repo] {
			err = remote.Tag(ref.Context().Tag(ref.Identifier()), t, ro...)
		} else {
			err = write(ref, ro...)
		}
		if err != nil {
			return nil, fmt.Errorf("push %s: %w", refs[i], err)
		}
		done[repo] = true
	}
	return &Pushed{Digest: d.String(), Refs: refs, Blobs: c.blobs.Load(), Bytes: c.sent.Load()}, nil
}
