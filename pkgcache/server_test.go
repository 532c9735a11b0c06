package pkgcache

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ulikunitz/xz"
)

// repo is a tiny apt repository served by httptest, counting requests.
type repo struct {
	t        testing.TB
	mu       sync.Mutex
	files    map[string][]byte
	requests map[string]int
	headers  map[string]http.Header // the last request's headers, by path
	srv      *httptest.Server
	down     atomic.Bool
	key      *signer
	date     time.Time         // the InRelease's Date
	header   map[string]string // more response headers
	special  map[string]http.HandlerFunc
}

func sum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func newRepo(t testing.TB, tlsToo bool, debs map[string][]byte) *repo {
	r := &repo{t: t, files: map[string][]byte{}, requests: map[string]int{}, headers: map[string]http.Header{}, key: testSigner(t), date: time.Now().UTC().Truncate(time.Second), header: map[string]string{}, special: map[string]http.HandlerFunc{}}
	r.publish(debs)
	h := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.requests[req.URL.Path]++
		r.headers[req.URL.Path] = req.Header.Clone()
		data, ok := r.files[req.URL.Path]
		for k, v := range r.header {
			w.Header().Set(k, v)
		}
		special := r.special[req.URL.Path]
		r.mu.Unlock()
		if special != nil {
			special(w, req)
			return
		}
		if r.down.Load() {
			hj, _ := w.(http.Hijacker)
			c, _, _ := hj.Hijack()
			c.Close()
			return
		}
		if !ok {
			http.NotFound(w, req)
			return
		}
		etag := `"` + sum(data)[:16] + `"`
		if req.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", etag)
		w.Write(data)
	})
	if tlsToo {
		r.srv = httptest.NewTLSServer(h)
	} else {
		r.srv = httptest.NewServer(h)
	}
	t.Cleanup(r.srv.Close)
	return r
}

// publish writes Packages.xz and an InRelease signed by the test key for
// debs.
func (r *repo) publish(debs map[string][]byte) {
	var pk strings.Builder
	for name, data := range debs {
		fmt.Fprintf(&pk, "Package: %s\nVersion: 1\nFilename: pool/main/%s\nSize: %d\nSHA256: %s\n\n", name, name, len(data), sum(data))
	}
	var xzb bytes.Buffer
	w, _ := xz.NewWriter(&xzb)
	w.Write([]byte(pk.String()))
	w.Close()
	packages := xzb.Bytes()
	plain := []byte(pk.String())
	rel := fmt.Sprintf("Suite: stable\nDate: %s\nArchitectures: amd64\nComponents: main\nAcquire-By-Hash: yes\nSHA256:\n %s %d main/binary-amd64/Packages\n %s %d main/binary-amd64/Packages.xz\n",
		r.date.Format(time.RFC1123), sum(plain), len(plain), sum(packages), len(packages))
	signed := r.key.sign(r.t, rel)
	r.mu.Lock()
	defer r.mu.Unlock()
	for name, data := range debs {
		r.files["/repo/pool/main/"+name] = data
	}
	r.files["/repo/dists/stable/main/binary-amd64/Packages.xz"] = packages
	r.files["/repo/dists/stable/main/binary-amd64/Packages"] = plain
	r.files["/repo/dists/stable/main/binary-amd64/by-hash/SHA256/"+sum(plain)] = plain
	r.files["/repo/dists/stable/main/binary-amd64/by-hash/SHA256/"+sum(packages)] = packages
	r.files["/repo/dists/stable/InRelease"] = signed
}

func (r *repo) set(p string, data []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.files[p] = data
}

// signer is a gpg key made for the tests, and its public keyring.
type signer struct {
	home, keyring string
}

var (
	signers   = map[string]*signer{}
	signersMu sync.Mutex
)

// testSigner is the tests' repository key (made once); otherSigner is a
// key no build trusts.
func testSigner(t testing.TB) *signer  { return namedSigner(t, "repo") }
func otherSigner(t testing.TB) *signer { return namedSigner(t, "stranger") }

func namedSigner(t testing.TB, name string) *signer {
	t.Helper()
	signersMu.Lock()
	defer signersMu.Unlock()
	if k, ok := signers[name]; ok {
		return k
	}
	home, err := os.MkdirTemp("", "strata-pkgcache-gpg-*")
	if err != nil {
		t.Fatal(err)
	}
	k := &signer{home: home, keyring: filepath.Join(home, "public.gpg")}
	k.gpg(t, "", "--quick-gen-key", "Strata pkgcache "+name+" <"+name+"@strata.invalid>", "ed25519", "sign", "never")
	if err := os.WriteFile(k.keyring, []byte(k.gpg(t, "", "--export")), 0o644); err != nil {
		t.Fatal(err)
	}
	signers[name] = k
	return k
}

