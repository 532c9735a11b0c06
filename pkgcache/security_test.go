package pkgcache

// Attacks on the package cache: other local users (run as nobody where
// the test is root), requests outside the build's sources, and a hostile
// signed (or unsigned) repository. Canaries live under the tests' own
// temporary directories.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ulikunitz/xz"

	"github.com/strata-build/packer-plugin-strata/internal/inroot"
)

// get asks the cache for u (an absolute URL) with proxyURL's credentials
// (none when proxyURL has none).
func get(t *testing.T, proxyURL, u string) (int, string) {
	t.Helper()
	p, _ := url.Parse(proxyURL)
	c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(p)}, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// connect sends CONNECT host to the cache at addr with header lines and
// returns the status line.
func connect(t *testing.T, addr, host, header string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", host, host, header)
	line, _ := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line)
}

// TestCacheServesOnlyItsBuild: without the build's secret the cache
// answers 407 to everything, another local user (nobody) included, and
// fetches nothing.
func TestCacheServesOnlyItsBuild(t *testing.T) {
	r := newRepo(t, false, map[string][]byte{"a_1_all.deb": []byte("a")})
	s := start(t, t.TempDir(), r, Options{})
	inRelease := r.srv.URL + "/repo/dists/stable/InRelease"
	wrong := strings.Replace(s.ProxyURL(), s.Secret(), strings.Repeat("0", len(s.Secret())), 1)
	for _, proxy := range []string{"http://" + s.Addr(), wrong, "http://" + proxyUser + "@" + s.Addr()} {
		if code, _ := get(t, proxy, inRelease); code != http.StatusProxyAuthRequired {
			t.Errorf("without the secret: %d, want 407", code)
		}
	}
	host := strings.TrimPrefix(r.srv.URL, "http://")
	if line := connect(t, s.Addr(), host, ""); !strings.Contains(line, "407") {
		t.Errorf("CONNECT without the secret: %q", line)
	}
	// The mirror-rewrite form of old is no way around it.
	if code, _ := get(t, "http://"+s.Addr(), "http://"+s.Addr()+"/http/"+host+"/repo/dists/stable/InRelease"); code != http.StatusProxyAuthRequired {
		t.Errorf("the /http/HOST/ form: %d", code)
	}
	if os.Getuid() == 0 {
		if _, err := exec.LookPath("setpriv"); err == nil {
			for _, args := range [][]string{
				{"--proxy", "http://" + s.Addr(), inRelease},
				{"--proxy", "http://" + s.Addr(), "http://169.254.169.254/latest/meta-data/"},
				{"--proxy", "http://" + s.Addr(), "-p", "http://" + host + "/"},
				{"http://" + s.Addr() + "/http/" + host + "/repo/dists/stable/InRelease"},
			} {
				cmd := exec.Command("setpriv", append([]string{"--reuid=nobody", "--regid=nogroup", "--clear-groups", "--", "curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{http_connect}"}, args...)...)
				out, _ := cmd.Output()
				if code := string(out); !strings.Contains(code, "407") {
					t.Errorf("nobody: curl %v got %q, want 407", args, code)
				}
			}
		}
	}
	if n := r.count("/repo/dists/stable/InRelease"); n != 0 {
		t.Fatalf("requests without the secret reached upstream %d times", n)
	}
	if code, _ := get(t, s.ProxyURL(), inRelease); code != http.StatusOK {
		t.Fatalf("with the secret: %d", code)
	}
}

