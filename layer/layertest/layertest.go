// Package layertest makes small images in a layer store for the tests of
// the packages that use one (registry, catalog, the builder).
package layertest

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/strata-build/packer-plugin-strata/layer"
)

// Time is the creation time of the images made here (and their files'),
// so that their IDs are the same in every run.
var Time = time.Unix(1700000000, 0)

// ArchImage stores a base image of one layer, a file /etc/arch holding
// arch, with arch and variant as its OCI platform.
func ArchImage(t testing.TB, s *layer.Store, arch, variant string) *layer.Image {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "upper")
	if err := os.MkdirAll(filepath.Join(dir, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "etc/arch"), []byte(arch), 0o644); err != nil {
		t.Fatal(err)
	}
	l, _, release, err := s.Commit(context.Background(), dir, layer.CommitOptions{ClampTime: Time})
	if err != nil {
		t.Fatal(err)
	}
	release()
	im, _, release, err := s.PutImage(layer.ImageSpec{Layer: l, Created: Time, Architecture: arch, Variant: variant})
	if err != nil {
		t.Fatal(err)
	}
	release()
	return im
}

// StoreOf opens the layer store of a build's store_dir.
func StoreOf(t testing.TB, storeDir string) *layer.Store {
	t.Helper()
	s, err := layer.Open(filepath.Join(storeDir, "layers"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}
