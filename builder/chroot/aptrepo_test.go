package chroot

// aptRepo is a real apt repository the package cache tests build
// (dpkg-deb, apt-ftparchive, a gpg-signed InRelease) and serve on loopback,
// counting every request.

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/strata-build/packer-plugin-strata/internal/acctest"
)

type aptRepo struct {
	t        *testing.T
	dir      string
	gnupg    string
	key      string
	url      string
	srv      *http.Server
	ln       net.Listener
	mu       sync.Mutex
	requests map[string]int
	override map[string][]byte
}

func newAptRepo(t *testing.T) *aptRepo {
	t.Helper()
	r := &aptRepo{t: t, dir: t.TempDir(), gnupg: t.TempDir(), requests: map[string]int{}, override: map[string][]byte{}}
	os.Chmod(r.gnupg, 0o700)
	r.gpg("--quick-gen-key", "Strata Test Repository <repo@strata.invalid>", "ed25519", "sign", "never")
	r.key = filepath.Join(t.TempDir(), "strata-test.gpg")
	key := r.gpg("--export")
	if err := os.WriteFile(r.key, []byte(key), 0o644); err != nil {
		t.Fatal(err)
	}
	ln := lowPortListener(t)
	r.ln = ln
	r.url = "http://" + ln.Addr().String() + "/"
	r.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.requests[req.URL.Path]++
		data, over := r.override[req.URL.Path]
		r.mu.Unlock()
		if over {
			w.Write(data)
			return
		}
		http.FileServer(http.Dir(r.dir)).ServeHTTP(w, req)
	})}
	go r.srv.Serve(ln)
	t.Cleanup(func() { r.stop() })
	return r
}

func (r *aptRepo) gpg(args ...string) string {
	r.t.Helper()
	cmd := exec.Command("gpg", append([]string{"--batch", "--pinentry-mode", "loopback", "--passphrase", "", "--homedir", r.gnupg}, args...)...)
	out, err := cmd.Output()
	if err != nil {
		r.t.Fatalf("gpg %v: %v", args, err)
	}
	return string(out)
}

// add builds a package whose /usr/share/NAME/version holds the version.
func (r *aptRepo) add(name, version string, size int) string {
	return r.addDeb(deb{name: name, version: version, size: size})
}

// deb is a test package: its control fields and extra files.
type deb struct {
	name, version string
	size          int               // bytes of payload in /usr/share/NAME/payload
	control       string            // more control lines, such as "Depends: x"
	files         map[string]string // in-image path -> content
}

// addDeb builds d into the pool and returns its path in the repository.
func (r *aptRepo) addDeb(d deb) string {
	r.t.Helper()
	name, version := d.name, d.version
	src := filepath.Join(r.t.TempDir(), name)
	os.MkdirAll(filepath.Join(src, "DEBIAN"), 0o755)
	os.MkdirAll(filepath.Join(src, "usr/share", name), 0o755)
	os.WriteFile(filepath.Join(src, "DEBIAN/control"), []byte(fmt.Sprintf(
		"Package: %s\nVersion: %s\nArchitecture: all\nMaintainer: Strata Tests <tests@strata.invalid>\n%sDescription: a test package\n", name, version, d.control)), 0o644)
	os.WriteFile(filepath.Join(src, "usr/share", name, "version"), []byte(version+"\n"), 0o644)
	if d.size > 0 {
		os.WriteFile(filepath.Join(src, "usr/share", name, "payload"), bytes.Repeat([]byte(name), d.size/len(name)), 0o644)
	}
	for p, content := range d.files {
		os.MkdirAll(filepath.Join(src, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(src, p), []byte(content), 0o644)
	}
	pool := filepath.Join(r.dir, "pool/main")
	os.MkdirAll(pool, 0o755)
	debPath := filepath.Join(pool, fmt.Sprintf("%s_%s_all.deb", name, version))
	if out, err := exec.Command("dpkg-deb", "--root-owner-group", "-Zgzip", "--build", src, debPath).CombinedOutput(); err != nil {
		r.t.Fatalf("dpkg-deb: %v %s", err, out)
	}
	return "/pool/main/" + filepath.Base(debPath)
}

// index writes Packages (plain, xz), Release and the signed InRelease.
func (r *aptRepo) index() {
	r.t.Helper()
	dists := filepath.Join(r.dir, "dists/stable")
	bin := filepath.Join(dists, "main/binary-amd64")
	os.MkdirAll(bin, 0o755)
	sh := func(script string) {
		cmd := exec.Command("sh", "-c", script)
		cmd.Dir = r.dir
		if out, err := cmd.CombinedOutput(); err != nil {
			r.t.Fatalf("%s: %v %s", script, err, out)
		}
	}
	sh("apt-ftparchive packages pool > dists/stable/main/binary-amd64/Packages && xz -kf dists/stable/main/binary-amd64/Packages")
	sh("apt-ftparchive -o APT::FTPArchive::Release::Suite=stable -o APT::FTPArchive::Release::Codename=stable " +
		"-o APT::FTPArchive::Release::Components=main -o APT::FTPArchive::Release::Architectures=amd64 release dists/stable > /tmp/strata-test-Release.$$ && mv /tmp/strata-test-Release.$$ dists/stable/Release")
	os.Remove(filepath.Join(dists, "InRelease"))
	r.gpg("--clearsign", "-o", filepath.Join(dists, "InRelease"), filepath.Join(dists, "Release"))
}

func (r *aptRepo) count(p string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests[p]
}

func (r *aptRepo) stop() {
	r.srv.Close()
}

func (r *aptRepo) vars(t *testing.T, cache string, inline ...string) map[string]string {
	return map[string]string{
		"store_dir": filepath.Join(acctest.Scratch(t), "store"),
		"archive":   baseArchive(t),
		"cache_dir": cache,
		"repo_url":  r.url,
		"key_file":  r.key,
		"inline":    hclList(inline),
	}
}

func repoBuild(t *testing.T, e *acctest.Env, vars map[string]string) (*acctest.Proc, string) {
	t.Helper()
	dir := t.TempDir()
	r := e.Build(t, dir, acctest.Fixture("aptrepo.pkr.hcl"), vars)
	acctest.AssertClean(t, vars["store_dir"])
	return r, filepath.Join(dir, "output-repo")
}

func tarHas(t *testing.T, out, name string) string {
	t.Helper()
	cmd := exec.Command("tar", "-xOf", filepath.Join(out, "rootfs.tar"), name)
	b, err := cmd.Output()
	if err != nil {
		return ""
	}
	return string(b)
}
