package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"golang.org/x/sys/unix"
)

// gzipLayer is a gzip OCI layer blob of the tar entries, and its ImportBlob.
func gzipLayer(t *testing.T, entries []tar.Header, contents map[string]string) ([]byte, ImportBlob) {
	t.Helper()
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	for _, h := range entries {
		h := h
		c := contents[h.Name]
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(c))
		}
		must(t, tw.WriteHeader(&h))
		if c != "" {
			_, err := tw.Write([]byte(c))
			must(t, err)
		}
	}
	must(t, tw.Close())
	diff := sha256.Sum256(raw.Bytes())
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, err := zw.Write(raw.Bytes())
	must(t, err)
	must(t, zw.Close())
	d := sha256.Sum256(gz.Bytes())
	return gz.Bytes(), ImportBlob{DiffID: "sha256:" + hex.EncodeToString(diff[:]), Digest: "sha256:" + hex.EncodeToString(d[:]),
		Size: int64(gz.Len()), Compression: Gzip}
}

func importBytes(s *Store, b ImportBlob, data []byte) (*Layer, func(), error) {
	l, _, release, err := s.ImportLayer(ctx, b, func(context.Context) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	})
	return l, release, err
}

// TestImportRefusesDeviceNodes: a pulled layer may not create a block or
// character device (a hostile image's /dev/sda), except an overlay
// whiteout (0/0), the standard harmless nodes a Debian bootstrap carries
// (/dev/null and the like) and FIFOs; the refusal names the blob and the
// path, and nothing is stored. Setuid files are kept.
func TestImportRefusesDeviceNodes(t *testing.T) {
	dir := func(n string) tar.Header { return tar.Header{Name: n, Typeflag: tar.TypeDir, Mode: 0o755} }
	for _, c := range []struct {
		name string
		dev  tar.Header
	}{
		{"block", tar.Header{Name: "./dev/sda", Typeflag: tar.TypeBlock, Mode: 0o660, Devmajor: 8, Devminor: 0}},
		{"char", tar.Header{Name: "./srv/mem", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 1}},
		{"block-0-0", tar.Header{Name: "./srv/b", Typeflag: tar.TypeBlock, Mode: 0o666}},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			s, err := Open(root)
			must(t, err)
			data, b := gzipLayer(t, []tar.Header{dir("./dev/"), dir("./srv/"), c.dev}, nil)
			_, _, err = importBytes(s, b, data)
			if err == nil || !strings.Contains(err.Error(), b.Digest) || !strings.Contains(err.Error(), strings.TrimPrefix(c.dev.Name, "./")) {
				t.Fatalf("a layer with device %s imported: %v", c.dev.Name, err)
			}
			assertNothingStored(t, s)
		})
	}

	// What stays allowed.
	s, err := Open(t.TempDir())
	must(t, err)
	data, b := gzipLayer(t, []tar.Header{
		dir("./dev/"), dir("./etc/"), dir("./usr/"),
		{Name: "./dev/null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3},
		{Name: "./dev/ptmx", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 5, Devminor: 2},
		{Name: "./etc/fifo", Typeflag: tar.TypeFifo, Mode: 0o600},
		{Name: "./etc/.wh.gone", Typeflag: tar.TypeReg, Mode: 0o600},
		{Name: "./etc/removed", Typeflag: tar.TypeChar, Mode: 0o600}, // an overlay whiteout as is
		{Name: "./usr/su", Typeflag: tar.TypeReg, Mode: 0o4755},
	}, map[string]string{"./usr/su": "#!/bin/sh\n"})
	l, release, err := importBytes(s, b, data)
	must(t, err)
	defer release()
	for p, want := range map[string]uint32{"dev/null": unix.S_IFCHR, "dev/ptmx": unix.S_IFCHR, "etc/fifo": unix.S_IFIFO, "etc/gone": unix.S_IFCHR, "etc/removed": unix.S_IFCHR} {
		var st unix.Stat_t
		must(t, unix.Lstat(filepath.Join(l.Dir, p), &st))
		if st.Mode&unix.S_IFMT != want {
			t.Errorf("%s has type %o, want %o", p, st.Mode&unix.S_IFMT, want)
		}
	}
	if fi, err := os.Stat(filepath.Join(l.Dir, "usr/su")); err != nil || fi.Mode()&os.ModeSetuid == 0 {
		t.Errorf("the setuid file lost its bit: %v %v", fi, err)
	}
}

