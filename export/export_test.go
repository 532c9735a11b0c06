package export

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/strata-build/packer-plugin-strata/internal/bytesize"
	"github.com/strata-build/packer-plugin-strata/internal/treetar"
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
	// 2 GiB with 8 KiB of data: a sparse file must stay sparse everywhere.
	sparse, err := os.Create(filepath.Join(root, "sparse.img"))
	must(err)
	sparse.WriteAt(bytes.Repeat([]byte("s"), 4096), 0)
	sparse.WriteAt(bytes.Repeat([]byte("e"), 4096), 2<<30-4096)
	must(sparse.Close())
	return root
}

func digestOf(t *testing.T, root string) string {
	t.Helper()
	d, err := TreeDigest(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(d, "sha256:")
}

// tarDigestOf is the hex sha256 of the tree's canonical tar as the tar
// formats write it (holes kept as holes).
func tarDigestOf(t *testing.T, root string) string {
	t.Helper()
	h := sha256.New()
	if err := treetar.Write(h, root, treetar.Options{}); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func TestExportEveryFormat(t *testing.T) {
	root := makeTree(t)
	want := tarDigestOf(t, root)
	wantTree := digestOf(t, root)
	out := t.TempDir()
	old := progressEvery
	progressEvery = time.Millisecond
	t.Cleanup(func() { progressEvery = old })
	var mu sync.Mutex
	var lines []string
	// Every flattened format but the disk, which needs a kernel (see
	// TestExportDisk).
	formats := slices.DeleteFunc(slices.Clone(flattened), func(f string) bool { return f == "disk" })
	res, err := Export(context.Background(), Source{Root: root}, out, Options{
		Formats:        formats,
		Ext4FreeSpace:  64 << 20,
		Ext4InodeRatio: 16384,
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
	if len(res.Outputs) != len(formats) {
		t.Fatalf("outputs %+v", res.Outputs)
	}
	for _, o := range res.Outputs {
		if o.Format == "dir" {
			if _, err := os.Stat(o.Path + ".sha256"); err == nil {
				t.Error("the dir output has a .sha256 that sha256sum -c cannot check")
			}
			if got, err := VerifyTree(context.Background(), out); err != nil || got != "sha256:"+wantTree {
				t.Errorf("VerifyTree: %s %v", got, err)
			}
			continue
		}
		sum, err := os.ReadFile(o.Path + ".sha256")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(sum), o.SHA256+"  ") {
			t.Errorf("%s: checksum file %q does not match %s", o.Format, sum, o.SHA256)
		}
		cmd := exec.Command("sha256sum", "-c", filepath.Base(o.Path)+".sha256")
		cmd.Dir = out
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("sha256sum -c for %s: %v %s", o.Format, err, out)
		}
		// Sparse files stay sparse: no output holds the 2 GiB hole.
		if fi, _ := os.Stat(o.Path); fi.Size() > 200<<20 {
			t.Errorf("%s is %s: the sparse file's hole was written out", o.Format, bytesize.Human(fi.Size()))
		}
		if o.Format == "ext4" {
			var st unix.Stat_t
			unix.Stat(o.Path, &st)
			if st.Blocks*512 > 200<<20 {
				t.Errorf("the ext4 image takes %s on disk", bytesize.Human(st.Blocks*512))
			}
		}
	}
	// The dir copy changed under its digest: verify says so.
	os.WriteFile(filepath.Join(out, "rootfs", "owned"), []byte("tampered"), 0o640)
	if _, err := VerifyTree(context.Background(), out); err == nil {
		t.Error("VerifyTree accepted a changed tree")
	}
	os.WriteFile(filepath.Join(out, "rootfs", "owned"), []byte("o"), 0o640)
	os.Lchown(filepath.Join(out, "rootfs", "owned"), 1234, 5678)
	os.Chtimes(filepath.Join(out, "rootfs", "owned"), modTime(t, filepath.Join(root, "owned")), modTime(t, filepath.Join(root, "owned")))
	os.Chtimes(filepath.Join(out, "rootfs"), modTime(t, root), modTime(t, root))
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
	if d := digestOf(t, filepath.Join(out, "rootfs")); d != wantTree {
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
		if d := digestOf(t, x); d != wantTree {
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
	// ext4 gets free inodes for the free space asked for.
	info, err := exec.Command("dumpe2fs", "-h", filepath.Join(out, "rootfs.ext4")).CombinedOutput()
	if err != nil {
		t.Fatalf("dumpe2fs: %v %s", err, info)
	}
	for _, line := range strings.Split(string(info), "\n") {
		if strings.HasPrefix(line, "Free inodes:") {
			var n int64
			fmt.Sscan(strings.TrimSpace(strings.TrimPrefix(line, "Free inodes:")), &n)
			if n < (64<<20)/16384 {
				t.Errorf("ext4 has %d free inodes for 64 MiB of free space at 16 KiB per inode", n)
			}
		}
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
	var sa, sb, sd, so, ss unix.Stat_t
	unix.Lstat(filepath.Join(mnt, "sparse.img"), &ss)
	if ss.Size != 2<<30 || ss.Blocks*512 > 1<<20 {
		t.Errorf("%s: sparse.img is %d bytes taking %d on disk", img, ss.Size, ss.Blocks*512)
	}
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
	if _, err := Export(context.Background(), Source{Root: t.TempDir()}, t.TempDir(), Options{Formats: []string{"zip"}}); err == nil {
		t.Fatal("want an error for an unknown format")
	}
}

func TestExportCancelledLeavesNothing(t *testing.T) {
	root := makeTree(t)
	out := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Export(ctx, Source{Root: root}, out, Options{Formats: []string{"tar.zst", "tar"}}); err == nil {
		t.Fatal("a cancelled export succeeded")
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Fatalf("a cancelled export left %d files", len(ents))
	}
}

func TestParseSquashfsCompression(t *testing.T) {
	for in, want := range map[string]string{"zstd": "-comp zstd", "zstd:3": "-comp zstd -Xcompression-level 3", "xz": "-comp xz", "lz4": "-comp lz4", "gzip": "-comp gzip"} {
		c, err := ParseSquashfsCompression(in)
		if err != nil || strings.Join(c.Args(), " ") != want {
			t.Errorf("%s: %v %v", in, c.Args(), err)
		}
	}
	for _, bad := range []string{"", "zstd:0", "zstd:23", "zstd:x", "xz:9", "brotli"} {
		if _, err := ParseSquashfsCompression(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestDirOutputVerifiesAfterACopy: a dir output's tree digest depends only
// on what cp -a keeps. The output verifies where it was written, also with
// times clamped for the tar formats (source_date_epoch), and again after
// cp -a to another file system (a tmpfs), which moves holes: a file that
// has holes and runs of written zeros comes out with holes where the zeros
// were.
func TestDirOutputVerifiesAfterACopy(t *testing.T) {
	root := makeTree(t)
	f, err := os.Create(filepath.Join(root, "zeros-and-holes"))
	if err != nil {
		t.Fatal(err)
	}
	f.Write(bytes.Repeat([]byte("a"), 4096))
	f.Write(make([]byte, 64<<10)) // written zeros: data here, a hole in the copy
	f.Write(bytes.Repeat([]byte("b"), 4096))
	f.WriteAt([]byte("c"), 4<<20) // a hole before it
	f.Close()
	out := filepath.Join(t.TempDir(), "out")
	if err := os.Mkdir(out, 0o700); err != nil {
		t.Fatal(err)
	}
	opt := Options{Formats: []string{"dir", "tar"}}
	opt.ClampTime = time.Unix(1000000000, 0) // before every time in the tree
	res, err := Export(context.Background(), Source{Root: root}, out, opt)
	if err != nil {
		t.Fatal(err)
	}
	m := &Manifest{ImageID: "sha256:" + strings.Repeat("1", 64), Outputs: res.Outputs}
	if err := WriteManifest(out, m); err != nil {
		t.Fatal(err)
	}
	if err := VerifyOutputs(context.Background(), out, m); err != nil {
		t.Fatalf("where it was written: %v", err)
	}
	mnt := filepath.Join(t.TempDir(), "tmpfs")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=512m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
	copied := filepath.Join(mnt, "out")
	if b, err := exec.Command("cp", "-a", out, copied).CombinedOutput(); err != nil {
		t.Fatalf("cp -a: %v\n%s", err, b)
	}
	var a, b unix.Stat_t
	unix.Stat(filepath.Join(out, "rootfs/zeros-and-holes"), &a)
	unix.Stat(filepath.Join(copied, "rootfs/zeros-and-holes"), &b)
	t.Logf("zeros-and-holes: %d blocks written, %d in the copy", a.Blocks, b.Blocks)
	cm, err := ReadManifest(copied)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyOutputs(context.Background(), copied, cm); err != nil {
		t.Fatalf("after cp -a to a tmpfs: %v", err)
	}
}
