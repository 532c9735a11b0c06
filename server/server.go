// Package server is strata serve: the catalog over HTTP, a JSON API under
// /v1 (the types of the CLI's --json, described by an OpenAPI document made
// from them) and server-rendered web pages, with bearer tokens from the
// catalog's token store for writes.
package server

import (
	"crypto/rand"
	"log"
	"net/http"
	"strings"
	"time"

	"github.com/strata-build/packer-plugin-strata/catalog"
)

// Options configure a Server.
type Options struct {
	// ReadTokenRequired makes every read need a token with a read scope.
	ReadTokenRequired bool
	// MaxBody is the largest request body accepted (bytes); 0 means 64 KiB.
	MaxBody int64
	// Rate is the requests per second one client (by IP address) may make,
	// Burst how many at once; Rate 0 turns the limit off.
	Rate  float64
	Burst int
	// Secure marks cookies Secure (the server speaks TLS).
	Secure bool
	// Log receives one line per request (never a secret); nil is silent.
	Log *log.Logger
}

// Server serves one catalog.
type Server struct {
	cat    *catalog.Catalog
	opt    Options
	mux    *http.ServeMux
	routes []route
	// patterns are what the mux was given, for the OpenAPI test.
	patterns []string
	limiter  *limiter
	csrfKey  [32]byte
	pages    *pageSet
}

// New makes a server over c.
func New(c *catalog.Catalog, opt Options) *Server {
	if opt.MaxBody <= 0 {
		opt.MaxBody = 64 << 10
	}
	s := &Server{cat: c, opt: opt, mux: http.NewServeMux()}
	rand.Read(s.csrfKey[:])
	if opt.Rate > 0 {
		s.limiter = newLimiter(opt.Rate, opt.Burst)
	}
	s.routes = s.apiRoutes()
	for _, r := range s.routes {
		s.handle(r.Method+" "+r.Path, s.serveRoute(r))
	}
	s.handle("GET /v1/openapi.json", http.HandlerFunc(s.serveOpenAPI))
	s.pages = mustPages()
	s.pageRoutes()
	return s
}

func (s *Server) handle(pattern string, h http.Handler) {
	s.patterns = append(s.patterns, pattern)
	s.mux.Handle(pattern, h)
}

// ServeHTTP applies the limits and logs, then routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w, status: 200}
	defer func() {
		if s.opt.Log != nil {
			// The path only: no query, no header, no body can carry a
			// secret into the log.
			s.opt.Log.Printf("%s %s %s %d %s", clientIP(r), r.Method, sanitizePath(r.URL.Path), rec.status, time.Since(start).Round(time.Microsecond))
		}
	}()
	if s.limiter != nil && !s.limiter.allow(clientIP(r), start) {
		rec.Header().Set("Retry-After", "1")
		writeError(rec, r, http.StatusTooManyRequests, "too many requests from this client; slow down")
		return
	}
	if r.Body != nil {
		r.Body = http.MaxBytesReader(rec, r.Body, s.opt.MaxBody)
	}
	rec.Header().Set("X-Content-Type-Options", "nosniff")
	rec.Header().Set("Referrer-Policy", "no-referrer")
	if strings.HasPrefix(r.URL.Path, "/v1/") {
		if _, pattern := s.mux.Handler(r); pattern == "" {
			s.apiNoRoute(rec, r)
			return
		}
	}
	s.mux.ServeHTTP(rec, r)
}

// apiNoRoute answers what no API route takes with a JSON error: 405 (with
// Allow) when the path exists under another method, else 404.
func (s *Server) apiNoRoute(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		r2 := r.Clone(r.Context())
		r2.Method = m
		if _, pattern := s.mux.Handler(r2); pattern != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, r, http.StatusMethodNotAllowed, r.Method+" is not allowed here; use "+strings.Join(allow, " or "))
		return
	}
	writeError(w, r, http.StatusNotFound, "no such API endpoint; GET /v1/openapi.json lists them")
}

// sanitizePath keeps a logged path to printable text of bounded length.
func sanitizePath(p string) string {
	if len(p) > 200 {
		p = p[:200] + "…"
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, p)
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}
