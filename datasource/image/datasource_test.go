package image

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"

	catalogdb "github.com/strata-build/packer-plugin-strata/catalog"
)

func digest(c string) string { return "sha256:" + strings.Repeat(c, 64) }

// setup makes a catalog in a store: base-os 1.0.0 (tag lts) and 1.0.1 with
// files on disk, dev -> 1.0.1, production -> 1.0.0, and 1.0.2 whose file
// is gone.
func setup(t *testing.T) (store, url string) {
	store = t.TempDir()
	url = "sqlite://" + filepath.Join(store, "catalog.db")
	c, err := catalogdb.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	for i, id := range []string{"1", "2", "3"} {
		f := filepath.Join(store, "rootfs-"+id+".tar")
		os.WriteFile(f, []byte("tar "+id), 0o644)
		v := &catalogdb.Version{Image: "base-os", ImageID: digest(id), Labels: map[string]string{"n": id},
			Layers:    []string{digest("a"), digest(id)},
			Artifacts: []catalogdb.Artifact{{Format: "tar", Path: f, Size: 5, SHA256: strings.Repeat("c", 64)}}}
		if i == 0 {
			v.Tags = []string{"lts"}
		}
		if _, err := c.Register(ctx, v, catalogdb.RegisterOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	c.Promote(ctx, "base-os", "production", "1.0.0", catalogdb.MoveOptions{})
	c.Promote(ctx, "base-os", "dev", "1.0.1", catalogdb.MoveOptions{})
	os.Remove(filepath.Join(store, "rootfs-3.tar"))
	return store, url
}

func execute(t *testing.T, raw map[string]interface{}) (map[string]string, error) {
	t.Helper()
	var d Datasource
	if err := d.Configure(raw); err != nil {
		return nil, err
	}
	v, err := d.Execute()
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for k, x := range v.AsValueMap() {
		if x.Type().FriendlyName() == "string" {
			out[k] = x.AsString()
		}
	}
	out["layers"] = ""
	for _, l := range v.GetAttr("layers").AsValueSlice() {
		out["layers"] += l.AsString() + " "
	}
	out["tar"] = v.GetAttr("artifacts").Index(cty.StringVal("tar")).AsString()
	out["tar_sha256"] = v.GetAttr("artifact_sha256").Index(cty.StringVal("tar")).AsString()
	out["label"] = v.GetAttr("labels").Index(cty.StringVal("n")).AsString()
	return out, nil
}

func TestResolve(t *testing.T) {
	store, url := setup(t)
	base := func(kv ...string) map[string]interface{} {
		m := map[string]interface{}{"catalog": url, "store_dir": store, "name": "base-os"}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for _, c := range []struct {
		raw     map[string]interface{}
		version string
	}{
		{base("channel", "production"), "1.0.0"},
		{base("channel", "dev"), "1.0.1"},
		{base("version", "1.0.1"), "1.0.1"},
		{base("tag", "lts"), "1.0.0"},
	} {
		out, err := execute(t, c.raw)
		if err != nil {
			t.Fatalf("%v: %v", c.raw, err)
		}
		if out["version"] != c.version || out["name"] != "base-os" || out["label"] != out["image_id"][7:8] ||
			!strings.HasPrefix(out["layers"], digest("a")) || !strings.HasSuffix(out["tar"], ".tar") || out["tar_sha256"] != strings.Repeat("c", 64) || out["created"] == "" {
			t.Errorf("%v: %v", c.raw, out)
		}
		if ch := c.raw["channel"]; ch != nil && out["channel"] != ch {
			t.Errorf("channel output %q", out["channel"])
		}
	}

	// The errors say what to do.
	c, _ := catalogdb.Open(url)
	c.Revoke(context.Background(), "base-os", "1.0.1", catalogdb.RevokeOptions{Reason: "broken"})
	c.Close()
	for _, e := range []struct {
		raw  map[string]interface{}
		want []string
	}{
		{base("channel", "dev"), []string{"revoked", "strata rollback base-os dev"}},
		{base("version", "1.0.1"), []string{"revoked (broken)", "strata restore base-os 1.0.1"}},
		{base("channel", "staging"), []string{`channel "staging" of base-os points at no version`, "strata promote base-os staging"}},
		{base("version", "1.0.2"), []string{"content of base-os@1.0.2", "is gone", "pick another version"}},
		{base("version", "9.9.9"), []string{"9.9.9", "strata versions base-os"}},
		{base("tag", "nope"), []string{`no version of base-os is tagged "nope"`}},
		{map[string]interface{}{"catalog": url, "store_dir": store, "name": "ghost", "channel": "dev"}, []string{`image "ghost" is not in the catalog`, "register it first"}},
		{base("channel", "dev", "version", "1.0.0"), []string{"exactly one of channel, version or tag (2 are set)"}},
		{map[string]interface{}{"catalog": url, "channel": "dev"}, []string{"name: required"}},
	} {
		_, err := execute(t, e.raw)
		for _, w := range e.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error %v lacks %q", e.raw, err, w)
			}
		}
	}
}
