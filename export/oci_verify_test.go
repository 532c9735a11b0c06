package export

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-build/packer-plugin-strata/layer"
)

// TestVerifyOCIEachCompression: an OCI output verifies whichever
// compression its layers have (go-containerregistry's validate reads gzip
// only, so a zstd output failed `strata verify`), and a blob changed after
// the export fails verification, for both.
func TestVerifyOCIEachCompression(t *testing.T) {
	store, err := layer.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tree := filepath.Join(t.TempDir(), "tree")
	os.MkdirAll(filepath.Join(tree, "etc"), 0o755)
	os.WriteFile(filepath.Join(tree, "etc/os-release"), []byte(strings.Repeat("strata\n", 1000)), 0o644)
	l, _, releaseLayer, err := store.Commit(context.Background(), tree, layer.CommitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer releaseLayer()
	img, _, releaseImage, err := store.PutImage(layer.ImageSpec{Layer: l, Created: time.Unix(1700000000, 0)})
	if err != nil {
		t.Fatal(err)
	}
	defer releaseImage()
	for _, c := range []string{layer.Gzip, layer.Zstd} {
		t.Run(c, func(t *testing.T) {
			out := t.TempDir()
			res, err := Export(context.Background(), Source{Store: store, Image: img}, out, Options{Formats: []string{"oci"}, OCI: OCIOptions{Compression: c}})
			if err != nil {
				t.Fatal(err)
			}
			o := res.Outputs[0]
			if err := VerifyOCI(o.Path, o.SHA256); err != nil {
				t.Fatalf("a fresh %s output does not verify: %v", c, err)
			}
			blob := filepath.Join(o.Path, "blobs", "sha256", strings.TrimPrefix(mustBlob(t, store, l, c).Digest, "sha256:"))
			data, err := os.ReadFile(blob)
			if err != nil {
				t.Fatal(err)
			}
			data[len(data)/2] ^= 0xff
			if err := os.WriteFile(blob, data, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := VerifyOCI(o.Path, o.SHA256); err == nil {
				t.Errorf("a %s layer blob changed after the export verifies", c)
			}
		})
	}
}

func mustBlob(t *testing.T, s *layer.Store, l *layer.Layer, compression string) *layer.Blob {
	t.Helper()
	b, err := s.Blob(context.Background(), l, compression)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