func (k *signer) gpg(t testing.TB, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command("gpg", append([]string{"--batch", "--pinentry-mode", "loopback", "--passphrase", "", "--homedir", k.home}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("gpg %v: %v", args, err)
	}
	return string(out)
}

func (k *signer) sign(t testing.TB, text string) []byte {
	return []byte(k.gpg(t, text, "--clearsign"))
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, k := range signers {
		os.RemoveAll(k.home)
	}
	os.Exit(code)
}

func (r *repo) count(p string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests[p]
}

// apt fetches the way apt does through a proxy: InRelease, the index by
// hash, then the .deb.
func apt(t testing.TB, s *Server, base string, debs ...string) (map[string][]byte, error) {
	t.Helper()
	proxy, _ := url.Parse(s.ProxyURL())
	tr := &http.Transport{Proxy: http.ProxyURL(proxy)}
	if strings.HasPrefix(base, "https") {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(s.CAPEM())
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	c := &http.Client{Transport: tr}
	get := func(p string) ([]byte, error) {
		resp, err := c.Get(base + p)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			return nil, fmt.Errorf("%s: %d %s", p, resp.StatusCode, b)
		}
		return b, nil
	}
	rel, err := get("/repo/dists/stable/InRelease")
	if err != nil {
		return nil, err
	}
	files := releaseFiles(rel)
	if _, err := get("/repo/dists/stable/main/binary-amd64/by-hash/SHA256/" + files["main/binary-amd64/Packages.xz"].SHA256); err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for _, d := range debs {
		b, err := get("/repo/pool/main/" + d)
		if err != nil {
			return out, err
		}
		out[d] = b
	}
	return out, nil
}

// start runs a build's server on dir for the repository r: its source is
// r's archive, its keyring the test key, unless opt says otherwise.
func start(t testing.TB, dir string, r *repo, opt Options) *Server {
	if opt.Sources == nil && r != nil {
		opt.Sources = []string{r.srv.URL + "/repo"}
	}
	if opt.Keyrings == nil {
		opt.Keyrings = []string{testSigner(t).keyring}
	}
	s, err := Start(dir, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestCacheServesOnceThenFromDisk(t *testing.T) {
	deb := bytes.Repeat([]byte("deb!"), 1000)
	r := newRepo(t, false, map[string][]byte{"a_1_all.deb": deb})
	dir := t.TempDir()
	s1 := start(t, dir, r, Options{})
	got, err := apt(t, s1, r.srv.URL, "a_1_all.deb")
	if err != nil || !bytes.Equal(got["a_1_all.deb"], deb) {
		t.Fatalf("%v", err)
	}
	if st := s1.Stats(); st.Misses < 2 || st.Upstream == 0 || st.Revalidated != 1 {
		t.Fatalf("first build stats %+v", st)
	}
	s1.Close()
	s2 := start(t, dir, r, Options{})
	if _, err := apt(t, s2, r.srv.URL, "a_1_all.deb"); err != nil {
		t.Fatal(err)
	}
	if n := r.count("/repo/pool/main/a_1_all.deb"); n != 1 {
		t.Fatalf("the .deb was fetched upstream %d times", n)
	}
	if st := s2.Stats(); st.Hits < 2 || st.Misses != 0 || st.Revalidated != 1 {
		t.Fatalf("a warm build: %+v", st)
	}
	u, err := s2.Record("test")
	if err != nil || len(u.Releases) != 1 || len(u.Files) != 3 {
		t.Fatalf("usage %+v %v", u, err)
	}
	// Offline, with upstream gone: served from the cache.
	r.down.Store(true)
	s3 := start(t, dir, r, Options{Offline: true})
	if _, err := apt(t, s3, r.srv.URL, "a_1_all.deb"); err != nil {
		t.Fatalf("offline: %v", err)
	}
	// Upstream down and not offline: the cached InRelease, with a warning.
	var warned []string
	s4 := start(t, dir, r, Options{Warn: func(m string) { warned = append(warned, m) }})
	if _, err := apt(t, s4, r.srv.URL, "a_1_all.deb"); err != nil || len(warned) == 0 || !strings.Contains(warned[0], "did not answer") {
		t.Fatalf("upstream down: %v %v", err, warned)
	}
}

func TestCacheRefusesBadDownloads(t *testing.T) {
	good := bytes.Repeat([]byte("x"), 4096)
	r := newRepo(t, false, map[string][]byte{"corrupt_1_all.deb": good, "short_1_all.deb": good})
	// Upstream now serves other bytes of the same size, and a truncated file.
	bad := append([]byte("EVIL"), good[4:]...)
	r.mu.Lock()
	r.files["/repo/pool/main/corrupt_1_all.deb"] = bad
	r.files["/repo/pool/main/short_1_all.deb"] = good[:100]
	r.mu.Unlock()
	dir := t.TempDir()
	s := start(t, dir, r, Options{})
	for _, d := range []string{"corrupt_1_all.deb", "short_1_all.deb"} {
		_, err := apt(t, s, r.srv.URL, d)
		if err == nil || !strings.Contains(err.Error(), "502") {
			t.Fatalf("%s: the client got %v, want an error", d, err)
		}
	}
	if s.store.Has(sum(good)) || s.store.Has(sum(bad)) || s.store.Has(sum(good[:100])) {
		t.Fatal("a bad download entered the cache")
	}
	ents, _ := os.ReadDir(dir + "/tmp")
	if len(ents) != 0 {
		t.Fatalf("tmp holds %d files", len(ents))
	}
}

func TestCacheOfflineMissNamesTheFile(t *testing.T) {
	r := newRepo(t, false, map[string][]byte{"a_1_all.deb": []byte("a")})
	dir := t.TempDir()
	s := start(t, dir, r, Options{})
	apt(t, s, r.srv.URL) // indexes only
	s.Close()
	s2 := start(t, dir, r, Options{Offline: true})
	_, err := apt(t, s2, r.srv.URL, "a_1_all.deb")
	if err == nil || !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), "a_1_all.deb") || !strings.Contains(err.Error(), "not in the package cache") {
		t.Fatalf("offline miss: %v", err)
	}
}

// TestCacheConcurrentBuilds: four builds (servers) at once fetch each file
// upstream exactly once.
func TestCacheConcurrentBuilds(t *testing.T) {
	debs := map[string][]byte{}
	for i := 0; i < 5; i++ {
		debs[fmt.Sprintf("p%d_1_all.deb", i)] = bytes.Repeat([]byte{byte(i)}, 200000)
	}
	r := newRepo(t, false, debs)
	dir := t.TempDir()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := start(t, dir, r, Options{})
			names := []string{}
			for n := range debs {
				names = append(names, n)
			}
			if _, err := apt(t, s, r.srv.URL, names...); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for n := range debs {
		if c := r.count("/repo/pool/main/" + n); c != 1 {
			t.Errorf("%s fetched %d times", n, c)
		}
	}
}

// TestCacheSnapshot: a build pinned to a recorded InRelease sees the old
// index after the repository moved on.
func TestCacheSnapshot(t *testing.T) {
	old := []byte("version one")
	r := newRepo(t, false, map[string][]byte{"a_1_all.deb": old})
	dir := t.TempDir()
	s := start(t, dir, r, Options{})
	apt(t, s, r.srv.URL, "a_1_all.deb")
	u, _ := s.Record("first")
	s.Close()
	r.publish(map[string][]byte{"a_1_all.deb": []byte("version two!")})
	s2 := start(t, dir, r, Options{Snapshot: u.Releases})
	got, err := apt(t, s2, r.srv.URL, "a_1_all.deb")
	if err != nil || string(got["a_1_all.deb"]) != "version one" {
		t.Fatalf("snapshot build got %q %v", got["a_1_all.deb"], err)
	}
	s3 := start(t, dir, r, Options{})
	got, err = apt(t, s3, r.srv.URL, "a_1_all.deb")
	if err != nil || string(got["a_1_all.deb"]) != "version two!" {
		t.Fatalf("an unpinned build got %q %v", got["a_1_all.deb"], err)
	}
}

// TestCacheHTTPS: apt's https requests (CONNECT) are served by the build's
// authority and cached like http ones; the cache checks the mirror's own
// certificate.
func TestCacheHTTPS(t *testing.T) {
	deb := []byte("over https")
	r := newRepo(t, true, map[string][]byte{"s_1_all.deb": deb})
	dir := t.TempDir()
	s := start(t, dir, r, Options{})
	s.client.Transport.(*http.Transport).TLSClientConfig = &tls.Config{RootCAs: certPool(r.srv.Certificate())}
	got, err := apt(t, s, r.srv.URL, "s_1_all.deb")
	if err != nil || !bytes.Equal(got["s_1_all.deb"], deb) {
		t.Fatalf("%v", err)
	}
	if !s.store.Has(sum(deb)) {
		t.Fatal("the https download was not cached")
	}
	// Without trusting the mirror's certificate the cache refuses it.
	s2 := start(t, t.TempDir(), r, Options{})
	if _, err := apt(t, s2, r.srv.URL, "s_1_all.deb"); err == nil {
		t.Fatal("the cache trusted an unknown certificate")
	}
}

func certPool(c *x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c)
	return p
}

func TestReleaseBodyAndFiles(t *testing.T) {
	signed := "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\nOrigin: Debian\nSHA256:\n " + strings.Repeat("a", 64) + " 12 main/binary-amd64/Packages.xz\n- -----not a signature\n-----BEGIN PGP SIGNATURE-----\n\nxyz\n-----END PGP SIGNATURE-----\n"
	body := string(releaseBody([]byte(signed)))
	if !strings.HasPrefix(body, "Origin: Debian\n") || strings.Contains(body, "SIGNATURE") || !strings.Contains(body, "\n-----not a signature") {
		t.Fatalf("body %q", body)
	}
	f := releaseFiles([]byte(signed))
	if e := f["main/binary-amd64/Packages.xz"]; e.Size != 12 || e.SHA256 != strings.Repeat("a", 64) {
		t.Fatalf("%+v", f)
	}
}
