package server

import (
	"bytes"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"strings"
	"testing"

	"github.com/strata-build/packer-plugin-strata/catalog"
)

type apiClient struct {
	t    *testing.T
	base string
}

// do makes a request and returns status, headers and body.
func (a apiClient) do(method, path, token, body string, hdr ...string) (int, http.Header, []byte) {
	a.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, a.base+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, b
}

// TestAPI runs every endpoint against both backends: reads, writes with
// tokens (401 without, 403 with the wrong scope), the channel's ETag and
// bad input as a JSON error.
func TestAPI(t *testing.T) {
	for name, newURL := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := fixture(t, newURL(t))
			tok := tokens(t, c)
			var logs bytes.Buffer
			_, ts := start(t, c, Options{Log: log.New(&logs, "", 0)})
			api := apiClient{t, ts.URL}
			testReads(t, api)
			testChannelETag(t, api, tok)
			testWrites(t, api, c, tok)
			testBadInput(t, api, tok)
			for _, s := range tok {
				if strings.Contains(logs.String(), s) || strings.Contains(logs.String(), s[len(catalog.TokenPrefix):]) {
					t.Fatalf("a token's secret is in the log:\n%s", logs.String())
				}
			}
			if !strings.Contains(logs.String(), "POST /v1/images/base-os/channels/production/rollback 200") {
				t.Errorf("the request log lacks the rollback:\n%s", logs.String())
			}
		})
	}
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decoding %s: %v", b, err)
	}
	return v
}

func want(t *testing.T, what string, code, wantCode int, body []byte) {
	t.Helper()
	if code != wantCode {
		t.Fatalf("%s: status %d, want %d: %s", what, code, wantCode, body)
	}
	if code >= 400 {
		var e Error
		if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
			t.Fatalf("%s: error body is not {\"error\": ...}: %s", what, body)
		}
	}
}

func testReads(t *testing.T, api apiClient) {
	code, _, b := api.do("GET", "/v1/images", "", "")
	want(t, "images", code, 200, b)
	if imgs := decode[[]catalog.Image](t, b); len(imgs) != 2 || imgs[0].Name != "app" || imgs[1].Latest != "1.2" {
		t.Fatalf("images: %s", b)
	}
	code, _, b = api.do("GET", "/v1/images/base-os/versions", "", "")
	want(t, "versions", code, 200, b)
	if rows := decode[[]VersionRow](t, b); len(rows) != 3 || rows[1].Channels[0] != "production" {
		t.Fatalf("versions: %s", b)
	}
	code, _, b = api.do("GET", "/v1/images/base-os/versions/1.1", "", "")
	want(t, "show", code, 200, b)
	sh := decode[Shown](t, b)
	if len(sh.Packages) != 3 || len(sh.Layers) != 1 || len(sh.Artifacts) != 1 || len(sh.Evidence) != 1 || sh.Labels["team"] != "infra" || sh.Channels[0] != "production" {
		t.Fatalf("show: %s", b)
	}
	code, _, b = api.do("GET", "/v1/images/base-os/versions/1.1/evidence", "", "")
	want(t, "evidence", code, 200, b)
	if ev := decode[[]catalog.Evidence](t, b); len(ev) != 1 || ev[0].Kind != "tests" {
		t.Fatalf("evidence: %s", b)
	}
	code, _, b = api.do("GET", "/v1/images/base-os/versions/1.0/lineage", "", "")
	want(t, "lineage", code, 200, b)
	l := decode[LineageView](t, b)
	if len(l.Descendants) != 1 || l.Descendants[0].Ref() != "app@1.0" || l.Stale["app@1.0"] == nil || l.Stale["app@1.0"].Ancestor != "base-os@1.0" {
		t.Fatalf("lineage: %s", b)
	}
	code, _, b = api.do("GET", "/v1/images/app/versions/2.0/lineage", "", "")
	want(t, "lineage of a current version", code, 200, b)
	if l := decode[LineageView](t, b); len(l.Ancestors) != 1 || len(l.Stale) != 0 {
		t.Fatalf("lineage app@2.0: %s", b)
	}
	code, _, b = api.do("GET", "/v1/out-of-date", "", "")
	want(t, "out of date", code, 200, b)
	if o := decode[[]catalog.OutOfDate](t, b); len(o) != 1 || o[0].Image != "app" || o[0].Channel != "production" {
		t.Fatalf("out of date: %s", b)
	}
	code, _, b = api.do("GET", "/v1/out-of-date?image=base-os", "", "")
	want(t, "out of date of base-os", code, 200, b)
	if string(bytes.TrimSpace(b)) != "[]" {
		t.Fatalf("out of date of base-os: %s", b)
	}
	code, _, b = api.do("GET", "/v1/images/base-os/channels", "", "")
	want(t, "channels", code, 200, b)
	if chs := decode[[]catalog.Channel](t, b); len(chs) != 2 || chs[0].Name != "production" || chs[0].Version != "1.1" {
		t.Fatalf("channels: %s", b)
	}
	code, _, b = api.do("GET", "/v1/images/base-os/channels/production/history", "", "")
	want(t, "history", code, 200, b)
	if h := decode[[]catalog.ChannelEntry](t, b); len(h) != 2 || h[1].Previous != "1.0" || h[1].Actor != "fixture" {
		t.Fatalf("history: %s", b)
	}
	code, _, b = api.do("GET", "/v1/images/base-os/diff?from=1.0&to=1.1", "", "")
	want(t, "diff", code, 200, b)
	if d := decode[catalog.Diff](t, b); len(d.PackagesAdded) != 1 || d.PackagesAdded[0].Name != "jq" || len(d.PackagesChanged) != 1 {
		t.Fatalf("diff: %s", b)
	}
	code, _, b = api.do("GET", "/v1/images/app/diff?from=1.0&to=base-os@1.0", "", "")
	want(t, "diff across images", code, 200, b)
	code, _, b = api.do("GET", "/v1/images/base-os/policies", "", "")
	want(t, "policies", code, 200, b)
	if p := decode[[]catalog.Policy](t, b); len(p) != 1 || p[0].Require[0] != "tests" {
		t.Fatalf("policies: %s", b)
	}
	code, _, b = api.do("GET", "/v1/openapi.json", "", "")
	want(t, "openapi", code, 200, b)
	// 404s.
	for _, p := range []string{"/v1/images/nope/versions", "/v1/images/base-os/versions/9.9", "/v1/images/base-os/channels/nope", "/v1/images/nope/channels/production", "/v1/images/base-os/diff?from=1.0&to=9.9"} {
		code, _, b = api.do("GET", p, "", "")
		want(t, p, code, 404, b)
	}
}

