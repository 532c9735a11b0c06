package layer

import (
	"archive/tar"
	"bytes"
	stdgzip "compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"

	"github.com/strata-build/packer-plugin-strata/internal/mount"
	"github.com/strata-build/packer-plugin-strata/internal/treetar"
)

var ctx = context.Background()

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "upper")
	must(t, os.Mkdir(dir, 0o755))
	for p, c := range files {
		must(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755))
		must(t, os.WriteFile(filepath.Join(dir, p), []byte(c), 0o644))
		old := time.Unix(1600000000, 0)
		os.Chtimes(filepath.Join(dir, p), old, old)
	}
	return dir
}

// commit commits dir and lets go of the layer at once.
func commit(t *testing.T, s *Store, dir string, opt CommitOptions) (*Layer, bool) {
	t.Helper()
	l, created, release, err := s.Commit(ctx, dir, opt)
	must(t, err)
	release()
	return l, created
}

// putImage stores an image and lets go of it at once.
func putImage(t *testing.T, s *Store, spec ImageSpec) (*Image, bool) {
	t.Helper()
	img, created, release, err := s.PutImage(spec)
	must(t, err)
	release()
	return img, created
}

// backdate makes an image look stored d ago.
func backdate(t *testing.T, s *Store, img *Image, d time.Duration) {
	t.Helper()
	h, _ := hexOf(img.ID)
	old := time.Now().Add(-d)
	must(t, os.Chtimes(filepath.Join(s.Root(), imagesDir, h, imageMeta), old, old))
}

func TestCommitDedupesAndReopens(t *testing.T) {
	s, err := Open(t.TempDir())
	must(t, err)
	a, created := commit(t, s, tree(t, map[string]string{"etc/os-release": "x"}), CommitOptions{ClampTime: time.Unix(1700000000, 0)})
	if !created || !strings.HasPrefix(a.DiffID, "sha256:") || a.Size == 0 {
		t.Fatalf("layer %+v created=%v", a, created)
	}
	src := tree(t, map[string]string{"etc/os-release": "x"})
	b, created := commit(t, s, src, CommitOptions{ClampTime: time.Unix(1700000000, 0)})
	if created || b.DiffID != a.DiffID || b.Dir != a.Dir {
		t.Fatalf("the same content was stored twice: %+v", b)
	}
	if _, err := os.Stat(src); !os.IsNotExist(err) {
		t.Fatal("the duplicate's directory was left behind")
	}
	// A commit interrupted before publishing leaves tmp/ entries that the
	// next Open removes; the layers stay.
	staged, release, err := s.staging("layer-")
	must(t, err)
	must(t, os.WriteFile(filepath.Join(staged, "half"), []byte("x"), 0o600))
	release()
	s2, err := Open(s.Root())
	must(t, err)
	if ents, _ := os.ReadDir(filepath.Join(s.Root(), tmpDir)); len(ents) != 0 {
		t.Fatalf("tmp/ still holds %v", ents)
	}
	if _, err := s2.Layer(a.DiffID); err != nil {
		t.Fatal(err)
	}
}

func TestImagesAndIDs(t *testing.T) {
	s, err := Open(t.TempDir())
	must(t, err)
	base, _ := commit(t, s, tree(t, map[string]string{"bin/sh": "sh"}), CommitOptions{})
	at := time.Unix(1700000000, 0)
	img, created := putImage(t, s, ImageSpec{Layer: base, Created: at, CreatedBy: "test base", Labels: map[string]string{"a": "1"}})
	if !created || img.ID != ImageID(img.Config) || len(img.Layers) != 1 {
		t.Fatalf("image %+v", img)
	}
	again, created := putImage(t, s, ImageSpec{Layer: base, Created: at, CreatedBy: "test base", Labels: map[string]string{"a": "1"}})
	if created || again.ID != img.ID {
		t.Fatal("the same spec gave another image")
	}
	top, _ := commit(t, s, tree(t, map[string]string{"app": "app"}), CommitOptions{})
	child, _ := putImage(t, s, ImageSpec{Parent: img, Layer: top, Created: at, CreatedBy: "child", Labels: map[string]string{"b": "2"}})
	cfg, err := child.ConfigFile()
	must(t, err)
	if len(cfg.RootFS.DiffIDs) != 2 || cfg.RootFS.DiffIDs[0].String() != base.DiffID || len(cfg.History) != 2 ||
		cfg.Config.Labels["a"] != "1" || cfg.Config.Labels["b"] != "2" || child.Parent != img.ID {
		t.Fatalf("child config %+v", cfg)
	}
	if got, err := s.Image(child.ID[:19]); err != nil || got.ID != child.ID {
		t.Fatalf("by prefix: %v %v", got, err)
	}
	lowers, err := s.LowerDirs(child)
	must(t, err)
	if lowers[0] != top.Dir || lowers[1] != base.Dir {
		t.Fatalf("lower dirs must list the top layer first: %v", lowers)
	}
	users, _ := s.ImagesUsing(base.DiffID)
	if len(users) != 2 {
		t.Fatalf("base used by %v", users)
	}
}

