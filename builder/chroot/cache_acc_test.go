package chroot

// End-to-end tests of the package cache against a real apt repository the
// test builds (dpkg-deb, apt-ftparchive, a gpg-signed InRelease) and serves
// on loopback, counting every request.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-build/packer-plugin-strata/export/exporttest"
	"github.com/strata-build/packer-plugin-strata/internal/acctest"
)

// TestAccPackageCache: a provisioner's apt-get install goes through the
// cache; the next build fetches no .deb upstream; with the repository gone
// and offline = true a build still succeeds; a snapshot build installs the
// old version after the repository published a newer one; nothing of the
// cache ends up in an image. strata cache counts the builds and lists their
// snapshots; strata cache keep and prune keep exactly what a kept snapshot
// needs, enough for an offline build pinned to it.
func TestAccPackageCache(t *testing.T) {
	e := acctest.Setup(t)
	repo := newAptRepo(t)
	deb1 := repo.add("strata-hello", "1.0", 50000)
	repo.index()
	cache := t.TempDir()
	install := []string{"apt-get update -qq", "apt-get install -y -qq strata-hello", "cat /usr/share/strata-hello/version"}

	r1, out1 := repoBuild(t, e, repo.vars(t, cache, install...))
	if r1.Code != 0 {
		t.Fatalf("build 1: exit %d\n%s", r1.Code, r1.Output())
	}
	if n := repo.count(deb1); n != 1 {
		t.Fatalf("build 1 fetched the .deb %d times", n)
	}
	if v := tarHas(t, out1, "./usr/share/strata-hello/version"); v != "1.0\n" {
		t.Fatalf("the image has version %q", v)
	}
	list := acctest.RunIn(t, out1, "tar", "-tf", filepath.Join(out1, "rootfs.tar"))
	if strings.Contains(list, ".deb\n") || strings.Contains(list, "run/strata") {
		t.Error("a .deb or the cache's apt config is in the image")
	}
	conf := acctest.RunIn(t, out1, "sh", "-c", "tar -xOf rootfs.tar --wildcards './etc/apt/*' 2>/dev/null || true")
	if strings.Contains(strings.ToLower(conf), "proxy") || strings.Contains(conf, "Acquire::") {
		t.Errorf("a proxy setting or the cache's address is in /etc/apt:\n%s", conf)
	}
	if src := tarHas(t, out1, "./etc/apt/sources.list.d/strata-test.list"); !strings.Contains(src, repo.url) {
		t.Errorf("the image's source is %q, want the repository itself", src)
	}
	if !strings.Contains(r1.Output(), "package cache: ") {
		t.Error("no cache line")
	}

	r2, _ := repoBuild(t, e, repo.vars(t, cache, install...))
	if r2.Code != 0 || repo.count(deb1) != 1 || !strings.Contains(r2.Output(), " 0 misses") {
		t.Fatalf("build 2 (warm): exit %d, the .deb fetched %d times in all\n%s", r2.Code, repo.count(deb1), r2.Output())
	}

	// The repository moves on.
	deb2 := repo.add("strata-hello", "2.0", 50000)
	extra := repo.add("strata-extra", "1.0", 1000) // listed, never fetched
	deb1Data, _ := os.ReadFile(filepath.Join(repo.dir, deb1))
	deb2Data, _ := os.ReadFile(filepath.Join(repo.dir, deb2))
	os.Remove(filepath.Join(repo.dir, deb1))
	repo.index()
	snapVars := repo.vars(t, cache, install...)
	snapVars["snapshot"] = filepath.Join(out1, "artifact.json")
	r3, out3 := repoBuild(t, e, snapVars)
	if r3.Code != 0 {
		t.Fatalf("snapshot build: exit %d\n%s", r3.Code, r3.Output())
	}
	if v := tarHas(t, out3, "./usr/share/strata-hello/version"); v != "1.0\n" {
		t.Errorf("the snapshot build installed %q, want the snapshot's 1.0", v)
	}
	r4, out4 := repoBuild(t, e, repo.vars(t, cache, install...))
	if v := tarHas(t, out4, "./usr/share/strata-hello/version"); r4.Code != 0 || v != "2.0\n" || repo.count(deb2) != 1 {
		t.Errorf("an unpinned build: exit %d, version %q\n%s", r4.Code, v, r4.Output())
	}

	// The repository is gone: offline builds go on from the cache.
	repo.stop()
	off := repo.vars(t, cache, install...)
	off["offline"] = "true"
	r5, out5 := repoBuild(t, e, off)
	if v := tarHas(t, out5, "./usr/share/strata-hello/version"); r5.Code != 0 || v != "2.0\n" {
		t.Fatalf("offline build: exit %d, version %q\n%s", r5.Code, v, r5.Output())
	}
	// Offline, a file the cache lacks fails the build, which names it.
	miss := repo.vars(t, cache, "apt-get update -qq", "apt-get install -y -qq strata-extra")
	miss["offline"] = "true"
	r6, _ := repoBuild(t, e, miss)
	if r6.Code == 0 || !strings.Contains(r6.Output(), filepath.Base(extra)) || !strings.Contains(r6.Output(), "not in the package cache") {
		t.Fatalf("an offline miss: exit %d\n%s", r6.Code, r6.Output())
	}

	// strata cache reports the six builds and the snapshots they saw.
	report := cacheReport(t, e, cache)
	if report.Builds != 6 {
		t.Errorf("strata cache counts %d builds, six used the cache", report.Builds)
	}
	snap1 := exporttest.ManifestOf(t, out1).PackageSnapshot.ID
	snap4 := exporttest.ManifestOf(t, out4).PackageSnapshot.ID
	if snap1 == snap4 || report.snapshot(snap1) == nil || report.snapshot(snap4) == nil {
		t.Fatalf("strata cache lists snapshots %+v, want %s (build 1) and %s (build 4)", report.Snapshots, snap1, snap4)
	}
	if s := report.snapshot(snap1); s.Builds < 3 || s.Kept {
		t.Errorf("build 1's snapshot: %+v, want at least 3 builds (1, 2 and the pinned 3), not kept", s)
	}

	// strata cache keep takes a short ID, as strata cache prints it.
	hex1 := strings.TrimPrefix(snap1, "sha256:")
	if o := strataCLI(t, e, "cache", "--dir", cache, "keep", hex1[:12]); !strings.Contains(o, "kept "+snap1) {
		t.Errorf("strata cache keep: %s", o)
	}
	if s := cacheReport(t, e, cache).snapshot(snap1); s == nil || !s.Kept {
		t.Errorf("after keep, strata cache shows %+v", s)
	}
	// prune with every build older than the cut-off: the dry run removes
	// nothing; the prune removes the 2.0 .deb that only unkept snapshots
	// used, and leaves the 1.0 .deb the kept snapshot needs.
	blob := func(deb []byte) string { return filepath.Join(cache, "blobs/sha256", sumHex(deb)) }
	filesBefore := cacheReport(t, e, cache).Files
	time.Sleep(10 * time.Millisecond)
	dry := strataCLI(t, e, "--json", "cache", "--dir", cache, "prune", "--unused-for", "1ms", "--dry-run")
	if after := cacheReport(t, e, cache).Files; after != filesBefore || !strings.Contains(dry, `"files"`) {
		t.Errorf("prune --dry-run: %d files before, %d after\n%s", filesBefore, after, dry)
	}
	var pruned struct {
		Files int `json:"files"`
		Kept  int `json:"kept_files"`
	}
	if err := json.Unmarshal([]byte(strataCLI(t, e, "--json", "cache", "--dir", cache, "prune", "--unused-for", "1ms")), &pruned); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(blob(deb1Data)); err != nil {
		t.Errorf("prune removed the 1.0 .deb the kept snapshot needs: %v", err)
	}
	if _, err := os.Stat(blob(deb2Data)); err == nil {
		t.Error("prune left the 2.0 .deb no kept snapshot needs")
	}
	if after := cacheReport(t, e, cache).Files; pruned.Files == 0 || pruned.Kept == 0 || after != filesBefore-pruned.Files {
		t.Errorf("prune says it removed %d files and kept %d; the cache went from %d to %d files", pruned.Files, pruned.Kept, filesBefore, after)
	}
	// What the kept snapshot needs is enough for an offline build pinned to it.
	kept := repo.vars(t, cache, install...)
	kept["offline"] = "true"
	kept["snapshot"] = filepath.Join(out1, "artifact.json")
	r7, out7 := repoBuild(t, e, kept)
	if v := tarHas(t, out7, "./usr/share/strata-hello/version"); r7.Code != 0 || v != "1.0\n" {
		t.Fatalf("an offline build of the kept snapshot after prune: exit %d, version %q\n%s", r7.Code, v, r7.Output())
	}
}