// TestCacheFetchesOnlyFromItsSources: a URL outside the build's sources,
// a path apt never asks for, CONNECT to another host, and a redirect to an
// unnamed loopback service are refused before any connection to them.
func TestCacheFetchesOnlyFromItsSources(t *testing.T) {
	r := newRepo(t, false, map[string][]byte{"a_1_all.deb": []byte("a")})
	var reached atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		reached.Add(1)
		w.Write([]byte("a root-only service"))
	}))
	t.Cleanup(other.Close)
	r.special["/repo/dists/stable/Release"] = func(w http.ResponseWriter, req *http.Request) {
		http.Redirect(w, req, other.URL+"/secret", http.StatusFound)
	}
	s := start(t, t.TempDir(), r, Options{})
	for _, u := range []string{
		other.URL + "/repo/dists/stable/InRelease", // not a source
		r.srv.URL + "/repo/secret",                 // not dists/ or pool/
		r.srv.URL + "/repo/pool/../../etc/passwd",  // out of the archive
		r.srv.URL + "/elsewhere/dists/stable/InRelease",
		"http://169.254.169.254/latest/meta-data/",
	} {
		if code, body := get(t, s.ProxyURL(), u); code != http.StatusForbidden || !strings.Contains(body, "refused") {
			t.Errorf("%s: %d %s", u, code, body)
		}
	}
	if line := connect(t, s.Addr(), strings.TrimPrefix(other.URL, "http://"), "Proxy-Authorization: "+string(s.auth)+"\r\n"); !strings.Contains(line, "403") {
		t.Errorf("CONNECT to a host no https source names: %q", line)
	}
	// A source's redirect to a loopback address no source names.
	if code, body := get(t, s.ProxyURL(), r.srv.URL+"/repo/dists/stable/Release"); code != http.StatusBadGateway || !strings.Contains(body, "no apt source of this build names") {
		t.Errorf("a redirect to loopback: %d %s", code, body)
	}
	if n := reached.Load(); n != 0 {
		t.Fatalf("the unnamed service was reached %d times", n)
	}
	if n := r.count("/repo/secret") + r.count("/elsewhere/dists/stable/InRelease"); n != 0 {
		t.Fatalf("refused paths reached upstream %d times", n)
	}

	// A source the image names (read inside its root when asked) is allowed.
	img := t.TempDir()
	os.MkdirAll(filepath.Join(img, "etc/apt/sources.list.d"), 0o755)
	os.WriteFile(filepath.Join(img, "etc/apt/sources.list.d/test.list"), []byte("deb [signed-by=/k.gpg] "+r.srv.URL+"/repo stable main\n"), 0o644)
	root, err := inroot.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	s2 := start(t, t.TempDir(), r, Options{Sources: []string{}, SourcesMore: func() []string { return ImageSources(root) }})
	if _, err := apt(t, s2, r.srv.URL, "a_1_all.deb"); err != nil {
		t.Fatalf("the image's source: %v", err)
	}
	s3 := start(t, t.TempDir(), r, Options{Sources: []string{}})
	if _, err := apt(t, s3, r.srv.URL, "a_1_all.deb"); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("no source names the repository, yet: %v", err)
	}
}

// TestCacheTunnelIsItsHost: inside a CONNECT tunnel, the Host header
// cannot point the cache at another host.
func TestCacheTunnelIsItsHost(t *testing.T) {
	r := newRepo(t, true, map[string][]byte{"s_1_all.deb": []byte("s")})
	var reached atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { reached.Add(1) }))
	t.Cleanup(other.Close)
	s := start(t, t.TempDir(), r, Options{Sources: []string{r.srv.URL + "/repo", other.URL + "/repo"}})
	s.client.Transport.(*http.Transport).TLSClientConfig = &tls.Config{RootCAs: certPool(r.srv.Certificate())}
	host := strings.TrimPrefix(r.srv.URL, "https://")
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\nProxy-Authorization: %s\r\n\r\n", host, host, s.auth)
	br := bufio.NewReader(c)
	if line, _ := br.ReadString('\n'); !strings.Contains(line, "200") {
		t.Fatalf("CONNECT: %q", line)
	}
	br.ReadString('\n')
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.CAPEM())
	tc := tls.Client(c, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	fmt.Fprintf(tc, "GET /repo/dists/stable/InRelease HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", strings.TrimPrefix(other.URL, "http://"))
	resp, err := http.ReadResponse(bufio.NewReader(tc), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte("BEGIN PGP SIGNED MESSAGE")) || reached.Load() != 0 || r.count("/repo/dists/stable/InRelease") != 1 {
		t.Fatalf("inside the tunnel: %d, other reached %d times\n%s", resp.StatusCode, reached.Load(), body)
	}
}

