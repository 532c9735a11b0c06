package chroot

// End-to-end tests: the real bin/packer builds the HCL templates in
// test-fixtures with this plugin installed by `packer plugins install --path`.
// `make test` sets STRATA_ACC=1, STRATA_PACKER and STRATA_PLUGIN.

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-build/packer-plugin-strata/export"
	"github.com/strata-build/packer-plugin-strata/export/exporttest"
	"github.com/strata-build/packer-plugin-strata/internal/acctest"
)

// The base build runs once and its outputs serve the other tests.
var (
	baseOnce sync.Once
	baseRun  *acctest.Proc
	baseVars map[string]string
	baseErr  string
)

func TestMain(m *testing.M) { acctest.Main(m) }

func baseBuild(t *testing.T) (*acctest.Proc, map[string]string) {
	e := acctest.Setup(t)
	baseOnce.Do(func() {
		dir, err := os.MkdirTemp("", "strata-acc-base-")
		if err != nil {
			baseErr = err.Error()
			return
		}
		acctest.RemoveAfter(dir)
		upload := filepath.Join(dir, "upload.txt")
		os.WriteFile(upload, []byte("uploaded by the test\n"), 0o640)
		baseVars = map[string]string{
			"store_dir":    filepath.Join(dir, "store"),
			"cache_dir":    e.CacheDir,
			"upload_src":   upload,
			"download_dst": filepath.Join(dir, "downloaded.txt"),
		}
		baseRun = e.Build(t, dir, acctest.Fixture("bootstrap.pkr.hcl"), baseVars)
		if baseRun.Code != 0 {
			baseErr = "base build failed:\n" + baseRun.Output()
		}
	})
	if baseErr != "" {
		t.Fatal(baseErr)
	}
	return baseRun, baseVars
}

func baseArchive(t *testing.T) string {
	r, _ := baseBuild(t)
	return filepath.Join(r.Dir, "output-base", "rootfs.tar.zst")
}