// cacheState is `strata cache --json`.
type cacheState struct {
	Files     int `json:"files"`
	Builds    int `json:"builds"`
	Snapshots []struct {
		ID     string `json:"id"`
		Builds int    `json:"builds"`
		Kept   bool   `json:"kept"`
	} `json:"snapshots"`
}

func (c *cacheState) snapshot(id string) *struct {
	ID     string `json:"id"`
	Builds int    `json:"builds"`
	Kept   bool   `json:"kept"`
} {
	for i := range c.Snapshots {
		if c.Snapshots[i].ID == id {
			return &c.Snapshots[i]
		}
	}
	return nil
}

func cacheReport(t *testing.T, e *acctest.Env, cache string) *cacheState {
	t.Helper()
	var c cacheState
	o := strataCLI(t, e, "--json", "cache", "--dir", cache)
	if err := json.Unmarshal([]byte(o), &c); err != nil {
		t.Fatalf("strata cache --json: %v\n%s", err, o)
	}
	return &c
}

// strataCLI runs bin/strata, which must succeed.
func strataCLI(t *testing.T, e *acctest.Env, args ...string) string {
	t.Helper()
	r := e.Strata(t, nil, args...)
	if r.Code != 0 {
		t.Fatalf("strata %s: exit %d\n%s", strings.Join(args, " "), r.Code, r.Out)
	}
	return r.Out
}

