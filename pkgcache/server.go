package pkgcache

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"sync"
	"time"
)

// Options configure a Server.
type Options struct {
	// UpstreamProxy is a team's shared cache (apt-cacher-ng, squid) to
	// fetch through, as http://host:port; "" fetches directly.
	UpstreamProxy string
	// Offline serves only from the cache; a miss fails, naming the file.
	Offline bool
	// Snapshot pins InRelease URLs to the digests a build recorded: they are
	// served from the cache as they were, never revalidated.
	Snapshot map[string]string
	// Keyrings verify InRelease signatures (gpgv).
	Keyrings []string
	// Warn receives what the build should tell its user.
	Warn func(string)
}

// Stats count what a server did.
type Stats struct {
	Hits     int `json:"hits"`     // files served from the cache
	Misses   int `json:"misses"`   // files fetched upstream into the cache
	Uncached int `json:"uncached"` // files passed through without an index entry
	// Revalidated counts InRelease files asked upstream whether they
	// changed (once per build each), whatever the answer.
	Revalidated int   `json:"revalidated"`
	Upstream    int64 `json:"upstream_bytes"`
	Served      int64 `json:"served_bytes"`
}

// Server is one build's view of the cache: a loopback HTTP server that apt
// (mmdebstrap's on the host, and apt in the chroot) uses as its proxy.
type Server struct {
	store  *Store
	opt    Options
	ln     net.Listener
	srv    *http.Server
	tlsSrv *http.Server
	tlsLn  *chanListener
	ca     *authority
	client *http.Client

	mu          sync.Mutex
	indexes     map[string]expected // index file URLs (and their by-hash URLs)
	pool        map[string]expected // pool file URLs, from the Packages indexes served
	parsed      map[string]bool     // blobs parsed as Packages
	parses      sync.WaitGroup
	releases    map[string]string // InRelease URL -> blob used in this build
	used        map[string]bool   // blobs served
	warned      map[string]bool
	stats       Stats
	unverified  map[string]bool
	upstreamErr map[string]bool
}

// Start opens the cache at dir and serves it on 127.0.0.1 on a free port.
func Start(dir string, opt Options) (*Server, error) {
	store, err := OpenStore(dir)
	if err != nil {
		return nil, err
	}
	if opt.Warn == nil {
		opt.Warn = func(string) {}
	}
	ca, err := newAuthority()
	if err != nil {
		return nil, err
	}
	transport := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		ResponseHeaderTimeout: 60 * time.Second,
		MaxIdleConnsPerHost:   8,
		ForceAttemptHTTP2:     true,
	}
	if opt.UpstreamProxy != "" {
		u, err := url.Parse(opt.UpstreamProxy)
		if err != nil {
			return nil, fmt.Errorf("upstream_proxy %q: %w", opt.UpstreamProxy, err)
		}
		transport.Proxy = http.ProxyURL(u)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{
		store: store, opt: opt, ln: ln, ca: ca,
		client:      &http.Client{Transport: transport, CheckRedirect: func(*http.Request, []*http.Request) error { return nil }},
		indexes:     map[string]expected{},
		pool:        map[string]expected{},
		parsed:      map[string]bool{},
		releases:    map[string]string{},
		used:        map[string]bool{},
		warned:      map[string]bool{},
		unverified:  map[string]bool{},
		upstreamErr: map[string]bool{},
	}
	s.srv = &http.Server{Handler: http.HandlerFunc(s.handle), ReadHeaderTimeout: 30 * time.Second}
	s.tlsLn = newChanListener(ln.Addr())
	s.tlsSrv = &http.Server{Handler: http.HandlerFunc(s.handle), ReadHeaderTimeout: 30 * time.Second}
	go s.srv.Serve(ln)
	go s.tlsSrv.Serve(s.tlsLn)
	return s, nil
}

// Addr is "127.0.0.1:PORT".
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is the server as an http proxy URL.
func (s *Server) URL() string { return "http://" + s.Addr() }

// CAPEM is the certificate apt must trust for https mirrors.
func (s *Server) CAPEM() []byte { return s.ca.pem }

// Store is the cache on disk.
func (s *Server) Store() *Store { return s.store }

// Stats is what the server did so far.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Releases are the InRelease files this build used: URL to sha256.
func (s *Server) Releases() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	for k, v := range s.releases {
		out[k] = v
	}
	return out
}

// Close stops the server.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.tlsLn.Close()
	s.tlsSrv.Shutdown(ctx)
	err := s.srv.Shutdown(ctx)
	s.parses.Wait()
	return err
}