func TestAccBootstrapEveryFormat(t *testing.T) {
	r, vars := baseBuild(t)
	out := filepath.Join(r.Dir, "output-base")
	workDir := filepath.Join(vars["store_dir"], "work", "base")
	acctest.AssertClean(t, workDir)
	log := r.Output()

	for _, f := range []string{"rootfs.tar", "rootfs.tar.gz", "rootfs.tar.zst", "rootfs.squashfs", "rootfs.ext4"} {
		acctest.RunIn(t, out, "sha256sum", "-c", f+".sha256")
	}
	// The dir output holds the image's world-writable /tmp: only root may
	// reach it.
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("the output dir with a dir output is %v, want 0700", fi.Mode())
	}
	if b, err := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "touch", filepath.Join(out, "rootfs", "tmp", "x")).CombinedOutput(); err == nil {
		t.Errorf("nobody wrote into the dir output's /tmp: %s", b)
	}
	// The artifact ID is the image ID; the rootfs digest is the sha256 of
	// the uncompressed rootfs tar.
	m := exporttest.ManifestOf(t, out)
	if !strings.Contains(log, "Image "+m.ImageID) || m.ParentImageID != "" || len(m.Layers) != 1 {
		t.Errorf("artifact %+v not reported as such:\n%s", m, log)
	}
	tarSum, _ := os.ReadFile(filepath.Join(out, "rootfs.tar.sha256"))
	id := "sha256:" + strings.Fields(string(tarSum))[0]
	if m.RootfsDigest != id {
		t.Errorf("rootfs digest %s, the tar's sha256 %s", m.RootfsDigest, id)
	}
	dirSum, _ := os.ReadFile(filepath.Join(out, "rootfs.tree-sha256"))
	if !strings.HasPrefix(string(dirSum), id+"  rootfs/") {
		t.Errorf("dir digest %q differs from the tar's %s", dirSum, id)
	}

	// tar.zst unpacks to a tree where apt-get runs.
	tree := unpack(t, filepath.Join(out, "rootfs.tar.zst"))
	if v := acctest.RunIn(t, out, "chroot", tree, "apt-get", "--version"); !strings.HasPrefix(v, "apt ") {
		t.Errorf("apt-get --version in the unpacked tree: %q", v)
	}
	if b, _ := os.ReadFile(filepath.Join(tree, "root/uploaded.txt")); string(b) != "uploaded by the test\n" {
		t.Errorf("uploaded file: %q", b)
	}
	if fi, err := os.Stat(filepath.Join(tree, "root/uploaded.txt")); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("uploaded file mode: %v %v", fi, err)
	}
	if b, _ := os.ReadFile(vars["download_dst"]); string(b) != "hello\n" {
		t.Errorf("downloaded file: %q", b)
	}
	// policy-rc.d is the builder's; var/tmp/scratch is the mount point of
	// the template's tmpfs, which the builder made and must take away.
	for _, gone := range []string{"usr/sbin/policy-rc.d", "var/tmp/scratch", "etc/hostname"} {
		if _, err := os.Lstat(filepath.Join(tree, gone)); err == nil {
			t.Errorf("%s should not be in the image", gone)
		}
	}
	// The image must not carry the build host's resolver configuration.
	if b, err := os.ReadFile(filepath.Join(tree, "etc/resolv.conf")); err == nil {
		host, _ := os.ReadFile("/etc/resolv.conf")
		if bytes.Equal(b, host) {
			t.Error("the build host's resolv.conf ended up in the image")
		}
	}
	// The package cache fed the build and stayed out of the image. The
	// cache every test shares is warm from earlier runs, so what it holds
	// says nothing about this build: what this build's cache served does.
	debs, _ := filepath.Glob(filepath.Join(tree, "var/cache/apt/archives/*.deb"))
	if len(debs) > 0 {
		t.Errorf("%d .debs in the image's apt cache", len(debs))
	}
	pkgs, err := export.ReadPackages(filepath.Join(out, export.PackagesName))
	if err != nil {
		t.Fatal(err)
	}
	installed := len(pkgs)
	if served := cacheServed(t, log); served < installed || installed < 50 {
		t.Errorf("the package cache served %d files (hits and misses) to a build that installed %d packages: "+
			"the bootstrap's .debs did not all go through it", served, installed)
	}
	for _, leak := range []string{"etc/apt/apt.conf.d/99mmdebstrap", "run/strata"} {
		if _, err := os.Lstat(filepath.Join(tree, leak)); err == nil {
			t.Errorf("%s is in the image", leak)
		}
	}
	if m := exporttest.ManifestOf(t, out); m.PackageSnapshot == nil || len(m.PackageSnapshot.Releases) == 0 {
		t.Errorf("artifact.json records no package snapshot: %+v", m.PackageSnapshot)
	}
	if man, _ := os.ReadFile(filepath.Join(out, "packages.tsv")); !bytes.Contains(man, []byte("\napt\t")) && !bytes.HasPrefix(man, []byte("apt\t")) {
		t.Errorf("packages.tsv lacks apt:\n%s", man)
	}
	// ext4 and squashfs are sound.
	acctest.RunIn(t, out, "e2fsck", "-fn", "rootfs.ext4")
	if l := acctest.RunIn(t, out, "unsquashfs", "-l", "rootfs.squashfs"); !strings.Contains(l, "squashfs-root/etc/debian_version") {
		t.Error("squashfs listing lacks etc/debian_version")
	}
	// The read-only bind mount kept the chroot from writing to the host.
	if _, err := os.Stat(filepath.Join(filepath.Dir(vars["upload_src"]), "written-from-chroot")); err == nil {
		t.Error("the chroot wrote through a read-only bind mount")
	}
	if _, err := os.Stat(filepath.Join(tree, "mnt/host/upload.txt")); err == nil {
		t.Error("a bind mount's content ended up in the image")
	}
	// Hooks ran at their points.
	for _, m := range []string{"pre_mount.marker", "post_mount.marker", "pre_unmount.marker", "shell_local.marker"} {
		if _, err := os.Stat(filepath.Join(workDir, m)); err != nil {
			t.Errorf("hook marker %s: %v", m, err)
		}
	}
	for _, want := range []string{"Bootstrapping bookworm", "package cache", "Mounting", "torn down", "Wrote rootfs.tar.zst"} {
		if !strings.Contains(log, want) {
			t.Errorf("progress lacks %q", want)
		}
	}
}

