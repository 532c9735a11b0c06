package inroot

// Every operation is tried against an image that attacks the host: absolute
// and relative symlinks naming a host directory, .. climbing above the
// root, magic links through /proc, links where a file is expected. The
// host directory beside the image must come out untouched.

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/strata-build/packer-plugin-strata/internal/mount"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// fixture is an image root and, beside it, a host directory holding a
// secret that no operation in the image may read, write or remove.
type fixture struct {
	root, host string
	r          *Root
}

const secret = "host secret\n"

func newFixture(t *testing.T) *fixture {
	t.Helper()
	base := t.TempDir()
	f := &fixture{root: filepath.Join(base, "image"), host: filepath.Join(base, "host")}
	for _, d := range []string{f.root, f.host, filepath.Join(f.root, "etc"), filepath.Join(f.root, "srv/a/b")} {
		must(t, os.MkdirAll(d, 0o755))
	}
	must(t, os.WriteFile(filepath.Join(f.host, "secret"), []byte(secret), 0o600))
	must(t, os.WriteFile(filepath.Join(f.root, "etc/os-release"), []byte("image\n"), 0o644))
	links := map[string]string{
		"abs-host": f.host,                 // absolute: names the host dir
		"rel-host": "../host",              // relative: climbs out of the root
		"deep-up":  "../../../../../../..", // far above the root
		"etc-link": "/etc",                 // absolute, inside the image
		"srv/a/up": "../..",                // a relative link inside
		"dangling": "/nowhere/at/all",
		"loop1":    "loop2",
		"loop2":    "loop1",
	}
	for name, target := range links {
		must(t, os.Symlink(target, filepath.Join(f.root, name)))
	}
	r, err := Open(f.root)
	must(t, err)
	t.Cleanup(func() { r.Close() })
	f.r = r
	return f
}

// hostIntact fails the test unless the host directory holds exactly the
// secret, unchanged.
func (f *fixture) hostIntact(t *testing.T) {
	t.Helper()
	ents, err := os.ReadDir(f.host)
	must(t, err)
	if len(ents) != 1 || ents[0].Name() != "secret" {
		names := []string{}
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Fatalf("the host directory now holds %v", names)
	}
	if b, err := os.ReadFile(filepath.Join(f.host, "secret")); err != nil || string(b) != secret {
		t.Fatalf("the host secret is %q (%v)", b, err)
	}
}

func TestReadsNeverLeaveTheRoot(t *testing.T) {
	f := newFixture(t)
	// Through links naming the host, and .. above the root: the secret is
	// never found, since its in-image path does not exist.
	for _, p := range []string{"/abs-host/secret", "/rel-host/secret", "/../host/secret", "/../../../" + f.host + "/secret",
		"/deep-up/" + f.host + "/secret", "/srv/a/up/up/../host/secret"} {
		if b, err := f.r.ReadRegular(p, 1<<20); err == nil || bytes.Contains(b, []byte("secret")) {
			t.Errorf("ReadFile(%s) = %q, %v: it reached the host", p, b, err)
		}
		if h, err := f.r.OpenPath(p); err == nil {
			t.Errorf("OpenPath(%s) resolved to %s", p, mustHostPath(t, f.r, h))
			h.Close()
		}
	}
	// .. and links that climb stop at the root: they resolve inside it.
	for _, p := range []string{"/../../etc/os-release", "/deep-up/etc/os-release", "/srv/a/up/etc/os-release", "/etc-link/os-release", "/srv/a/up/srv/a/up/etc/os-release"} {
		if b, err := f.r.ReadRegular(p, 1<<20); err != nil || string(b) != "image\n" {
			t.Errorf("ReadFile(%s) = %q, %v, want the image's own /etc/os-release", p, b, err)
		}
	}
	// Putting the host path inside the image makes the absolute link land
	// there, in the image.
	inImage := filepath.Join(f.root, f.host)
	must(t, os.MkdirAll(inImage, 0o755))
	must(t, os.WriteFile(filepath.Join(inImage, "secret"), []byte("decoy\n"), 0o644))
	if b, err := f.r.ReadRegular("/abs-host/secret", 1<<20); err != nil || string(b) != "decoy\n" {
		t.Errorf("an absolute link resolved to %q, %v; want the image's own copy", b, err)
	}
	if _, err := f.r.ReadRegular("/loop1", 1<<20); err == nil {
		t.Error("a symlink loop resolved")
	}
	if ents, err := f.r.ReadDir("/abs-host"); err != nil || len(ents) != 1 || ents[0].Name() != "secret" {
		t.Errorf("ReadDir through an absolute link: %v %v", ents, err)
	}
	f.hostIntact(t)
}

func mustHostPath(t *testing.T, r *Root, h *os.File) string {
	p, err := r.HostPath(h)
	if err != nil {
		return "outside the root: " + err.Error()
	}
	return p
}

