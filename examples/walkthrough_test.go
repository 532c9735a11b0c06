package examples_test

// The walk-through of examples/README.md, end to end through bin/packer:
// the shell commands of the README's code blocks, extracted from it and run
// as printed (in a copy of examples/, packer and strata on PATH, the store
// and catalog from the environment as a user's shell would have them):
// build base-os and register it on dev, build app on the base dev holds,
// promote both dev -> staging -> production with promote.sh, publish a new
// base, see the app out of date, roll production back, revoke the bad
// base; the strata-image data source's answers, the channels' targets and
// histories (actor, reason) and the lineage are checked at each step. Once
// with the catalog on SQLite, once on a throwaway PostgreSQL server.

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/strata-build/packer-plugin-strata/catalog/postgres/pgtest"
	"github.com/strata-build/packer-plugin-strata/internal/acctest"
)

func TestMain(m *testing.M) { acctest.Main(m) }

// The two walk-throughs share nothing (each has its own store, catalog,
// checkout and Packer environment), so they run side by side: each spends
// much of its time waiting on builds that keep one core at most busy.
func TestWalkthroughSQLite(t *testing.T) {
	t.Parallel()
	e := acctest.Setup(t)
	store := filepath.Join(acctest.Scratch(t), "store")
	walkthrough(t, e, store, "sqlite://"+filepath.Join(store, "catalog.db"))
}

func TestWalkthroughPostgres(t *testing.T) {
	t.Parallel()
	e := acctest.Setup(t)
	srv, err := pgtest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop() })
	url, err := srv.URL("walkthrough")
	if err != nil {
		t.Fatal(err)
	}
	walkthrough(t, e, filepath.Join(acctest.Scratch(t), "store"), url)
}

type walk struct {
	t     *testing.T
	e     *acctest.Env
	store string
	url   string
	dir   string // where packer runs, as a user's checkout
	steps map[int]*step
	env   []string // a user's shell: PATH, Packer's variables, strata's
}

func abs(name string) string {
	p, _ := filepath.Abs(name)
	return p
}

// strata runs the CLI on this walk's catalog and store.
func (w *walk) strata(args ...string) (string, int) {
	w.t.Helper()
	r := w.e.Strata(w.t, []string{"STRATA_CATALOG=" + w.url, "STRATA_HOME=" + w.store}, args...)
	return r.Out, r.Code
}

func (w *walk) strataJSON(v interface{}, args ...string) {
	w.t.Helper()
	out, code := w.strata(append([]string{"--json"}, args...)...)
	if code != 0 {
		w.t.Fatalf("strata %v: exit %d\n%s", args, code, out)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		w.t.Fatalf("strata %v: %v\n%s", args, err, out)
	}
}

// promote runs examples/promote.sh as a CI job would.
func (w *walk) promote(image, from, to, reason string) (string, int) {
	w.t.Helper()
	r := w.e.Shell(w.t, []string{"STRATA=" + w.e.CLI, "STRATA_CATALOG=" + w.url, "STRATA_HOME=" + w.store, "STRATA_ACTOR=release-bot"},
		abs("promote.sh"), image, from, to, reason)
	return r.Out, r.Code
}

type answer struct {
	ImageID   string            `json:"image_id"`
	Version   string            `json:"version"`
	Name      string            `json:"name"`
	Channel   string            `json:"channel"`
	Created   string            `json:"created"`
	Layers    []string          `json:"layers"`
	Labels    map[string]string `json:"labels"`
	Parent    string            `json:"parent_image_id"`
	Artifacts map[string]string `json:"artifacts"`
	SHA256    map[string]string `json:"artifact_sha256"`
}

// resolve asks the data source through packer build; on failure it
// returns the output instead.
func (w *walk) resolve(kv ...string) (*answer, string) {
	w.t.Helper()
	out := filepath.Join(w.t.TempDir(), "answer.json")
	vars := map[string]string{"catalog": w.url, "store_dir": w.store, "out": out}
	for i := 0; i < len(kv); i += 2 {
		vars[kv[i]] = kv[i+1]
	}
	r := w.e.Build(w.t, w.dir, abs("testdata/resolve.pkr.hcl"), vars)
	if r.Code != 0 {
		return nil, r.Out
	}
	b, err := os.ReadFile(out)
	if err != nil {
		w.t.Fatalf("resolve %v: %v\n%s", kv, err, r.Out)
	}
	var a answer
	if err := json.Unmarshal(b, &a); err != nil {
		w.t.Fatalf("resolve %v: %v\n%s", kv, err, b)
	}
	return &a, r.Out
}

