package chroot

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"testing"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"

	catalogdb "github.com/strata-build/packer-plugin-strata/catalog"
	"github.com/strata-build/packer-plugin-strata/internal/storeroot"
	"github.com/strata-build/packer-plugin-strata/layer"
	"github.com/strata-build/packer-plugin-strata/layer/layertest"
	"github.com/strata-build/packer-plugin-strata/registry"
)

// TestPullParentStopsWithTheBuild: the parent's pull runs in the build's
// context, so an interrupted build (Ctrl-C) stops it.
func TestPullParentStopsWithTheBuild(t *testing.T) {
	t.Setenv("STRATA_CATALOG", "")
	layout := storeroot.Layout{Root: t.TempDir()}
	ctx := context.Background()
	c, err := catalogdb.Open(layout.CatalogURL())
	if err != nil {
		t.Fatal(err)
	}
	id := "sha256:" + strings.Repeat("ab", 32)
	if _, err := c.Register(ctx, &catalogdb.Version{Image: "base", Version: "1", ImageID: id}, catalogdb.RegisterOptions{}); err != nil {
		t.Fatal(err)
	}
	// A registry nobody answers at: only the context ends the pull at once.
	if err := c.AddRegistryRefs(ctx, "base", "1", []catalogdb.RegistryRef{{Ref: "127.0.0.1:9/x/base:1", Digest: "sha256:" + strings.Repeat("cd", 32)}}); err != nil {
		t.Fatal(err)
	}
	c.Close()
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = pullParent(cancelled, layout, id)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("the pull of a cancelled build: %v", err)
	}
}

// TestPullParentOfAnotherArchitecture: a parent that is a version's arm64
// image (pushed in an image index with its amd64 one) comes as itself.
func TestPullParentOfAnotherArchitecture(t *testing.T) {
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	t.Setenv("STRATA_CATALOG", "")
	t.Setenv("STRATA_INSECURE_REGISTRIES", host)
	ctx := context.Background()
	built, err := layer.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	amd, arm := layertest.ArchImage(t, built, "amd64", ""), layertest.ArchImage(t, built, "arm64", "")
	layout := storeroot.Layout{Root: t.TempDir()}
	c, err := catalogdb.Open(layout.CatalogURL())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var v *catalogdb.Version
	// amd64 first: the version's own image; arm64 another architecture's.
	for _, p := range []struct {
		arch string
		im   *layer.Image
	}{{"amd64", amd}, {"arm64", arm}} {
		im := p.im
		if v, err = c.Register(ctx, &catalogdb.Version{Image: "base", Version: "1", Architecture: p.arch, ImageID: im.ID,
			Layers: []string{im.Layers[0].DiffID}}, catalogdb.RegisterOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Push(ctx, built, v, []string{host + "/team/base:1"}, registry.PushOptions{Options: registry.Options{Insecure: []string{host}}}); err != nil {
		t.Fatal(err)
	}
	pulled, err := pullParent(ctx, layout, arm.ID)
	if err != nil || !pulled {
		t.Fatalf("pulled %v: %v", pulled, err)
	}
	s, err := layer.Open(layout.Layers())
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Image(arm.ID); err != nil || got.ID != arm.ID {
		t.Fatalf("the arm64 parent: %+v %v", got, err)
	}
	if _, err := s.Image(amd.ID); err == nil {
		t.Fatal("the amd64 image came instead")
	}
}
