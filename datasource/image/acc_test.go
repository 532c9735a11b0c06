package image

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	catalogdb "github.com/strata-build/packer-plugin-strata/catalog"
	"github.com/strata-build/packer-plugin-strata/internal/acctest"
)

// TestMain: without it every run left its plugin directory in /tmp.
func TestMain(m *testing.M) { acctest.Main(m) }

// TestAccResolveByVersionAndTag asks the data source through the real
// bin/packer (examples/testdata/resolve.pkr.hcl, a null build that writes
// the data source's whole answer as JSON): by version, by tag (the newest
// unrevoked version with it), by channel for comparison, and a tag whose
// only versions are revoked fails saying so.
func TestAccResolveByVersionAndTag(t *testing.T) {
	e := acctest.Setup(t)
	store, url := setup(t) // base-os 1.0.0 (lts), 1.0.1, 1.0.2 (content gone)
	template, err := filepath.Abs("../../examples/testdata/resolve.pkr.hcl")
	if err != nil {
		t.Fatal(err)
	}
	type answer struct {
		ImageID   string            `json:"image_id"`
		Version   string            `json:"version"`
		Channel   string            `json:"channel"`
		Layers    []string          `json:"layers"`
		Labels    map[string]string `json:"labels"`
		Artifacts map[string]string `json:"artifacts"`
	}
	resolve := func(kv ...string) (*answer, string) {
		t.Helper()
		out := filepath.Join(t.TempDir(), "answer.json")
		vars := map[string]string{"catalog": url, "store_dir": store, "name": "base-os", "out": out}
		for i := 0; i < len(kv); i += 2 {
			vars[kv[i]] = kv[i+1]
		}
		r := e.Build(t, t.TempDir(), template, vars)
		if r.Code != 0 {
			return nil, r.Out
		}
		var a answer
		b, err := os.ReadFile(out)
		if err == nil {
			err = json.Unmarshal(b, &a)
		}
		if err != nil {
			t.Fatalf("%v: %v\n%s", kv, err, r.Out)
		}
		return &a, r.Out
	}
	want := func(kv []string, version, imageID string) {
		t.Helper()
		a, out := resolve(kv...)
		if a == nil {
			t.Fatalf("strata-image %v failed:\n%s", kv, out)
		}
		if a.Version != version || a.ImageID != imageID || a.Labels["n"] != imageID[7:8] ||
			len(a.Layers) != 2 || a.Layers[1] != imageID || !strings.HasSuffix(a.Artifacts["tar"], "rootfs-"+imageID[7:8]+".tar") {
			t.Errorf("strata-image %v = %+v, want %s (%s)", kv, a, version, imageID)
		}
	}
	want([]string{"version", "1.0.1"}, "1.0.1", digest("2"))
	want([]string{"version", "1.0.0"}, "1.0.0", digest("1"))
	want([]string{"tag", "lts"}, "1.0.0", digest("1"))
	want([]string{"channel", "dev"}, "1.0.1", digest("2"))

	// A newer version with the tag wins; revoked, it no longer does.
	c, err := catalogdb.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	f := filepath.Join(store, "rootfs-4.tar")
	os.WriteFile(f, []byte("tar 4"), 0o644)
	v, err := c.Register(ctx, &catalogdb.Version{Image: "base-os", ImageID: digest("4"), Labels: map[string]string{"n": "4"},
		Layers: []string{digest("a"), digest("4")}, Tags: []string{"lts"},
		Artifacts: []catalogdb.Artifact{{Format: "tar", Path: f, Size: 5, SHA256: strings.Repeat("c", 64)}}}, catalogdb.RegisterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want([]string{"tag", "lts"}, v.Version, digest("4"))
	if _, err := c.Revoke(ctx, "base-os", v.Version, catalogdb.RevokeOptions{Reason: "bad"}); err != nil {
		t.Fatal(err)
	}
	want([]string{"tag", "lts"}, "1.0.0", digest("1"))
	if _, err := c.Revoke(ctx, "base-os", "1.0.0", catalogdb.RevokeOptions{Reason: "bad too"}); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if a, out := resolve("tag", "lts"); a != nil || !strings.Contains(out, `tagged "lts"`) {
		t.Errorf("a tag on revoked versions only resolved to %+v:\n%s", a, out)
	}
}
