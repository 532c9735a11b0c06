package chroot

import (
	"context"
	"errors"
	"strings"
	"testing"

	catalogdb "github.com/strata-build/packer-plugin-strata/catalog"
	"github.com/strata-build/packer-plugin-strata/internal/storeroot"
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