// TestAccPackageCacheRefusesCorrupt: an upstream .deb with the right size
// and the wrong bytes, or a truncated one, fails the install and never
// enters the cache.
func TestAccPackageCacheRefusesCorrupt(t *testing.T) {
	e := acctest.Setup(t)
	repo := newAptRepo(t)
	bad := repo.add("strata-bad", "1.0", 20000)
	short := repo.add("strata-short", "1.0", 20000)
	repo.index()
	good, _ := os.ReadFile(filepath.Join(repo.dir, bad))
	corrupt := append([]byte{}, good...)
	corrupt[len(corrupt)/2] ^= 0xff
	goodShort, _ := os.ReadFile(filepath.Join(repo.dir, short))
	repo.mu.Lock()
	repo.override[bad] = corrupt
	repo.override[short] = goodShort[:len(goodShort)/2]
	repo.mu.Unlock()
	cache := t.TempDir()
	for _, pkg := range []string{"strata-bad", "strata-short"} {
		r, _ := repoBuild(t, e, repo.vars(t, cache, "apt-get update -qq", "apt-get install -y -qq "+pkg))
		if r.Code == 0 {
			t.Fatalf("%s: a corrupt download was installed\n%s", pkg, r.Output())
		}
		if !strings.Contains(r.Output(), "does not match the index") {
			t.Errorf("%s: the build does not say why:\n%s", pkg, r.Output())
		}
	}
	for _, data := range [][]byte{good, corrupt, goodShort, goodShort[:len(goodShort)/2]} {
		if _, err := os.Stat(filepath.Join(cache, "blobs/sha256", sumHex(data))); err == nil {
			t.Fatal("a refused .deb (or its good twin) is in the cache")
		}
	}
}

// TestAccPackageCacheConcurrent: four builds at once through one cache all
// succeed and fetch each .deb upstream exactly once.
func TestAccPackageCacheConcurrent(t *testing.T) {
	e := acctest.Setup(t)
	repo := newAptRepo(t)
	var debs []string
	for i := 0; i < 3; i++ {
		debs = append(debs, repo.add(fmt.Sprintf("strata-c%d", i), "1.0", 300000))
	}
	repo.index()
	cache := t.TempDir()
	var runs []*acctest.Proc
	var stores []string
	for i := 0; i < 4; i++ {
		v := repo.vars(t, cache, "apt-get update -qq", "apt-get install -y -qq strata-c0 strata-c1 strata-c2")
		stores = append(stores, v["store_dir"])
		runs = append(runs, e.Start(t, t.TempDir(), acctest.Fixture("aptrepo.pkr.hcl"), v))
	}
	for i, r := range runs {
		r.Wait(t, 10*time.Minute)
		if r.Code != 0 {
			t.Fatalf("build %d: exit %d\n%s", i, r.Code, r.Output())
		}
		acctest.AssertClean(t, stores[i])
	}
	for _, d := range debs {
		if n := repo.count(d); n != 1 {
			t.Errorf("%s was fetched upstream %d times by four builds", d, n)
		}
	}
}

