package catalog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	catalogdb "github.com/strata-build/packer-plugin-strata/catalog"
	"github.com/strata-build/packer-plugin-strata/export"
)

// fakeArtifact answers State as values arrive over the plugin RPC
// connection: maps keyed by interface{}.
type fakeArtifact struct {
	builderID string
	state     map[string]interface{}
	files     []string
}

func (a *fakeArtifact) BuilderId() string             { return a.builderID }
func (a *fakeArtifact) Files() []string               { return a.files }
func (a *fakeArtifact) Id() string                    { return "x" }
func (a *fakeArtifact) String() string                { return "x" }
func (a *fakeArtifact) State(name string) interface{} { return a.state[name] }
func (a *fakeArtifact) Destroy() error                { return nil }
func digest(c string) string                          { return "sha256:" + strings.Repeat(c, 64) }
func rpcMap(m map[string]interface{}) map[interface{}]interface{} {
	out := map[interface{}]interface{}{}
	for k, v := range m {
		if sub, ok := v.(map[string]interface{}); ok {
			v = rpcMap(sub)
		}
		if list, ok := v.([]map[string]interface{}); ok {
			var l []interface{}
			for _, x := range list {
				l = append(l, rpcMap(x))
			}
			v = l
		}
		out[k] = v
	}
	return out
}

// chrootArtifact writes a real output dir and describes it as strata-chroot
// would, after the RPC trip.
func chrootArtifact(t *testing.T, store string) (*fakeArtifact, string) {
	dir := t.TempDir()
	tar := filepath.Join(dir, "rootfs.tar")
	os.WriteFile(tar, []byte("a tar"), 0o644)
	sum, size, _ := export.FileSHA256(tar)
	pkgs := filepath.Join(dir, "packages.tsv")
	os.WriteFile(pkgs, []byte("apt\t2.6.1\tamd64\tapt\t2.6.1\t4096\nbash\t5.2\tamd64\tbash\t5.2\t1024\n"), 0o644)
	pkgSum, pkgSize, _ := export.FileSHA256(pkgs)
	return &fakeArtifact{builderID: chrootBuilderID, state: map[string]interface{}{
		"output_dir": dir,
		stateManifest: rpcMap(map[string]interface{}{
			"schema_version": int64(2), "image_id": digest("1"), "parent_image_id": digest("0"),
			"layers":     []interface{}{rpcMap(map[string]interface{}{"diff_id": digest("a"), "size": uint64(10)}), rpcMap(map[string]interface{}{"diff_id": digest("b"), "size": int8(1)})},
			"build_name": "base",
			"outputs":    []interface{}{rpcMap(map[string]interface{}{"format": "tar", "path": tar, "size": size, "sha256": sum})},
			"packages":   "packages.tsv",
			"files":      []interface{}{rpcMap(map[string]interface{}{"name": "packages.tsv", "size": pkgSize, "sha256": pkgSum})},
		}),
		stateBuild:       rpcMap(map[string]interface{}{"build_name": "base", "packer_run_uuid": "run-7", "template_hash": "sha256:h", "store_dir": store}),
		"generated_data": rpcMap(map[string]interface{}{"ImageID": digest("1")}),
	}}, tar
}

func configure(t *testing.T, raw map[string]interface{}) *PostProcessor {
	t.Helper()
	var p PostProcessor
	if err := p.Configure(raw); err != nil {
		t.Fatal(err)
	}
	return &p
}

