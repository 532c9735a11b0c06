package pkgcache

import (
	"net/http"
	"net/url"
	"testing"
	"time"
)

// TestInReleaseNotModified: the InRelease comes with Last-Modified (when
// the cache stored it); asked again with that date, the answer is 304, so
// apt keeps its lists and the caches made from them; asked with an earlier
// date (apt's copy predates the cache's), it is served whole.
func TestInReleaseNotModified(t *testing.T) {
	r := newRepo(t, false, map[string][]byte{"a_1_all.deb": []byte("deb")})
	s := start(t, t.TempDir(), r, Options{})
	proxy, _ := url.Parse(s.ProxyURL())
	c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxy)}}
	u := r.srv.URL + "/repo/dists/stable/InRelease"
	get := func(ims string) *http.Response {
		req, _ := http.NewRequest("GET", u, nil)
		if ims != "" {
			req.Header.Set("If-Modified-Since", ims)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	first := get("")
	lm := first.Header.Get("Last-Modified")
	if first.StatusCode != 200 || lm == "" {
		t.Fatalf("first: %d, Last-Modified %q", first.StatusCode, lm)
	}
	if resp := get(lm); resp.StatusCode != http.StatusNotModified {
		t.Errorf("with its own Last-Modified: %d, want 304", resp.StatusCode)
	}
	when, _ := http.ParseTime(lm)
	if resp := get(when.Add(-time.Hour).Format(http.TimeFormat)); resp.StatusCode != 200 {
		t.Errorf("with an older date: %d, want 200", resp.StatusCode)
	}
}
