package pkgcache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"strings"
	"sync/atomic"
	"time"
)

// get returns the blob of u, from the cache or fetched (once across every
// build on the host, unless another build's download of it takes longer
// than limits.lockWait) and checked against exp.
func (s *Server) get(ctx context.Context, u string, exp expected) (string, error) {
	if s.store.Has(exp.SHA256) {
		s.count(func(st *Stats) { st.Hits++ })
		return exp.SHA256, nil
	}
	unlock, _, err := s.store.LockWait(exp.SHA256, s.limits.lockWait)
	if err != nil {
		return "", err
	}
	defer unlock()
	if s.store.Has(exp.SHA256) {
		s.count(func(st *Stats) { st.Hits++ })
		return exp.SHA256, nil
	}
	if s.opt.Offline {
		return "", fmt.Errorf("%w: %s (sha256 %s) is not in the package cache", errOffline, u, exp.SHA256)
	}
	resp, err := s.fetch(ctx, u, nil)
	if err != nil {
		return "", err
	}
	defer resp.Close()
	if resp.StatusCode != http.StatusOK {
		return "", &statusError{code: resp.StatusCode}
	}
	hex, n, err := s.store.Put(resp, exp.SHA256, exp.Size)
	s.count(func(st *Stats) { st.Upstream += n })
	if err != nil {
		return "", fmt.Errorf("%s: %w", u, resp.explain(err))
	}
	s.count(func(st *Stats) { st.Misses++ })
	return hex, nil
}

// errOffline is a fetch refused because the cache serves only what it holds.
var errOffline = errors.New("offline")

// statusError is an HTTP status apt gets with the error: upstream's
// answer, or the cache's own refusal.
type statusError struct {
	code int
	msg  string
}

func (e *statusError) Error() string {
	if e.msg != "" {
		return e.msg
	}
	return fmt.Sprintf("upstream answered %d", e.code)
}

// upstream is a response whose body is cut off when upstream sends
// nothing for limits.idle or the whole fetch takes longer than
// limits.total, with an error naming the URL.
type upstream struct {
	*http.Response
	u      string
	lim    limits
	ctx    context.Context
	cancel context.CancelFunc
	idle   *time.Timer
	idled  atomic.Bool
}

func (b *upstream) Read(p []byte) (int, error) {
	n, err := b.Body.Read(p)
	if n > 0 {
		b.idle.Reset(b.lim.idle)
	}
	if err != nil && err != io.EOF {
		err = b.explain(err)
	}
	return n, err
}

func (b *upstream) Close() error {
	b.idle.Stop()
	err := b.Body.Close()
	b.cancel()
	return err
}