// A magic link (/proc/self/root, /proc/self/fd/N) would jump to the host's
// root whatever RESOLVE_IN_ROOT says: the image has a real /proc mounted
// while provisioners run, so resolution must refuse them.
func TestMagicLinksRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount proc into the test image")
	}
	f := newFixture(t)
	proc := filepath.Join(f.root, "proc")
	must(t, os.Mkdir(proc, 0o755))
	must(t, unix.Mount("proc", proc, "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""))
	t.Cleanup(func() {
		if err := unix.Unmount(proc, unix.MNT_DETACH); err != nil {
			t.Errorf("unmounting %s: %v", proc, err)
		}
		if left, err := mount.Under(f.root); err != nil || len(left) != 0 {
			t.Errorf("still mounted under the test image: %v %v", left, err)
		}
	})
	must(t, os.Symlink("/proc/self/root"+f.host, filepath.Join(f.root, "run")))
	hostFd, err := os.Open(filepath.Join(f.host, "secret"))
	must(t, err)
	defer hostFd.Close()
	for _, p := range []string{"/proc/self/root" + f.host + "/secret", "/run/secret", "/proc/self/fd/" + strconv.Itoa(int(hostFd.Fd())), "/proc/self/cwd"} {
		if b, err := f.r.ReadRegular(p, 1<<20); err == nil {
			t.Errorf("ReadFile(%s) followed a magic link: %q", p, b)
		}
	}
	if err := f.r.WriteFile("/run/planted", strings.NewReader("x"), FileSpec{Mode: 0o644}); err == nil {
		t.Error("WriteFile through a magic link succeeded")
	}
	if _, _, err := f.r.MkdirAll("/run/planted-dir", 0o755); err == nil {
		t.Error("MkdirAll through a magic link succeeded")
	}
	f.hostIntact(t)
}

func TestWritesReplaceLinksAndStayInside(t *testing.T) {
	f := newFixture(t)
	// A link where the file goes: the link is replaced, its target untouched.
	must(t, os.Symlink(filepath.Join(f.host, "secret"), filepath.Join(f.root, "etc/passwd")))
	spec := FileSpec{Mode: 0o640 | os.ModeSetgid, UID: 1234, GID: 5678, Mtime: time.Unix(1500000000, 0)}
	must(t, f.r.WriteFile("/etc/passwd", strings.NewReader("root:x:0:0\n"), spec))
	var st unix.Stat_t
	must(t, unix.Lstat(filepath.Join(f.root, "etc/passwd"), &st))
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Mode&0o7777 != 0o2640 || st.Uid != 1234 || st.Gid != 5678 || st.Mtim.Sec != 1500000000 {
		t.Errorf("the written file: mode %o uid %d gid %d mtime %d", st.Mode, st.Uid, st.Gid, st.Mtim.Sec)
	}
	if b, _ := os.ReadFile(filepath.Join(f.root, "etc/passwd")); string(b) != "root:x:0:0\n" {
		t.Errorf("content %q", b)
	}
	// A hard link to the file someone keeps: the other name keeps the old
	// content, the file is replaced by rename, never written through.
	keep := filepath.Join(f.root, "srv/kept")
	must(t, os.Link(filepath.Join(f.root, "etc/passwd"), keep))
	must(t, f.r.WriteFile("/etc/passwd", strings.NewReader("new\n"), FileSpec{Mode: 0o644}))
	if b, _ := os.ReadFile(keep); string(b) != "root:x:0:0\n" {
		t.Errorf("the hard link's content changed to %q: the write went through it", b)
	}
	// Writing below links that name the host lands inside the image, or
	// fails; the host never sees it.
	for _, p := range []string{"/abs-host/planted", "/rel-host/planted", "/deep-up/planted-up"} {
		if err := f.r.WriteFile(p, strings.NewReader("x"), FileSpec{Mode: 0o644}); err == nil {
			if !insideRoot(t, f.root, "planted") && !insideRoot(t, f.root, "planted-up") {
				t.Errorf("WriteFile(%s) succeeded but nothing is in the image", p)
			}
		}
	}
	// A symlink put where a host link was replaces the link.
	must(t, f.r.Symlink("/etc/os-release", "/abs-host", FileSpec{UID: 7, GID: 8}))
	if l, _ := os.Readlink(filepath.Join(f.root, "abs-host")); l != "/etc/os-release" {
		t.Errorf("Symlink left %q", l)
	}
	must(t, unix.Lstat(filepath.Join(f.root, "abs-host"), &st))
	if st.Uid != 7 || st.Gid != 8 {
		t.Errorf("the new link is owned by %d:%d", st.Uid, st.Gid)
	}
	// No temporary file is left beside anything written.
	for _, d := range []string{"etc", "srv", "."} {
		ents, _ := os.ReadDir(filepath.Join(f.root, d))
		for _, e := range ents {
			if strings.Contains(e.Name(), ".strata-") {
				t.Errorf("a temporary file is left: %s/%s", d, e.Name())
			}
		}
	}
	f.hostIntact(t)
}

// insideRoot says whether a file named base exists somewhere in the image.
func insideRoot(t *testing.T, root, base string) bool {
	found := false
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Name() == base {
			found = true
		}
		return nil
	})
	return found
}

