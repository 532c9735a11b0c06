package registry

import (
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/strata-build/packer-plugin-strata/layer"
	"github.com/strata-build/packer-plugin-strata/layer/layertest"
)

// TestPushIndex: a version's images of two architectures go as one OCI
// image index to every tag; a client picks its platform's image from it.
func TestPushIndex(t *testing.T) {
	reg := newRegistry(t)
	s, err := layer.Open(t.TempDir())
	must(t, err)
	amd, arm := layertest.ArchImage(t, s, "amd64", ""), layertest.ArchImage(t, s, "arm64", "v8")
	refs := []string{reg.host + "/team/base:1.0.0", reg.host + "/team/base:prod"}
	p, err := PushIndex(ctx, s, []*layer.Image{amd, arm}, refs, PushOptions{Options: opts(reg)})
	must(t, err)
	for _, r := range refs {
		ref, _ := name.ParseReference(r, name.Insecure)
		desc, err := remote.Get(ref)
		must(t, err)
		if desc.MediaType != types.OCIImageIndex || desc.Digest.String() != p.Digest {
			t.Fatalf("%s: %s %s, pushed %s", r, desc.MediaType, desc.Digest, p.Digest)
		}
		for _, want := range []struct{ arch, variant, imageID string }{{"amd64", "", amd.ID}, {"arm64", "v8", arm.ID}} {
			im, err := remote.Image(ref, remote.WithPlatform(v1.Platform{OS: "linux", Architecture: want.arch, Variant: want.variant}))
			must(t, err)
			cfg, err := im.ConfigName()
			must(t, err)
			if cfg.String() != want.imageID {
				t.Fatalf("%s for %s: config %s, want %s", r, want.arch, cfg, want.imageID)
			}
		}
	}
	// ManifestFor finds each image's manifest in the index; a plain
	// manifest is its own.
	for _, im := range []*layer.Image{amd, arm} {
		m, err := ManifestFor(ctx, refs[0], im.ID, opts(reg))
		must(t, err)
		ref, _ := name.ParseReference(m, name.Insecure)
		got, err := remote.Image(ref)
		must(t, err)
		if cfg, _ := got.ConfigName(); cfg.String() != im.ID {
			t.Fatalf("ManifestFor %s: %s has config %s", im.ID, m, cfg)
		}
		if again, err := ManifestFor(ctx, m, im.ID, opts(reg)); err != nil || again != m {
			t.Fatalf("ManifestFor of a manifest: %s %v, want %s", again, err, m)
		}
	}
	if _, err := ManifestFor(ctx, refs[0], "sha256:"+strings.Repeat("0", 64), opts(reg)); err == nil || !strings.Contains(err.Error(), "without the image") {
		t.Fatalf("an image the index lacks: %v", err)
	}

	// Two images of one platform are not an index.
	if _, err := PushIndex(ctx, s, []*layer.Image{amd, amd}, refs[:1], PushOptions{Options: opts(reg)}); err == nil {
		t.Fatal("an index with two amd64 images")
	}
}