func testChannelETag(t *testing.T, api apiClient, tok map[string]string) {
	code, h, b := api.do("GET", "/v1/images/base-os/channels/production", "", "")
	want(t, "channel", code, 200, b)
	head := decode[ChannelHead](t, b)
	if head.Version != "1.1" || head.ImageID != digest("base-os1.1") || head.Entry == 0 {
		t.Fatalf("channel head: %s", b)
	}
	etag := h.Get("ETag")
	if !strings.HasPrefix(etag, `"`) || strings.HasPrefix(etag, "W/") {
		t.Fatalf("ETag %q is not a strong tag", etag)
	}
	code, h2, b := api.do("GET", "/v1/images/base-os/channels/production", "", "", "If-None-Match", etag)
	if code != 304 || len(b) != 0 || h2.Get("ETag") != etag {
		t.Fatalf("If-None-Match with the current tag: %d %q %s", code, h2.Get("ETag"), b)
	}
	code, _, _ = api.do("GET", "/v1/images/base-os/channels/production", "", "", "If-None-Match", `"other", `+etag)
	if code != 304 {
		t.Fatalf("a list holding the tag: %d", code)
	}
	code, _, _ = api.do("GET", "/v1/images/base-os/channels/production", "", "", "If-None-Match", `"stale"`)
	if code != 200 {
		t.Fatalf("an old tag: %d", code)
	}
	// Moving the channel changes the tag.
	code, _, b = api.do("POST", "/v1/images/base-os/channels/production/rollback", tok["ci"], `{"reason":"etag"}`)
	want(t, "rollback for the etag", code, 200, b)
	code, h3, b := api.do("GET", "/v1/images/base-os/channels/production", "", "", "If-None-Match", etag)
	if code != 200 || h3.Get("ETag") == etag || decode[ChannelHead](t, b).Version != "1.0" {
		t.Fatalf("after a rollback: %d %s %s", code, h3.Get("ETag"), b)
	}
	code, _, b = api.do("POST", "/v1/images/base-os/channels/production/promote", tok["ci"], `{"version":"1.1","reason":"back"}`)
	want(t, "promote back", code, 200, b)
	code, _, _ = api.do("GET", "/v1/images/base-os/channels/production", "", "", "If-None-Match", etag)
	if code != 200 { // the same version, but a new history entry: a new tag
		t.Fatalf("after promoting back: %d", code)
	}
}