func TestMkdirAllThroughLinks(t *testing.T) {
	f := newFixture(t)
	// Through a link inside the image: the directories are made at its
	// target, and the report names the in-image paths that did not exist.
	h, created, err := f.r.MkdirAll("/etc-link/new/deeper", 0o750)
	must(t, err)
	host, err := f.r.HostPath(h)
	h.Close()
	must(t, err)
	if host != filepath.Join(f.root, "etc/new/deeper") {
		t.Errorf("MkdirAll made %s", host)
	}
	if strings.Join(created, " ") != "/etc-link/new /etc-link/new/deeper" {
		t.Errorf("created %q", created)
	}
	var st unix.Stat_t
	must(t, unix.Stat(filepath.Join(f.root, "etc/new/deeper"), &st))
	umask := unix.Umask(0)
	unix.Umask(umask)
	if want := uint32(0o750 &^ umask); st.Mode&0o777 != want {
		t.Errorf("the new directory's mode is %o, want %o", st.Mode&0o777, want)
	}
	// An existing directory: nothing created.
	h, created, err = f.r.MkdirAll("/srv/a/b", 0o755)
	must(t, err)
	h.Close()
	if len(created) != 0 {
		t.Errorf("an existing directory reported created: %v", created)
	}
	// Through links naming the host: never on the host.
	for _, p := range []string{"/abs-host/made", "/rel-host/made", "/deep-up/made", "/srv/a/up/up/up/made"} {
		if h, _, err := f.r.MkdirAll(p, 0o755); err == nil {
			host, herr := f.r.HostPath(h)
			h.Close()
			if herr != nil {
				t.Errorf("MkdirAll(%s) made a directory outside the root: %v", p, herr)
			}
			if !strings.HasPrefix(host, f.root+"/") {
				t.Errorf("MkdirAll(%s) made %s", p, host)
			}
		}
	}
	// A file in the way is an error, not a replacement.
	if _, _, err := f.r.MkdirAll("/etc/os-release/sub", 0o755); err == nil {
		t.Error("MkdirAll below a regular file succeeded")
	}
	f.hostIntact(t)
}

func TestRemoveActsOnTheLinkItself(t *testing.T) {
	f := newFixture(t)
	must(t, os.WriteFile(filepath.Join(f.root, "srv/a/b/file"), []byte("x"), 0o644))
	must(t, os.Symlink("/srv/a/b", filepath.Join(f.root, "srv/to-b")))
	// Removing a link removes the link, not what it names.
	must(t, f.r.Remove("/srv/to-b"))
	if _, err := os.Lstat(filepath.Join(f.root, "srv/to-b")); !errors.Is(err, os.ErrNotExist) {
		t.Error("the link is still there")
	}
	if _, err := os.Stat(filepath.Join(f.root, "srv/a/b/file")); err != nil {
		t.Errorf("removing a link removed its target's content: %v", err)
	}
	must(t, f.r.Remove("/abs-host"))
	must(t, f.r.Remove("/dangling"))
	// Below links naming the host: the host file stays.
	for _, p := range []string{"/rel-host/secret", "/deep-up/" + f.host + "/secret", "/../host/secret"} {
		if err := f.r.Remove(p); err == nil {
			t.Errorf("Remove(%s) succeeded", p)
		}
	}
	// A directory with content is not removed; an empty one is.
	if err := f.r.Remove("/srv/a/b"); err == nil {
		t.Error("a non-empty directory was removed")
	}
	must(t, f.r.Remove("/srv/a/b/file"))
	must(t, f.r.Remove("/srv/a/b"))
	if err := f.r.Remove("/"); err == nil {
		t.Error("the root itself was removed")
	}
	f.hostIntact(t)
}

