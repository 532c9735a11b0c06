package catalog_test

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/strata-build/packer-plugin-strata/catalog"
	_ "github.com/strata-build/packer-plugin-strata/catalog/sqlite"
	"github.com/strata-build/packer-plugin-strata/layer"
	"github.com/strata-build/packer-plugin-strata/layer/layertest"
	"github.com/strata-build/packer-plugin-strata/registry"
)

// hookTransport calls hook once, before the first manifest upload passes.
type hookTransport struct {
	once sync.Once
	hook func()
}

func (h *hookTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/") && h.hook != nil {
		h.once.Do(h.hook)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// TestPushMultiArchitectureVersion: a version's second architecture,
// registered while the first one's push runs (two sources of one packer
// build), ends in the registry as an index of both, whichever push ends
// last; each architecture's view of the version names the index.
func TestPushMultiArchitectureVersion(t *testing.T) {
	ctx := context.Background()
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	store, err := layer.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	amd, arm := layertest.ArchImage(t, store, "amd64", ""), layertest.ArchImage(t, store, "arm64", "")
	cat, err := catalog.Open("sqlite://" + filepath.Join(t.TempDir(), "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	reg := func(im *layer.Image, arch string) *catalog.Version {
		v, err := cat.Register(ctx, &catalog.Version{Image: "base", Version: "1.0.0", Architecture: arch, ImageID: im.ID, Layers: []string{im.Layers[0].DiffID}}, catalog.RegisterOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	v := reg(amd, "amd64")
	refs, _ := catalog.PushRefs(host+"/team/base", "1.0.0", []string{"prod"})
	// The arm64 build registers while amd64's push runs.
	tr := &hookTransport{hook: func() { reg(arm, "arm64") }}
	opt := registry.PushOptions{Options: registry.Options{Insecure: []string{host}, Keychain: authn.NewMultiKeychain(), Transport: tr}}
	p, err := cat.Push(ctx, store, v, refs, opt)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range refs {
		ref, _ := name.ParseReference(r, name.Insecure)
		desc, err := remote.Get(ref)
		if err != nil || desc.MediaType != types.OCIImageIndex || desc.Digest.String() != p.Digest {
			t.Fatalf("%s: %v %s %s, pushed %s", r, err, desc.MediaType, desc.Digest, p.Digest)
		}
		idx, _ := desc.ImageIndex()
		m, _ := idx.IndexManifest()
		if len(m.Manifests) != 2 {
			t.Fatalf("%s: %d manifests", r, len(m.Manifests))
		}
		a, err := remote.Image(ref, remote.WithPlatform(v1.Platform{OS: "linux", Architecture: "arm64"}))
		if err != nil {
			t.Fatal(err)
		}
		if c, _ := a.ConfigName(); c.String() != arm.ID {
			t.Fatalf("%s for arm64: %s", r, c)
		}
	}
	got, err := cat.Get(ctx, "base", "1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	armView, _ := got.ForArch("arm64")
	for _, view := range []*catalog.Version{got, armView} {
		rr := view.RegistryRefs()
		if len(rr) != 2 || rr[0].Digest != p.Digest {
			t.Fatalf("%s %s: registry refs %+v, pushed %s", view.Ref(), view.Architecture, rr, p.Digest)
		}
		// Another host pulls each architecture's image from the index.
		fresh, err := layer.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		pl, err := cat.Pull(ctx, fresh, view, opt.Options)
		if err != nil || pl.Image.ID != view.ImageID {
			t.Fatalf("pull %s: %+v %v", view.Architecture, pl, err)
		}
		pl.Release()
	}
}