// TestAccPackageCacheUpstreamProxy chains the cache to a real
// apt-cacher-ng, as a fleet of build hosts would share one.
func TestAccPackageCacheUpstreamProxy(t *testing.T) {
	e := acctest.Setup(t)
	repo := newAptRepo(t)
	deb := repo.add("strata-via-acng", "1.0", 10000)
	repo.index()
	acng := t.TempDir()
	for _, d := range []string{"cfg", "cache", "log"} {
		os.MkdirAll(filepath.Join(acng, d), 0o755)
	}
	exec.Command("sh", "-c", "cp /etc/apt-cacher-ng/* "+filepath.Join(acng, "cfg")).Run()
	ln := lowPortListener(t)
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	repoPort := strings.TrimSuffix(strings.Split(repo.url, ":")[2], "/")
	cmd := exec.Command("apt-cacher-ng", "-c", filepath.Join(acng, "cfg"), "ForeGround=1", "Port="+port, "BindAddress=127.0.0.1",
		"CacheDir="+filepath.Join(acng, "cache"), "LogDir="+filepath.Join(acng, "log"), "AllowUserPorts="+repoPort,
		"SocketPath="+filepath.Join(acng, "socket"), "PidFile="+filepath.Join(acng, "pid"))
	var acngOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &acngOut, &acngOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", "127.0.0.1:"+port)
		if err == nil {
			c.Close()
			break
		}
		if i > 150 {
			t.Fatalf("apt-cacher-ng does not listen on %s: %s", port, acngOut.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	v := repo.vars(t, t.TempDir(), "apt-get update -qq", "apt-get install -y -qq strata-via-acng")
	v["upstream_proxy"] = "http://127.0.0.1:" + port
	r, _ := repoBuild(t, e, v)
	if r.Code != 0 {
		t.Fatalf("exit %d\n%s", r.Code, r.Output())
	}
	logs, _ := os.ReadFile(filepath.Join(acng, "log", "apt-cacher.log"))
	if !strings.Contains(string(logs), filepath.Base(deb)) {
		t.Errorf("apt-cacher-ng did not carry the .deb:\n%s", logs)
	}
}

func sumHex(b []byte) string {
	h := exec.Command("sha256sum")
	h.Stdin = bytes.NewReader(b)
	out, _ := h.Output()
	return strings.Fields(string(out))[0]
}

// lowPortListener listens on a free loopback port below 32768: apt-cacher-ng
// 3.7 mishandles ports above that, both to listen on and to fetch from.
func lowPortListener(t *testing.T) net.Listener {
	t.Helper()
	for p := 20000 + (os.Getpid()*31+int(time.Now().UnixNano()%997))%8000; p < 32000; p += 13 {
		if ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p)); err == nil {
			return ln
		}
	}
	t.Fatal("no free port below 32768")
	return nil
}

// secretPattern is what the build's proxy credentials look like wherever
// they would leak: a 64-hex-digit password before "@127.0.0.1", or
// "strata:<password>" in base64 (a Proxy-Authorization value).
var secretPattern = regexp.MustCompile(`[0-9a-f]{64}@127\.0\.0\.1|c3RyYXRhO[A-Za-z0-9+/]{80}`)

// cacheListeners are the loopback ports the plugin under packer pid
// listens on.
func cacheListeners(t *testing.T, packerPid int) []string {
	out, _ := exec.Command("ss", "-ltnpH").Output()
	var ports []string
	for _, line := range strings.Split(string(out), "\n") {
		m := regexp.MustCompile(`127\.0\.0\.1:(\d+) .*pid=(\d+),`).FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if descendsFrom(m[2], packerPid) {
			ports = append(ports, m[1])
		}
	}
	return ports
}