// TestBlobLayouts: a blob is kept as one dir (blob and blob.json, renamed
// into place together); a store's old-layout blob (the files <hex>.gzip and
// <hex>.gzip.json) is still read, and one without its metadata is made
// again.
func TestBlobLayouts(t *testing.T) {
	s, err := Open(t.TempDir())
	must(t, err)
	l, _ := commit(t, s, tree(t, map[string]string{"etc/x": "hello"}), CommitOptions{ClampTime: clamp})
	b, err := s.Blob(ctx, l, Gzip)
	must(t, err)
	h := strings.TrimPrefix(l.DiffID, "sha256:")
	dir := filepath.Join(s.Root(), blobsDir, h+".gzip")
	if b.Path != filepath.Join(dir, blobFile) {
		t.Fatalf("the blob is at %s", b.Path)
	}
	if _, err := os.Stat(filepath.Join(dir, blobMeta)); err != nil {
		t.Fatal(err)
	}
	// The old layout.
	data, _ := os.ReadFile(b.Path)
	meta, _ := os.ReadFile(filepath.Join(dir, blobMeta))
	must(t, os.RemoveAll(dir))
	must(t, os.WriteFile(dir, data, 0o600))
	must(t, os.WriteFile(dir+".json", meta, 0o600))
	old, err := s.Blob(ctx, l, Gzip)
	must(t, err)
	if old.Path != dir || old.Digest != b.Digest {
		t.Fatalf("old layout read as %+v", old)
	}
	// Its metadata lost: made again, in the new layout.
	must(t, os.Remove(dir+".json"))
	again, err := s.Blob(ctx, l, Gzip)
	must(t, err)
	if again.Path != filepath.Join(dir, blobFile) || again.Digest != b.Digest {
		t.Fatalf("remade as %+v", again)
	}
}

// TestImportNeedsASize: a blob announced without a size (0 or less: a
// manifest must give one) is refused before anything is read, and reads
// stop at the announced size.
func TestImportNeedsASize(t *testing.T) {
	data, b := gzipLayer(t, []tar.Header{{Name: "./etc/", Typeflag: tar.TypeDir, Mode: 0o755}}, nil)
	for _, size := range []int64{0, -1} {
		root := t.TempDir()
		s, err := Open(root)
		must(t, err)
		read := false
		bb := b
		bb.Size = size
		_, _, _, err = s.ImportLayer(ctx, bb, func(context.Context) (io.ReadCloser, error) {
			read = true
			return io.NopCloser(bytes.NewReader(data)), nil
		})
		if err == nil || read {
			t.Fatalf("size %d: imported (read %v): %v", size, read, err)
		}
	}
	// A blob longer than announced: read up to one byte past it.
	s, err := Open(t.TempDir())
	must(t, err)
	long := &countReader{r: io.MultiReader(bytes.NewReader(data), bytes.NewReader(make([]byte, 10<<20)))}
	_, _, _, err = s.ImportLayer(ctx, b, func(context.Context) (io.ReadCloser, error) { return io.NopCloser(long), nil })
	if err == nil || long.n > b.Size+1 {
		t.Fatalf("a blob longer than announced: read %d bytes of %d announced: %v", long.n, b.Size, err)
	}
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// TestImportWaitIsCancellable: an import waiting for another import of the
// same layer (its pull lock) stops when its context is cancelled.
func TestImportWaitIsCancellable(t *testing.T) {
	s, err := Open(t.TempDir())
	must(t, err)
	data, b := gzipLayer(t, []tar.Header{{Name: "./etc/", Typeflag: tar.TypeDir, Mode: 0o755}}, nil)
	h := strings.TrimPrefix(b.DiffID, "sha256:")
	lock, err := os.OpenFile(filepath.Join(s.Root(), tmpDir, "pull-"+h+".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	must(t, err)
	defer lock.Close()
	must(t, unix.Flock(int(lock.Fd()), unix.LOCK_EX)) // another process's import
	c, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, _, _, err := s.ImportLayer(c, b, func(context.Context) (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(data)), nil
		})
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("the cancelled wait returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the import kept waiting for the lock after its context was cancelled")
	}
}

// TestImportKeepsTheRegistrysBlob: a blob an earlier pull left without its
// layer (stopped between the two renames) with another digest is replaced
// by the blob this pull verified, so pushing the layer names the digest it
// came as.
func TestImportKeepsTheRegistrysBlob(t *testing.T) {
	s, err := Open(t.TempDir())
	must(t, err)
	data, b := gzipLayer(t, []tar.Header{{Name: "./etc/", Typeflag: tar.TypeDir, Mode: 0o755}}, nil)
	_, release, err := importBytes(s, b, data)
	must(t, err)
	release()
	h := strings.TrimPrefix(b.DiffID, "sha256:")
	must(t, os.RemoveAll(filepath.Join(s.Root(), layersDir, h))) // the layer's rename never happened
	// The same tar, compressed otherwise.
	zr, err := gzip.NewReader(bytes.NewReader(data))
	must(t, err)
	raw, err := io.ReadAll(zr)
	must(t, err)
	var other bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&other, gzip.BestSpeed)
	zw.Write(raw)
	must(t, zw.Close())
	sum := sha256.Sum256(other.Bytes())
	b2 := b
	b2.Digest, b2.Size = "sha256:"+hex.EncodeToString(sum[:]), int64(other.Len())
	if b2.Digest == b.Digest {
		t.Fatal("the test needs another compressed form")
	}
	l, release, err := importBytes(s, b2, other.Bytes())
	must(t, err)
	defer release()
	got, err := s.Blob(ctx, l, Gzip)
	must(t, err)
	if got.Digest != b2.Digest {
		t.Fatalf("the layer's blob is %s, the pull verified %s", got.Digest, b2.Digest)
	}
}