func TestHoldKeepsLayersFromGC(t *testing.T) {
	s, err := Open(t.TempDir())
	must(t, err)
	l, _ := commit(t, s, tree(t, map[string]string{"f": "1"}), CommitOptions{})
	img, _ := putImage(t, s, ImageSpec{Layer: l, Created: time.Now()})
	release, err := s.Hold(img)
	must(t, err)
	res, err := s.GC(GCOptions{})
	must(t, err)
	if len(res.Images) != 1 || len(res.Layers) != 0 || len(res.InUse) != 1 {
		t.Fatalf("with a build holding it: %+v", res)
	}
	release()
	res, err = s.GC(GCOptions{})
	must(t, err)
	if len(res.Layers) != 1 {
		t.Fatalf("once released: %+v", res)
	}
	if _, err := s.Layer(l.DiffID); err == nil {
		t.Fatal("the layer is still there")
	}
	// Kept images and young ones stay.
	l2, _ := commit(t, s, tree(t, map[string]string{"g": "2"}), CommitOptions{})
	img2, _ := putImage(t, s, ImageSpec{Layer: l2, Created: time.Now().Add(-48 * time.Hour)})
	backdate(t, s, img2, 48*time.Hour)
	res, _ = s.GC(GCOptions{Keep: map[string]bool{img2.ID: true}})
	if len(res.Images)+len(res.Layers) != 0 {
		t.Fatalf("a kept image was collected: %+v", res)
	}
	res, _ = s.GC(GCOptions{MinAge: time.Hour, DryRun: true})
	if len(res.Images) != 1 {
		t.Fatalf("dry run: %+v", res)
	}
	if _, err := s.Image(img2.ID); err != nil {
		t.Fatal("a dry run deleted")
	}
}

func TestBlobIsTheLayer(t *testing.T) {
	s, err := Open(t.TempDir())
	must(t, err)
	l, _ := commit(t, s, tree(t, map[string]string{"etc/x": "hello"}), CommitOptions{ClampTime: time.Unix(1700000000, 0)})
	b, err := s.Blob(ctx, l, Gzip)
	must(t, err)
	f, _ := os.Open(b.Path)
	defer f.Close()
	zr, err := gzip.NewReader(f)
	must(t, err)
	tr := tar.NewReader(zr)
	h, err := tr.Next()
	must(t, err)
	if h.Name != "./etc/" || !h.ModTime.Equal(time.Unix(1700000000, 0)) { // clamped
		t.Fatalf("first entry %+v", h)
	}
	h, _ = tr.Next()
	data, _ := io.ReadAll(tr)
	if h.Name != "./etc/x" || string(data) != "hello" {
		t.Fatalf("%s %q", h.Name, data)
	}
	again, err := s.Blob(ctx, l, Gzip)
	must(t, err)
	if again.Digest != b.Digest {
		t.Fatal("the cached blob differs")
	}
}