func (w *walk) mustResolve(want string, kv ...string) *answer {
	w.t.Helper()
	a, out := w.resolve(kv...)
	if a == nil {
		w.t.Fatalf("strata-image %v failed:\n%s", kv, out)
	}
	if a.Version != want {
		w.t.Fatalf("strata-image %v = %s, want %s", kv, a.Version, want)
	}
	return a
}

func (w *walk) mustFail(wants []string, kv ...string) {
	w.t.Helper()
	a, out := w.resolve(kv...)
	if a != nil {
		w.t.Fatalf("strata-image %v answered %s, want an error", kv, a.Version)
	}
	for _, s := range wants {
		if !strings.Contains(out, s) {
			w.t.Errorf("strata-image %v: the error lacks %q:\n%s", kv, s, out)
		}
	}
}

type channel struct {
	Name    string `json:"channel"`
	Version string `json:"version"`
}

func (w *walk) channels(image string) map[string]string {
	var cs []channel
	w.strataJSON(&cs, "channels", image)
	out := map[string]string{}
	for _, c := range cs {
		out[c.Name] = c.Version
	}
	return out
}

type entry struct {
	Version string `json:"version"`
	Action  string `json:"action"`
	Actor   string `json:"actor"`
	Reason  string `json:"reason"`
}

func (w *walk) last(image, ch string) entry {
	var h []entry
	w.strataJSON(&h, "history", image, ch)
	return h[len(h)-1]
}

func manifestID(t *testing.T, dir string) string {
	var m struct {
		ImageID string `json:"image_id"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "artifact.json"))
	if err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(b, &m)
	return m.ImageID
}

// step is one numbered section of examples/README.md: its shell code
// blocks, and the other code blocks (what the commands print).
type step struct {
	shell  []string
	output []string
}

// readmeSteps reads the numbered sections ("## 3. Promote ...") of
// examples/README.md and their code blocks.
func readmeSteps(t *testing.T) map[int]*step {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	steps := map[int]*step{}
	var cur *step
	var block []string
	lang, inBlock := "", false
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case inBlock && line == "```":
			if cur != nil {
				text := strings.Join(block, "\n")
				if lang == "shell" {
					cur.shell = append(cur.shell, text)
				} else {
					cur.output = append(cur.output, text)
				}
			}
			inBlock, block = false, nil
		case inBlock:
			block = append(block, line)
		case strings.HasPrefix(line, "```"):
			inBlock, lang = true, strings.TrimPrefix(line, "```")
		case strings.HasPrefix(line, "## "):
			cur = nil
			if n, err := strconv.Atoi(strings.SplitN(strings.TrimPrefix(line, "## "), ".", 2)[0]); err == nil {
				cur = &step{}
				steps[n] = cur
			}
		}
	}
	for n := 1; n <= 6; n++ {
		if steps[n] == nil || len(steps[n].shell) == 0 {
			t.Fatalf("examples/README.md has no step %d with a shell block", n)
		}
	}
	return steps
}

// sh runs a README code block as a user's shell would: bash, stopping at
// the first failing command.
func (w *walk) sh(block string) (string, int) {
	w.t.Helper()
	cmd := exec.Command("bash", "-e", "-c", block)
	cmd.Dir = w.dir
	cmd.Env = append(os.Environ(), w.env...)
	out, err := cmd.CombinedOutput()
	code := 0
	if err != nil {
		code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
	}
	return string(out), code
}

// run runs every shell block of step n, failing the test on an error.
func (w *walk) run(n int) string {
	w.t.Helper()
	var all strings.Builder
	for _, block := range w.steps[n].shell {
		out, code := w.sh(block)
		all.WriteString(out)
		acctest.AssertClean(w.t, w.store)
		if code != 0 {
			w.t.Fatalf("README step %d:\n%s\nexit %d:\n%s", n, block, code, out)
		}
	}
	return all.String()
}