// TestImportCountsWhatItMakes: the entries an import records are the ones
// a walk of the unpacked tree counts, for every kind of member (a
// directory given twice counts once; an opaque marker is an attribute,
// not an entry).
func TestImportCountsWhatItMakes(t *testing.T) {
	s, err := Open(t.TempDir())
	must(t, err)
	big := strings.Repeat("x", smallFile+10) // written by the unpacker itself, not a worker
	data, b := gzipLayer(t, []tar.Header{
		{Name: "./etc/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "./etc/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "./etc/a", Typeflag: tar.TypeReg, Mode: 0o644},
		{Name: "./etc/big", Typeflag: tar.TypeReg, Mode: 0o644},
		{Name: "./etc/hard", Typeflag: tar.TypeLink, Linkname: "./etc/a"},
		{Name: "./etc/soft", Typeflag: tar.TypeSymlink, Linkname: "a"},
		{Name: "./etc/.wh.gone", Typeflag: tar.TypeReg, Mode: 0o644},
		{Name: "./opt/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "./opt/.wh..wh..opq", Typeflag: tar.TypeReg, Mode: 0o644},
		{Name: "./opt/fifo", Typeflag: tar.TypeFifo, Mode: 0o644},
		{Name: "./dev/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "./dev/null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3},
	}, map[string]string{"./etc/a": "a\n", "./etc/big": big})
	l, release, err := importBytes(s, b, data)
	must(t, err)
	defer release()
	walked, err := countEntries(l.Dir)
	must(t, err)
	if l.Entries != walked || walked != 10 {
		t.Errorf("the import recorded %d entries, a walk counts %d (want 10)", l.Entries, walked)
	}
}

// TestImportRefusesTruncatedStream: a gzip stream cut before its checksum
// trailer is refused, though its digest and DiffID are announced to
// match (the tar in it is whole).
func TestImportRefusesTruncatedStream(t *testing.T) {
	s, err := Open(t.TempDir())
	must(t, err)
	data, b := gzipLayer(t, []tar.Header{{Name: "./etc/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "./etc/a", Typeflag: tar.TypeReg, Mode: 0o644}}, map[string]string{"./etc/a": strings.Repeat("a", 5000)})
	cut := data[:len(data)-8] // no CRC-32, no size
	sum := sha256.Sum256(cut)
	b.Digest, b.Size = "sha256:"+hex.EncodeToString(sum[:]), int64(len(cut))
	_, _, err = importBytes(s, b, cut)
	if err == nil || !strings.Contains(err.Error(), "decompressing blob") {
		t.Fatalf("a truncated stream: %v", err)
	}
	assertNothingStored(t, s)
}

// TestImportNamesTheRefusedMember: when unpacking refuses a member while
// much of the tar is still to come, the error names the member, not the
// decompression it stopped.
func TestImportNamesTheRefusedMember(t *testing.T) {
	s, err := Open(t.TempDir())
	must(t, err)
	data, b := gzipLayer(t, []tar.Header{
		{Name: "./dev/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "./dev/sda", Typeflag: tar.TypeBlock, Mode: 0o600, Devmajor: 8},
		{Name: "./zeros", Typeflag: tar.TypeReg, Mode: 0o644},
	}, map[string]string{"./zeros": string(make([]byte, 64<<20))})
	_, _, err = importBytes(s, b, data)
	if err == nil || !strings.Contains(err.Error(), "dev/sda") {
		t.Fatalf("error %v, want the refused member named", err)
	}
	assertNothingStored(t, s)
}

// TestImportOfGarbageAllocatesLittle: a blob that is not what it claims to
// be is still read to its announced size (so the error is its digest's),
// through one buffer, not a new one per read.
func TestImportOfGarbageAllocatesLittle(t *testing.T) {
	s, err := Open(t.TempDir())
	must(t, err)
	garbage := bytes.Repeat([]byte("not gzip "), (32<<20)/9)
	sum := sha256.Sum256(garbage)
	b := ImportBlob{DiffID: "sha256:" + strings.Repeat("0", 64), Digest: "sha256:" + hex.EncodeToString(sum[:]), Size: int64(len(garbage)), Compression: Gzip}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, _, err = importBytes(s, b, garbage)
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "decompressing blob") {
		t.Fatalf("error %v", err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 24<<20 {
		t.Errorf("reading a 32 MiB blob allocated %d MiB", n>>20)
	}
}

// assertNothingStored checks that a refused import left no layer, no
// blob and no staging dir in the store.
func assertNothingStored(t *testing.T, s *Store) {
	t.Helper()
	for _, d := range []string{layersDir, blobsDir} {
		if ents, _ := os.ReadDir(filepath.Join(s.Root(), d)); len(ents) != 0 {
			t.Fatalf("the refused layer left %d entries in %s", len(ents), d)
		}
	}
	left, _ := os.ReadDir(filepath.Join(s.Root(), tmpDir))
	for _, e := range left {
		if strings.HasPrefix(e.Name(), "pull-") && !strings.HasSuffix(e.Name(), ".lock") {
			t.Errorf("a refused import left %s in the store's tmp", e.Name())
		}
	}
}