// handle answers one request: CONNECT for https, an absolute URL (apt's
// proxy requests), a path /http/HOST/PATH or /https/HOST/PATH (a mirror
// rewrite), or, inside a CONNECT tunnel, a path on that host.
func (s *Server) handle(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodConnect {
		s.tunnel(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "the package cache serves GET and HEAD only", http.StatusMethodNotAllowed)
		return
	}
	var u string
	switch {
	case r.TLS != nil:
		u = "https://" + r.Host + r.URL.Path
	case r.URL.IsAbs():
		u = r.URL.Scheme + "://" + r.URL.Host + r.URL.Path
	case strings.HasPrefix(r.URL.Path, "/http/") || strings.HasPrefix(r.URL.Path, "/https/"):
		scheme, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		u = scheme + "://" + rest
	default:
		http.Error(w, "not a proxy request: use the cache as apt's http proxy, or ask for /http/HOST/PATH", http.StatusBadRequest)
		return
	}
	s.serve(w, r, u)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, u string) {
	ctx := r.Context()
	base := path.Base(u)
	switch {
	case strings.Contains(u, "/dists/") && (base == "InRelease" || base == "Release" || base == "Release.gpg"):
		data, status, err := s.release(ctx, u)
		if err != nil {
			s.fail(w, u, err)
			return
		}
		if status != http.StatusOK {
			w.WriteHeader(status)
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		if r.Method == http.MethodGet {
			w.Write(data)
		}
		s.count(func(st *Stats) { st.Served += int64(len(data)) })
		return
	}
	exp, ok := s.lookup(u)
	if !ok {
		s.passThrough(w, r, u)
		return
	}
	hex, err := s.get(ctx, u, exp)
	if err != nil {
		s.fail(w, u, err)
		return
	}
	f, err := os.Open(s.store.BlobPath(hex))
	if err != nil {
		s.fail(w, u, err)
		return
	}
	defer f.Close()
	fi, _ := f.Stat()
	s.count(func(st *Stats) { st.Served += fi.Size() })
	s.mu.Lock()
	s.used[hex] = true
	s.mu.Unlock()
	if isPackagesIndex(exp.Index) {
		s.parsePackages(u, exp, hex)
	}
	http.ServeContent(w, r, "", time.Time{}, f)
}

// lookup finds what u must be: a by-hash name, an index the suite's
// InRelease lists, or a pool file a Packages index lists.
func (s *Server) lookup(u string) (expected, bool) {
	if i := strings.Index(u, "/by-hash/SHA256/"); i >= 0 {
		sum := u[i+len("/by-hash/SHA256/"):]
		if len(sum) == 64 && strings.Trim(sum, "0123456789abcdef") == "" {
			s.mu.Lock()
			defer s.mu.Unlock()
			if e, ok := s.indexes[u]; ok {
				return e, true
			}
			return expected{SHA256: sum, Size: -1}, true
		}
	}
	s.mu.Lock()
	e, ok := s.indexes[u]
	if !ok {
		e, ok = s.pool[u]
	}
	s.mu.Unlock()
	if ok || !strings.Contains(u, "/pool/") {
		return e, ok
	}
	// A Packages index may still be being read.
	s.parses.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok = s.pool[u]
	return e, ok
}

// get returns the blob of u, from the cache or fetched (once across every
// build on the host) and checked against exp.
func (s *Server) get(ctx context.Context, u string, exp expected) (string, error) {
	if s.store.Has(exp.SHA256) {
		s.count(func(st *Stats) { st.Hits++ })
		return exp.SHA256, nil
	}
	unlock, err := s.store.Lock(exp.SHA256)
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
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", &statusError{resp.StatusCode}
	}
	hex, n, err := s.store.Put(resp.Body, exp.SHA256, exp.Size)
	s.count(func(st *Stats) { st.Upstream += n })
	if err != nil {
		return "", fmt.Errorf("%s: %w", u, err)
	}
	s.count(func(st *Stats) { st.Misses++ })
	return hex, nil
}

var errOffline = errors.New("offline")

type statusError struct{ code int }

func (e *statusError) Error() string { return fmt.Sprintf("upstream answered %d", e.code) }

func (s *Server) fetch(ctx context.Context, u string, header http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	return s.client.Do(req)
}

// release serves an InRelease, Release or Release.gpg: pinned by the
// snapshot, else revalidated upstream once per build (a conditional GET),
// else the cached copy when upstream does not answer or the cache is
// offline. A fetched InRelease must carry a good signature from one of the
// keyrings (or a key none of them has, which is said); its SHA256 list
// tells what every index of the suite must be.
func (s *Server) release(ctx context.Context, u string) ([]byte, int, error) {
	unlock, err := s.store.Lock(urlKey(u))
	if err != nil {
		return nil, 0, err
	}
	defer unlock()
	s.mu.Lock()
	done, seen := s.releases[u]
	s.mu.Unlock()
	if seen {
		data, err := os.ReadFile(s.store.BlobPath(done))
		return data, http.StatusOK, err
	}
	var hex string
	var data []byte
	if pinned, ok := s.opt.Snapshot[u]; ok {
		if data, err = os.ReadFile(s.store.BlobPath(pinned)); err != nil {
			return nil, 0, fmt.Errorf("%w: the snapshot's %s (sha256 %s) is no longer in the package cache", errOffline, u, pinned)
		}
		hex = pinned
	} else {
		rec, have := s.store.lastOf(u)
		switch {
		case s.opt.Offline && have:
			hex = rec.SHA256
		case s.opt.Offline:
			return nil, 0, fmt.Errorf("%w: no copy of %s in the package cache", errOffline, u)
		default:
			var status int
			hex, status, err = s.revalidate(ctx, u, rec, have)
			if err != nil {
				return nil, 0, err
			}
			if status != http.StatusOK {
				return nil, status, nil
			}
		}
		if data, err = os.ReadFile(s.store.BlobPath(hex)); err != nil {
			return nil, 0, err
		}
	}
	if path.Base(u) != "Release.gpg" {
		dir := strings.TrimSuffix(u, path.Base(u))
		files := releaseFiles(data)
		s.mu.Lock()
		for p, e := range files {
			s.indexes[dir+p] = e
			s.indexes[dir+path.Dir(p)+"/by-hash/SHA256/"+e.SHA256] = e
		}
		s.mu.Unlock()
	}
	s.mu.Lock()
	s.releases[u] = hex
	s.used[hex] = true
	s.mu.Unlock()
	return data, http.StatusOK, nil
}

