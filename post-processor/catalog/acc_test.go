package catalog

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	catalogdb "github.com/strata-build/packer-plugin-strata/catalog"
	"github.com/strata-build/packer-plugin-strata/internal/acctest"
)

func TestMain(m *testing.M) { acctest.Main(m) }

// TestAccFileBuilder: strata-catalog after a builder of another kind
// (Packer's file builder) records what its registry metadata says; a
// registration that fails (a version that exists) fails the build and
// writes nothing; keep_input_artifact = false is honoured.
func TestAccFileBuilder(t *testing.T) {
	e := acctest.Setup(t)
	dir := t.TempDir()
	url := "sqlite://" + filepath.Join(dir, "catalog.db")
	fixture, _ := filepath.Abs("test-fixtures/file.pkr.hcl")
	target := filepath.Join(dir, "disk.img")
	vars := map[string]string{"catalog": url, "target": target, "content": "disk one", "version": "1.0.0"}
	r := e.Build(t, dir, fixture, vars)
	if r.Code != 0 || !strings.Contains(r.Out, "Registered disk@1.0.0") {
		t.Fatalf("file builder + strata-catalog: exit %d\n%s", r.Code, r.Out)
	}
	c, err := catalogdb.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	v, err := c.Get(context.Background(), "disk", "1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	if v.Labels["external.provider"] == "" || v.Labels["external.image_id"] != "disk.img" || len(v.Artifacts) != 1 || v.Artifacts[0].Path != target {
		t.Errorf("registered from the file builder: %+v", v)
	}
	// The same version again: the build fails, the catalog is unchanged.
	vars["content"] = "disk two"
	r = e.Build(t, dir, fixture, vars)
	if r.Code == 0 || !strings.Contains(r.Out, "disk@1.0.0 is already registered") {
		t.Errorf("registering an existing version: exit %d\n%s", r.Code, r.Out)
	}
	if vs, _ := c.Versions(context.Background(), "disk"); len(vs) != 1 {
		t.Errorf("a failed registration left %d versions", len(vs))
	}
	// keep_input_artifact = false: Packer removes the file after
	// registering it.
	vars["version"], vars["keep"] = "1.0.1", "false"
	r = e.Build(t, dir, fixture, vars)
	if r.Code != 0 {
		t.Fatalf("keep_input_artifact = false: %s", r.Out)
	}
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Errorf("keep_input_artifact = false kept %s: %v", target, err)
	}
}