// publishIndex serves a signed InRelease listing the Packages text
// (xz-compressed) and extra SHA256 lines as they are.
func (r *repo) publishIndex(packages string, extra string) []byte {
	var xzb bytes.Buffer
	w, _ := xz.NewWriter(&xzb)
	w.Write([]byte(packages))
	w.Close()
	pk := xzb.Bytes()
	rel := fmt.Sprintf("Suite: stable\nDate: %s\nSHA256:\n %s %d main/binary-amd64/Packages.xz\n%s", r.date.Format(time.RFC1123), sum(pk), len(pk), extra)
	r.set("/repo/dists/stable/main/binary-amd64/Packages.xz", pk)
	r.set("/repo/dists/stable/InRelease", r.key.sign(r.t, rel))
	return pk
}

// padTo64 makes a relative path of 64 characters that leads to the same
// place ("//" for one "/", then "./" prefixes), or "" when it is longer.
func padTo64(rel string) string {
	if len(rel) > 64 {
		return ""
	}
	if (64-len(rel))%2 == 1 {
		rel = strings.Replace(rel, "/", "//", 1)
	}
	for len(rel) < 64 {
		rel = "./" + rel
	}
	return rel
}

// TestCacheRefusesHostileDigests: a signed index whose SHA256 fields are
// paths neither serves a host file nor creates one outside the cache.
func TestCacheRefusesHostileDigests(t *testing.T) {
	r := newRepo(t, false, nil)
	dir := filepath.Join(t.TempDir(), "c")
	canaries := t.TempDir()
	secret := filepath.Join(canaries, "secret")
	os.WriteFile(secret, []byte("CANARY: a root-only host file"), 0o600)
	rel, _ := filepath.Rel(filepath.Join(dir, "blobs", "sha256"), secret)
	readHash := padTo64(rel)
	created := filepath.Join(canaries, "created")
	relLock, _ := filepath.Rel(filepath.Join(dir, "locks"), created)
	lockHash := padTo64(relLock)
	if len(readHash) != 64 || len(lockHash) != 64 {
		t.Skipf("temporary paths too long to pad to 64: %q %q", readHash, lockHash)
	}
	r.publishIndex(fmt.Sprintf("Package: evil\nVersion: 1\nFilename: pool/main/evil.deb\nSize: 29\nSHA256: %s\n\n", readHash),
		fmt.Sprintf(" %s 29 main/binary-amd64/Packages.gz\n %s 5 main/binary-amd64/Packages\n", readHash, lockHash))
	s := start(t, dir, r, Options{})
	for _, p := range []string{"dists/stable/InRelease", "dists/stable/main/binary-amd64/Packages.xz", "dists/stable/main/binary-amd64/Packages.gz", "dists/stable/main/binary-amd64/Packages", "pool/main/evil.deb"} {
		_, body := get(t, s.ProxyURL(), r.srv.URL+"/repo/"+p)
		if strings.Contains(body, "CANARY") {
			t.Fatalf("%s served the host file", p)
		}
	}
	if _, err := os.Stat(created); err == nil {
		t.Fatal("a digest created a file outside the cache")
	}
	// The one check, everywhere a digest names a file.
	st := s.Store()
	for _, bad := range []string{readHash, lockHash, strings.Repeat("A", 64), strings.Repeat("a", 63), ""} {
		if _, err := st.BlobPath(bad); !errors.Is(err, ErrDigest) {
			t.Errorf("BlobPath(%q): %v", bad, err)
		}
		if st.Has(bad) {
			t.Errorf("Has(%q)", bad)
		}
		if _, err := st.Lock(bad); !errors.Is(err, ErrDigest) {
			t.Errorf("Lock(%q): %v", bad, err)
		}
		if _, _, err := st.Put(strings.NewReader("x"), bad, 1); bad != "" && !errors.Is(err, ErrDigest) {
			t.Errorf("Put(%q): %v", bad, err)
		}
	}
	if _, err := os.Stat(created); err == nil {
		t.Fatal("Lock created a file outside the cache")
	}
}