func testWrites(t *testing.T, api apiClient, c *catalog.Catalog, tok map[string]string) {
	type tc struct {
		what, path, token, body string
		code                    int
	}
	for _, x := range []tc{
		{"promote without a token", "/v1/images/base-os/channels/staging/promote", "", `{"version":"1.1"}`, 401},
		{"promote with a bad token", "/v1/images/base-os/channels/staging/promote", "strata_bogus", `{"version":"1.1"}`, 401},
		{"promote with a read token", "/v1/images/base-os/channels/staging/promote", tok["reader"], `{"version":"1.1"}`, 403},
		{"promote another image", "/v1/images/app/channels/production/promote", tok["ci"], `{"version":"2.0"}`, 403},
		{"rollback without scope", "/v1/images/app/channels/production/rollback", tok["appdev"], `{}`, 403},
		{"revoke without scope", "/v1/images/base-os/versions/1.2/revoke", tok["ci"], `{}`, 403},
		{"restore without a token", "/v1/images/app/versions/1.0/restore", "", `{}`, 401},
		{"evidence without a token", "/v1/images/app/versions/1.0/evidence", "", `{"kind":"tests","passed":true}`, 401},
		{"evidence without scope", "/v1/images/app/versions/1.0/evidence", tok["appdev"], `{"kind":"tests","passed":true}`, 403},
		{"revoke with descendants in an image out of scope", "/v1/images/base-os/versions/1.0/revoke", tok["appdev"], `{"descendants":true}`, 403},
		// The policy refuses 1.2 (no tests evidence): 409.
		{"promote refused by the policy", "/v1/images/base-os/channels/production/promote", tok["ci"], `{"version":"1.2"}`, 409},
		{"rollback with nothing to go back to", "/v1/images/base-os/channels/staging/rollback", tok["ci"], `{}`, 409},
	} {
		code, h, b := api.do("POST", x.path, x.token, x.body)
		want(t, x.what, code, x.code, b)
		if code == 401 && h.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", x.what)
		}
	}
	// Allowed writes record the token's name as the actor.
	code, _, b := api.do("POST", "/v1/images/base-os/channels/staging/promote", tok["ci"], `{"version":"1.1","reason":"from the API"}`)
	want(t, "promote", code, 200, b)
	if m := decode[MoveResult](t, b); !m.Changed || m.Actor != "ci" || m.Previous != "1.2" || m.Reason != "from the API" {
		t.Fatalf("promote: %s", b)
	}
	code, _, b = api.do("POST", "/v1/images/base-os/channels/staging/promote", tok["ci"], `{"version":"1.1"}`)
	if want(t, "promote again", code, 200, b); decode[MoveResult](t, b).Changed {
		t.Fatalf("promoting what the channel holds changed it: %s", b)
	}
	code, _, b = api.do("POST", "/v1/images/base-os/channels/staging/rollback", tok["ci"], `{"reason":"bad"}`)
	want(t, "rollback", code, 200, b)
	if r := decode[RollbackResult](t, b); r.Version != "1.2" || r.Actor != "ci" {
		t.Fatalf("rollback: %s", b)
	}
	code, _, b = api.do("POST", "/v1/images/app/versions/2.0/evidence", tok["ci"], `{"kind":"smoke","passed":false,"counts":{"passed":1,"failed":2}}`)
	want(t, "evidence", code, 200, b)
	if e := decode[catalog.Evidence](t, b); e.Actor != "ci" || e.Passed || e.Counts.Failed != 2 || e.ID == 0 {
		t.Fatalf("evidence: %s", b)
	}
	code, _, b = api.do("POST", "/v1/images/app/versions/1.0/revoke", tok["appdev"], `{"reason":"cve"}`)
	want(t, "revoke", code, 200, b)
	if r := decode[RevokeResult](t, b); len(r.Changed) != 1 || len(r.HeldChannels) != 1 || r.HeldChannels[0].Name != "production" || r.Changed[0].RevokedBy != "appdev" {
		t.Fatalf("revoke: %s", b)
	}
	code, _, b = api.do("POST", "/v1/images/app/channels/production/promote", tok["appdev"], `{"version":"1.0"}`)
	want(t, "promote a revoked version", code, 409, b)
	code, _, b = api.do("POST", "/v1/images/app/versions/1.0/restore", tok["appdev"], `{}`)
	want(t, "restore", code, 200, b)
	code, _, b = api.do("POST", "/v1/images/base-os/versions/1.0/revoke", tok["admin"], `{"descendants":true,"reason":"all"}`)
	want(t, "revoke with descendants", code, 200, b)
	if r := decode[RevokeResult](t, b); len(r.Changed) != 2 {
		t.Fatalf("revoke with descendants: %s", b)
	}
	h, err := c.History(ctx, "base-os", "staging")
	if err != nil || h[len(h)-1].Actor != "ci" || h[len(h)-2].Actor != "ci" {
		t.Fatalf("history actors: %+v %v", h, err)
	}
	// A revoked token no longer writes.
	if _, err := c.RevokeToken(ctx, "ci"); err != nil {
		t.Fatal(err)
	}
	code, _, b = api.do("POST", "/v1/images/base-os/channels/staging/promote", tok["ci"], `{"version":"1.1"}`)
	want(t, "a revoked token", code, 401, b)
}

