package pkgcache

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
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
	// Sources are the URIs of the build's apt sources (the bootstrap
	// mirror, the build host's sources): the only archives the cache
	// fetches from, with those SourcesMore adds.
	Sources []string
	// SourcesMore reads more source URIs (the image's own sources) when a
	// request names an archive Sources lacks.
	SourcesMore func() []string
	// UpstreamProxy is a team's shared cache (apt-cacher-ng, squid) to
	// fetch through, as http://host:port; "" fetches directly.
	UpstreamProxy string
	// Offline serves only from the cache; a miss fails, naming the file.
	Offline bool
	// Snapshot pins InRelease URLs to the digests a build recorded: they are
	// served from the cache as they were, never revalidated.
	Snapshot map[string]string
	// Keyrings verify InRelease signatures (gpgv): only an InRelease with a
	// good signature from one of them is used and kept.
	Keyrings []string
	// Warn receives what the build should tell its user.
	Warn func(string)
}

// limits bound what one upstream fetch may take.
type limits struct {
	header   time.Duration // until upstream's response headers
	idle     time.Duration // without a byte of the body
	total    time.Duration // for a whole download
	lockWait time.Duration // for another build's download of the same file
}

var defaultLimits = limits{header: 60 * time.Second, idle: 60 * time.Second, total: 30 * time.Minute, lockWait: 2 * time.Minute}

// Sizes the cache reads at most of what no index sizes.
const (
	maxInRelease   = 64 << 20
	maxPassThrough = 1 << 30
)

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

// proxyUser is the user name in the build's proxy credentials.
const proxyUser = "strata"

// Server is one build's view of the cache: a loopback HTTP proxy that apt
// (mmdebstrap's on the host, and apt in the chroot) uses, and only it: a
// request must carry the build's secret as proxy credentials.
type Server struct {
	store   *Store
	opt     Options
	limits  limits
	origins *origins
	secret  string
	auth    []byte // the Proxy-Authorization value requests must carry
	ln      net.Listener
	srv     *http.Server
	tlsSrv  *http.Server
	tlsLn   *chanListener
	tunnel  sync.Map // *tls.Conn -> the host:port its CONNECT asked for
	ca      *authority
	client  *http.Client
	// keyringsID names the build's keyrings by content ("" when one
	// cannot be read): an InRelease recorded as verified by the same
	// keyrings is not checked again.
	keyringsID string

	mu       sync.Mutex
	indexes  map[string]expected // index file URLs (and their by-hash URLs)
	pool     map[string]expected // pool file URLs, from the Packages indexes served
	parsed   map[string]bool     // blobs parsed as Packages
	parses   sync.WaitGroup
	releases map[string]string // InRelease URL -> blob used in this build
	// preloaded are the InRelease files shared lists were made from
	// (Preload), used by the build unless apt fetched the URL itself.
	preloaded map[string]string
	used      map[string]bool // blobs served
	warned    map[string]bool
	stats     Stats
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
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	proxies := environmentProxies()
	if opt.UpstreamProxy != "" {
		proxies = append(proxies, opt.UpstreamProxy)
	}
	org := newOrigins(opt.Sources, proxies)
	org.more = opt.SourcesMore
	transport := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           org.dial,
		TLSHandshakeTimeout:   30 * time.Second,
		ResponseHeaderTimeout: defaultLimits.header,
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
		store: store, opt: opt, ln: ln, ca: ca, limits: defaultLimits, origins: org,
		secret: hex.EncodeToString(secret), keyringsID: keyringsID(opt.Keyrings),
		client: &http.Client{Transport: transport, CheckRedirect: func(req *http.Request, via []*http.Request) error {
			// Mirrors redirect; where to is checked when dialing. Never
			// from https down to http, and not in circles.
			if len(via) >= 10 {
				return errors.New("more than 10 redirects")
			}
			if req.URL.Scheme != "https" && (req.URL.Scheme != "http" || via[0].URL.Scheme == "https") {
				return fmt.Errorf("a redirect to %s: refused", req.URL.Redacted())
			}
			return nil
		}},
		indexes:   map[string]expected{},
		pool:      map[string]expected{},
		parsed:    map[string]bool{},
		releases:  map[string]string{},
		preloaded: map[string]string{},
		used:      map[string]bool{},
		warned:    map[string]bool{},
	}
	s.auth = []byte("Basic " + base64.StdEncoding.EncodeToString([]byte(proxyUser+":"+s.secret)))
	s.srv = &http.Server{Handler: http.HandlerFunc(s.handle), ReadHeaderTimeout: 30 * time.Second}
	s.tlsLn = newChanListener(ln.Addr())
	s.tlsSrv = &http.Server{Handler: http.HandlerFunc(s.handle), ReadHeaderTimeout: 30 * time.Second,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if host, ok := s.tunnel.LoadAndDelete(c); ok {
				return context.WithValue(ctx, tunnelKey{}, host)
			}
			return ctx
		}}
	go s.srv.Serve(ln)
	go s.tlsSrv.Serve(s.tlsLn)
	return s, nil
}

