package server

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/strata-build/packer-plugin-strata/catalog"
)

// TestBrowser drives Debian's chromium headless through the web pages:
// the image page's timeline, a rollback refused without a token (403),
// sign-in, a rollback of production with reason and confirmation, and the
// page and `strata history` agreeing. Screenshots of the three main pages
// go to $STRATA_SCREENSHOTS (or a temp dir), path logged.
func TestBrowser(t *testing.T) {
	chromium := os.Getenv("STRATA_CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("%s: %v (make test-deps installs Debian's chromium)", chromium, err)
	}
	shots := os.Getenv("STRATA_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	url := "sqlite://" + filepath.Join(t.TempDir(), "catalog.db")
	c := fixture(t, url)
	tok := tokens(t, c)
	_, ts := start(t, c, Options{})

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox,
		chromedp.Flag("headless", "new"), chromedp.WindowSize(1200, 1000), chromedp.UserDataDir(t.TempDir()),
		// Chromium's singleton socket dir goes to TMPDIR and stays when the
		// browser is stopped: one /tmp/org.chromium.Chromium.* per make test.
		chromedp.Env("TMPDIR="+t.TempDir()))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	bctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	bctx, cancel = context.WithTimeout(bctx, 60*time.Second)
	defer cancel()
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	// A form's submit navigates: a node found in the page being left can be
	// gone by the time its text is read ("No node with given id"). Read it
	// again from the new page then.
	text := func(sel string) string {
		t.Helper()
		var v string
		var err error
		for try := 0; try < 5; try++ {
			if v, err = chromedp.Run(bctx, chromedp.Text(chromedp.CSS(sel))); err == nil || !strings.Contains(err.Error(), "No node with given id") {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return v
	}
	html := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(bctx, chromedp.OuterHTML(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("html of %s: %v", sel, err)
		}
		return v
	}
	shot := func(name string) {
		t.Helper()
		b, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(shots, name+".png"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The forms ask confirm(); the test says yes.
	yes := func() chromedp.Action[chromedp.Void] {
		return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
			_, err := chromedp.Evaluate[bool]("(window.confirm = () => true, true)")(ctx, tg)
			return chromedp.Void{}, err
		}
	}
	rollback := func(reason string) {
		t.Helper()
		do("rollback "+reason, yes(),
			chromedp.SetValue(chromedp.CSS(`#channel-production form.move input[name=reason]`), reason),
			chromedp.Click(chromedp.CSS(`#channel-production form.move input[name=confirm]`)),
			chromedp.Click(chromedp.CSS(`#channel-production button.rollback`)))
	}

	do("image page", chromedp.Navigate(ts.URL+"/images/base-os"))
	timeline := text("#channel-production ol.timeline")
	shot("image")
	if !strings.Contains(timeline, "promote") || !strings.Contains(timeline, "1.0 → 1.1") || !strings.Contains(timeline, "by fixture") {
		t.Fatalf("the production timeline: %q", timeline)
	}
	// Without a token the rollback form is refused: 403.
	rollback("no token")
	if e := text("#error"); !strings.HasPrefix(e, "403") {
		t.Fatalf("rollback without a token: %q", e)
	}
	// Sign in with the ci token and roll production back.
	do("sign in", chromedp.Navigate(ts.URL+"/signin?next=/images/base-os"),
		chromedp.SendKeys(chromedp.CSS("#token"), tok["ci"]),
		chromedp.Click(chromedp.CSS("#signin-button")))
	if who := text("#signed-in"); who != "ci" {
		t.Fatalf("signed in as %q", who)
	}
	rollback("bad kernel")
	done, head := text("#done"), text("#channel-production h3 a.head")
	timeline = text("#channel-production ol.timeline")
	shot("image-after-rollback")
	if !strings.Contains(done, "rollback of production") || head != "1.0" || !strings.Contains(timeline, "bad kernel") || !strings.Contains(timeline, "by ci") {
		t.Fatalf("after the rollback: done %q head %q timeline %q", done, head, timeline)
	}
	// strata history says the same.
	cli := filepath.Join(t.TempDir(), "strata")
	if out, err := exec.Command("go", "build", "-o", cli, "../cmd/strata").CombinedOutput(); err != nil {
		t.Fatalf("building strata: %v\n%s", err, out)
	}
	out, err := exec.Command(cli, "--catalog", url, "--json", "history", "base-os", "production").Output()
	if err != nil {
		t.Fatalf("strata history: %v", err)
	}
	var h []catalog.ChannelEntry
	if err := json.Unmarshal(out, &h); err != nil {
		t.Fatal(err)
	}
	last := h[len(h)-1]
	if last.Action != catalog.ActionRollback || last.Version != "1.0" || last.Actor != "ci" || last.Reason != "bad kernel" {
		t.Fatalf("strata history's last entry: %+v", last)
	}
	do("version page", chromedp.Navigate(ts.URL+"/images/base-os/versions/1.1"))
	versionPage := text("main")
	shot("version")
	for _, w := range []string{"jq", "the previous version on production", "tests", "infra", "sha256:"} {
		if !strings.Contains(versionPage, w) {
			t.Errorf("the version page lacks %q", w)
		}
	}
	do("lineage page", chromedp.Navigate(ts.URL+"/images/base-os/versions/1.0/lineage"))
	svg := html("#lineage")
	if !strings.Contains(svg, "app@1.0") || strings.Contains(svg, "out of date") {
		// base-os 1.0 is back on production: app@1.0 is current again.
		t.Errorf("the lineage SVG: %s", svg)
	}
	do("lineage page of 1.1", chromedp.Navigate(ts.URL+"/images/base-os/versions/1.1/lineage"))
	shot("lineage")
	if svg := html("#lineage"); !strings.Contains(svg, "app@2.0") || !strings.Contains(svg, "stale") {
		// 1.1 is on no channel now: app@2.0 sits on it.
		t.Errorf("the lineage SVG of 1.1 does not mark app@2.0 out of date: %s", svg)
	}
	t.Logf("screenshots in %s", shots)
}