// TestBlobDecompressesToItsDiffID: for each compression, the blob's bytes
// hash to its Digest, and decompressed by a reader independent of the
// writer (the standard library's gzip; zstd's decoder) they hash to the
// layer's DiffID, which is what the OCI config lists.
func TestBlobDecompressesToItsDiffID(t *testing.T) {
	s, err := Open(t.TempDir())
	must(t, err)
	files := map[string]string{"etc/x": "hello", "usr/share/big": strings.Repeat("strata ", 100000)}
	l, _, release, err := s.Commit(ctx, tree(t, files), CommitOptions{ClampTime: time.Unix(1700000000, 0)})
	must(t, err)
	defer release()
	for _, c := range []struct {
		compression string
		open        func(io.Reader) (io.Reader, error)
	}{
		{Gzip, func(r io.Reader) (io.Reader, error) { return stdgzip.NewReader(r) }},
		{Zstd, func(r io.Reader) (io.Reader, error) { return zstd.NewReader(r) }},
	} {
		b, err := s.Blob(ctx, l, c.compression)
		must(t, err)
		data, err := os.ReadFile(b.Path)
		must(t, err)
		if d := sha256.Sum256(data); "sha256:"+hex.EncodeToString(d[:]) != b.Digest || int64(len(data)) != b.Size {
			t.Errorf("%s: the blob's bytes (%d) are not its digest %s and size %d", c.compression, len(data), b.Digest, b.Size)
		}
		r, err := c.open(bytes.NewReader(data))
		must(t, err)
		h := sha256.New()
		n, err := io.Copy(h, r)
		must(t, err)
		if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != l.DiffID || b.DiffID != l.DiffID {
			t.Errorf("%s: the blob decompresses to %d bytes with sha256 %s; the layer's DiffID is %s (the blob says %s)",
				c.compression, n, got, l.DiffID, b.DiffID)
		}
		if n != l.Size {
			t.Errorf("%s: %d bytes uncompressed, the layer says %d", c.compression, n, l.Size)
		}
	}
}

// TestPruneUnchanged mounts a real overlay, touches files and puts them
// back, and checks that only real changes stay in the upper dir.
func TestPruneUnchanged(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root (overlay); make test runs as root")
	}
	lower := tree(t, map[string]string{"etc/resolv.conf": "nameserver 1.1.1.1\n", "etc/keep": "k", "usr/sbin/x": "x"})
	dir := t.TempDir()
	upper, work, merged := filepath.Join(dir, "u"), filepath.Join(dir, "w"), filepath.Join(dir, "m")
	for _, d := range []string{upper, work, merged} {
		must(t, os.Mkdir(d, 0o755))
	}
	must(t, unix.Mount("overlay", merged, "overlay", 0, OverlayOptions([]string{lower}, upper, work)))
	t.Cleanup(func() { mount.CleanUnder(dir) })
	var etc unix.Stat_t
	unix.Stat(filepath.Join(merged, "etc"), &etc)
	// The builder's dance: replace resolv.conf, put it back exactly.
	rc := filepath.Join(merged, "etc/resolv.conf")
	var orig unix.Stat_t
	unix.Stat(rc, &orig)
	must(t, os.WriteFile(rc, []byte("nameserver 9.9.9.9\n"), 0o644))
	must(t, os.WriteFile(rc, []byte("nameserver 1.1.1.1\n"), 0o644))
	unix.UtimesNano(rc, []unix.Timespec{orig.Atim, orig.Mtim})
	// policy-rc.d created and removed; the directory's times put back.
	var sbin unix.Stat_t
	unix.Stat(filepath.Join(merged, "usr/sbin"), &sbin)
	must(t, os.WriteFile(filepath.Join(merged, "usr/sbin/policy-rc.d"), []byte("exit 101"), 0o755))
	must(t, os.Remove(filepath.Join(merged, "usr/sbin/policy-rc.d")))
	unix.UtimesNano(filepath.Join(merged, "usr/sbin"), []unix.Timespec{sbin.Atim, sbin.Mtim})
	unix.UtimesNano(filepath.Join(merged, "etc"), []unix.Timespec{etc.Atim, etc.Mtim})
	// A real change.
	must(t, os.WriteFile(filepath.Join(merged, "etc/new"), []byte("new"), 0o644))
	must(t, os.Remove(filepath.Join(merged, "etc/keep")))
	must(t, unix.Unmount(merged, 0))

	n, err := PruneUnchanged(upper, []string{lower})
	must(t, err)
	var left []string
	filepath.Walk(upper, func(p string, _ os.FileInfo, _ error) error {
		rel, _ := filepath.Rel(upper, p)
		left = append(left, rel)
		return nil
	})
	want := ". etc etc/keep etc/new"
	if strings.Join(left, " ") != want {
		t.Fatalf("after pruning %d: %v, want %s", n, left, want)
	}

}

