package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/strata-build/packer-plugin-strata/export"
	"github.com/strata-build/packer-plugin-strata/internal/hint"
	"github.com/strata-build/packer-plugin-strata/internal/storeroot"
	"github.com/strata-build/packer-plugin-strata/layer"
)

var binary string

// TestMain builds the real strata binary; the tests run it as a user would.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "strata-cli-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "strata")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building strata: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type cli struct {
	t   *testing.T
	url string
}

func (c cli) run(args ...string) (string, string, int) {
	c.t.Helper()
	cmd := exec.Command(binary, append([]string{"--catalog", c.url}, args...)...)
	cmd.Env = append(os.Environ(), "STRATA_ACTOR=tester")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// ok runs a command that must succeed.
func (c cli) ok(args ...string) string {
	c.t.Helper()
	out, errs, code := c.run(args...)
	if code != 0 {
		c.t.Fatalf("strata %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// fails runs a command that must exit with code and say want.
func (c cli) fails(code int, want string, args ...string) {
	c.t.Helper()
	out, errs, got := c.run(args...)
	if got != code || !strings.Contains(errs, want) {
		c.t.Fatalf("strata %s: exit %d (want %d), stderr %q (want %q)\n%s", strings.Join(args, " "), got, code, errs, want, out)
	}
}

// fakeOutput writes an output directory as strata-chroot leaves it.
func fakeOutput(t *testing.T, content string, pkgs string) string {
	dir := t.TempDir()
	f := filepath.Join(dir, "rootfs.tar.zst")
	os.WriteFile(f, []byte(content), 0o644)
	sum, size, _ := export.FileSHA256(f)
	os.WriteFile(filepath.Join(dir, export.PackagesName), []byte(pkgs), 0o644)
	if err := export.WriteManifest(dir, &export.Manifest{ImageID: "sha256:" + strings.Repeat(sum[:1], 64), BuildName: "base",
		Outputs: []export.Output{{Format: "tar.zst", Path: f, Size: size, SHA256: sum}}, Packages: export.PackagesName}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestCLIWalkthrough(t *testing.T) {
	c := cli{t, "sqlite://" + filepath.Join(t.TempDir(), "catalog.db")}
	out1 := fakeOutput(t, "one", "apt\t2.6.1\tamd64\nold\t1\tall\n")
	out2 := fakeOutput(t, "two", "apt\t2.6.2\tamd64\nnew\t1\tall\n")
	if o := c.ok("register", "base", "--from-output", out1, "--label", "suite=bookworm", "--promote", "dev"); !strings.Contains(o, "registered base@1.0.0") || !strings.Contains(o, "dev -> base@1.0.0") {
		t.Fatalf("register: %s", o)
	}
	var v2 struct {
		Version  string `json:"version"`
		ImageID  string `json:"image_id"`
		Packages []struct{ Name string }
	}
	json.Unmarshal([]byte(c.ok("register", "base", "--from-output", out2, "--json")), &v2)
	if v2.Version != "1.0.1" || len(v2.Packages) != 2 {
		t.Fatalf("second register: %+v", v2)
	}
	c.fails(4, "immutable", "register", "base", "--version", "1.0.0", "--image-id", "sha256:"+strings.Repeat("9", 64))
	c.fails(2, "not a sha256 digest", "register", "base", "--image-id", "sha256:x")
	c.fails(4, "already holds this content", "register", "base", "--from-output", out2)

	if o := c.ok("versions", "base"); !strings.Contains(o, "1.0.0") || !strings.Contains(o, "1.0.1") {
		t.Fatalf("versions: %s", o)
	}
	c.ok("promote", "base@1.0.0", "staging", "--reason", "smoke tests passed")
	if o := c.ok("promote", "base", "production", "--from", "staging"); !strings.Contains(o, "production: (none) -> base@1.0.0") {
		t.Fatalf("promote --from: %s", o)
	}
	c.fails(4, "only what staging holds", "promote", "base@1.0.1", "production", "--from", "staging")
	c.ok("promote", "base@1.0.1", "staging")
	c.ok("promote", "base", "production", "--from", "staging")
	if o := c.ok("rollback", "base", "production", "--reason", "regression"); !strings.Contains(o, "base@1.0.1 -> base@1.0.0") {
		t.Fatalf("rollback: %s", o)
	}
	c.fails(4, "nothing to roll back to", "rollback", "base", "production")
	var hist []struct {
		Action, Version, Previous, Actor, Reason string
	}
	json.Unmarshal([]byte(c.ok("history", "base", "production", "--json")), &hist)
	if len(hist) != 3 || hist[2].Action != "rollback" || hist[2].Actor != "tester" || hist[2].Reason != "regression" || hist[2].Previous != "1.0.1" {
		t.Fatalf("history: %+v", hist)
	}
	if o := c.ok("channels", "base"); !strings.Contains(o, "production") || !strings.Contains(o, "staging") {
		t.Fatalf("channels: %s", o)
	}

	// Revocation: a reason is required; a revoked version is refused and shown.
	c.fails(2, "reason", "revoke", "base@1.0.1")
	if o := c.ok("revoke", "base@1.0.1", "--reason", "CVE-2026-1"); !strings.Contains(o, "revoked base@1.0.1") || !strings.Contains(o, "channel staging") {
		t.Fatalf("revoke should warn that staging holds it: %s", o)
	}
	c.fails(4, "revoked", "promote", "base@1.0.1", "dev")
	if o := c.ok("show", "base@1.0.1"); !strings.Contains(o, "Revoked:") || !strings.Contains(o, "CVE-2026-1") {
		t.Fatalf("show: %s", o)
	}
	c.ok("restore", "base@1.0.1")

	// Lineage across images.
	app := c.ok("register", "app", "--image-id", "sha256:"+strings.Repeat("a", 64), "--parent", v2.ImageID, "--json")
	if !strings.Contains(app, `"parent_id"`) {
		t.Fatalf("register with parent: %s", app)
	}
	if o := c.ok("lineage", "app@1.0.0"); !strings.Contains(o, "base@1.0.1") || !strings.Contains(o, "<- this") {
		t.Fatalf("lineage: %s", o)
	}
	c.ok("promote", "app@1.0.0", "production")
	if o := c.ok("lineage", "--out-of-date"); !strings.Contains(o, "every channel head") {
		t.Fatalf("base@1.0.1 is on staging, so app is current: %s", o)
	}
	c.ok("promote", "base@1.0.0", "staging")
	if o := c.ok("lineage", "--out-of-date"); !strings.Contains(o, "app") || !strings.Contains(o, "base@1.0.1") {
		t.Fatalf("app sits on base@1.0.1, which no channel holds now: %s", o)
	}

	if o := strings.Join(strings.Fields(c.ok("diff", "base@1.0.0", "base@1.0.1")), " "); !strings.Contains(o, "+ package new") || !strings.Contains(o, "- package old") || !strings.Contains(o, "apt 2.6.1 -> 2.6.2") {
		t.Fatalf("diff: %s", o)
	}
	if o := c.ok("gc"); !strings.Contains(o, "dry run") {
		t.Fatalf("gc: %s", o)
	}

	// Content that is gone can't be rolled back to.
	c.ok("promote", "base@1.0.1", "production")
	os.Remove(filepath.Join(out1, "rootfs.tar.zst"))
	c.fails(4, "artifacts are gone", "rollback", "base", "production")
}

func TestCLIErrors(t *testing.T) {
	c := cli{t, "sqlite://" + filepath.Join(t.TempDir(), "catalog.db")}
	c.ok("register", "img", "--image-id", "sha256:"+strings.Repeat("b", 64))
	c.fails(3, "not in the catalog", "versions", "nope")
	c.fails(3, "not in the catalog", "show", "nope@1")
	c.fails(2, "is not NAME@VERSION", "show", "nope")
	c.fails(2, "takes", "versions")
	c.fails(2, "unknown command", "frobnicate")
	c.fails(2, "unknown flag", "images", "--nope")
	c.fails(2, "image", "register", "Bad Name", "--image-id", "sha256:"+strings.Repeat("1", 64))
	c.fails(2, "not a strata output directory", "register", "x", "--from-output", t.TempDir())
	c.fails(2, "unknown scheme", "--catalog", "mysql://h/db", "images")
	c.fails(3, "never been assigned", "rollback", "img", "production")
	c.fails(3, "no such version", "promote", "img@9.9.9", "dev")
	c.fails(2, "channel", "promote", "img@1.0.0", "Bad Channel")
}

func TestCLIGCDeletesFiles(t *testing.T) {
	c := cli{t, "sqlite://" + filepath.Join(t.TempDir(), "catalog.db")}
	old := fakeOutput(t, "old", "")
	cur := fakeOutput(t, "current", "")
	c.ok("register", "x", "--from-output", old)
	c.ok("register", "x", "--from-output", cur, "--promote", "production")
	if o := c.ok("gc"); !strings.Contains(o, "dry run: 0 to delete") {
		t.Fatalf("fresh versions must survive the default min-age: %s", o)
	}
	o := strings.Join(strings.Fields(c.ok("gc", "--min-age", "1ns")), " ")
	if !strings.Contains(o, "would delete x@1.0.0") || !strings.Contains(o, "unneeded file") {
		t.Fatalf("dry run: %s", o)
	}
	if _, err := os.Stat(filepath.Join(old, "rootfs.tar.zst")); err != nil {
		t.Fatal("a dry run removed a file")
	}
	o = strings.Join(strings.Fields(c.ok("gc", "--min-age", "1ns", "--apply", "--delete-files")), " ")
	if !strings.Contains(o, "deleted x@1.0.0") || !strings.Contains(o, "removed file") {
		t.Fatalf("gc --apply: %s", o)
	}
	if _, err := os.Stat(filepath.Join(old, "rootfs.tar.zst")); !os.IsNotExist(err) {
		t.Fatal("the collected version's artifact is still there")
	}
	if _, err := os.Stat(filepath.Join(cur, "rootfs.tar.zst")); err != nil {
		t.Fatal("gc removed the artifact of the version production holds")
	}
	c.fails(3, "no such version", "show", "x@1.0.0")
}

// TestCLIRegisterVerifiesOutput: what the catalog records is true: every
// output is checked against artifact.json, and a path may not leave the
// output directory.
func TestCLIRegisterVerifiesOutput(t *testing.T) {
	c := cli{t, "sqlite://" + filepath.Join(t.TempDir(), "catalog.db")}
	dir := fakeOutput(t, "content", "")
	f := filepath.Join(dir, "rootfs.tar.zst")
	os.WriteFile(f, []byte("CONTENT"), 0o644) // same size, other bytes
	c.fails(2, "changed since the build", "register", "x", "--from-output", dir)
	os.WriteFile(f, []byte("content plus"), 0o644)
	c.fails(2, "changed since the build", "register", "x", "--from-output", dir)
	os.WriteFile(f, []byte("content"), 0o644)
	c.ok("register", "x", "--from-output", dir)

	escape := fakeOutput(t, "other", "")
	m, _ := os.ReadFile(filepath.Join(escape, export.ManifestName))
	os.WriteFile(filepath.Join(escape, export.ManifestName), bytes.Replace(m, []byte(`"path": "rootfs.tar.zst"`), []byte(`"path": "../../etc/passwd"`), 1), 0o644)
	c.fails(2, "not a file name inside the directory", "register", "y", "--from-output", escape)
	if o := c.ok("images", "--json"); strings.Contains(o, `"y"`) {
		t.Fatal("a refused registration is visible")
	}
	// The output dir is recorded, so gc knows where it may delete.
	var v struct {
		Build struct {
			OutputDir string `json:"output_dir"`
		} `json:"build"`
	}
	json.Unmarshal([]byte(c.ok("show", "x@1.0.0", "--json")), &v)
	if v.Build.OutputDir != dir {
		t.Fatalf("output dir %q, want %q", v.Build.OutputDir, dir)
	}
}

// TestCLIControlCharacters: control characters are refused on the way in
// and escaped on the way out, so a reason can neither forge table rows nor
// drive the terminal.
func TestCLIControlCharacters(t *testing.T) {
	db := filepath.Join(t.TempDir(), "catalog.db")
	c := cli{t, "sqlite://" + db}
	c.ok("register", "img", "--image-id", "sha256:"+strings.Repeat("1", 64), "--promote", "dev")
	c.fails(2, "control character", "register", "img", "--image-id", "sha256:"+strings.Repeat("2", 64), "--label", "k=v\x1b[31m")
	c.fails(2, "control character", "promote", "img@1.0.0", "prod", "--reason", "ok\n7\t2026-01-01\tpromote\t(none)\t6.6.6\tadmin\tforged")
	c.fails(2, "control character", "promote", "img@1.0.0", "prod", "--actor", "\x1b]0;owned\x07")
	// An entry written before these checks (straight into the database) is
	// printed escaped.
	rawInsert(t, db, `INSERT INTO channel_history (image, channel, version, previous, action, actor, reason, at_ns)
		VALUES ('img', 'dev', '1.0.0', '1.0.0', 'promote', 'old-strata', ?, ?)`, "reason\nwith\x1b[2Jescapes", "now")
	out := c.ok("history", "img", "dev")
	if strings.ContainsAny(out, "\x1b") || strings.Count(out, "\n") != 3 {
		t.Fatalf("history printed raw control characters:\n%q", out)
	}
	if !strings.Contains(out, `reason\nwith\x1b[2Jescapes`) {
		t.Fatalf("the reason is not shown escaped:\n%s", out)
	}
}

// rawInsert runs one SQL statement straight on a SQLite catalog, past the
// catalog's checks.
func rawInsert(t *testing.T, db, sql string, args ...string) {
	t.Helper()
	cmd := exec.Command("go", append([]string{"run", "./testdata/rawinsert", db, sql}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("rawinsert: %v %s", err, out)
	}
}

// TestCLIGCDeletesOnlyWhatItMay: gc --delete-files removes regular files
// inside the store or the output dir the builder recorded, nothing else:
// not a path outside (hand-typed or ../), not a directory tree.
func TestCLIGCDeletesOnlyWhatItMay(t *testing.T) {
	c := cli{t, "sqlite://" + filepath.Join(t.TempDir(), "catalog.db")}
	store := t.TempDir()
	c.ok("register", "keep", "--image-id", "sha256:"+strings.Repeat("f", 64), "--promote", "production")

	outside := filepath.Join(t.TempDir(), "precious.img")
	os.WriteFile(outside, []byte("precious"), 0o644)
	c.ok("--store", store, "register", "x", "--image-id", "sha256:"+strings.Repeat("1", 64), "--artifact", "raw="+outside)

	inStore := filepath.Join(store, "exports", "old.img")
	os.MkdirAll(filepath.Dir(inStore), 0o700)
	os.WriteFile(inStore, []byte("old"), 0o644)
	os.WriteFile(inStore+".sha256", []byte("x  old.img\n"), 0o644)
	c.ok("--store", store, "register", "x", "--image-id", "sha256:"+strings.Repeat("2", 64), "--artifact", "raw="+inStore)

	tree := filepath.Join(store, "exports", "tree")
	os.MkdirAll(filepath.Join(tree, "etc"), 0o755)
	os.WriteFile(filepath.Join(tree, "etc", "f"), []byte("f"), 0o644)
	c.ok("--store", store, "register", "x", "--image-id", "sha256:"+strings.Repeat("3", 64), "--artifact", "dir="+tree)

	built := fakeOutput(t, "built", "")
	// strata-test's evidence in artifact.json: a JSON report and its JUnit
	// XML beside it (an extra file), both in the output dir.
	m, err := export.ReadManifest(built)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"tests.json", "tests.junit.xml"} {
		os.WriteFile(filepath.Join(built, f), []byte("{}"), 0o644)
	}
	m.Evidence = append(m.Evidence, export.Evidence{Kind: "tests", Passed: true, Report: "tests.json", ExtraFiles: []string{"tests.junit.xml"}})
	if err := export.WriteManifest(built, m); err != nil {
		t.Fatal(err)
	}
	c.ok("--store", store, "register", "x", "--from-output", built)
	// Evidence files: a report in the recorded output dir (and the
	// statement written beside it) go with the version; one outside stays.
	report := filepath.Join(built, "junit.xml")
	os.WriteFile(report, []byte("<testsuites/>"), 0o644)
	c.ok("--store", store, "evidence", "add", "x@1.0.3", "--kind", "tests", "--passed", "--report", report)
	outReport := filepath.Join(t.TempDir(), "external.xml")
	os.WriteFile(outReport, []byte("<testsuites/>"), 0o644)
	c.ok("--store", store, "evidence", "add", "x@1.0.3", "--kind", "external", "--passed", "--report", outReport)
	c.ok("--store", store, "register", "x", "--image-id", "sha256:"+strings.Repeat("4", 64), "--promote", "production")

	var res struct {
		RemovedFiles []string          `json:"removed_files"`
		LeftFiles    map[string]string `json:"left_files"`
	}
	out := c.ok("--store", store, "gc", "--min-age", "1ns", "--keep", "0", "--force", "--apply", "--delete-files", "--json")
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if b, err := os.ReadFile(outside); err != nil || string(b) != "precious" {
		t.Fatal("gc deleted a file outside the store and every recorded output dir")
	}
	if _, err := os.Stat(filepath.Join(tree, "etc", "f")); err != nil {
		t.Fatal("gc deleted a directory tree")
	}
	if _, err := os.Stat(outReport); err != nil {
		t.Fatal("gc deleted an evidence report outside the store and every recorded output dir")
	}
	if !strings.Contains(res.LeftFiles[outReport], "outside the store") {
		t.Errorf("the outside report is not reported as left: %+v", res.LeftFiles)
	}
	for _, gone := range []string{inStore, inStore + ".sha256", filepath.Join(built, "rootfs.tar.zst"), filepath.Join(built, "rootfs.tar.zst.sha256"),
		report, report + ".intoto.json", filepath.Join(built, "tests.json"), filepath.Join(built, "tests.junit.xml")} {
		if _, err := os.Stat(gone); !os.IsNotExist(err) {
			t.Errorf("%s should be gone: %v", gone, err)
		}
	}
	if !strings.Contains(res.LeftFiles[outside], "outside the store") || !strings.Contains(res.LeftFiles[tree], "not a regular file") {
		t.Fatalf("left files %+v", res.LeftFiles)
	}
}

// TestCLIJSONSchema: --json output is snake_case, lists are [] and never
// null, and no zero timestamp appears, in every command.
func TestCLIJSONSchema(t *testing.T) {
	c := cli{t, "sqlite://" + filepath.Join(t.TempDir(), "catalog.db")}
	out1 := fakeOutput(t, "one", "apt\t1\tamd64\n")
	out2 := fakeOutput(t, "two", "apt\t2\tamd64\n")
	c.ok("register", "base", "--from-output", out1, "--promote", "dev")
	c.ok("register", "base", "--from-output", out2)
	c.ok("promote", "base@1.0.1", "dev")
	c.ok("register", "app", "--image-id", "sha256:"+strings.Repeat("a", 64), "--parent", "base@1.0.1")
	runs := [][]string{
		{"images"}, {"versions", "base"}, {"show", "base@1.0.0"}, {"channels", "base"}, {"history", "base", "dev"},
		{"diff", "base@1.0.0", "base@1.0.0"}, {"lineage", "base@1.0.0"}, {"lineage", "--out-of-date"},
		{"rollback", "base", "dev"}, {"revoke", "app@1.0.0", "--reason", "x"}, {"restore", "app@1.0.0"},
		{"promote", "base@1.0.0", "dev"}, {"gc"}, {"verify", out1},
	}
	for _, r := range runs {
		o := c.ok(append(r, "--json")...)
		if strings.Contains(o, "null") || strings.Contains(o, "0001-01-01") {
			t.Errorf("strata %s --json prints null or a zero time:\n%s", strings.Join(r, " "), o)
		}
		var v interface{}
		if err := json.Unmarshal([]byte(o), &v); err != nil {
			t.Errorf("strata %s --json is not JSON: %v", strings.Join(r, " "), err)
		}
		checkSnake(t, strings.Join(r, " "), v)
	}
	m, _ := os.ReadFile(filepath.Join(out1, export.ManifestName))
	var mv interface{}
	json.Unmarshal(m, &mv)
	checkSnake(t, "artifact.json", mv)
	if !strings.Contains(string(m), `"schema_version": 2`) {
		t.Errorf("artifact.json has no schema_version:\n%s", m)
	}
}

func checkSnake(t *testing.T, where string, v interface{}) {
	t.Helper()
	switch x := v.(type) {
	case map[string]interface{}:
		for k, e := range x {
			if k != strings.ToLower(k) || strings.Contains(k, "-") {
				if where != "gc" || !strings.Contains(k, "@") { // gc's kept map is keyed by NAME@VERSION
					t.Errorf("%s: key %q is not snake_case", where, k)
				}
			}
			checkSnake(t, where, e)
		}
	case []interface{}:
		for _, e := range x {
			checkSnake(t, where, e)
		}
	}
}

func TestCLIParentAndVerify(t *testing.T) {
	c := cli{t, "sqlite://" + filepath.Join(t.TempDir(), "catalog.db")}
	c.ok("register", "base", "--image-id", "sha256:abcdefabcdef"+strings.Repeat("1", 52))
	c.ok("register", "base", "--image-id", "sha256:abcdefabcdef"+strings.Repeat("2", 52))
	c.fails(2, "ambiguous", "register", "app", "--image-id", "sha256:"+strings.Repeat("a", 64), "--parent", "sha256:abcdefabcdef")
	if o := c.ok("register", "app", "--image-id", "sha256:"+strings.Repeat("a", 64), "--parent", "abcdefabcdef2", "--json"); !strings.Contains(o, strings.Repeat("2", 52)) {
		t.Fatalf("prefix parent: %s", o)
	}
	_, errs, code := c.run("register", "app", "--image-id", "sha256:"+strings.Repeat("b", 64), "--parent", "sha256:"+strings.Repeat("e", 64))
	if code != 0 || !strings.Contains(errs, "from outside") {
		t.Fatalf("an outside parent: %d %s", code, errs)
	}
	dir := fakeOutput(t, "verified", "")
	if o := c.ok("verify", dir); !strings.Contains(o, "every output matches") {
		t.Fatalf("verify: %s", o)
	}
	os.WriteFile(filepath.Join(dir, "rootfs.tar.zst"), []byte("VERIFIED"), 0o644)
	c.fails(1, "changed since the build", "verify", dir)
}

// TestCLIForgedPackageManifest: artifact.json records the sha256 of the
// package manifest; a forged one (the version a fix would have) fails
// strata verify and register --from-output registers nothing, and so does
// an artifact.json stripped back to schema 1 to hide it.
func TestCLIForgedPackageManifest(t *testing.T) {
	c := cli{t, "sqlite://" + filepath.Join(t.TempDir(), "catalog.db")}
	dir := fakeOutput(t, "forged", "openssl\t3.0.11-1~deb12u2\tamd64\n")
	c.ok("verify", dir)
	os.WriteFile(filepath.Join(dir, export.PackagesName), []byte("openssl\t3.9.9-fixed\tamd64\n"), 0o644)
	c.fails(1, "packages.tsv", "verify", dir)
	c.fails(2, "packages.tsv", "register", "base", "--from-output", dir)

	b, _ := os.ReadFile(filepath.Join(dir, export.ManifestName))
	var m map[string]interface{}
	json.Unmarshal(b, &m)
	m["schema_version"] = 1
	delete(m, "files")
	b, _ = json.Marshal(m)
	os.WriteFile(filepath.Join(dir, export.ManifestName), b, 0o644)
	c.fails(1, "records no sha256", "verify", dir)
	c.fails(2, "records no sha256", "register", "base", "--from-output", dir)
	c.fails(3, "does not exist", "versions", "base") // nothing was registered, not even a catalog made
}

// TestCLIVerifyLayers: strata verify --layers re-reads every layer of the
// store against its diffID; a file changed in a stored layer fails it (exit
// 1) naming the layer.
func TestCLIVerifyLayers(t *testing.T) {
	c := cli{t, "sqlite://" + filepath.Join(t.TempDir(), "catalog.db")}
	root := t.TempDir()
	s, err := layer.Open(storeroot.Layout{Root: root}.Layers())
	if err != nil {
		t.Fatal(err)
	}
	tree := filepath.Join(t.TempDir(), "tree")
	os.MkdirAll(filepath.Join(tree, "etc"), 0o755)
	os.WriteFile(filepath.Join(tree, "etc", "passwd"), []byte("root:x:0:0"), 0o644)
	l, _, release, err := s.Commit(context.Background(), tree, layer.CommitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	release()
	_, _, release, err = s.PutImage(layer.ImageSpec{Layer: l, Created: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	release()
	if o := c.ok("--store", root, "verify", "--layers"); !strings.Contains(o, "1 layer(s) and 1 image(s) checked, 0 damaged") {
		t.Fatalf("verify --layers: %s", o)
	}
	c.fails(2, "takes an output directory, --layers or both", "verify")
	os.WriteFile(filepath.Join(l.Dir, "etc", "passwd"), []byte("evil:x:0:0"), 0o644)
	c.fails(1, l.DiffID, "--store", root, "verify", "--layers")
}

// TestCLIMissingCatalog: a catalog URL or STRATA_HOME that names no catalog
// is an error naming it (exit 3) for every command that reads or moves,
// which creates nothing; register creates the catalog and says so.
func TestCLIMissingCatalog(t *testing.T) {
	home := filepath.Join(t.TempDir(), "typo")
	url := "sqlite://" + filepath.Join(home, "catalog.db")
	c := cli{t, url}
	want := "catalog " + url + " does not exist"
	for _, r := range [][]string{
		{"images"}, {"versions", "base"}, {"show", "base@1.0.0"}, {"channels", "base"}, {"history", "base", "dev"},
		{"lineage", "base@1.0.0"}, {"lineage", "--out-of-date"}, {"diff", "base@1.0.0", "base@1.0.1"}, {"gc"},
		{"promote", "base@1.0.0", "dev"}, {"rollback", "base", "dev"}, {"revoke", "base@1.0.0", "--reason", "x"}, {"restore", "base@1.0.0"},
	} {
		c.fails(3, want, r...)
	}
	// STRATA_HOME names the store, and so the catalog in it.
	cmd := exec.Command(binary, "versions", "base")
	cmd.Env = append(os.Environ(), "STRATA_HOME="+home, "STRATA_CATALOG=")
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 || !strings.Contains(string(out), want) {
		t.Fatalf("STRATA_HOME=%s strata versions base: %v\n%s", home, err, out)
	}
	if _, err := os.Stat(home); !os.IsNotExist(err) {
		t.Fatalf("reading a catalog that does not exist made %s: %v", home, err)
	}
	_, errs, code := c.run("register", "base", "--image-id", "sha256:"+strings.Repeat("1", 64))
	if code != 0 || !strings.Contains(errs, "created a new catalog at "+url) {
		t.Fatalf("register in a new catalog: exit %d, stderr %q", code, errs)
	}
	_, errs, _ = c.run("register", "base", "--image-id", "sha256:"+strings.Repeat("2", 64))
	if strings.Contains(errs, "created") {
		t.Fatalf("the second register says it created the catalog: %q", errs)
	}
	c.ok("versions", "base")
}

// TestCLIUsage: strata alone, and a NAME@VERSION that can't be one, are
// usage errors (2), not success or "not found".
func TestCLIUsage(t *testing.T) {
	c := cli{t, "sqlite://" + filepath.Join(t.TempDir(), "catalog.db")}
	c.ok("register", "img", "--image-id", "sha256:"+strings.Repeat("1", 64), "--promote", "dev")
	cmd := exec.Command(binary)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Run(); err == nil || cmd.ProcessState.ExitCode() != 2 || !strings.Contains(errb.String(), "Usage:") {
		t.Fatalf("strata without arguments: %v\n%s", err, errb.String())
	}
	_, errs, code := c.run("promte", "img@1.0.0", "dev")
	if code != 2 || strings.Count(errs, "\n") != 1 || !strings.Contains(errs, `unknown command "promte" for "strata"; did you mean promote?`) {
		t.Fatalf("a mistyped command: exit %d, stderr %q", code, errs)
	}
	for _, r := range [][]string{
		{"show", "Img@1.0.0"}, {"show", "img@1.0.0@x"}, {"show", "img@-1"}, {"show", "img@1 0"}, {"show", "@1.0.0"},
		{"lineage", "BAD@1"}, {"promote", "img@1.0.0/x", "dev"}, {"diff", "img@1.0.0", "img@a;b"},
		{"revoke", "img@1.0.0\x1b", "--reason", "x"}, {"restore", "im g@1.0.0"},
		{"versions", "Img"}, {"channels", "img/x"}, {"rollback", "img", "Dev"}, {"history", "img", "d ev"},
	} {
		c.fails(2, "", r...)
	}
}

// TestCLIJSONErrors: under --json an error is a JSON object on stdout with
// the exit code, the message and the hint, whatever failed.
func TestCLIJSONErrors(t *testing.T) {
	c := cli{t, "sqlite://" + filepath.Join(t.TempDir(), "catalog.db")}
	missing := cli{t, "sqlite://" + filepath.Join(t.TempDir(), "none", "catalog.db")}
	c.ok("register", "img", "--image-id", "sha256:"+strings.Repeat("1", 64), "--promote", "dev")
	c.ok("revoke", "img@1.0.0", "--reason", "bad")
	c.ok("register", "other", "--image-id", "sha256:"+strings.Repeat("2", 64), "--promote", "dev")
	c.ok("promote", "other@1.0.0", "staging")
	for _, e := range []struct {
		c    cli
		args []string
		code int
		msg  string
		hint string // "" none, else what it starts with
	}{
		{c, []string{"versions", "nope", "--json"}, 3, "not in the catalog", "strata images"},
		{c, []string{"show", "img@9.9.9", "--json"}, 3, "no such version", "strata versions img"},
		{c, []string{"rollback", "img", "qa", "--json"}, 3, "never been assigned", "strata channels img"},
		{c, []string{"rollback", "other", "staging", "--json"}, 4, "nothing to roll back to", "strata history other staging"},
		{c, []string{"--json", "show", "img"}, 2, "is not NAME@VERSION", ""},
		{c, []string{"promote", "img@1.0.0", "prod", "--json"}, 4, "revoked", "strata versions img"},
		{c, []string{"--json", "frobnicate"}, 2, "unknown command", ""},
		{c, []string{"images", "--nope", "--json"}, 2, "unknown flag", ""},
		{c, []string{"--json"}, 2, "no command given", ""},
		{c, []string{"gc", "--min-age", "-1h", "--apply", "--json"}, 2, "can't be negative", ""},
		{missing, []string{"images", "--json"}, 3, "does not exist", "build and register an image first"},
	} {
		out, _, code := e.c.run(e.args...)
		var v struct {
			Code    *int    `json:"code"`
			Message *string `json:"message"`
			Hint    *string `json:"hint"`
		}
		if err := json.Unmarshal([]byte(out), &v); err != nil || v.Code == nil || v.Message == nil || v.Hint == nil {
			t.Errorf("strata %s: stdout is not a JSON error: %v\n%s", strings.Join(e.args, " "), err, out)
			continue
		}
		if code != e.code || *v.Code != code || !strings.Contains(*v.Message, e.msg) || !strings.HasPrefix(*v.Hint, e.hint) || (e.hint == "") != (*v.Hint == "") {
			t.Errorf("strata %s: exit %d, code %d, message %q, hint %q (want code %d, %q, hint %q)", strings.Join(e.args, " "), code, *v.Code, *v.Message, *v.Hint, e.code, e.msg, e.hint)
		}
		// A hint that is a command works as written.
		if f := strings.Fields(*v.Hint); len(f) > 0 && f[0] == "strata" {
			c.ok(f[1:]...)
		}
	}
	if out, _, _ := c.run("versions", "nope"); strings.TrimSpace(out) != "" {
		t.Errorf("without --json an error prints nothing on stdout: %q", out)
	}
}

// TestCLISafetyWindows: a window that keeps things from deletion can't be
// negative, and zero means zero only with --force.
func TestCLISafetyWindows(t *testing.T) {
	c := cli{t, "sqlite://" + filepath.Join(t.TempDir(), "catalog.db")}
	c.ok("register", "x", "--image-id", "sha256:"+strings.Repeat("1", 64))
	c.ok("register", "x", "--image-id", "sha256:"+strings.Repeat("2", 64), "--promote", "production")
	c.fails(2, "can't be negative", "gc", "--min-age", "-1h", "--apply")
	c.fails(2, "can't be negative", "gc", "--min-age", "-1h")
	c.fails(2, "can't be negative", "gc", "--keep", "-1", "--apply")
	c.fails(2, "add --force", "gc", "--min-age", "0s", "--apply")
	c.fails(2, "add --force", "gc", "--keep", "0", "--apply")
	if o := c.ok("gc", "--min-age", "0s"); !strings.Contains(o, "would delete\tx@1.0.0") && !strings.Contains(strings.Join(strings.Fields(o), " "), "would delete x@1.0.0") {
		t.Fatalf("a dry run with --min-age 0 shows what zero would collect (a fresh version): %s", o)
	}
	c.ok("show", "x@1.0.0")
	if o := strings.Join(strings.Fields(c.ok("gc", "--min-age", "0s", "--apply", "--force")), " "); !strings.Contains(o, "deleted x@1.0.0") {
		t.Fatalf("--min-age 0 --force collects a fresh version: %s", o)
	}
	cache := t.TempDir()
	c.fails(2, "required", "cache", "--dir", cache, "prune")
	c.fails(2, "can't be negative", "cache", "--dir", cache, "prune", "--unused-for", "-1h")
	c.fails(2, "add --force", "cache", "--dir", cache, "prune", "--unused-for", "0")
}

// TestCLIEscapesCatalogValues: any catalog string (a version, a channel, a
// parent) written into the database past the catalog's checks is printed
// escaped in every table and message.
func TestCLIEscapesCatalogValues(t *testing.T) {
	db := filepath.Join(t.TempDir(), "catalog.db")
	c := cli{t, "sqlite://" + db}
	c.ok("register", "img", "--image-id", "sha256:"+strings.Repeat("1", 64), "--promote", "dev")
	c.ok("register", "app", "--image-id", "sha256:"+strings.Repeat("a", 64), "--parent", "img@1.0.0", "--promote", "production")
	evil := "6.6.6\n7.7.7\t\x1b[2J\x1b]0;owned\x07"
	rawInsert(t, db, `INSERT INTO versions (image, version, seq, image_id, parent_id, created_ns) VALUES ('img', ?, 9, ?, '', 1)`,
		evil, "sha256:"+strings.Repeat("9", 64))
	rawInsert(t, db, `INSERT INTO channel_history (image, channel, version, previous, action, actor, reason, at_ns)
		VALUES ('img', ?, '1.0.0', '', 'promote', 'x', '', ?)`, "ch\x1b[31m\nforged", "now")
	rawInsert(t, db, `INSERT INTO channel_history (image, channel, version, previous, action, actor, reason, at_ns)
		VALUES ('img', 'dev', ?, '1.0.0', 'promote', 'x', '', ?)`, evil, "now")
	// app@1.0.0's parent is another such version, on no channel: lineage
	// and --out-of-date name it.
	rawInsert(t, db, `INSERT INTO versions (image, version, seq, image_id, parent_id, created_ns) VALUES ('img', ?, 10, ?, '', 1)`,
		"9.9.9\x1b[1m", "sha256:"+strings.Repeat("8", 64))
	rawInsert(t, db, `UPDATE versions SET parent_id = ? WHERE image = 'app'`, "sha256:"+strings.Repeat("8", 64))
	for _, r := range [][]string{
		{"versions", "img"}, {"show", "img@1.0.0"}, {"channels", "img"}, {"history", "img", "dev"},
		{"lineage", "app@1.0.0"}, {"lineage", "--out-of-date"}, {"gc", "--min-age", "1ns"}, {"images"},
	} {
		out := c.ok(r...)
		if strings.ContainsAny(out, "\x1b\x07") || strings.Contains(out, "\n7.7.7") || strings.Contains(out, "\nforged") {
			t.Errorf("strata %s printed raw control characters:\n%q", strings.Join(r, " "), out)
		}
		if !strings.Contains(out, `\x1b`) {
			t.Errorf("strata %s shows no escaped value:\n%s", strings.Join(r, " "), out)
		}
	}
	// A message that quotes a catalog value: promote --from names what the
	// channel holds.
	_, errs, code := c.run("promote", "img@1.0.0", "staging", "--from", "dev")
	if code != 4 || strings.ContainsAny(errs, "\x1b\x07") || strings.Count(errs, "\n") != 1 || !strings.Contains(errs, `6.6.6\n7.7.7`) {
		t.Errorf("an error quoting a catalog value: exit %d\n%q", code, errs)
	}
}

// TestCLIHintsRun: every command line internal/hint writes is one strata
// takes: each is run against a real catalog and must do its work.
func TestCLIHintsRun(t *testing.T) {
	c := cli{t, "sqlite://" + filepath.Join(t.TempDir(), "catalog.db")}
	c.ok("register", "base", "--image-id", "sha256:"+strings.Repeat("1", 64), "--promote", "dev")
	c.ok("register", "base", "--image-id", "sha256:"+strings.Repeat("2", 64), "--promote", "dev")
	o := c.ok("revoke", "base@1.0.1", "--reason", "broken")
	m := regexp.MustCompile(`run: (strata .*)`).FindStringSubmatch(o)
	if m == nil || m[1] != hint.Rollback("base", "dev") {
		t.Fatalf("revoke's warning gives no hint, or another than hint.Rollback: %s", o)
	}
	c.has("channels", "base")("REVOKED: run " + m[1])
	for _, h := range []struct {
		line  string
		check func()
	}{
		{m[1], func() { c.has("channels", "base")("dev", "1.0.0") }},
		{hint.Restore("base", "1.0.1"), func() { c.lacks("versions", "base")("revoked") }},
		{hint.Promote("base", "1.0.1", "staging"), func() { c.has("channels", "base")("staging", "1.0.1") }},
		{hint.Versions("base"), nil},
		{hint.Channels("base"), nil},
		{hint.OutOfDate("base"), nil},
	} {
		f := strings.Fields(h.line)
		if f[0] != "strata" {
			t.Fatalf("hint %q is not a strata command", h.line)
		}
		c.ok(f[1:]...)
		if h.check != nil {
			h.check()
		}
	}
}

// has runs a command that must succeed and returns a check that its
// output holds every string.
func (c cli) has(args ...string) func(...string) {
	out := c.ok(args...)
	return func(want ...string) {
		c.t.Helper()
		for _, w := range want {
			if !strings.Contains(out, w) {
				c.t.Errorf("strata %s lacks %q:\n%s", strings.Join(args, " "), w, out)
			}
		}
	}
}

// lacks is has for strings that must not be there.
func (c cli) lacks(args ...string) func(...string) {
	out := c.ok(args...)
	return func(bad ...string) {
		c.t.Helper()
		for _, b := range bad {
			if strings.Contains(out, b) {
				c.t.Errorf("strata %s has %q:\n%s", strings.Join(args, " "), b, out)
			}
		}
	}
}

// TestCLILineageTransitive: base <- runtime <- app; when base's channel
// moves on, app is out of date too (its runtime sits on the replaced base),
// in the table and the JSON.
func TestCLILineageTransitive(t *testing.T) {
	c := cli{t, "sqlite://" + filepath.Join(t.TempDir(), "catalog.db")}
	c.ok("register", "base", "--image-id", "sha256:"+strings.Repeat("1", 64), "--promote", "production")
	c.ok("register", "runtime", "--image-id", "sha256:"+strings.Repeat("2", 64), "--parent", "base@1.0.0", "--promote", "production")
	c.ok("register", "app", "--image-id", "sha256:"+strings.Repeat("3", 64), "--parent", "runtime@1.0.0", "--promote", "production")
	if o := c.ok("lineage", "--out-of-date"); !strings.Contains(o, "every channel head") {
		t.Fatalf("nothing is out of date yet: %s", o)
	}
	c.ok("register", "base", "--image-id", "sha256:"+strings.Repeat("4", 64), "--promote", "production")
	var ood []struct {
		Image    string   `json:"image"`
		Channel  string   `json:"channel"`
		Version  string   `json:"version"`
		Parent   string   `json:"parent"`
		Ancestor string   `json:"stale_ancestor"`
		Chain    []string `json:"chain"`
		Now      []string `json:"stale_ancestor_channels"`
	}
	if err := json.Unmarshal([]byte(c.ok("lineage", "--out-of-date", "app", "--json")), &ood); err != nil {
		t.Fatal(err)
	}
	if len(ood) != 1 || ood[0].Image != "app" || ood[0].Channel != "production" || ood[0].Parent != "runtime@1.0.0" ||
		ood[0].Ancestor != "base@1.0.0" || strings.Join(ood[0].Chain, " ") != "runtime@1.0.0 base@1.0.0" || strings.Join(ood[0].Now, " ") != "production=1.0.1" {
		t.Fatalf("app sits on runtime@1.0.0 on base@1.0.0, which production no longer holds: %+v", ood)
	}
	o := strings.Join(strings.Fields(c.ok("lineage", "--out-of-date")), " ")
	for _, want := range []string{"app production 1.0.0 runtime@1.0.0 on base@1.0.0 base@1.0.0 production=1.0.1", "runtime production 1.0.0 base@1.0.0 base@1.0.0"} {
		if !strings.Contains(o, want) {
			t.Errorf("strata lineage --out-of-date lacks %q:\n%s", want, o)
		}
	}
}