// TestCacheKeepsOnlyVerifiedInRelease: an unsigned InRelease, or one
// signed by a key the build does not trust, is refused, never recorded,
// and a copy an older cache kept unverified is not used.
func TestCacheKeepsOnlyVerifiedInRelease(t *testing.T) {
	r := newRepo(t, false, map[string][]byte{"a_1_all.deb": []byte("a")})
	u := r.srv.URL + "/repo/dists/stable/InRelease"
	good := append([]byte{}, r.files["/repo/dists/stable/InRelease"]...)
	body := releaseBody(good)
	dir := t.TempDir()
	for name, c := range map[string]struct {
		data []byte
		want string
	}{
		"unsigned":    {body, "not a signed InRelease"},
		"unknown key": {otherSigner(t).sign(t, string(body)), "package_cache.keyrings"},
		"trailing":    {append(append([]byte{}, good...), []byte("\nSHA256:\n "+strings.Repeat("b", 64)+" 1 main/x\n")...), "not a signed InRelease"},
	} {
		r.set("/repo/dists/stable/InRelease", c.data)
		s := start(t, dir, r, Options{})
		code, msg := get(t, s.ProxyURL(), u)
		if code != http.StatusBadGateway || !strings.Contains(msg, c.want) || !strings.Contains(msg, u) {
			t.Errorf("%s: %d %s", name, code, msg)
		}
		if _, ok := s.store.lastOf(u); ok || s.store.Has(sum(c.data)) {
			t.Errorf("%s: the InRelease was kept", name)
		}
		s.Close()
	}
	if _, err := apt(t, start(t, dir, r, Options{Offline: true}), r.srv.URL); err == nil {
		t.Fatal("an offline build used an InRelease no build verified")
	}
	// A cache written before: the unverified copy is recorded.
	st, _ := OpenStore(dir)
	h, _, _ := st.Put(bytes.NewReader(body), "", -1)
	st.remember(urlRecord{URL: u, SHA256: h, Fetched: time.Now()})
	if _, err := apt(t, start(t, dir, r, Options{Offline: true}), r.srv.URL); err == nil || !strings.Contains(err.Error(), "not a signed InRelease") {
		t.Fatalf("offline with an unverified copy: %v", err)
	}
	r.set("/repo/dists/stable/InRelease", good)
	s := start(t, dir, r, Options{})
	if _, err := apt(t, s, r.srv.URL, "a_1_all.deb"); err != nil || s.Releases()[u] != sum(good) {
		t.Fatalf("online, upstream good again: %v %v", err, s.Releases())
	}
}

// TestCacheByHashNeedsAVerifiedIndex: a by-hash name no verified index
// lists is refused without asking upstream, and nothing is kept.
func TestCacheByHashNeedsAVerifiedIndex(t *testing.T) {
	r := newRepo(t, false, map[string][]byte{"a_1_all.deb": []byte("a")})
	planted := []byte("whatever a mirror sends")
	p := "/repo/dists/stable/main/binary-amd64/by-hash/SHA256/" + sum(planted)
	r.set(p, planted)
	s := start(t, t.TempDir(), r, Options{})
	get(t, s.ProxyURL(), r.srv.URL+"/repo/dists/stable/InRelease")
	if code, msg := get(t, s.ProxyURL(), r.srv.URL+p); code != http.StatusNotFound || !strings.Contains(msg, "no verified index") {
		t.Fatalf("%d %s", code, msg)
	}
	if r.count(p) != 0 || s.store.Has(sum(planted)) {
		t.Fatal("an unnamed by-hash file was fetched or kept")
	}
}