func TestRegisterChrootArtifact(t *testing.T) {
	store := t.TempDir()
	url := "sqlite://" + filepath.Join(store, "catalog.db")
	in, tar := chrootArtifact(t, store)
	p := configure(t, map[string]interface{}{
		"catalog": url, "image_name": "base-os", "channels": []string{"dev", "qa"}, "tags": []string{"lts"},
		"labels": map[string]string{"team": "platform"}, "description": "the base", "actor": "ci", "reason": "nightly",
		"packer_build_name": "base",
	})
	out, keep, force, err := p.PostProcess(context.Background(), packersdk.TestUi(t), in)
	if err != nil {
		t.Fatal(err)
	}
	if !keep || force || out.Id() != "base-os@1.0.0" || out.BuilderId() != BuilderID || out.State("image_id") != digest("1") {
		t.Fatalf("artifact %s keep %v force %v", out.Id(), keep, force)
	}
	if gd, _ := out.State("generated_data").(map[string]interface{}); gd["ImageID"] != digest("1") {
		t.Errorf("generated data not passed on: %v", out.State("generated_data"))
	}
	c, err := catalogdb.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	v, err := c.Get(context.Background(), "base-os", "1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	if v.ImageID != digest("1") || v.ParentID != digest("0") || len(v.Layers) != 2 || v.Layers[1] != digest("b") ||
		v.Description != "the base" || v.Labels["team"] != "platform" || v.Tags[0] != "lts" || len(v.Packages) != 2 ||
		v.Build.PackerRunUUID != "run-7" || v.Build.TemplateHash != "sha256:h" || v.Build.BuildName != "base" ||
		len(v.Artifacts) != 1 || v.Artifacts[0].Path != tar {
		t.Fatalf("registered %+v", v)
	}
	for _, ch := range []string{"dev", "qa"} {
		h, err := c.History(context.Background(), "base-os", ch)
		if err != nil || h[0].Actor != "ci" || h[0].Reason != "nightly" || h[0].Version != "1.0.0" {
			t.Errorf("%s: %+v %v", ch, h, err)
		}
	}
	// The same content again: a conflict, nothing written.
	if _, _, _, err := p.PostProcess(context.Background(), packersdk.TestUi(t), in); err == nil || !strings.Contains(err.Error(), "already holds this content") {
		t.Errorf("duplicate content: %v", err)
	}
	// A file changed after the build: refused, nothing registered.
	in2, tar2 := chrootArtifact(t, store)
	in2.state[stateManifest].(map[interface{}]interface{})["image_id"] = digest("2")
	os.WriteFile(tar2, []byte("tampered"), 0o644)
	if _, _, _, err := p.PostProcess(context.Background(), packersdk.TestUi(t), in2); err == nil || !strings.Contains(err.Error(), "rootfs.tar") {
		t.Errorf("a changed output: %v", err)
	}
	// A forged package manifest (the version a fix would have): refused.
	in3, _ := chrootArtifact(t, store)
	in3.state[stateManifest].(map[interface{}]interface{})["image_id"] = digest("3")
	os.WriteFile(filepath.Join(in3.state["output_dir"].(string), "packages.tsv"), []byte("apt\t2.6.1\tamd64\tapt\t2.6.1\t4096\nbash\t9.9\tamd64\tbash\t9.9\t1024\n"), 0o644)
	if _, _, _, err := p.PostProcess(context.Background(), packersdk.TestUi(t), in3); err == nil || !strings.Contains(err.Error(), "packages.tsv") {
		t.Errorf("a forged package manifest: %v", err)
	}
	if vs, _ := c.Versions(context.Background(), "base-os"); len(vs) != 1 {
		t.Errorf("refused registrations left %d versions", len(vs))
	}
}

// Without a catalog option, the catalog is the builder's store's.
func TestDefaultCatalogIsTheBuildersStore(t *testing.T) {
	t.Setenv("STRATA_CATALOG", "")
	store := t.TempDir()
	in, _ := chrootArtifact(t, store)
	p := configure(t, map[string]interface{}{"image_name": "base-os", "version": "7.0.0"})
	if _, _, _, err := p.PostProcess(context.Background(), packersdk.TestUi(t), in); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(store, "catalog.db")); err != nil {
		t.Errorf("no catalog in the builder's store: %v", err)
	}
}

// A builder of another kind that publishes Packer's registry metadata (as
// a map after RPC) is recorded with what it has.
func TestRegisterForeignArtifact(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "disk.qcow2")
	os.WriteFile(f, []byte("qcow"), 0o644)
	in := &fakeArtifact{builderID: "packer.file", files: []string{f}, state: map[string]interface{}{
		"par.artifact.metadata": rpcMap(map[string]interface{}{
			"ImageID": "disk.qcow2", "ProviderName": "file", "ProviderRegion": dir,
			"Labels": map[string]interface{}{"os": "debian"}, "SourceImageID": "upstream.iso",
		}),
	}}
	url := "sqlite://" + filepath.Join(t.TempDir(), "catalog.db")
	p := configure(t, map[string]interface{}{"catalog": url, "image_name": "vm"})
	out, _, _, err := p.PostProcess(context.Background(), packersdk.TestUi(t), in)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := catalogdb.Open(url)
	defer c.Close()
	v, err := c.Get(context.Background(), "vm", "1.0.0")
	if err != nil || out.Id() != "vm@1.0.0" {
		t.Fatal(err)
	}
	if catalogdb.ValidDigest("id", v.ImageID) != nil || v.Labels["external.image_id"] != "disk.qcow2" || v.Labels["external.provider"] != "file" ||
		v.Labels["os"] != "debian" || len(v.Artifacts) != 1 || v.Artifacts[0].Format != "qcow2" || v.ParentID != "" {
		t.Fatalf("foreign registration %+v", v)
	}
	// Without any metadata: an error that says what is accepted.
	bare := &fakeArtifact{builderID: "mitchellh.docker", state: map[string]interface{}{}}
	if _, _, _, err := p.PostProcess(context.Background(), packersdk.TestUi(t), bare); err == nil ||
		!strings.Contains(err.Error(), "strata.chroot") || !strings.Contains(err.Error(), "par.artifact.metadata") || !strings.Contains(err.Error(), "mitchellh.docker") {
		t.Errorf("unknown builder: %v", err)
	}
}