// cacheServed is hits + misses from the package cache line at the end of a
// build's log: the files this build's apt fetched through the cache.
func cacheServed(t *testing.T, log string) int {
	t.Helper()
	m := regexp.MustCompile(`package cache: (\d+) hits, (\d+) misses`).FindStringSubmatch(log)
	if m == nil {
		t.Fatalf("no package cache line at the end of the build:\n%s", log)
	}
	hits, _ := strconv.Atoi(m[1])
	misses, _ := strconv.Atoi(m[2])
	return hits + misses
}

func archiveVars(t *testing.T, archive string, inline ...string) map[string]string {
	quoted := make([]string, len(inline))
	for i, s := range inline {
		quoted[i] = strconv.Quote(s)
	}
	return map[string]string{
		"store_dir": filepath.Join(acctest.Scratch(t), "store"),
		"archive":   archive,
		"inline":    "[" + strings.Join(quoted, ",") + "]",
	}
}

func TestAccFailingProvisioner(t *testing.T) {
	e := acctest.Setup(t)
	vars := archiveVars(t, baseArchive(t), "echo about to fail", "exit 3")
	dir := t.TempDir()
	r := e.Build(t, dir, acctest.Fixture("archive.pkr.hcl"), vars)
	if r.Code != 1 {
		t.Fatalf("exit code %d, want 1:\n%s", r.Code, r.Output())
	}
	if !strings.Contains(r.Output(), "exit status 3") && !strings.Contains(r.Output(), "non-zero exit status") {
		t.Errorf("the failure is not reported:\n%s", r.Output())
	}
	if _, err := os.Stat(filepath.Join(dir, "output-app")); err == nil {
		t.Error("output dir left after a failed build")
	}
	acctest.AssertClean(t, filepath.Join(vars["store_dir"], "work"))
}

func TestAccDaemonLeftRunning(t *testing.T) {
	e := acctest.Setup(t)
	vars := archiveVars(t, baseArchive(t), "sleep 1000 &", "echo left a daemon")
	r := e.Build(t, t.TempDir(), acctest.Fixture("archive.pkr.hcl"), vars)
	if r.Code != 0 {
		t.Fatalf("exit code %d:\n%s", r.Code, r.Output())
	}
	if !strings.Contains(r.Output(), "stopped 1 process(es) still running in the chroot") {
		t.Errorf("the daemon was not reported stopped:\n%s", r.Output())
	}
	acctest.AssertClean(t, filepath.Join(vars["store_dir"], "work"))
}

// TestAccResolvConfAbsoluteSymlink builds an image whose /etc/resolv.conf is
// an absolute symlink naming a real host file: the build resolves names, the
// host file is untouched and the image's link is exactly as before.
func TestAccResolvConfAbsoluteSymlink(t *testing.T) {
	e := acctest.Setup(t)
	base := baseArchive(t)
	hostFile := filepath.Join(t.TempDir(), "host-resolv.conf")
	hostContent := []byte("# a host file the image's symlink names\n")
	os.WriteFile(hostFile, hostContent, 0o644)
	old := time.Unix(1500000000, 0)
	os.Chtimes(hostFile, old, old)

	tree := unpack(t, base)
	os.Remove(filepath.Join(tree, "etc/resolv.conf"))
	if err := os.Symlink(hostFile, filepath.Join(tree, "etc/resolv.conf")); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "linked.tar")
	acctest.RunIn(t, tree, "tar", "-cpf", archive, "--numeric-owner", "--xattrs", ".")

	for _, mode := range []string{"copy-host", "bind-host", "none"} {
		t.Run(mode, func(t *testing.T) {
			check := "grep -q '^nameserver' /etc/resolv.conf"
			if mode == "none" {
				check = "test -L /etc/resolv.conf" // the image's own, untouched
			}
			vars := archiveVars(t, archive, check, "echo resolv ok")
			vars["resolv_conf"] = mode
			dir := t.TempDir()
			r := e.Build(t, dir, acctest.Fixture("archive.pkr.hcl"), vars)
			if r.Code != 0 {
				t.Fatalf("exit %d:\n%s", r.Code, r.Output())
			}
			got, _ := os.ReadFile(hostFile)
			fi, _ := os.Stat(hostFile)
			if !bytes.Equal(got, hostContent) || !fi.ModTime().Equal(old) {
				t.Fatalf("the host file was written: %q %v", got, fi.ModTime())
			}
			link, err := os.Readlink(filepath.Join(dir, "output-app", "rootfs", "etc", "resolv.conf"))
			if err != nil || link != hostFile {
				t.Fatalf("the image's symlink is %q (%v), want %q", link, err, hostFile)
			}
			acctest.AssertClean(t, filepath.Join(vars["store_dir"], "work"))
		})
	}
}

