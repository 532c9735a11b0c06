package bench

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/strata-build/packer-plugin-strata/export"
	"github.com/strata-build/packer-plugin-strata/layer"
)

// BenchmarkVerifyParentLayer is what a child build pays before it mounts a
// parent layer: the tree (STRATA_BENCH_TREE, the minimized base) committed
// as a layer, then re-read as its OCI layer tar against its diffID.
func BenchmarkVerifyParentLayer(b *testing.B) {
	tree := benchTree(b)
	store, err := layer.Open(filepath.Join(b.TempDir(), "layers"))
	if err != nil {
		b.Fatal(err)
	}
	copied := filepath.Join(store.Root(), "in")
	if out, err := exec.Command("cp", "-a", tree, copied).CombinedOutput(); err != nil {
		b.Fatalf("cp -a: %v\n%s", err, out)
	}
	l, _, release, err := store.Commit(context.Background(), copied, layer.CommitOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer release()
	b.SetBytes(l.Size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := store.VerifyLayer(context.Background(), l); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTreeDigest is what a dir output's digest costs at export and at
// strata verify: one read of the tree, every file whole.
func BenchmarkTreeDigest(b *testing.B) {
	tree := benchTree(b)
	for i := 0; i < b.N; i++ {
		if _, err := export.TreeDigest(context.Background(), tree); err != nil {
			b.Fatal(err)
		}
	}
}