// TestCacheRefusesOlderInRelease: a validly signed but older InRelease
// (a replay) does not replace the recorded one, and If-Modified-Since is
// the cache's own fetch time, never upstream's Last-Modified.
func TestCacheRefusesOlderInRelease(t *testing.T) {
	r := newRepo(t, false, map[string][]byte{"a_1_all.deb": []byte("new")})
	u := r.srv.URL + "/repo/dists/stable/InRelease"
	future := time.Now().Add(10 * 365 * 24 * time.Hour).UTC().Format(http.TimeFormat)
	r.header["Last-Modified"] = future
	dir := t.TempDir()
	newer := append([]byte{}, r.files["/repo/dists/stable/InRelease"]...)
	if _, err := apt(t, start(t, dir, r, Options{}), r.srv.URL, "a_1_all.deb"); err != nil {
		t.Fatal(err)
	}
	// The mirror replays last month's InRelease, validly signed.
	r.date = r.date.Add(-30 * 24 * time.Hour)
	r.publish(map[string][]byte{"a_1_all.deb": []byte("old, vulnerable")})
	var warned []string
	s := start(t, dir, r, Options{Warn: func(m string) { warned = append(warned, m) }})
	got, err := apt(t, s, r.srv.URL)
	if err != nil || s.Releases()[u] != sum(newer) || len(got) != 0 {
		t.Fatalf("a replayed InRelease: %v, used %s", err, s.Releases()[u])
	}
	if len(warned) == 0 || !strings.Contains(warned[0], u) || !strings.Contains(warned[0], "older") {
		t.Fatalf("no warning naming the URL: %q", warned)
	}
	rec, _ := s.store.lastOf(u)
	if rec.SHA256 != sum(newer) {
		t.Fatal("the older InRelease replaced the record")
	}
	ims := r.headers["/repo/dists/stable/InRelease"].Get("If-Modified-Since")
	when, err := http.ParseTime(ims)
	if ims == future || err != nil || when.After(time.Now()) {
		t.Fatalf("If-Modified-Since %q: upstream's date, not the cache's", ims)
	}
}

// TestCacheStopsAtSignedSize: a download is read no further than the
// size its index gives.
func TestCacheStopsAtSignedSize(t *testing.T) {
	deb := bytes.Repeat([]byte("d"), 630)
	r := newRepo(t, false, map[string][]byte{"big_1_all.deb": deb})
	var sent atomic.Int64
	r.special["/repo/pool/main/big_1_all.deb"] = func(w http.ResponseWriter, req *http.Request) {
		w.Write(deb)
		chunk := bytes.Repeat([]byte("x"), 64<<10)
		for i := 0; i < 400<<20/len(chunk); i++ {
			n, err := w.Write(chunk)
			sent.Add(int64(n))
			if err != nil {
				return
			}
		}
	}
	s := start(t, t.TempDir(), r, Options{})
	_, err := apt(t, s, r.srv.URL, "big_1_all.deb")
	if err == nil || !strings.Contains(err.Error(), "more than the 630 bytes") {
		t.Fatalf("an endless .deb: %v", err)
	}
	if st := s.Stats(); st.Upstream > 631+int64(len(r.files["/repo/dists/stable/main/binary-amd64/Packages.xz"]))+2048 {
		t.Fatalf("read %d bytes upstream", st.Upstream)
	}
}

// TestCacheCutsOffSlowUpstream: an upstream that stops sending is cut off
// with an error naming the URL, and a download that drips holds up
// another build's request for the same file no longer than lockWait.
func TestCacheCutsOffSlowUpstream(t *testing.T) {
	deb := bytes.Repeat([]byte("s"), 1000)
	r := newRepo(t, false, map[string][]byte{"slow_1_all.deb": deb, "stuck_1_all.deb": []byte("stuck")})
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	r.special["/repo/pool/main/stuck_1_all.deb"] = func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Length", "5")
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-req.Context().Done():
		}
	}
	var first atomic.Bool
	r.special["/repo/pool/main/slow_1_all.deb"] = func(w http.ResponseWriter, req *http.Request) {
		if first.Swap(true) {
			w.Write(deb)
			return
		}
		for i := 0; i < len(deb); i++ { // one byte a tick: never idle, never done
			if _, err := w.Write(deb[i : i+1]); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-time.After(50 * time.Millisecond):
			case <-req.Context().Done():
				return
			}
		}
	}
	dir := t.TempDir()
	s := start(t, dir, r, Options{})
	s.limits.idle = 300 * time.Millisecond
	s.limits.total = 3 * time.Second
	if _, err := apt(t, s, r.srv.URL, "stuck_1_all.deb"); err == nil || !strings.Contains(err.Error(), "stuck_1_all.deb: upstream sent nothing for 300ms: cut off") {
		t.Fatalf("a stuck upstream: %v", err)
	}
	// One build's download drips; another build gets the file meanwhile.
	dripDone := make(chan error, 1)
	go func() { _, err := apt(t, s, r.srv.URL, "slow_1_all.deb"); dripDone <- err }()
	for !first.Load() {
		time.Sleep(10 * time.Millisecond)
	}
	s2 := start(t, dir, r, Options{})
	s2.limits.lockWait = 200 * time.Millisecond
	got, err := apt(t, s2, r.srv.URL, "slow_1_all.deb")
	if err != nil || !bytes.Equal(got["slow_1_all.deb"], deb) {
		t.Fatalf("the second build: %v", err)
	}
	select {
	case err := <-dripDone:
		t.Fatalf("the dripping download ended before the second build was served: %v", err)
	default:
	}
	if err := <-dripDone; err != nil && !strings.Contains(err.Error(), "cut off") {
		t.Fatalf("the dripping download: %v", err)
	}
}