func TestAccInvalidConfigTouchesNothing(t *testing.T) {
	e := acctest.Setup(t)
	store := filepath.Join(acctest.Scratch(t), "store")
	dir := t.TempDir()
	r := e.Build(t, dir, acctest.Fixture("invalid.pkr.hcl"), map[string]string{"store_dir": store})
	if r.Code == 0 {
		t.Fatal("an invalid template built")
	}
	for _, opt := range []string{"bootstrap and source_archive are both set", "bootstrap.variant", "bootstrap.mirror",
		"source_archive", "formats", "resolv_conf", "ext4_free_space", "chroot_mounts[0].target", "chroot_mounts[1].target",
		"output_dir", "overlaps store_dir", "command_wrapper", "{{ .Command }}", "copy_files", "use resolv_conf"} {
		if !strings.Contains(r.Output(), opt) {
			t.Errorf("error output does not name %q:\n%s", opt, r.Output())
		}
	}
	if _, err := os.Stat(store); err == nil {
		t.Error("an invalid build created its store")
	}
	if _, err := os.Stat(filepath.Join(dir, "output-bad")); err == nil {
		t.Error("an invalid build created its output dir")
	}
}

func TestAccOutputDirExistsNeedsForce(t *testing.T) {
	e := acctest.Setup(t)
	vars := archiveVars(t, baseArchive(t), "true")
	vars["formats"] = `["tar.zst"]`
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "output-app"), 0o755)
	os.WriteFile(filepath.Join(dir, "output-app", "keep"), []byte("x"), 0o644)
	r := e.Build(t, dir, acctest.Fixture("archive.pkr.hcl"), vars)
	if r.Code == 0 || !strings.Contains(r.Output(), "force") {
		t.Fatalf("an existing output dir was not refused:\n%s", r.Output())
	}
	if _, err := os.Stat(filepath.Join(dir, "output-app", "keep")); err != nil {
		t.Fatal("the refused build touched the existing output dir")
	}
	if _, err := os.Stat(filepath.Join(vars["store_dir"], "work")); err == nil {
		t.Error("the refused build created a work dir")
	}
	// -force replaces only an earlier build's outputs: not a directory of
	// the user's.
	r = e.Build(t, dir, acctest.Fixture("archive.pkr.hcl"), vars, "-force")
	if r.Code == 0 || !strings.Contains(r.Output(), "was not made by strata-chroot") {
		t.Fatalf("-force replaced a directory no build made:\n%s", r.Output())
	}
	if _, err := os.Stat(filepath.Join(dir, "output-app", "keep")); err != nil {
		t.Fatal("the refused -force build touched the existing output dir")
	}
	os.Remove(filepath.Join(dir, "output-app", "keep"))
	r = e.Build(t, dir, acctest.Fixture("archive.pkr.hcl"), vars, "-force")
	if r.Code != 0 {
		t.Fatalf("-force build into an empty dir failed:\n%s", r.Output())
	}
	if _, err := os.Stat(filepath.Join(dir, "output-app", "rootfs.tar.zst")); err != nil {
		t.Fatal(err)
	}
	acctest.AssertClean(t, filepath.Join(vars["store_dir"], "work"))
}

func TestAccServiceStartNotPrevented(t *testing.T) {
	e := acctest.Setup(t)
	vars := archiveVars(t, baseArchive(t), "test ! -e /usr/sbin/policy-rc.d")
	vars["prevent_service_start"] = "false"
	r := e.Build(t, t.TempDir(), acctest.Fixture("archive.pkr.hcl"), vars)
	if r.Code != 0 {
		t.Fatalf("with prevent_service_start = false there must be no policy-rc.d:\n%s", r.Output())
	}
	acctest.AssertClean(t, filepath.Join(vars["store_dir"], "work"))
}