func testBadInput(t *testing.T, api apiClient, tok map[string]string) {
	for _, x := range []struct{ method, path, body string }{
		{"GET", "/v1/images/Bad%20Name/versions", ""},
		{"GET", "/v1/images/base-os/channels/NO/history", ""},
		{"GET", "/v1/images/base-os/versions/a%0Ab", ""},
		{"GET", "/v1/images/base-os/diff?from=1.0", ""},
		{"GET", "/v1/images/base-os/diff?from=1.0&to=BAD@1", ""},
		{"POST", "/v1/images/base-os/channels/staging/promote", `{"version":`},
		{"POST", "/v1/images/base-os/channels/staging/promote", `{"versoin":"1.1"}`},
		{"POST", "/v1/images/base-os/channels/staging/promote", `{}`},
		{"POST", "/v1/images/base-os/channels/staging/promote", `{"version":"1.1","reason":"a\u001b[31m"}`},
		{"POST", "/v1/images/app/versions/2.0/evidence", `{"kind":"Not A Kind","passed":true}`},
		{"POST", "/v1/images/app/versions/2.0/evidence", `{"kind":"x","counts":{"passed":-1}}`},
		{"POST", "/v1/images/app/versions/2.0/evidence", `{"kind":"x","passed":true} {"kind":"y"}`},
		{"GET", "/v1/out-of-date?image=No!", ""},
	} {
		code, _, b := api.do(x.method, x.path, tok["admin"], x.body)
		want(t, x.method+" "+x.path+" "+x.body, code, 400, b)
	}
	code, h, b := api.do("DELETE", "/v1/images/base-os/channels/production", tok["admin"], "")
	if want(t, "DELETE", code, 405, b); !strings.Contains(h.Get("Allow"), "GET") {
		t.Fatalf("405 without Allow: %v", h)
	}
	code, _, b = api.do("GET", "/v1/nothing/here", "", "")
	want(t, "an unknown API path", code, 404, b)
	code, _, b = api.do("POST", "/v1/images/app/versions/2.0/evidence", tok["admin"], `{"kind":"big","report":"`+strings.Repeat("x", 70<<10)+`"}`)
	want(t, "a body over the limit", code, 413, b)
}

// TestReadTokenRequired: with --read-token-required, reads need a read
// scope for the image (401 without a token, 403 with another image's).
func TestReadTokenRequired(t *testing.T) {
	c := fixture(t, backends(t)["sqlite"](t))
	tok := tokens(t, c)
	_, ts := start(t, c, Options{ReadTokenRequired: true})
	api := apiClient{t, ts.URL}
	for _, x := range []struct {
		path, token string
		code        int
	}{
		{"/v1/images", "", 401},
		{"/v1/images", tok["reader"], 200},
		{"/v1/images", tok["appdev"], 403}, // read:app only
		{"/v1/images/app/channels/production", tok["appdev"], 200},
		{"/v1/images/base-os/channels/production", tok["appdev"], 403},
		{"/v1/images/base-os/channels/production", tok["ci"], 403},
		{"/v1/images/base-os/channels/production", tok["admin"], 200},
	} {
		code, _, b := api.do("GET", x.path, x.token, "")
		want(t, x.path, code, x.code, b)
	}
	// The pages send a reader without a token to sign in.
	res, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Get(ts.URL + "/images/app")
	if err != nil || res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/signin") {
		t.Fatalf("page without a token: %v %v", res.StatusCode, err)
	}
}

// TestRateLimit: a client over its rate gets 429 with a JSON error.
func TestRateLimit(t *testing.T) {
	c := fixture(t, backends(t)["sqlite"](t))
	_, ts := start(t, c, Options{Rate: 1, Burst: 3})
	api := apiClient{t, ts.URL}
	codes := map[int]int{}
	for i := 0; i < 6; i++ {
		code, _, b := api.do("GET", "/v1/images", "", "")
		codes[code]++
		if code == 429 {
			want(t, "rate limited", code, 429, b)
		}
	}
	if codes[200] < 3 || codes[429] < 2 {
		t.Fatalf("codes %v", codes)
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{"127.0.0.1:8080": true, "[::1]:80": true, "localhost:1": true, "0.0.0.0:8080": false, ":8080": false, "10.0.0.1:80": false, "example:80": false} {
		if IsLoopback(addr) != want {
			t.Errorf("IsLoopback(%q) = %v", addr, !want)
		}
	}
}