// descendsFrom says whether process pid is under ancestor (packer runs
// its plugins under a second packer process).
func descendsFrom(pid string, ancestor int) bool {
	for i := 0; i < 8 && pid != "" && pid != "1"; i++ {
		stat, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil {
			return false
		}
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(f) < 2 {
			return false
		}
		if pid = f[1]; pid == strconv.Itoa(ancestor) {
			return true
		}
	}
	return false
}

// TestAccPackageCacheServesOnlyItsBuild: while a build runs, another
// local user (nobody) gets 407 from its cache and reaches nothing through
// it; apt in the chroot cannot fetch from an origin no source names; the
// proxy credentials are in no log line, image or artifact.json (the
// bootstrap's, passed to mmdebstrap, included).
func TestAccPackageCacheServesOnlyItsBuild(t *testing.T) {
	e := acctest.Setup(t)
	repo := newAptRepo(t)
	repo.add("strata-hello", "1.0", 1000)
	repo.index()
	var unlisted atomic.Int32
	other := lowPortListener(t)
	go http.Serve(other, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { unlisted.Add(1) }))
	defer other.Close()
	v := repo.vars(t, t.TempDir(),
		"apt-get update -qq", "apt-get install -y -qq strata-hello",
		"if /usr/lib/apt/apt-helper download-file http://"+other.Addr().String()+"/pool/main/x.deb /tmp/x.deb; then echo FETCHED-UNLISTED; else echo REFUSED-UNLISTED; fi",
		"sleep 10")
	dir := t.TempDir()
	r := e.Start(t, dir, acctest.Fixture("aptrepo.pkr.hcl"), v)
	attacked := 0
	for deadline := time.Now().Add(5 * time.Minute); attacked == 0 && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		select {
		case <-r.Done():
			t.Fatalf("the build ended before its cache was seen: exit %d\n%s", r.Code, r.Output())
		default:
		}
		for _, port := range cacheListeners(t, r.Cmd.Process.Pid) {
			proxy := "http://127.0.0.1:" + port
			out, _ := exec.Command("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--",
				"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--proxy", proxy, repo.url+"dists/stable/attack").Output()
			if string(out) == "407" {
				attacked++
				out, _ = exec.Command("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--",
					"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--proxy", "http://strata:guess@127.0.0.1:"+port, "http://"+other.Addr().String()+"/dists/x").Output()
				if string(out) != "407" {
					t.Errorf("nobody with a guessed password: %s", out)
				}
			}
		}
	}
	r.Wait(t, 10*time.Minute)
	acctest.AssertClean(t, v["store_dir"])
	if r.Code != 0 {
		t.Fatalf("exit %d\n%s", r.Code, r.Output())
	}
	if attacked == 0 {
		t.Fatal("the build's cache never answered nobody with 407")
	}
	if repo.count("/dists/stable/attack") != 0 || unlisted.Load() != 0 {
		t.Fatalf("the attacks reached upstream: %d, %d", repo.count("/dists/stable/attack"), unlisted.Load())
	}
	if !strings.Contains(r.Output(), "REFUSED-UNLISTED") || !strings.Contains(r.Output(), "is not a file apt asks for") {
		t.Fatalf("apt in the chroot reached an unlisted origin:\n%s", r.Output())
	}
	base, _ := baseBuild(t)
	// mmdebstrap's apt took the cache's options from the 0600 file: the
	// bootstrap went through the cache (with the credentials, or it would
	// have got 407s).
	if m := regexp.MustCompile(`package cache: (\d+) hits, (\d+) misses`).FindStringSubmatch(base.Output()); m == nil || m[1]+m[2] == "00" {
		t.Errorf("the bootstrap did not go through the cache: %v", m)
	}
	for name, data := range map[string]string{"the build's log": r.Output(), "the bootstrap's log": base.Output()} {
		if secretPattern.MatchString(data) {
			t.Errorf("%s holds the proxy credentials", name)
		}
	}
	for _, f := range []string{filepath.Join(dir, "output-repo", "rootfs.tar"), filepath.Join(dir, "output-repo", "artifact.json"), filepath.Join(base.Dir, "output-base", "rootfs.tar"), filepath.Join(base.Dir, "output-base", "artifact.json")} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if secretPattern.Match(data) {
			t.Errorf("%s holds the proxy credentials", f)
		}
	}
}