func TestConfigureErrors(t *testing.T) {
	var p PostProcessor
	err := p.Configure(map[string]interface{}{
		"image_name": "Base OS", "catalog": "no-scheme", "version_scheme": "calver", "channels": []string{"dev", "Prod!"},
		"labels": map[string]string{"bad key": "x"}, "version": "1 0", "description": "two\nlines",
		"push": []string{"registry.example:5000/team/base-os:latest"}, "push_compression": "xz",
	})
	if err == nil {
		t.Fatal("bad configuration accepted")
	}
	for _, want := range []string{"image_name", "catalog: \"no-scheme\"", "version_scheme: \"calver\"", "channels[1]", "labels: \"bad key\"", "version \"1 0\"",
		"push[0]", "push_compression: \"xz\""} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	var q PostProcessor
	if err := q.Configure(map[string]interface{}{}); err == nil || !strings.Contains(err.Error(), "image_name: required") {
		t.Errorf("missing image_name: %v", err)
	}
}

// TestSaysWhenItCreatesTheCatalog: the post-processor creates a catalog
// that is not there (it writes), and says so; only the first time.
func TestSaysWhenItCreatesTheCatalog(t *testing.T) {
	store := t.TempDir()
	url := "sqlite://" + filepath.Join(store, "new", "catalog.db")
	for i, want := range []bool{true, false} {
		in, _ := chrootArtifact(t, store)
		p := configure(t, map[string]interface{}{"catalog": url, "image_name": "base-os", "allow_duplicate": true, "packer_build_name": "base"})
		var out bytes.Buffer
		ui := &packersdk.BasicUi{Reader: strings.NewReader(""), Writer: &out, ErrorWriter: &out}
		if _, _, _, err := p.PostProcess(context.Background(), ui, in); err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(out.String(), "Created a new catalog at "+url); got != want {
			t.Fatalf("registration %d: says it created the catalog: %v, want %v\n%s", i+1, got, want, out.String())
		}
	}
}

// withEvidence adds to a chroot artifact's manifest a passed boot check and
// a tests evidence entry (with its report and statement in the directory,
// both in files), as strata-chroot and strata-test hand them over.
func withEvidence(t *testing.T, in *fakeArtifact, id string, testsPassed bool) string {
	dir := in.state["output_dir"].(string)
	m := in.state[stateManifest].(map[interface{}]interface{})
	m["image_id"] = id
	report := filepath.Join(dir, "strata-test.json")
	os.WriteFile(report, []byte(`{"checks":[{"name":"nginx","passed":true}]}`), 0o644)
	st := filepath.Join(dir, "strata-test.json.intoto.json")
	os.WriteFile(st, []byte(`{"_type":"https://in-toto.io/Statement/v1"}`), 0o644)
	rsum, rsize, _ := export.FileSHA256(report)
	ssum, ssize, _ := export.FileSHA256(st)
	files := m["files"].([]interface{})
	m["files"] = append(files,
		rpcMap(map[string]interface{}{"name": "strata-test.json", "size": rsize, "sha256": rsum}),
		rpcMap(map[string]interface{}{"name": "strata-test.json.intoto.json", "size": ssize, "sha256": ssum}))
	m["boot_check"] = rpcMap(map[string]interface{}{"passed": true, "disk": "disk.raw", "accel": "kvm", "boot_time_ms": int64(1850), "total_ms": int64(4000), "expect": "login:"})
	failed := 0
	if !testsPassed {
		failed = 1
	}
	m["evidence"] = []interface{}{rpcMap(map[string]interface{}{
		"kind": "tests", "passed": testsPassed, "time": "2026-03-01T12:00:00Z",
		"counts": rpcMap(map[string]interface{}{"passed": int64(4), "failed": int64(failed), "skipped": int64(1)}),
		"report": "strata-test.json", "report_sha256": rsum, "statement": "strata-test.json.intoto.json",
	})}
	return rsum
}