// revalidate asks upstream whether u changed since rec.
func (s *Server) revalidate(ctx context.Context, u string, rec *urlRecord, have bool) (string, int, error) {
	h := http.Header{}
	if have {
		if rec.ETag != "" {
			h.Set("If-None-Match", rec.ETag)
		}
		if rec.LastModified != "" {
			h.Set("If-Modified-Since", rec.LastModified)
		}
	}
	resp, err := s.fetch(ctx, u, h)
	if err != nil || resp.StatusCode >= 500 {
		if err == nil {
			resp.Body.Close()
			err = &statusError{resp.StatusCode}
		}
		if have {
			s.warn(u, fmt.Sprintf("package cache: %s did not answer (%v); using the copy cached %s", u, err, rec.Fetched.Format(time.RFC3339)))
			return rec.SHA256, http.StatusOK, nil
		}
		return "", 0, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotModified:
		if have {
			s.count(func(st *Stats) { st.Revalidated++ })
			return rec.SHA256, http.StatusOK, nil
		}
		return "", 0, fmt.Errorf("%s: upstream said not modified, but the cache has no copy", u)
	case http.StatusOK:
	default:
		return "", resp.StatusCode, nil
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return "", 0, err
	}
	s.count(func(st *Stats) { st.Upstream += int64(len(data)); st.Revalidated++ })
	if path.Base(u) == "InRelease" {
		verdict, err := checkSignature(ctx, data, s.opt.Keyrings)
		if err != nil {
			return "", 0, err
		}
		switch verdict {
		case sigBad:
			return "", 0, fmt.Errorf("%s has a bad signature: refusing it", u)
		case sigUnknown:
			s.warn(u, fmt.Sprintf("package cache: %s is signed by a key none of its keyrings has; its files are cached by the hashes it lists, and apt checks the signature (set package_cache { keyring } to check it here too)", u))
		}
	}
	hex, _, err := s.store.Put(bytes.NewReader(data), "", -1)
	if err != nil {
		return "", 0, err
	}
	err = s.store.remember(urlRecord{URL: u, SHA256: hex, ETag: resp.Header.Get("ETag"), LastModified: resp.Header.Get("Last-Modified"), Fetched: time.Now().UTC()})
	return hex, http.StatusOK, err
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

// passThrough fetches what no index describes, without caching it.
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
	defer resp.Body.Close()
	for _, k := range []string{"Content-Type", "Content-Length", "Last-Modified", "ETag"} {
		if v := resp.Header.Get(k); v != "" {
			w.Header().Set(k, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	var n int64
	if r.Method == http.MethodGet {
		n, _ = io.Copy(w, resp.Body)
	}
	s.count(func(st *Stats) { st.Uncached++; st.Upstream += n; st.Served += n })
}

func (s *Server) fail(w http.ResponseWriter, u string, err error) {
	var se *statusError
	code := http.StatusBadGateway
	switch {
	case errors.As(err, &se):
		code = se.code
	case errors.Is(err, errOffline):
		code = http.StatusNotFound
	}
	s.warn(u+err.Error(), "package cache: "+err.Error())
	http.Error(w, err.Error(), code)
}

func (s *Server) warn(key, msg string) {
	s.mu.Lock()
	first := !s.warned[key]
	s.warned[key] = true
	s.mu.Unlock()
	if first {
		s.opt.Warn(msg)
	}
}

func (s *Server) count(f func(*Stats)) {
	s.mu.Lock()
	f(&s.stats)
	s.mu.Unlock()
}

// tunnel answers CONNECT: the connection becomes TLS with a certificate for
// the requested host from the build's authority, and its requests are
// served like the others, for https://HOST.
func (s *Server) tunnel(w http.ResponseWriter, r *http.Request) {
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "cannot tunnel", http.StatusInternalServerError)
		return
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if _, err := conn.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n")); err != nil {
		conn.Close()
		return
	}
	tc := tls.Server(conn, &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return s.ca.certFor(host)
		},
	})
	s.tlsLn.push(tc)
}

// chanListener hands the tunnels' TLS connections to the TLS server.
type chanListener struct {
	addr net.Addr
	ch   chan net.Conn
	once sync.Once
	done chan struct{}
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *chanListener) push(c net.Conn) {
	select {
	case l.ch <- c:
	case <-l.done:
		c.Close()
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }
