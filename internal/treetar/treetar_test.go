package treetar

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	archive "github.com/moby/go-archive"
	"golang.org/x/sys/unix"
)

// capNetRaw is a VFS v2 security.capability value granting cap_net_raw.
var capNetRaw = []byte{0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("needs root (devices, owners, overlay); make test runs as root")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func digest(t *testing.T, root string, opt Options) string {
	t.Helper()
	h := sha256.New()
	must(t, Write(h, root, opt))
	return hex.EncodeToString(h.Sum(nil))
}

func headers(t *testing.T, r io.Reader) (map[string]*tar.Header, []string, map[string][]byte) {
	t.Helper()
	got := map[string]*tar.Header{}
	data := map[string][]byte{}
	var names []string
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		must(t, err)
		got[h.Name] = h
		names = append(names, h.Name)
		if h.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			must(t, err)
			data[h.Name] = b
		}
	}
	return got, names, data
}

func TestWriteKeepsEverything(t *testing.T) {
	needRoot(t)
	root := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755))
	must(t, os.MkdirAll(filepath.Join(root, "dev"), 0o755))
	must(t, os.Mkdir(filepath.Join(root, "tmp"), 0o755))
	must(t, os.Chmod(filepath.Join(root, "tmp"), 0o777|os.ModeSticky))
	must(t, os.WriteFile(filepath.Join(root, "usr/bin/ping"), []byte("ping"), 0o755))
	must(t, unix.Setxattr(filepath.Join(root, "usr/bin/ping"), "security.capability", capNetRaw, 0))
	must(t, os.WriteFile(filepath.Join(root, "usr/bin/su"), []byte("su"), 0o755))
	must(t, os.Chmod(filepath.Join(root, "usr/bin/su"), 0o755|os.ModeSetuid))
	must(t, os.WriteFile(filepath.Join(root, "usr/bin/a"), []byte("aaaa"), 0o644))
	must(t, os.Link(filepath.Join(root, "usr/bin/a"), filepath.Join(root, "usr/bin/b")))
	must(t, os.Symlink("usr/bin", filepath.Join(root, "bin")))
	must(t, unix.Mknod(filepath.Join(root, "dev/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(t, unix.Mkfifo(filepath.Join(root, "dev/fifo"), 0o600))
	must(t, os.WriteFile(filepath.Join(root, "owned"), []byte("o"), 0o640))
	must(t, os.Lchown(filepath.Join(root, "owned"), 1234, 5678))
	must(t, unix.Setxattr(filepath.Join(root, "owned"), "user.note", []byte("kept"), 0))

	var buf bytes.Buffer
	must(t, Write(&buf, root, Options{}))
	got, names, _ := headers(t, &buf)
	if names[0] != "./" {
		t.Fatalf("first entry %q", names[0])
	}
	for i := 1; i < len(names); i++ {
		if strings.TrimSuffix(names[i-1], "/") > strings.TrimSuffix(names[i], "/") && !strings.HasPrefix(names[i], strings.TrimSuffix(names[i-1], "/")) {
			t.Errorf("not sorted: %s before %s", names[i-1], names[i])
		}
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
	if d1, d2 := digest(t, root, Options{}), digest(t, root, Options{}); d1 != d2 {
		t.Fatalf("the same tree gave two digests: %s %s", d1, d2)
	}
	// Clamping makes mtimes independent of when the tree was made.
	epoch := time.Unix(1700000000, 0)
	d1 := digest(t, root, Options{ClampTime: epoch})
	now := time.Now()
	filepath.Walk(root, func(p string, _ os.FileInfo, _ error) error {
		unix.Lutimes(p, []unix.Timeval{unix.NsecToTimeval(now.UnixNano()), unix.NsecToTimeval(now.UnixNano())})
		return nil
	})
	if d2 := digest(t, root, Options{ClampTime: epoch}); d1 != d2 {
		t.Fatal("clamped digests differ after touching every file")
	}
}

// TestSparse: a 512 MiB file with 8 KiB of data is written as a PAX 1.0
// sparse entry that Go's reader and GNU tar read back exactly, holes kept.
func TestSparse(t *testing.T) {
	root := t.TempDir()
	f, err := os.Create(filepath.Join(root, "disk.img"))
	must(t, err)
	f.WriteAt(bytes.Repeat([]byte("a"), 4096), 0)
	f.WriteAt(bytes.Repeat([]byte("z"), 4096), 256<<20)
	must(t, f.Truncate(512<<20)) // and a trailing hole
	f.Close()
	must(t, os.WriteFile(filepath.Join(root, "after"), []byte("next entry"), 0o644))
	var buf bytes.Buffer
	must(t, Write(&buf, root, Options{}))
	if buf.Len() > 1<<20 {
		t.Fatalf("the tar is %d bytes: the hole was written out", buf.Len())
	}
	tarPath := filepath.Join(t.TempDir(), "s.tar")
	must(t, os.WriteFile(tarPath, buf.Bytes(), 0o644))

	tr := tar.NewReader(bytes.NewReader(buf.Bytes()))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		must(t, err)
		if h.Name != "./disk.img" {
			if h.Name == "./after" {
				if b, _ := io.ReadAll(tr); string(b) != "next entry" {
					t.Fatalf("the entry after the sparse file is damaged: %q", b)
				}
			}
			continue
		}
		if h.Size != 512<<20 {
			t.Fatalf("size %d", h.Size)
		}
		h2 := sha256.New()
		n, err := io.Copy(h2, tr)
		must(t, err)
		want := sha256.New()
		in, _ := os.Open(filepath.Join(root, "disk.img"))
		io.Copy(want, in)
		in.Close()
		if n != 512<<20 || !bytes.Equal(h2.Sum(nil), want.Sum(nil)) {
			t.Fatal("Go's reader gives different content")
		}
	}
	x := t.TempDir()
	if out, err := exec.Command("tar", "-xf", tarPath, "-C", x).CombinedOutput(); err != nil {
		t.Fatalf("GNU tar: %v %s", err, out)
	}
	var st unix.Stat_t
	must(t, unix.Stat(filepath.Join(x, "disk.img"), &st))
	if st.Size != 512<<20 || st.Blocks*512 > 1<<20 {
		t.Fatalf("GNU tar extracted %d bytes taking %d on disk", st.Size, st.Blocks*512)
	}
}

// overlayLayer mounts an overlay of lower with a fresh upper, runs change
// in the merged view, and returns the upper dir and the merged view's
// digest (what applying the layer on lower must give).
func overlayLayer(t *testing.T, lower string, change func(merged string)) (string, string) {
	t.Helper()
	dir := t.TempDir()
	upper, work, merged := filepath.Join(dir, "upper"), filepath.Join(dir, "work"), filepath.Join(dir, "merged")
	for _, d := range []string{upper, work, merged} {
		must(t, os.Mkdir(d, 0o755))
	}
	opts := "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work + ",redirect_dir=off,index=off,metacopy=off"
	must(t, unix.Mount("overlay", merged, "overlay", 0, opts))
	defer unix.Unmount(merged, 0)
	change(merged)
	// The merged view's digest, without the root entry's times (the
	// applied copy's root is lower's).
	return upper, digest(t, merged, Options{Layer: true})
}

// TestLayerWhiteouts converts an overlay upper dir to an OCI layer and
// applies it with moby's layer applier (an independent implementation of
// the OCI whiteout rules) on a copy of the lower dir: the result must equal
// the merged overlay view.
func TestLayerWhiteouts(t *testing.T) {
	needRoot(t)
	lower := t.TempDir()
	for _, d := range []string{"etc/app", "var/lib/old", "opt/keep"} {
		must(t, os.MkdirAll(filepath.Join(lower, d), 0o755))
	}
	for f, c := range map[string]string{"etc/app/a.conf": "a", "etc/app/b.conf": "b", "etc/gone": "x", "var/lib/old/data": "d", "opt/keep/k": "k", "etc/swap": "file"} {
		must(t, os.WriteFile(filepath.Join(lower, f), []byte(c), 0o644))
	}
	must(t, os.Symlink("app", filepath.Join(lower, "etc/link")))
	upper, want := overlayLayer(t, lower, func(m string) {
		must(t, os.Remove(filepath.Join(m, "etc/gone")))       // whiteout
		must(t, os.RemoveAll(filepath.Join(m, "var/lib/old"))) // dir whiteout
		must(t, os.RemoveAll(filepath.Join(m, "etc/app")))     // rm -rf && mkdir: opaque
		must(t, os.Mkdir(filepath.Join(m, "etc/app"), 0o700))  //
		must(t, os.WriteFile(filepath.Join(m, "etc/app/c.conf"), []byte("c"), 0o600))
		must(t, os.Remove(filepath.Join(m, "etc/swap"))) // file -> dir
		must(t, os.Mkdir(filepath.Join(m, "etc/swap"), 0o755))
		must(t, os.Remove(filepath.Join(m, "etc/link"))) // symlink -> dir
		must(t, os.Mkdir(filepath.Join(m, "etc/link"), 0o755))
		must(t, os.WriteFile(filepath.Join(m, "opt/keep/new"), []byte("n"), 0o644))
	})
	var layer bytes.Buffer
	must(t, Write(&layer, upper, Options{Layer: true}))
	got, names, _ := headers(t, bytes.NewReader(layer.Bytes()))
	for _, n := range []string{"./etc/.wh.gone", "./var/lib/.wh.old", "./etc/app/.wh..wh..opq", "./etc/app/c.conf"} {
		if got[n] == nil {
			t.Errorf("layer lacks %s; has %v", n, names)
		}
	}
	if got["./"] != nil {
		t.Error("a layer has no root entry")
	}
	for _, h := range got {
		for k := range h.PAXRecords {
			if strings.Contains(k, "trusted.overlay") {
				t.Errorf("%s carries %s", h.Name, k)
			}
		}
	}
	// Apply with moby on a copy of lower.
	applied := filepath.Join(t.TempDir(), "applied")
	if out, err := exec.Command("cp", "-a", lower, applied).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	if _, err := archive.ApplyUncompressedLayer(applied, bytes.NewReader(layer.Bytes()), &archive.TarOptions{}); err != nil {
		t.Fatal(err)
	}
	if d := digest(t, applied, Options{Layer: true}); d != want {
		t.Fatalf("applying the layer on lower does not give the merged view\nmerged:  %v\napplied: %v", listing(t, upper), listing(t, applied))
	}
}

func listing(t *testing.T, root string) []string {
	var out []string
	filepath.Walk(root, func(p string, fi os.FileInfo, _ error) error {
		rel, _ := filepath.Rel(root, p)
		out = append(out, rel+" "+fi.Mode().String())
		return nil
	})
	return out
}

func TestPAXRecordLength(t *testing.T) {
	for _, v := range []string{"", "x", strings.Repeat("y", 90), strings.Repeat("z", 95), strings.Repeat("w", 995)} {
		r := paxRecord("k", v)
		var n int
		for _, c := range r {
			if c == ' ' {
				break
			}
			n = n*10 + int(c-'0')
		}
		if n != len(r) {
			t.Errorf("record for %d bytes says %d, is %d", len(v), n, len(r))
		}
	}
}

// TestCopyFileSwappedForFIFO: a file that became a FIFO after the walk
// looked at it (as a writer racing the read could make it) ends the copy
// at once with an error naming it (pread on a FIFO: illegal seek), instead
// of blocking the build in open; a read that fails names the file.
func TestCopyFileSwappedForFIFO(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	must(t, unix.Mkfifo(p, 0o644))
	w := &writer{tw: tar.NewWriter(io.Discard), opt: Options{}}
	done := make(chan error, 1)
	go func() { done <- w.copyFile(p, "./f", []segment{{offset: 0, length: 10}}) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("error %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("copying a FIFO blocked")
	}
	r := &fdSection{fd: -1, path: p, end: 1}
	if _, err := r.Read(make([]byte, 1)); err == nil || !strings.Contains(err.Error(), "read "+p) {
		t.Errorf("read error %v", err)
	}
}
