package server

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

type browser struct {
	t      *testing.T
	base   string
	client *http.Client
}

func newBrowser(t *testing.T, base string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t, base, &http.Client{Jar: jar}}
}

func (b *browser) get(path string) (int, string) {
	b.t.Helper()
	res, err := b.client.Get(b.base + path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(body)
}

func (b *browser) post(path string, form url.Values, hdr ...string) (int, string) {
	b.t.Helper()
	req, _ := http.NewRequest("POST", b.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(body)
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (b *browser) csrf(page string) string {
	b.t.Helper()
	_, body := b.get(page)
	m := csrfRe.FindStringSubmatch(body)
	if m == nil {
		b.t.Fatalf("no csrf field on %s", page)
	}
	return m[1]
}

// TestPages: every page renders, bad names and unknown images are errors,
// forms need the CSRF value, a confirmation and a token with the scope,
// and free text from the catalog is escaped.
func TestPages(t *testing.T) {
	c := fixture(t, backends(t)["sqlite"](t))
	tok := tokens(t, c)
	_, ts := start(t, c, Options{})
	b := newBrowser(t, ts.URL)
	for path, want := range map[string]string{
		"/":                                    "base-os",
		"/images/base-os":                      "Policy: passing evidence of tests",
		"/images/base-os/versions/1.1":         "the previous version on production",
		"/images/base-os/versions/1.0":         "nothing to compare with",
		"/images/app/versions/2.0":             "registered before it",
		"/images/base-os/versions/1.0/lineage": "<svg",
		"/images/app/versions/1.0/lineage":     "out of date",
		"/signin":                              "strata token create",
		"/style.css":                           "timeline",
		"/confirm.js":                          "confirm",
	} {
		code, body := b.get(path)
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("GET %s: %d, want 200 with %q", path, code, want)
		}
	}
	for path, want := range map[string]int{"/images/nope": 404, "/images/Bad%20Name": 400, "/images/base-os/versions/9": 404, "/nothing": 404} {
		if code, _ := b.get(path); code != want {
			t.Errorf("GET %s: %d, want %d", path, code, want)
		}
	}
	csrf := b.csrf("/images/base-os")
	form := func(kv ...string) url.Values {
		v := url.Values{"csrf": {csrf}, "confirm": {"yes"}, "reason": {`<script>alert(1)</script>`}}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				v.Del(kv[i])
			} else {
				v.Set(kv[i], kv[i+1])
			}
		}
		return v
	}
	const rb = "/images/base-os/channels/production/rollback"
	for _, x := range []struct {
		what string
		form url.Values
		hdr  []string
		code int
	}{
		{"no csrf", form("csrf", "", "token", tok["ci"]), nil, 403},
		{"a wrong csrf", form("csrf", "x", "token", tok["ci"]), nil, 403},
		{"another origin", form("token", tok["ci"]), []string{"Origin", "http://evil.example"}, 403},
		{"no token", form(), nil, 403},
		{"a bad token", form("token", "strata_nope"), nil, 403},
		{"a token without the scope", form("token", tok["appdev"]), nil, 403},
		{"no confirmation", form("token", tok["ci"], "confirm", ""), nil, 400},
	} {
		if code, body := b.post(rb, x.form, x.hdr...); code != x.code {
			t.Errorf("%s: %d, want %d: %s", x.what, code, x.code, body)
		}
	}
	h, _ := c.History(ctx, "base-os", "production")
	if len(h) != 2 {
		t.Fatalf("a refused form moved the channel: %+v", h)
	}
	// A token in the form field works without signing in.
	code, body := b.post(rb, form("token", tok["ci"]))
	if code != 200 || !strings.Contains(body, "Done: rollback of production") {
		t.Fatalf("rollback with a token in the form: %d %s", code, body)
	}
	if strings.Contains(body, "<script>alert(1)</script>") || !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Fatal("the reason is not escaped on the image page")
	}
	// Sign in: the cookie is HttpOnly and SameSite=Strict; then promote.
	req, _ := http.NewRequest("POST", ts.URL+"/signin", strings.NewReader(url.Values{"csrf": {csrf}, "token": {tok["ci"]}, "next": {"//evil.example/"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, ck := range b.client.Jar.Cookies(req.URL) {
		req.AddCookie(ck)
	}
	res, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	set := res.Header.Get("Set-Cookie")
	if res.StatusCode != 303 || res.Header.Get("Location") != "/" || !strings.Contains(set, "HttpOnly") || !strings.Contains(set, "SameSite=Strict") {
		t.Fatalf("sign-in: %d %q %q", res.StatusCode, res.Header.Get("Location"), set)
	}
	if code, body := b.post("/signin", url.Values{"csrf": {csrf}, "token": {tok["ci"]}, "next": {"/images/base-os"}}); code != 200 || !strings.Contains(body, `id="signed-in">ci<`) {
		t.Fatalf("signed in: %d", code)
	}
	if code, body := b.post("/images/base-os/channels/production/promote", form("version", "1.1")); code != 200 || !strings.Contains(body, "Done: promote of production") {
		t.Fatalf("promote signed in: %d %s", code, body)
	}
	if code, body := b.post("/images/base-os/channels/production/promote", form("version", "1.2")); code != 409 || !strings.Contains(body, "tests") {
		t.Fatalf("a promotion the policy refuses: %d %s", code, body)
	}
	h, _ = c.History(ctx, "base-os", "production")
	if last := h[len(h)-1]; last.Actor != "ci" || last.Version != "1.1" || last.Reason != `<script>alert(1)</script>` {
		t.Fatalf("history: %+v", last)
	}
	if code, _ := b.post("/signout", url.Values{"csrf": {csrf}}); code != 200 {
		t.Fatalf("sign out: %d", code)
	}
	if _, body := b.get("/images/base-os"); strings.Contains(body, `id="signed-in"`) {
		t.Fatal("still signed in after signing out")
	}
	// The pages' headers.
	res, err = http.Get(ts.URL + "/images/base-os")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || res.Header.Get("X-Frame-Options") != "DENY" {
		t.Fatalf("headers: %v", res.Header)
	}
}
