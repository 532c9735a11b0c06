package export

import (
	"context"
	"fmt"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/strata-build/packer-plugin-strata/internal/durable"
	"github.com/strata-build/packer-plugin-strata/internal/treesize"
	"github.com/strata-build/packer-plugin-strata/layer"
)

// WriteOCIIndex writes the images of a multi-architecture version (one per
// architecture) as an OCI image layout at final whose index.json names one
// image index, by ref (the version, else "latest"), and that index one
// manifest per image with its platform (os, architecture, variant from the
// image's config): tools pick the image of their architecture
// (`skopeo copy --override-arch arm64 oci:DIR:REF ...`). The Output's
// SHA256 is the image index's.
func WriteOCIIndex(ctx context.Context, store *layer.Store, imgs []*layer.Image, final string, opt OCIOptions) (Output, error) {
	var adds []mutate.IndexAddendum
	for _, img := range imgs {
		cfg, err := img.ConfigFile()
		if err != nil {
			return Output{}, err
		}
		o, err := newOCIImage(ctx, store, img, opt, nil)
		if err != nil {
			return Output{}, err
		}
		im, err := partial.CompressedToImage(o)
		if err != nil {
			return Output{}, err
		}
		adds = append(adds, mutate.IndexAddendum{Add: im, Descriptor: v1.Descriptor{
			Platform: &v1.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}}})
	}
	idx := mutate.IndexMediaType(mutate.AppendManifests(empty.Index, adds...), types.OCIImageIndex)
	ref := opt.Version
	if ref == "" {
		ref = "latest"
	}
	tmp := final + ".tmp"
	os.RemoveAll(tmp)
	p, err := layout.Write(tmp, empty.Index)
	if err == nil {
		err = p.AppendIndex(idx, layout.WithAnnotations(map[string]string{annotationRefName: ref}))
	}
	if err == nil {
		err = ctx.Err()
	}
	if err == nil {
		err = durable.Tree(tmp)
	}
	if err == nil {
		err = os.Rename(tmp, final)
	}
	if err != nil {
		os.RemoveAll(tmp)
		return Output{}, fmt.Errorf("the oci image index: %w", err)
	}
	d, err := idx.Digest()
	if err != nil {
		return Output{}, err
	}
	t, _ := treesize.Measure(final)
	return Output{Format: "oci", Path: final, Size: t.Apparent, SHA256: d.Hex}, nil
}
