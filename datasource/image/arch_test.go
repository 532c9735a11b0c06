package image

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	catalogdb "github.com/strata-build/packer-plugin-strata/catalog"
)

// TestArchitecture: a multi-architecture version answers with the image of
// the architecture asked for; one it does not have is refused, naming
// those it has.
func TestArchitecture(t *testing.T) {
	store := t.TempDir()
	url := "sqlite://" + filepath.Join(store, "catalog.db")
	c, err := catalogdb.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []struct{ arch, id string }{{"amd64", "a"}, {"arm64", "b"}} {
		f := filepath.Join(store, "rootfs-"+a.arch+".tar")
		os.WriteFile(f, []byte("tar"), 0o644)
		v := &catalogdb.Version{Image: "multi", Version: "1.0.0", Architecture: a.arch, ImageID: digest(a.id), Layers: []string{digest(a.id)},
			Labels: map[string]string{"n": "1"}, Artifacts: []catalogdb.Artifact{{Format: "tar", Path: f, Size: 3, SHA256: strings.Repeat("c", 64)}}}
		if _, err := c.Register(context.Background(), v, catalogdb.RegisterOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	raw := func(arch string) map[string]interface{} {
		return map[string]interface{}{"catalog": url, "store_dir": store, "name": "multi", "version": "1.0.0", "architecture": arch}
	}
	for arch, id := range map[string]string{"amd64": digest("a"), "arm64": digest("b")} {
		out, err := execute(t, raw(arch))
		if err != nil || out["image_id"] != id || out["architecture"] != arch || !strings.HasSuffix(out["tar"], "rootfs-"+arch+".tar") {
			t.Fatalf("%s: %v %v", arch, out, err)
		}
	}
	_, err = execute(t, raw("riscv64"))
	if err == nil || !strings.Contains(err.Error(), "has no riscv64 image (it has amd64, arm64)") {
		t.Fatal(err)
	}
	var d Datasource
	if err := d.Configure(raw("aarch64")); err == nil || !strings.Contains(err.Error(), `architecture: "aarch64" is not a Debian architecture`) {
		t.Fatal(err)
	}
}
