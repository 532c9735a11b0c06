package export

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// capNetRaw is a VFS v2 security.capability value granting cap_net_raw (13)
// effective and permitted: what `setcap cap_net_raw+ep` writes.
var capNetRaw = []byte{0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}

// makeTree builds a tree with every kind of entry an image can hold.
func makeTree(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("needs root to make device nodes and owners (make test runs as root)")
	}
	root := filepath.Join(t.TempDir(), "rootfs")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755))
	must(os.MkdirAll(filepath.Join(root, "dev"), 0o755))
	must(os.MkdirAll(filepath.Join(root, "tmp"), 0o755))
	must(os.Chmod(filepath.Join(root, "tmp"), 0o1777|os.ModeSticky))
	must(os.WriteFile(filepath.Join(root, "usr/bin/ping"), []byte("ping binary"), 0o755))
	must(unix.Setxattr(filepath.Join(root, "usr/bin/ping"), "security.capability", capNetRaw, 0))
	must(os.WriteFile(filepath.Join(root, "usr/bin/su"), []byte("su binary"), 0o755))
	must(os.Chmod(filepath.Join(root, "usr/bin/su"), 0o755|os.ModeSetuid))
	must(os.WriteFile(filepath.Join(root, "usr/bin/a"), bytes.Repeat([]byte("x"), 100000), 0o644))
	must(os.Link(filepath.Join(root, "usr/bin/a"), filepath.Join(root, "usr/bin/b")))
	must(os.Symlink("usr/bin", filepath.Join(root, "bin")))
	must(unix.Mknod(filepath.Join(root, "dev/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(os.Chmod(filepath.Join(root, "dev/null"), 0o666))
	must(unix.Mkfifo(filepath.Join(root, "dev/fifo"), 0o600))
	must(os.WriteFile(filepath.Join(root, "owned"), []byte("o"), 0o640))
	must(os.Lchown(filepath.Join(root, "owned"), 1234, 5678))
	must(unix.Setxattr(filepath.Join(root, "owned"), "user.note", []byte("kept"), 0))
	return root
}

func digestOf(t *testing.T, root string) string {
	t.Helper()
	h := sha256.New()
	if err := WriteTar(h, root, TarOptions{}); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func TestWriteTarKeepsEverything(t *testing.T) {
	root := makeTree(t)
	var buf bytes.Buffer
	if err := WriteTar(&buf, root, TarOptions{}); err != nil {
		t.Fatal(err)
	}
	got := map[string]*tar.Header{}
	var names []string
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got[h.Name] = h
		names = append(names, h.Name)
	}
	if names[0] != "./" {
		t.Fatalf("first entry %q, want ./", names[0])
	}
	check := func(name string, ok bool, what string) {
		t.Helper()
		if !ok {
			t.Errorf("%s: %s; header %+v", name, what, got[name])
		}
	}
	a, b := got["./usr/bin/a"], got["./usr/bin/b"]
	check("./usr/bin/b", a.Typeflag == tar.TypeReg && b.Typeflag == tar.TypeLink && b.Linkname == "./usr/bin/a", "hard link")
	dn := got["./dev/null"]
	check("./dev/null", dn.Typeflag == tar.TypeChar && dn.Devmajor == 1 && dn.Devminor == 3, "char device 1,3")
	check("./dev/fifo", got["./dev/fifo"].Typeflag == tar.TypeFifo, "fifo")
	check("./bin", got["./bin"].Typeflag == tar.TypeSymlink && got["./bin"].Linkname == "usr/bin", "symlink")
	check("./usr/bin/ping", got["./usr/bin/ping"].PAXRecords["SCHILY.xattr.security.capability"] == string(capNetRaw), "file capability")
	check("./owned", got["./owned"].Uid == 1234 && got["./owned"].Gid == 5678 && got["./owned"].Uname == "", "numeric owner only")
	check("./owned", got["./owned"].PAXRecords["SCHILY.xattr.user.note"] == "kept", "user xattr")
	check("./usr/bin/su", got["./usr/bin/su"].Mode&0o4000 != 0, "setuid bit")
	check("./tmp/", got["./tmp/"].Mode&0o1000 != 0, "sticky bit")

	if d1, d2 := digestOf(t, root), digestOf(t, root); d1 != d2 {
		t.Fatalf("the same tree gave two digests: %s %s", d1, d2)
	}
}

func TestExportEveryFormat(t *testing.T) {
	root := makeTree(t)
	want := digestOf(t, root)
	out := t.TempDir()
	old := progressEvery
	progressEvery = time.Millisecond
	t.Cleanup(func() { progressEvery = old })
	var mu sync.Mutex
	var lines []string
	res, err := Export(context.Background(), root, out, Options{
		Formats:       Formats,
		Ext4FreeSpace: 8 << 20,
		Report: func(s string) {
			mu.Lock()
			defer mu.Unlock()
			lines = append(lines, s)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.RootfsDigest != "sha256:"+want {
		t.Fatalf("digest %s, want sha256:%s", res.RootfsDigest, want)
	}
	if len(res.Outputs) != len(Formats) {
		t.Fatalf("outputs %+v", res.Outputs)
	}
	for _, o := range res.Outputs {
		sum, err := os.ReadFile(o.Path + ".sha256")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(sum), o.SHA256+"  ") {
			t.Errorf("%s: checksum file %q does not match %s", o.Format, sum, o.SHA256)
		}
		if o.Format != "dir" {
			cmd := exec.Command("sha256sum", "-c", filepath.Base(o.Path)+".sha256")
			cmd.Dir = out
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("sha256sum -c for %s: %v %s", o.Format, err, out)
			}
		}
	}
	ents, _ := os.ReadDir(out)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
	mu.Lock()
	log := strings.Join(lines, "\n")
	mu.Unlock()
	if !strings.Contains(log, "Wrote rootfs.ext4") || !strings.Contains(log, "still writing squashfs") {
		t.Errorf("no progress report for squashfs and ext4: %s", log)
	}
	// The dir copy and both compressed tars unpack to the very same tree.
	if d := digestOf(t, filepath.Join(out, "rootfs")); d != want {
		t.Errorf("dir output digest %s, want %s", d, want)
	}
	for _, f := range []string{"rootfs.tar.zst", "rootfs.tar.gz", "rootfs.tar"} {
		x := filepath.Join(t.TempDir(), "x")
		os.Mkdir(x, 0o755)
		cmd := exec.Command("tar", "-xpf", filepath.Join(out, f), "-C", x, "--numeric-owner", "--xattrs", "--xattrs-include=*")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v %s", f, err, b)
		}
		os.Chmod(x, fileMode(t, root))
		os.Chtimes(x, modTime(t, root), modTime(t, root))
		if d := digestOf(t, x); d != want {
			t.Errorf("%s unpacks to a different tree: %s", f, d)
		}
	}
	if b, err := exec.Command("e2fsck", "-fn", filepath.Join(out, "rootfs.ext4")).CombinedOutput(); err != nil {
		t.Errorf("e2fsck: %v\n%s", err, b)
	}
	list, err := exec.Command("unsquashfs", "-lln", filepath.Join(out, "rootfs.squashfs")).CombinedOutput()
	if err != nil {
		t.Fatalf("unsquashfs: %v %s", err, list)
	}
	for _, w := range []string{"crw-rw-rw- 0/0", "1,  3", "squashfs-root/usr/bin/ping", "1234/5678", "-rwsr-xr-x"} {
		if !strings.Contains(string(list), w) {
			t.Errorf("unsquashfs listing lacks %q:\n%s", w, list)
		}
	}
	for _, img := range []string{"rootfs.ext4", "rootfs.squashfs"} {
		checkImageByMounting(t, filepath.Join(out, img))
	}
}

func fileMode(t *testing.T, p string) os.FileMode {
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode()
}

func modTime(t *testing.T, p string) time.Time {
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.ModTime()
}

// checkImageByMounting loop-mounts a file system image read-only and checks
// capabilities, hard links, devices and owners survived; then it checks no
// mount and no loop device is left.
func checkImageByMounting(t *testing.T, img string) {
	t.Helper()
	mnt := t.TempDir()
	if b, err := exec.Command("mount", "-o", "loop,ro", img, mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount %s: %v %s", img, err, b)
	}
	defer func() {
		if b, err := exec.Command("umount", "-d", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount: %v %s", err, b)
		}
		if b, _ := exec.Command("losetup", "-j", img).CombinedOutput(); len(bytes.TrimSpace(b)) > 0 {
			t.Errorf("loop device left for %s: %s", img, b)
		}
	}()
	capv := make([]byte, 64)
	n, err := unix.Getxattr(filepath.Join(mnt, "usr/bin/ping"), "security.capability", capv)
	if err != nil || !bytes.Equal(capv[:n], capNetRaw) {
		t.Errorf("%s: capability lost: %v %x", img, err, capv[:n])
	}
	var sa, sb, sd, so unix.Stat_t
	unix.Lstat(filepath.Join(mnt, "usr/bin/a"), &sa)
	unix.Lstat(filepath.Join(mnt, "usr/bin/b"), &sb)
	if sa.Ino != sb.Ino {
		t.Errorf("%s: hard link lost", img)
	}
	unix.Lstat(filepath.Join(mnt, "dev/null"), &sd)
	if sd.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(sd.Rdev) != 1 || unix.Minor(sd.Rdev) != 3 {
		t.Errorf("%s: device node lost", img)
	}
	unix.Lstat(filepath.Join(mnt, "owned"), &so)
	if so.Uid != 1234 || so.Gid != 5678 {
		t.Errorf("%s: owner lost: %d:%d", img, so.Uid, so.Gid)
	}
}

func TestExportRejectsUnknownFormat(t *testing.T) {
	if _, err := Export(context.Background(), t.TempDir(), t.TempDir(), Options{Formats: []string{"zip"}}); err == nil {
		t.Fatal("want an error for an unknown format")
	}
}

func TestExportCancelledLeavesNothing(t *testing.T) {
	root := makeTree(t)
	out := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Export(ctx, root, out, Options{Formats: []string{"tar.zst", "tar"}}); err == nil {
		t.Fatal("a cancelled export succeeded")
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Fatalf("a cancelled export left %d files", len(ents))
	}
}