// Addr is "127.0.0.1:PORT".
func (s *Server) Addr() string { return s.ln.Addr().String() }

// ProxyURL is the server as an http proxy URL with the build's credentials
// in it: it goes into apt's configuration on the build's own files only,
// never into a log line, the image or artifact.json.
func (s *Server) ProxyURL() string { return "http://" + proxyUser + ":" + s.secret + "@" + s.Addr() }

// Secret is the build's proxy password (for tests that look for leaks).
func (s *Server) Secret() string { return s.secret }

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
	for k, v := range s.preloaded {
		out[k] = v
	}
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

// authorized says whether r carries the build's proxy credentials
// (compared in constant time).
func (s *Server) authorized(r *http.Request) bool {
	return subtle.ConstantTimeCompare([]byte(r.Header.Get("Proxy-Authorization")), s.auth) == 1
}

// handle answers one request: CONNECT for https, an absolute URL (apt's
// proxy requests), or, inside a CONNECT tunnel, a path on the tunnel's
// host. Requests without the build's credentials get 407; files outside
// the build's sources get 403, before anything is fetched.
func (s *Server) handle(w http.ResponseWriter, r *http.Request) {
	if r.TLS == nil && !s.authorized(r) {
		// Tunnelled requests were authorized at their CONNECT.
		w.Header().Set("Proxy-Authenticate", `Basic realm="strata package cache"`)
		http.Error(w, "the package cache serves its own build only", http.StatusProxyAuthRequired)
		return
	}
	if r.Method == http.MethodConnect {
		s.connect(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "the package cache serves GET and HEAD only", http.StatusMethodNotAllowed)
		return
	}
	var scheme, host string
	switch {
	case r.TLS != nil:
		// The host is the one CONNECT asked for, never the Host header.
		scheme, _ = "https", ""
		host, _ = r.Context().Value(tunnelKey{}).(string)
		if host == "" {
			http.Error(w, "a request outside a tunnel", http.StatusBadRequest)
			return
		}
	case r.URL.IsAbs():
		scheme, host = r.URL.Scheme, r.URL.Host
	default:
		http.Error(w, "not a proxy request: use the cache as apt's http proxy", http.StatusBadRequest)
		return
	}
	if err := s.origins.allows(scheme, host, r.URL.Path); err != nil {
		s.warn(err.Error(), "package cache: "+err.Error())
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	s.serve(w, r, canonicalURL(scheme, host, r.URL.Path))
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, u string) {
	ctx := r.Context()
	if strings.Contains(u, "/dists/") && path.Base(u) == "InRelease" {
		data, status, err := s.release(ctx, u)
		if err != nil {
			s.fail(w, u, err)
			return
		}
		if status != http.StatusOK {
			w.WriteHeader(status)
			return
		}
		if s.notModified(w, r, u, data) {
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
		if strings.Contains(u, "/by-hash/") {
			s.fail(w, u, &statusError{code: http.StatusNotFound, msg: u + " is named by no verified index of this build: refused"})
			return
		}
		s.passThrough(w, r, u)
		return
	}
	hex, err := s.get(ctx, u, exp)
	if err != nil {
		s.fail(w, u, err)
		return
	}
	p, err := s.store.BlobPath(hex)
	if err != nil {
		s.fail(w, u, err)
		return
	}
	f, err := os.Open(p)
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

// notModified answers 304 when apt's copy of the InRelease u is the one the
// cache serves, so apt keeps its list files (and the binary caches made
// from them, shared indexes' included, stay valid): the InRelease is
// served with Last-Modified set to when the cache stored that content (its
// own clock, never a date upstream sent), which apt gives its file; an
// If-Modified-Since no earlier than that means apt got it from the cache
// after the cache had it. Anything else (a snapshot's pinned copy, no
// record) is served whole.
func (s *Server) notModified(w http.ResponseWriter, r *http.Request, u string, data []byte) bool {
	rec, ok := s.store.lastOf(u)
	if !ok || rec.Fetched.IsZero() || rec.SHA256 != sha256Hex(data) {
		return false
	}
	lm := rec.Fetched.UTC().Truncate(time.Second)
	w.Header().Set("Last-Modified", lm.Format(http.TimeFormat))
	ims, err := http.ParseTime(r.Header.Get("If-Modified-Since"))
	if err != nil || ims.Before(lm) {
		return false
	}
	w.WriteHeader(http.StatusNotModified)
	return true
}

// lookup finds what u must be: an index (or its by-hash name) a verified
// InRelease of the build lists, or a pool file a Packages index lists.
func (s *Server) lookup(u string) (expected, bool) {
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

func (s *Server) fail(w http.ResponseWriter, u string, err error) {
	var se *statusError
	code := http.StatusBadGateway
	switch {
	case errors.As(err, &se) && se.code >= 400:
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

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
