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
	u := r.srv.URL + "/repo/dists/stable/InRelease"
	get := func(ims string) *http.Response { return getThrough(t, s, u, ims) }
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

// TestInReleaseSameContentStaysNotModified: a mirror that answers every
// revalidation in full (no ETag, If-Modified-Since ignored) with the same
// InRelease leaves the cache's Last-Modified where it was, so the next
// build's apt, asking with the date its copy carries, gets 304 and keeps
// its lists and binary caches; a changed InRelease is served whole, with a
// newer date.
func TestInReleaseSameContentStaysNotModified(t *testing.T) {
	r := newRepo(t, false, map[string][]byte{"a_1_all.deb": []byte("deb")})
	path := "/repo/dists/stable/InRelease"
	full := 0
	r.special[path] = func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		data := r.files[path]
		full++
		r.mu.Unlock()
		w.Write(data) // always 200, whatever the request's conditions
	}
	dir := t.TempDir()
	u := r.srv.URL + path
	get := func(s *Server, ims string) *http.Response { return getThrough(t, s, u, ims) }
	s1 := start(t, dir, r, Options{})
	first := get(s1, "")
	lm := first.Header.Get("Last-Modified")
	if first.StatusCode != 200 || lm == "" {
		t.Fatalf("first: %d, Last-Modified %q", first.StatusCode, lm)
	}
	s1.Close()
	time.Sleep(1100 * time.Millisecond) // a later second: a new record would carry a later date

	s2 := start(t, dir, r, Options{}) // the next build's cache: it revalidates once
	resp := get(s2, lm)
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("the next build, same InRelease upstream: %d, want 304", resp.StatusCode)
	}
	if got := resp.Header.Get("Last-Modified"); got != lm {
		t.Errorf("Last-Modified moved from %s to %s though the content did not change", lm, got)
	}
	if full != 2 {
		t.Errorf("upstream asked %d times, want 2 (once per build)", full)
	}
	s2.Close()

	r.publish(map[string][]byte{"a_1_all.deb": []byte("deb"), "b_1_all.deb": []byte("new")})
	s3 := start(t, dir, r, Options{})
	resp = get(s3, lm)
	if resp.StatusCode != 200 {
		t.Errorf("a changed InRelease: %d, want 200", resp.StatusCode)
	}
	if got, _ := http.ParseTime(resp.Header.Get("Last-Modified")); !got.After(mustTime(t, lm)) {
		t.Errorf("a changed InRelease's Last-Modified %s is not after %s", resp.Header.Get("Last-Modified"), lm)
	}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := http.ParseTime(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// getThrough asks the cache s for u as apt does, with If-Modified-Since
// when ims is not empty.
func getThrough(t *testing.T, s *Server, u, ims string) *http.Response {
	t.Helper()
	proxy, _ := url.Parse(s.ProxyURL())
	c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxy)}}
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