// fields is s's lines, each as its words joined by one space.
func fields(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if f := strings.Join(strings.Fields(l), " "); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// printed fails unless every line of the README's output block appears in
// out (spacing aside).
func (w *walk) printed(n int, block string, out string) {
	w.t.Helper()
	have := strings.Join(fields(out), "\n")
	for _, l := range fields(block) {
		if !strings.Contains(have, l) {
			w.t.Errorf("README step %d prints %q, but the commands printed:\n%s", n, l, out)
		}
	}
}

// setupUser makes w.dir a copy of examples/ and the environment of a user
// who installed packer and strata: both on PATH, the store, catalog and
// package cache given as Packer variables and strata's environment.
func (w *walk) setupUser() {
	w.t.Helper()
	for _, f := range []string{"base.pkr.hcl", "app.pkr.hcl", "promote.sh"} {
		b, err := os.ReadFile(f)
		if err != nil {
			w.t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(w.dir, f), b, 0o755); err != nil {
			w.t.Fatal(err)
		}
	}
	bin := w.t.TempDir()
	for name, target := range map[string]string{"packer": w.e.Packer, "strata": w.e.CLI} {
		if err := os.Symlink(target, filepath.Join(bin, name)); err != nil {
			w.t.Fatal(err)
		}
	}
	w.env = []string{
		"PATH=" + bin + ":" + os.Getenv("PATH"),
		"PACKER_PLUGIN_PATH=" + w.e.PluginDir, "CHECKPOINT_DISABLE=1",
		"PKR_VAR_store_dir=" + w.store, "PKR_VAR_catalog=" + w.url, "PKR_VAR_package_cache_dir=" + w.e.CacheDir,
		"STRATA_HOME=" + w.store, "STRATA_CATALOG=" + w.url,
	}
}

func walkthrough(t *testing.T, e *acctest.Env, store, url string) {
	w := &walk{t: t, e: e, store: store, url: url, dir: t.TempDir(), steps: readmeSteps(t)}
	w.setupUser()

	// The examples validate (syntax alone needs no catalog).
	for _, tpl := range []string{"base.pkr.hcl", "app.pkr.hcl"} {
		if r := e.PackerRun(t, w.dir, "validate", "-syntax-only", abs(tpl)); r.Code != 0 {
			t.Fatalf("packer validate -syntax-only %s:\n%s", tpl, r.Out)
		}
	}
	// Before anything is registered there is no catalog, and the app cannot
	// find its base (the data source creates nothing).
	w.mustFail([]string{"does not exist; build and register an image first"}, "name", "base-os", "channel", "dev")

	// 1. The base, registered on dev.
	out := w.run(1)
	if !strings.Contains(out, "Registered base-os@1.0.0") || !strings.Contains(out, "dev -> base-os@1.0.0") {
		t.Errorf("base build log:\n%s", out)
	}
	base1 := manifestID(t, filepath.Join(w.dir, "output-base-os-1"))
	if !strings.Contains(out, "base-os image "+base1+" in "+filepath.Join(w.dir, "output-base-os-1")) {
		t.Errorf("build.ImageID and build.OutputDir did not reach the shell-local post-processor:\n%s", out)
	}
	a := w.mustResolve("1.0.0", "name", "base-os", "channel", "dev")
	if a.ImageID != base1 || a.Channel != "dev" || len(a.Layers) != 1 || a.Labels["release"] != "1" || a.SHA256["tar.zst"] == "" || a.Artifacts["tar.zst"] == "" || a.Created == "" {
		t.Errorf("strata-image base-os dev: %+v (artifact %s)", a, base1)
	}
	if h := w.last("base-os", "dev"); !strings.HasPrefix(h.Actor, "packer:") || h.Reason != "registered by packer build base-os" {
		t.Errorf("dev history: %+v", h)
	}
	if r := e.PackerRun(t, w.dir, "validate", "-var", "catalog="+url, "-var", "store_dir="+store, abs("app.pkr.hcl")); r.Code != 0 {
		t.Errorf("packer validate app.pkr.hcl with base-os on dev:\n%s", r.Out)
	}

	// 2. The app, on the base dev holds: one layer on the base's.
	out = w.run(2)
	if !strings.Contains(out, "Registered app@1.0.0") || !strings.Contains(out, "parent "+base1) ||
		!strings.Contains(out, "PASSED: 2 passed, 0 failed") || !strings.Contains(out, "Evidence tests: passed") {
		t.Errorf("app build log:\n%s", out)
	}
	if !strings.Contains(out, "base-os@1.0.0") {
		t.Errorf("strata lineage app@1.0.0 does not name the base:\n%s", out)
	}
	app := w.mustResolve("1.0.0", "name", "app", "channel", "dev")
	if app.Parent != base1 || len(app.Layers) != 2 || app.Layers[0] != a.Layers[0] || app.Labels["base_version"] != "1.0.0" || app.Artifacts["oci"] == "" {
		t.Errorf("strata-image app dev: %+v", app)
	}
	var lin struct {
		Ancestors []struct {
			Image   string `json:"image"`
			Version string `json:"version"`
		} `json:"ancestors"`
	}
	w.strataJSON(&lin, "lineage", "app@1.0.0")
	if len(lin.Ancestors) != 1 || lin.Ancestors[0].Image != "base-os" || lin.Ancestors[0].Version != "1.0.0" {
		t.Errorf("lineage of app@1.0.0: %+v", lin)
	}

	// 3. Promotion jobs: dev -> staging -> production, both images.
	out = w.run(3)
	for _, img := range []string{"base-os", "app"} {
		if ch := w.channels(img); ch["dev"] != "1.0.0" || ch["staging"] != "1.0.0" || ch["production"] != "1.0.0" {
			t.Errorf("%s channels %v", img, ch)
		}
	}
	if h := w.last("base-os", "production"); h.Actor != "release-bot" || h.Reason != "tests passed on staging" || h.Action != "promote" {
		t.Errorf("base-os production history: %+v", h)
	}
	if !strings.Contains(out, "release-bot") || !strings.Contains(out, "tests passed on staging") {
		t.Errorf("strata history base-os production does not show who and why:\n%s", out)
	}
	// The policy refused the untested base-os@1.0.0, and took it once the
	// CI recorded its tests; the app carried strata-test's evidence.
	if !strings.Contains(out, "refused: exit 4") || !strings.Contains(out, "tests") {
		t.Errorf("the policy did not refuse the untested base-os@1.0.0:\n%s", out)
	}
	var shown struct {
		Evidence []struct {
			Kind   string `json:"kind"`
			Passed bool   `json:"passed"`
			Source string `json:"source"`
		} `json:"evidence"`
	}
	w.strataJSON(&shown, "show", "app@1.0.0")
	if len(shown.Evidence) != 1 || shown.Evidence[0].Kind != "tests" || !shown.Evidence[0].Passed {
		t.Errorf("app@1.0.0's evidence: %+v", shown.Evidence)
	}
	if out, code := w.promote("base-os", "canary", "production", "x"); code != 3 {
		t.Errorf("promote.sh from an empty channel: exit %d, want 3\n%s", code, out)
	}

	// 4. A new base, promoted all the way: the app is out of date, as the
	// README prints it.
	out = w.run(4)
	w.printed(4, w.steps[4].output[0], out)
	base2 := manifestID(t, filepath.Join(w.dir, "output-base-os-2"))
	if base2 == base1 {
		t.Error("release 2 is the same image as release 1")
	}
	if a := w.mustResolve("1.0.1", "name", "base-os", "channel", "production"); a.ImageID != base2 || a.Labels["release"] != "2" {
		t.Errorf("production after release 2: %+v", a)
	}
	var ood []struct {
		Image   string `json:"image"`
		Channel string `json:"channel"`
		Version string `json:"version"`
		Parent  string `json:"parent"`
	}
	w.strataJSON(&ood, "lineage", "--out-of-date", "app")
	if len(ood) != 3 || ood[0].Image != "app" || ood[0].Version != "1.0.0" || ood[0].Parent != "base-os@1.0.0" {
		t.Errorf("out of date after base-os moved: %+v", ood)
	}

	// 5. Release 2 is bad: roll production back.
	w.run(5)
	w.mustResolve("1.0.0", "name", "base-os", "channel", "production")
	if h := w.last("base-os", "production"); h.Action != "rollback" || h.Reason != "release 2 breaks nginx" || h.Version != "1.0.0" {
		t.Errorf("production history after the rollback: %+v", h)
	}
	w.strataJSON(&ood, "lineage", "--out-of-date", "app")
	if len(ood) != 0 {
		t.Errorf("out of date after the rollback (base-os@1.0.0 is on production again): %+v", ood)
	}

	// 6. Revoke it: no build can pick it any more.
	w.run(6)
	w.mustFail([]string{"base-os@1.0.1 is revoked (breaks nginx)", "`strata restore base-os@1.0.1`"}, "name", "base-os", "version", "1.0.1")
	w.mustFail([]string{"revoked", "`strata rollback base-os dev`"}, "name", "base-os", "channel", "dev")
	// The README's next commands, as it prints them: the app build on dev
	// stops at the data source, before any mount, with the printed error;
	// promote.sh exits 4.
	out, code := w.sh("packer build app.pkr.hcl")
	acctest.AssertClean(t, store)
	if code == 0 {
		t.Errorf("app on a revoked base built:\n%s", out)
	}
	w.printed(6, w.steps[6].output[0], out)
	if out, code := w.sh("./promote.sh base-os dev staging"); code != 4 {
		t.Errorf("promote.sh of a revoked version: exit %d, want 4\n%s", code, out)
	}

	// 7. The other errors, through packer build.
	w.mustFail([]string{`channel "canary" of base-os points at no version`, "`strata promote base-os@", " canary`"}, "name", "base-os", "channel", "canary")
	w.mustFail([]string{`image "ghost" is not in the catalog`}, "name", "ghost", "channel", "production")
	w.mustFail([]string{`no version of base-os is tagged "lts"`}, "name", "base-os", "tag", "lts")
}
