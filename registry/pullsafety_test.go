package registry

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-build/packer-plugin-strata/layer"
)

// storeEmpty fails when a refused pull left anything in the store.
func storeEmpty(t *testing.T, root string) {
	t.Helper()
	for _, d := range []string{"layers", "images", "blobs"} {
		if ents, _ := os.ReadDir(filepath.Join(root, d)); len(ents) != 0 {
			t.Fatalf("a refused pull left %d entries in %s", len(ents), d)
		}
	}
}

// TestPullRefusesAnotherImageID: a reference that holds another image than
// the one expected (the catalog's image ID) is refused before anything is
// stored.
func TestPullRefusesAnotherImageID(t *testing.T) {
	reg := newRegistry(t)
	a, err := layer.Open(t.TempDir())
	must(t, err)
	base, child := build(t, a)
	o := opts(reg)
	_, err = Push(ctx, a, base, []string{reg.host + "/x/base:1"}, PushOptions{Options: o})
	must(t, err)
	root := t.TempDir()
	b, err := layer.Open(root)
	must(t, err)
	_, err = Pull(ctx, b, reg.host+"/x/base:1", Expect{ImageID: child.ID}, o)
	if err == nil || !strings.Contains(err.Error(), child.ID) || !strings.Contains(err.Error(), base.ID) {
		t.Fatalf("pull of the wrong image: %v", err)
	}
	storeEmpty(t, root)
}