// TestCommitRefusesWhiteoutNames: files whose names OCI layers reserve for
// deletions are refused at commit, every one named, before anything moves
// into the store: exported, they would delete the parent's /etc or empty
// /root in every OCI tool while the chroot, dir and tar outputs keep them.
func TestCommitRefusesWhiteoutNames(t *testing.T) {
	s, err := Open(t.TempDir())
	must(t, err)
	dir := tree(t, map[string]string{".wh.etc": "", "etc/.wh.passwd": "", "root/.wh..wh..opq": "", "root/ok": "ok"})
	_, _, _, err = s.Commit(ctx, dir, CommitOptions{})
	var reserved *treetar.ReservedNamesError
	if !errors.As(err, &reserved) {
		t.Fatalf("commit: %v", err)
	}
	for _, name := range []string{"/.wh.etc", "/etc/.wh.passwd", "/root/.wh..wh..opq"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("the error does not name %s: %v", name, err)
		}
	}
	if strings.Contains(err.Error(), "/root/ok") {
		t.Errorf("the error names an ordinary file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "root/ok")); err != nil {
		t.Fatal("the refused tree was touched")
	}
	for _, d := range []string{layersDir, tmpDir} {
		if ents, _ := os.ReadDir(filepath.Join(s.Root(), d)); len(ents) != 0 {
			t.Fatalf("%s/ holds %v after a refused commit", d, ents)
		}
	}
}

// TestVerifyLayerFindsTampering: a file of a stored layer changed after the
// commit (same size, or a new file) makes VerifyLayer fail, naming the layer.
func TestVerifyLayerFindsTampering(t *testing.T) {
	s, err := Open(t.TempDir())
	must(t, err)
	l, _ := commit(t, s, tree(t, map[string]string{"etc/passwd": "root:x:0:0"}), CommitOptions{ClampTime: time.Unix(1700000000, 0)})
	img, _ := putImage(t, s, ImageSpec{Layer: l, Created: time.Now()})
	must(t, s.VerifyImage(ctx, img))
	p := filepath.Join(l.Dir, "etc/passwd")
	fi, _ := os.Stat(p)
	must(t, os.WriteFile(p, []byte("evil:x:0:0"), 0o644)) // same size
	os.Chtimes(p, fi.ModTime(), fi.ModTime())
	err = s.VerifyImage(ctx, img)
	if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), l.DiffID) {
		t.Fatalf("a tampered layer: %v", err)
	}
	must(t, os.WriteFile(p, []byte("root:x:0:0"), 0o644))
	os.Chtimes(p, fi.ModTime(), fi.ModTime())
	must(t, s.VerifyLayer(ctx, l))
	must(t, os.WriteFile(filepath.Join(l.Dir, "etc/shadow"), nil, 0o600))
	if err := s.VerifyLayer(ctx, l); !errors.Is(err, ErrDamaged) {
		t.Fatalf("a file added to a layer: %v", err)
	}
}

// Store and work dirs may hold commas and colons (a test's t.TempDir of a
// subtest named "a,b"): the overlay still mounts, with every lower dir.
func TestOverlayOptionsEscapeSeparators(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root (overlay); make test runs as root")
	}
	dir := filepath.Join(t.TempDir(), `odd,ro:dir\x`)
	lowerA, lowerB := filepath.Join(dir, "a,b"), filepath.Join(dir, "c:d")
	upper, work, merged := filepath.Join(dir, "u,ro"), filepath.Join(dir, "w:1"), filepath.Join(dir, "m")
	for _, d := range []string{lowerA, lowerB, upper, work, merged} {
		must(t, os.MkdirAll(d, 0o755))
	}
	must(t, os.WriteFile(filepath.Join(lowerA, "top"), []byte("a"), 0o644))
	must(t, os.WriteFile(filepath.Join(lowerB, "bottom"), []byte("b"), 0o644))
	must(t, mount.Mount(mount.Spec{FSType: "overlay", Source: "overlay", Target: merged, Options: OverlayOptions([]string{lowerA, lowerB}, upper, work)}))
	t.Cleanup(func() { mount.CleanUnder(dir) })
	for _, f := range []string{"top", "bottom"} {
		if _, err := os.Stat(filepath.Join(merged, f)); err != nil {
			t.Errorf("%s through the overlay: %v", f, err)
		}
	}
	must(t, os.WriteFile(filepath.Join(merged, "new"), nil, 0o644))
	if _, err := os.Stat(filepath.Join(upper, "new")); err != nil {
		t.Errorf("a write did not land in the upper dir: %v", err)
	}
}