// proxyAuthRequired is apt's report of a 407 answer.
var proxyAuthRequired = regexp.MustCompile(`(^|\s)407\s`)

// TestAptSendsTheCredentials: the real apt-get, configured as the builder
// configures it, sends the proxy credentials for http and for https
// (CONNECT) and gets its indexes through the cache.
func TestAptSendsTheCredentials(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("apt-get update needs root")
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		t.Skip("no apt-get")
	}
	for _, https := range []bool{false, true} {
		r := newRepo(t, https, map[string][]byte{"a_1_all.deb": []byte("a")})
		s := start(t, t.TempDir(), r, Options{})
		if https {
			s.client.Transport.(*http.Transport).TLSClientConfig = &tls.Config{RootCAs: certPool(r.srv.Certificate())}
		}
		work := t.TempDir()
		for _, d := range []string{"lists/partial", "cache/archives/partial", "parts", "prefs"} {
			os.MkdirAll(filepath.Join(work, d), 0o755)
		}
		os.WriteFile(filepath.Join(work, "ca.pem"), s.CAPEM(), 0o644)
		os.WriteFile(filepath.Join(work, "sources.list"), []byte("deb [signed-by="+testSigner(t).keyring+" arch=amd64] "+r.srv.URL+"/repo stable main\n"), 0o644)
		conf := fmt.Sprintf(`Acquire::http::Proxy "%s";
Acquire::https::Proxy "%s";
Acquire::https::CaInfo "%s/ca.pem";
Acquire::Languages "none";
APT::Sandbox::User "root";
APT::Architecture "amd64";
Dir::State::Lists "%[3]s/lists";
Dir::State::status "/dev/null";
Dir::Cache "%[3]s/cache";
Dir::Etc::SourceList "%[3]s/sources.list";
Dir::Etc::SourceParts "%[3]s/parts";
Dir::Etc::Preferences "%[3]s/prefs/none";
Dir::Etc::PreferencesParts "%[3]s/prefs";
`, s.ProxyURL(), s.ProxyURL(), work)
		os.WriteFile(filepath.Join(work, "apt.conf"), []byte(conf), 0o600)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		cmd := exec.CommandContext(ctx, "apt-get", "update")
		cmd.Env = append(os.Environ(), "APT_CONFIG="+filepath.Join(work, "apt.conf"))
		out, err := cmd.CombinedOutput()
		cancel()
		// "407" alone would match a port such as 40733 in the Get lines.
		if err != nil || proxyAuthRequired.Match(out) || strings.Contains(string(out), "W:") || strings.Contains(string(out), "E:") {
			t.Fatalf("https %v: apt-get update: %v\n%s", https, err, out)
		}
		if r.count("/repo/dists/stable/InRelease") != 1 || s.Stats().Misses == 0 {
			t.Fatalf("https %v: apt did not fetch through the cache: %+v\n%s", https, s.Stats(), out)
		}
	}
}