// explain names a cut-off for what it is.
func (b *upstream) explain(err error) error {
	switch {
	case b.idled.Load():
		return fmt.Errorf("%s: upstream sent nothing for %s: cut off", b.u, b.lim.idle)
	case errors.Is(b.ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("%s: not done after %s: cut off", b.u, b.lim.total)
	}
	return err
}

func (s *Server) fetch(ctx context.Context, u string, header http.Header) (*upstream, error) {
	ctx, cancel := context.WithTimeout(ctx, s.limits.total)
	b := &upstream{u: u, lim: s.limits, ctx: ctx, cancel: cancel}
	b.idle = time.AfterFunc(s.limits.idle, func() { b.idled.Store(true); cancel() })
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		b.idle.Stop()
		cancel()
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := s.client.Do(req)
	if err != nil {
		err = b.explain(err)
		b.idle.Stop()
		cancel()
		return nil, err
	}
	b.Response = resp
	b.idle.Reset(s.limits.idle)
	return b, nil
}

// release serves an InRelease: pinned by the snapshot, else revalidated
// upstream once per build (a conditional GET), else the cached copy when
// upstream does not answer or the cache is offline. Whatever is served
// (but a snapshot's pinned copy) carries a good signature from one of the
// build's keyrings, checked for this build; only such a copy, dated no
// earlier than the one recorded, replaces the record. Its SHA256 list
// tells what every index of the suite must be.
func (s *Server) release(ctx context.Context, u string) ([]byte, int, error) {
	unlock, _, err := s.store.LockWait(urlKey(u), s.limits.lockWait)
	if err != nil {
		return nil, 0, err
	}
	defer unlock()
	s.mu.Lock()
	done, seen := s.releases[u]
	s.mu.Unlock()
	if seen {
		data, err := s.store.readBlob(done)
		return data, http.StatusOK, err
	}
	var hex string
	var data []byte
	if pinned, ok := s.opt.Snapshot[u]; ok {
		if data, err = s.store.readBlob(pinned); err != nil {
			return nil, 0, fmt.Errorf("%w: the snapshot's %s (sha256 %s) is no longer in the package cache", errOffline, u, pinned)
		}
		hex = pinned
	} else {
		rec, have := s.store.lastOf(u)
		var untrusted error
		if have {
			// A copy this build's keyrings do not vouch for is as good as
			// none (and its Date means nothing). One the same keyrings
			// verified when it was stored needs no second gpgv.
			if data, err = s.store.readBlob(rec.SHA256); err == nil && (s.keyringsID == "" || rec.Keyrings != s.keyringsID) {
				err = s.trust(ctx, u, data)
			}
			if err != nil {
				have, untrusted, data = false, err, nil
			}
		}
		switch {
		case s.opt.Offline && have:
			hex = rec.SHA256
		case s.opt.Offline && untrusted != nil:
			return nil, 0, fmt.Errorf("%w: the cached copy of %v", errOffline, untrusted)
		case s.opt.Offline:
			return nil, 0, fmt.Errorf("%w: no copy of %s in the package cache", errOffline, u)
		default:
			var status int
			hex, data, status, err = s.revalidate(ctx, u, rec, have, data)
			if err != nil {
				return nil, 0, err
			}
			if status != http.StatusOK {
				return nil, status, nil
			}
		}
	}
	s.useRelease(u, hex, data, s.releases)
	return data, http.StatusOK, nil
}

// useRelease makes the indexes the InRelease u (blob hex, content data)
// lists servable, and records it in into (releases, or preloaded).
func (s *Server) useRelease(u, hex string, data []byte, into map[string]string) map[string]expected {
	dir := strings.TrimSuffix(u, path.Base(u))
	files := releaseFiles(data)
	s.mu.Lock()
	defer s.mu.Unlock()
	for p, e := range files {
		s.indexes[dir+p] = e
		s.indexes[dir+path.Dir(p)+"/by-hash/SHA256/"+e.SHA256] = e
	}
	into[u] = hex
	s.used[hex] = true
	return files
}

// trust says why an InRelease may not be used by this build, or nil when
// it carries a good signature from one of the build's keyrings.
func (s *Server) trust(ctx context.Context, u string, data []byte) error {
	verdict, err := checkSignature(ctx, data, s.opt.Keyrings)
	if err != nil {
		return fmt.Errorf("%s: checking its signature: %w", u, err)
	}
	switch verdict {
	case sigGood:
		return nil
	case sigBad:
		return fmt.Errorf("%s has a bad signature: refused", u)
	case sigUnknown:
		return fmt.Errorf("%s is signed by a key none of this build's keyrings has: refused (add the repository's key to package_cache.keyrings)", u)
	}
	return fmt.Errorf("%s is not a signed InRelease: refused (the package cache takes only an InRelease signed by a key in the build host's apt keyrings, bootstrap.keyring or package_cache.keyrings)", u)
}

// revalidate asks upstream whether u changed since rec (cached, verified
// for this build when have), and returns what to serve.
func (s *Server) revalidate(ctx context.Context, u string, rec *urlRecord, have bool, cached []byte) (string, []byte, int, error) {
	h := http.Header{}
	if have {
		if rec.ETag != "" {
			h.Set("If-None-Match", rec.ETag)
		}
		// The cache's own clock, never a date upstream sent.
		h.Set("If-Modified-Since", rec.Fetched.UTC().Format(http.TimeFormat))
	}
	asked := time.Now().UTC()
	resp, err := s.fetch(ctx, u, h)
	if err != nil || resp.StatusCode >= 500 {
		if err == nil {
			resp.Close()
			err = &statusError{code: resp.StatusCode}
		}
		if have {
			s.warn(u, fmt.Sprintf("package cache: %s did not answer (%v); using the copy cached %s", u, err, rec.Fetched.Format(time.RFC3339)))
			return rec.SHA256, cached, http.StatusOK, nil
		}
		return "", nil, 0, err
	}
	defer resp.Close()
	switch resp.StatusCode {
	case http.StatusNotModified:
		if have {
			s.count(func(st *Stats) { st.Revalidated++ })
			return rec.SHA256, cached, http.StatusOK, nil
		}
		return "", nil, 0, fmt.Errorf("%s: upstream said not modified, but the cache has no copy", u)
	case http.StatusOK:
	default:
		return "", nil, resp.StatusCode, nil
	}
	data, err := io.ReadAll(io.LimitReader(resp, maxInRelease+1))
	if err != nil {
		return "", nil, 0, err
	}
	s.count(func(st *Stats) { st.Upstream += int64(len(data)); st.Revalidated++ })
	if len(data) > maxInRelease {
		return "", nil, 0, fmt.Errorf("%s: larger than %d bytes: refused", u, maxInRelease)
	}
	if err := s.trust(ctx, u, data); err != nil {
		return "", nil, 0, err
	}
	date := releaseDate(data)
	if have && date.Before(rec.Date) {
		s.warn(u, fmt.Sprintf("package cache: %s from upstream is dated %s, older than the copy the cache holds (%s): refusing the older one (a replay or a mirror behind), serving the cached copy",
			u, date.Format(time.RFC1123), rec.Date.Format(time.RFC1123)))
		return rec.SHA256, cached, http.StatusOK, nil
	}
	hex, _, err := s.store.Put(bytes.NewReader(data), "", -1)
	if err != nil {
		return "", nil, 0, err
	}
	// The same content again (a mirror or proxy that answers every
	// conditional request in full) has not changed since the cache stored
	// it: it keeps that time, its Last-Modified, so apt's copy stays current
	// (304) and the lists and binary caches made from it stay valid.
	if have && hex == rec.SHA256 && !rec.Fetched.IsZero() {
		asked = rec.Fetched
	}
	err = s.store.remember(urlRecord{URL: u, SHA256: hex, ETag: resp.Header.Get("ETag"), Date: date, Fetched: asked, Keyrings: s.keyringsID})
	return hex, data, http.StatusOK, err
}

// parsePackages reads a Packages index (in the background, once per blob)
// to learn the pool files it lists.
func (s *Server) parsePackages(u string, exp expected, hex string) {
	s.mu.Lock()
	if s.parsed[hex] {
		s.mu.Unlock()
		return
	}
	s.parsed[hex] = true
	s.mu.Unlock()
	i := strings.Index(u, "/dists/")
	if i < 0 {
		return
	}
	root := u[:i+1]
	s.parses.Add(1)
	go func() {
		defer s.parses.Done()
		files, err := s.store.poolIndex(hex, exp.Index)
		if err != nil {
			s.opt.Warn(fmt.Sprintf("package cache: reading %s: %v", u, err))
			return
		}
		s.mu.Lock()
		for p, e := range files {
			s.pool[root+p] = e
		}
		s.mu.Unlock()
	}()
}

// passThrough fetches, without caching it, a file under the build's
// sources that no verified index describes (a Release, a pool file of an
// index in a compression the cache does not read); apt checks it itself.
func (s *Server) passThrough(w http.ResponseWriter, r *http.Request, u string) {
	if s.opt.Offline {
		s.fail(w, u, fmt.Errorf("%w: %s is not described by any index this build fetched, so it was never cached", errOffline, u))
		return
	}
	resp, err := s.fetch(r.Context(), u, nil)
	if err != nil {
		s.fail(w, u, err)
		return
	}
	defer resp.Close()
	for _, k := range []string{"Content-Type", "Content-Length", "Last-Modified", "ETag"} {
		if v := resp.Header.Get(k); v != "" {
			w.Header().Set(k, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	var n int64
	if r.Method == http.MethodGet {
		n, _ = io.Copy(w, io.LimitReader(resp, maxPassThrough))
	}
	s.count(func(st *Stats) { st.Uncached++; st.Upstream += n; st.Served += n })
}