func TestCompressionOf(t *testing.T) {
	for mt, want := range map[string]string{
		"application/vnd.oci.image.layer.v1.tar+gzip":             Gzip,
		"application/vnd.oci.image.layer.v1.tar+zstd":             Zstd,
		"application/vnd.docker.image.rootfs.diff.tar.gzip":       Gzip,
		"application/vnd.docker.image.rootfs.diff.tar.zstd":       Zstd,
		"application/vnd.oci.image.layer.v1.tar":                  "",
		"application/vnd.oci.image.layer.nondistributable.v1.tar": "",
	} {
		if got, ok := CompressionOf(mt); got != want || ok != (want != "") {
			t.Errorf("CompressionOf(%s) = %q, %v", mt, got, ok)
		}
	}
}

// TestGCRemovesOrphanBlobs: a blob whose layer is gone (a removal or a pull
// that stopped between its two renames) goes at the next gc, unless it is
// young or its layer's pull is running; a blob whose layer is there stays.
func TestGCRemovesOrphanBlobs(t *testing.T) {
	s, err := Open(t.TempDir())
	must(t, err)
	l, _ := commit(t, s, tree(t, map[string]string{"etc/x": "kept"}), CommitOptions{})
	_, err = s.Blob(ctx, l, Gzip)
	must(t, err)
	kept := strings.TrimPrefix(l.DiffID, "sha256:") + ".gzip"
	orphan := strings.Repeat("ab", 32) + ".gzip"
	pulling := strings.Repeat("cd", 32) + ".zstd"
	for _, name := range []string{orphan, pulling} {
		must(t, os.MkdirAll(filepath.Join(s.Root(), blobsDir, name), 0o700))
		must(t, os.WriteFile(filepath.Join(s.Root(), blobsDir, name, blobFile), []byte("x"), 0o600))
	}
	unlock, err := s.pullLock(ctx, strings.Repeat("cd", 32))
	must(t, err)
	defer unlock()

	res, err := s.GC(GCOptions{Keep: map[string]bool{}, MinAge: time.Hour})
	must(t, err)
	if len(res.Blobs) != 0 {
		t.Fatalf("young blobs collected: %v", res.Blobs)
	}
	old := time.Now().Add(-2 * time.Hour)
	for _, name := range []string{orphan, pulling} {
		must(t, os.Chtimes(filepath.Join(s.Root(), blobsDir, name), old, old))
	}
	res, err = s.GC(GCOptions{MinAge: time.Hour, DryRun: true})
	must(t, err)
	if !slices.Equal(res.Blobs, []string{orphan}) {
		t.Fatalf("dry run would remove %v, want only %s", res.Blobs, orphan)
	}
	if _, err := os.Stat(filepath.Join(s.Root(), blobsDir, orphan)); err != nil {
		t.Fatalf("dry run removed it: %v", err)
	}
	// Images keep the committed layer: only the orphan goes.
	img, _, release, err := s.PutImage(ImageSpec{Layer: l})
	must(t, err)
	release()
	res, err = s.GC(GCOptions{Keep: map[string]bool{img.ID: true}, MinAge: time.Hour})
	must(t, err)
	if !slices.Equal(res.Blobs, []string{orphan}) {
		t.Fatalf("removed %v, want only %s", res.Blobs, orphan)
	}
	for name, want := range map[string]bool{orphan: false, pulling: true, kept: true} {
		if _, err := os.Stat(filepath.Join(s.Root(), blobsDir, name)); (err == nil) != want {
			t.Errorf("%s: there %v, want %v", name, err == nil, want)
		}
	}
}
