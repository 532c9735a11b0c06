package image

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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
		{base("channel", "dev"), []string{"revoked", "`strata rollback base-os dev`"}},
		{base("version", "1.0.1"), []string{"revoked (broken)", "`strata restore base-os@1.0.1`"}},
		{base("channel", "staging"), []string{`channel "staging" of base-os points at no version`, "`strata promote base-os@1.0.0 staging`"}},
		{base("version", "1.0.2"), []string{"content of base-os@1.0.2", "is gone", "pick another version"}},
		{base("version", "9.9.9"), []string{"9.9.9", "`strata versions base-os`"}},
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

// TestHintsRun: every command an error tells people to run is one the
// strata CLI takes: each is run with a freshly built strata against the
// catalog the error came from, and then the data source answers.
func TestHintsRun(t *testing.T) {
	strata := filepath.Join(t.TempDir(), "strata")
	if out, err := exec.Command("go", "build", "-o", strata, "../../cmd/strata").CombinedOutput(); err != nil {
		t.Fatalf("building strata: %v\n%s", err, out)
	}
	store, url := setup(t)
	ctx := context.Background()
	c, _ := catalogdb.Open(url)
	// dev held 1.0.0 before 1.0.1, which is revoked; canary held 1.0.0
	// before 1.0.2, whose file is gone.
	gone := filepath.Join(store, "rootfs-3.tar")
	os.WriteFile(gone, []byte("tar 3"), 0o644)
	for _, m := range [][2]string{{"dev", "1.0.0"}, {"dev", "1.0.1"}, {"canary", "1.0.0"}, {"canary", "1.0.2"}} {
		if _, _, err := c.Promote(ctx, "base-os", m[0], m[1], catalogdb.MoveOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	c.Revoke(ctx, "base-os", "1.0.1", catalogdb.RevokeOptions{Reason: "broken"})
	os.Remove(gone)
	c.Close()
	base := func(kv ...string) map[string]interface{} {
		m := map[string]interface{}{"catalog": url, "store_dir": store, "name": "base-os"}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for _, e := range []struct {
		raw  map[string]interface{}
		then string // the version it resolves to after the hint ran, "" when the hint only lists
	}{
		{base("channel", "dev"), "1.0.0"},     // revoked: rollback
		{base("channel", "canary"), "1.0.0"},  // content gone: rollback (past revoked 1.0.1)
		{base("version", "1.0.1"), "1.0.1"},   // revoked: restore
		{base("channel", "staging"), "1.0.1"}, // empty: promote the newest not revoked
		{base("version", "9.9.9"), ""},        // no such version: versions
	} {
		_, err := execute(t, e.raw)
		if err == nil {
			t.Fatalf("%v: no error", e.raw)
		}
		m := regexp.MustCompile("`(strata [^`]*)`").FindStringSubmatch(err.Error())
		if m == nil {
			t.Fatalf("%v: the error gives no command to run: %v", e.raw, err)
		}
		args := append(strings.Fields(m[1])[1:], "--catalog", url, "--store", store)
		cmd := exec.Command(strata, args...)
		cmd.Env = append(os.Environ(), "STRATA_ACTOR=tester")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v: the hint %q fails: %v\n%s", e.raw, m[1], err, out)
		}
		if e.then == "" {
			continue
		}
		out, err := execute(t, e.raw)
		if err != nil || out["version"] != e.then {
			t.Fatalf("%v after %q: version %q, %v; want %s", e.raw, m[1], out["version"], err, e.then)
		}
	}
}

// TestCatalogMustExist: a catalog URL with a typo is an error naming it,
// not an empty catalog; nothing is created.
func TestCatalogMustExist(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "typo")
	_, err := execute(t, map[string]interface{}{"catalog": "sqlite://" + filepath.Join(dir, "catalog.db"), "store_dir": dir, "name": "base-os", "channel": "dev"})
	if err == nil || !strings.Contains(err.Error(), "catalog sqlite://"+filepath.Join(dir, "catalog.db")+" does not exist") {
		t.Fatalf("error %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("the data source made %s: %v", dir, err)
	}
}

// TestOutOfDate: the answer says when the version sits on a replaced base,
// however far up: app on runtime on base-os@1.0.0, once no channel of
// base-os holds 1.0.0.
func TestOutOfDate(t *testing.T) {
	store, url := setup(t)
	ctx := context.Background()
	c, _ := catalogdb.Open(url)
	base, _ := c.Get(ctx, "base-os", "1.0.0")
	rt, err := c.Register(ctx, &catalogdb.Version{Image: "runtime", ImageID: digest("d"), ParentID: base.ImageID}, catalogdb.RegisterOptions{Promote: "stable"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Register(ctx, &catalogdb.Version{Image: "app", ImageID: digest("e"), ParentID: rt.ImageID}, catalogdb.RegisterOptions{Promote: "production"}); err != nil {
		t.Fatal(err)
	}
	c.Close()
	answer := func() (bool, string) {
		t.Helper()
		var d Datasource
		if err := d.Configure(map[string]interface{}{"catalog": url, "store_dir": store, "name": "app", "channel": "production"}); err != nil {
			t.Fatal(err)
		}
		v, err := d.Execute()
		if err != nil {
			t.Fatal(err)
		}
		return v.GetAttr("out_of_date").True(), v.GetAttr("stale_ancestor").AsString()
	}
	if ood, anc := answer(); ood || anc != "" {
		t.Fatalf("app is current, but the answer says out_of_date %v, stale_ancestor %q", ood, anc)
	}
	c, _ = catalogdb.Open(url)
	c.Promote(ctx, "base-os", "production", "1.0.1", catalogdb.MoveOptions{})
	c.Close()
	if ood, anc := answer(); !ood || anc != "base-os@1.0.0" {
		t.Fatalf("app's runtime sits on base-os@1.0.0, which no channel holds: out_of_date %v, stale_ancestor %q", ood, anc)
	}
}