// Evidence in artifact.json is registered in the registering transaction:
// a channel whose policy requires it moves at once; a channel whose policy
// it does not meet fails the build and registers nothing; failed evidence
// registers the version for inspection and moves no channel.
func TestRegisterEvidence(t *testing.T) {
	store := t.TempDir()
	url := "sqlite://" + filepath.Join(store, "catalog.db")
	c, err := catalogdb.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if _, err := c.SetPolicy(ctx, catalogdb.Policy{Image: "web", Channel: "staging", Require: []string{"bootcheck", "tests"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetPolicy(ctx, catalogdb.Policy{Image: "web", Channel: "production", Require: []string{"tests"}, From: "staging"}); err != nil {
		t.Fatal(err)
	}
	p := configure(t, map[string]interface{}{"catalog": url, "image_name": "web", "channels": []string{"staging"}, "packer_build_name": "web"})

	in, _ := chrootArtifact(t, store)
	rsum := withEvidence(t, in, digest("5"), true)
	dir := in.state["output_dir"].(string)
	if _, _, _, err := p.PostProcess(ctx, packersdk.TestUi(t), in); err != nil {
		t.Fatal(err)
	}
	v, err := c.Get(ctx, "web", "1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Evidence) != 2 {
		t.Fatalf("evidence: %+v", v.Evidence)
	}
	tests, boot := v.Evidence[0], v.Evidence[1]
	if tests.Kind != "tests" || !tests.Passed || tests.Counts != (catalogdb.Counts{Passed: 4, Skipped: 1}) || tests.Source != "post-processor" ||
		tests.Report != filepath.Join(dir, "strata-test.json") || tests.ReportSHA256 != rsum || tests.Statement != filepath.Join(dir, "strata-test.json.intoto.json") ||
		!tests.Time.Equal(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)) {
		t.Fatalf("tests evidence: %+v", tests)
	}
	if boot.Kind != "bootcheck" || !boot.Passed || boot.BootTimeMS != 1850 || boot.Source != "builder" || boot.Statement != filepath.Join(dir, "bootcheck.intoto.json") {
		t.Fatalf("boot check evidence: %+v", boot)
	}
	var st export.Statement
	b, err := os.ReadFile(boot.Statement)
	if err != nil || json.Unmarshal(b, &st) != nil || st.Subject[0].Digest["sha256"] != strings.Repeat("5", 64) || st.Predicate.Result != "PASSED" ||
		st.PredicateType != export.TestResultPredicateType {
		t.Fatalf("boot check statement: %s %v", b, err)
	}
	if ch, err := c.Resolve(ctx, "web", "staging"); err != nil || ch.Version != "1.0.0" {
		t.Fatalf("staging: %+v %v", ch, err)
	}

	// Only a boot check: the staging policy refuses, nothing is registered.
	in2, _ := chrootArtifact(t, store)
	in2.state[stateManifest].(map[interface{}]interface{})["image_id"] = digest("6")
	in2.state[stateManifest].(map[interface{}]interface{})["boot_check"] = rpcMap(map[string]interface{}{"passed": true, "disk": "disk.raw", "boot_time_ms": int64(900)})
	_, _, _, err = p.PostProcess(ctx, packersdk.TestUi(t), in2)
	if err == nil || !strings.Contains(err.Error(), "policy") || !strings.Contains(err.Error(), "no passing tests evidence") || !strings.Contains(err.Error(), "staging") {
		t.Fatalf("a channel its policy refuses: %v", err)
	}
	if vs, _ := c.Versions(ctx, "web"); len(vs) != 1 {
		t.Fatalf("a refused registration left %d versions", len(vs))
	}

	// Failed tests (on_failure = "register"): registered, no channel moved,
	// the build fails, and promotion is refused.
	in3, _ := chrootArtifact(t, store)
	withEvidence(t, in3, digest("7"), false)
	_, _, _, err = p.PostProcess(ctx, packersdk.TestUi(t), in3)
	if err == nil || !strings.Contains(err.Error(), "failed evidence (tests)") || !strings.Contains(err.Error(), "no channel was moved") {
		t.Fatalf("failed evidence: %v", err)
	}
	v3, err := c.Get(ctx, "web", "1.0.1")
	if err != nil || len(v3.Evidence) != 2 || v3.Evidence[0].Passed {
		t.Fatalf("the failed version: %+v %v", v3, err)
	}
	if ch, _ := c.Resolve(ctx, "web", "staging"); ch.Version != "1.0.0" {
		t.Fatalf("failed evidence moved staging to %s", ch.Version)
	}
	if _, _, err := c.Promote(ctx, "web", "staging", "1.0.1", catalogdb.MoveOptions{}); !errors.Is(err, catalogdb.ErrPolicy) {
		t.Fatalf("a version with failed tests was promoted: %v", err)
	}
}
