package registry

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// ManifestFor returns a reference by digest to the manifest of the image
// imageID (its config's digest, which is a strata image ID) that ref
// names: ref's own manifest when it is an image, or the entry of its index
// whose config is imageID (a multi-architecture version pushed as an
// index). A pull of the result gets exactly that image.
func ManifestFor(ctx context.Context, ref, imageID string, opt Options) (string, error) {
	r, err := opt.ParseReference(ref)
	if err != nil {
		return "", err
	}
	ro := opt.remoteOptions(ctx, nil)
	desc, err := remote.Get(r, ro...)
	if err != nil {
		return "", fmt.Errorf("%s: %w", ref, err)
	}
	if !desc.MediaType.IsIndex() {
		return r.Context().Digest(desc.Digest.String()).String(), nil
	}
	idx, err := desc.ImageIndex()
	if err != nil {
		return "", fmt.Errorf("%s: %w", ref, err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return "", fmt.Errorf("%s: %w", ref, err)
	}
	for _, d := range m.Manifests {
		if !d.MediaType.IsImage() {
			continue
		}
		img, err := idx.Image(d.Digest)
		if err != nil {
			return "", fmt.Errorf("%s: %s: %w", ref, d.Digest, err)
		}
		cfg, err := img.ConfigName()
		if err != nil {
			return "", fmt.Errorf("%s: %s: %w", ref, d.Digest, err)
		}
		if cfg.String() == imageID {
			return r.Context().Digest(d.Digest.String()).String(), nil
		}
	}
	return "", fmt.Errorf("%s is an index without the image %s", ref, imageID)
}