func TestLstatReadlinkOpenNoFollow(t *testing.T) {
	f := newFixture(t)
	st, err := f.r.Lstat("/abs-host")
	if err != nil || st.Mode&unix.S_IFMT != unix.S_IFLNK {
		t.Errorf("Lstat followed the link: %o %v", st.Mode, err)
	}
	if !f.r.Exists("/dangling") || f.r.Exists("/nowhere") {
		t.Error("Exists: a dangling link is something, a missing path nothing")
	}
	if l, err := f.r.Readlink("/srv/a/up"); err != nil || l != "../.." {
		t.Errorf("Readlink %q %v", l, err)
	}
	// Readlink of a link below a link: the directory resolves in the image.
	if l, err := f.r.Readlink("/etc-link/../srv/a/up"); err != nil || l != "../.." {
		t.Errorf("Readlink through a link %q %v", l, err)
	}
	must(t, unix.Mkfifo(filepath.Join(f.root, "srv/fifo"), 0o644))
	for _, p := range []string{"/etc-link", "/abs-host", "/srv/fifo", "/srv/a"} {
		if fh, err := f.r.OpenNoFollow(p); err == nil {
			fh.Close()
			t.Errorf("OpenNoFollow(%s) opened a link, fifo or directory", p)
		}
	}
	fh, err := f.r.OpenNoFollow("/etc-link/os-release") // the directory may be a link
	must(t, err)
	fh.Close()
	// Parent refuses a file as a directory.
	if _, _, err := f.r.Parent("/etc/os-release/x"); err == nil {
		t.Error("Parent accepted a regular file as the directory")
	}
	f.hostIntact(t)
}

func TestResolveFinal(t *testing.T) {
	f := newFixture(t)
	must(t, os.Symlink("../etc/resolv-real", filepath.Join(f.root, "srv/resolv")))
	for in, want := range map[string]string{
		"/etc-link/resolv.conf": "/etc/resolv.conf", // a link in the directory
		"/srv/resolv":           "/etc/resolv-real", // a dangling final link: its target
		"/etc-link/os-release":  "/etc/os-release",
		"/new/dir/file":         "/new/dir/file", // directories yet to be made
		"/deep-up/etc/passwd":   "/etc/passwd",   // a far climb clamps at the root
		"/":                     "/",
	} {
		got, err := f.r.ResolveFinal(in)
		if err != nil || got != want {
			t.Errorf("ResolveFinal(%s) = %q, %v; want %q", in, got, err, want)
		}
	}
	if got, err := f.r.ResolveFinal("/loop1"); err == nil {
		t.Errorf("a loop resolved to %s", got)
	}
}

func TestHostPathAtRefusesMovedTargets(t *testing.T) {
	f := newFixture(t)
	h, _, err := f.r.MkdirAll("/etc-link/run", 0o755)
	must(t, err)
	defer h.Close()
	if host, err := f.r.HostPathAt(h, "/etc-link/run"); err == nil {
		t.Errorf("HostPathAt accepted /etc-link/run, which a symlink moved to %s", host)
	}
	h2, _, err := f.r.MkdirAll("/srv/a/b", 0o755)
	must(t, err)
	defer h2.Close()
	if host, err := f.r.HostPathAt(h2, "srv/a/b/"); err != nil || host != filepath.Join(f.root, "srv/a/b") {
		t.Errorf("HostPathAt(/srv/a/b) = %s, %v", host, err)
	}
}

func TestHostPathAndDirTimes(t *testing.T) {
	f := newFixture(t)
	outside, err := os.Open(f.host)
	must(t, err)
	defer outside.Close()
	if p, err := f.r.HostPath(outside); err == nil {
		t.Errorf("HostPath accepted %s, outside the root", p)
	}
	// A sibling whose name starts with the root's is outside too.
	sib := f.root + "-sibling"
	must(t, os.Mkdir(sib, 0o755))
	sf, err := os.Open(sib)
	must(t, err)
	defer sf.Close()
	if p, err := f.r.HostPath(sf); err == nil {
		t.Errorf("HostPath accepted the sibling %s", p)
	}
	if f.r.InImage(f.root) != "/" || f.r.InImage(filepath.Join(f.root, "etc/x")) != "/etc/x" {
		t.Error("InImage")
	}

	dir := filepath.Join(f.root, "srv/a")
	old := time.Unix(1400000000, 123)
	must(t, os.Chtimes(dir, old, old))
	saved, err := f.r.SaveDirTimes("/srv/a")
	must(t, err)
	must(t, f.r.WriteFile("/srv/a/added", strings.NewReader("x"), FileSpec{Mode: 0o644}))
	must(t, f.r.Remove("/srv/a/added"))
	must(t, f.r.RestoreDirTimes(saved))
	fi, err := os.Stat(dir)
	must(t, err)
	if !fi.ModTime().Equal(old) {
		t.Errorf("the directory's mtime is %v, want %v", fi.ModTime(), old)
	}

	// Opening a root through a symlink holds the real directory.
	link := filepath.Join(t.TempDir(), "root-link")
	must(t, os.Symlink(f.root, link))
	r2, err := Open(link)
	must(t, err)
	defer r2.Close()
	if r2.Path() != f.root {
		t.Errorf("Open through a link: path %s, want %s", r2.Path(), f.root)
	}
}
