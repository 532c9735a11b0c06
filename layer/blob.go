package layer

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"

	"github.com/strata-build/packer-plugin-strata/internal/fanout"
	"github.com/strata-build/packer-plugin-strata/internal/treetar"
)

// Compressions a blob can have, as OCI media types name them.
const (
	Gzip = "gzip"
	Zstd = "zstd"
)

// CompressionOf is the compression a layer media type names ("+gzip",
// "+zstd", Docker's ".tar.gzip"), and false for one it names none of.
func CompressionOf(mediaType string) (string, bool) {
	switch {
	case strings.HasSuffix(mediaType, "+zstd") || strings.HasSuffix(mediaType, ".zstd"):
		return Zstd, true
	case strings.HasSuffix(mediaType, "gzip"):
		return Gzip, true
	}
	return "", false
}

// Blob is a layer's compressed OCI tar, as a registry or an OCI layout holds it.
type Blob struct {
	DiffID      string `json:"diff_id"` // of the uncompressed tar
	Digest      string `json:"digest"`  // of the compressed bytes
	Size        int64  `json:"size"`
	Compression string `json:"compression"`
	Path        string `json:"-"`
}

// A layer's blob lives in its own directory, blobs/<diffID hex>.<compression>/,
// as the file blob and its metadata blob.json: both are written in a
// staging dir that is renamed into place at once, so no crash leaves a blob
// without its metadata or the reverse. (Stores written before kept them as
// the files blobs/<hex>.<compression> and .json beside it: still read.)
const (
	blobFile = "blob"
	blobMeta = "blob.json"
)

// Blob returns the layer's compressed blob, made once and kept in the
// store. A layer pulled from a registry keeps the blob it came as; in the
// other compression, it is made from that blob's tar (the tar a registry
// had need not be the one strata would write from the unpacked tree, and
// only that tar has the layer's DiffID). Otherwise it is made from the
// layer's tree. Either way its diffID is checked on the way.
func (s *Store) Blob(ctx context.Context, l *Layer, compression string) (*Blob, error) {
	h, err := hexOf(l.DiffID)
	if err != nil {
		return nil, err
	}
	if compression != Gzip && compression != Zstd {
		return nil, fmt.Errorf("compression %q: use gzip or zstd", compression)
	}
	base := filepath.Join(s.root, blobsDir, h+"."+compression)
	if b, err := readBlobMeta(base); err == nil {
		return b, nil
	}
	// Staged under tmp/ with a staging lock, like every write (lock.go):
	// the cleaner of another process leaves it alone.
	staged, release, err := s.staging("blob-")
	if err != nil {
		return nil, err
	}
	defer release()
	defer os.RemoveAll(staged)
	tmp, err := os.Create(filepath.Join(staged, blobFile))
	if err != nil {
		return nil, err
	}
	defer tmp.Close()
	digest := sha256.New()
	out := io.MultiWriter(tmp, digest)
	var comp io.WriteCloser
	switch compression {
	case Gzip:
		comp, err = gzip.NewWriterLevel(out, gzip.DefaultCompression)
	case Zstd:
		comp, err = zstd.NewWriter(out, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
	}
	if err != nil {
		return nil, err
	}
	diff := sha256.New()
	size := &countingWriter{ctx: ctx, w: io.Discard}
	fan := fanout.New(comp, diff, size)
	var werr error
	if src := s.otherBlob(h, compression); src != nil {
		werr = decompressTo(fan, src)
	} else {
		werr = treetar.Write(fan, l.Dir, treetar.Options{Layer: true, ClampTime: l.clampTime()})
	}
	if cerr := fan.Close(); werr == nil {
		werr = cerr
	}
	if cerr := comp.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return nil, fmt.Errorf("compressing layer %s: %w", l.DiffID, werr)
	}
	if got := "sha256:" + hex.EncodeToString(diff.Sum(nil)); got != l.DiffID {
		return nil, fmt.Errorf("layer %s reads back as %s: the store is damaged", l.DiffID, got)
	}
	if err := tmp.Sync(); err != nil {
		return nil, err
	}
	fi, err := tmp.Stat()
	if err != nil {
		return nil, err
	}
	b := &Blob{DiffID: l.DiffID, Digest: "sha256:" + hex.EncodeToString(digest.Sum(nil)), Size: fi.Size(), Compression: compression}
	if err := s.publishBlob(staged, base, b, false); err != nil {
		return nil, err
	}
	// Another writer's, when it came first: the same layer, the same bytes.
	return readBlobMeta(base)
}

// otherBlob is the layer's kept blob in a compression other than
// compression, nil when there is none.
func (s *Store) otherBlob(h, compression string) *Blob {
	for _, c := range []string{Gzip, Zstd} {
		if c == compression {
			continue
		}
		if b, err := readBlobMeta(filepath.Join(s.root, blobsDir, h+"."+c)); err == nil {
			return b
		}
	}
	return nil
}

// decompressTo writes the tar the blob b holds to w.
func decompressTo(w io.Writer, b *Blob) error {
	f, err := os.Open(b.Path)
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := decompressor(bufio.NewReaderSize(f, 1<<20), b.Compression)
	if err != nil {
		return fmt.Errorf("blob %s: %w", b.Digest, err)
	}
	defer r.Close()
	_, err = io.CopyBuffer(w, r, make([]byte, 1<<20))
	return err
}

// decompressor reads the compressed stream in (Gzip or Zstd).
func decompressor(in io.Reader, compression string) (io.ReadCloser, error) {
	switch compression {
	case Gzip:
		return gzip.NewReader(in)
	case Zstd:
		zr, err := zstd.NewReader(in, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		return zr.IOReadCloser(), nil
	}
	return nil, fmt.Errorf("compression %q: use gzip or zstd", compression)
}

// publishBlob writes b's metadata beside the blob file in staged (a staging
// dir holding only it) and renames the dir into place at base. A whole blob
// that is there already (another writer's, of the same layer) stays, unless
// replace is set and it has another digest; a damaged one (an old-layout
// file without its metadata) is replaced.
func (s *Store) publishBlob(staged, base string, b *Blob, replace bool) error {
	meta, _ := json.Marshal(b)
	if err := writeSynced(filepath.Join(staged, blobMeta), meta); err != nil {
		return err
	}
	for range 3 {
		created, err := publish(staged, base)
		if created {
			return nil
		}
		if err != nil && !errors.Is(err, unix.ENOTDIR) {
			return err
		}
		if old, err := readBlobMeta(base); err == nil && (!replace || old.Digest == b.Digest) {
			return nil
		}
		if fi, err := os.Lstat(base); err == nil && !fi.IsDir() { // the old layout's file
			os.Remove(base + ".json")
			if err := os.Remove(base); err != nil {
				return err
			}
			continue
		}
		if err := s.removeEntry(base); err != nil {
			return err
		}
	}
	return fmt.Errorf("blob %s: another writer keeps replacing it", base)
}

// readBlobMeta reads the blob kept at base (blobs/<hex>.<compression>),
// in either layout.
func readBlobMeta(base string) (*Blob, error) {
	path, metaPath := filepath.Join(base, blobFile), filepath.Join(base, blobMeta)
	if fi, err := os.Lstat(base); err == nil && fi.Mode().IsRegular() {
		path, metaPath = base, base+".json" // the old layout
	}
	data, err := os.ReadFile(metaPath)
	if err != nil {
		return nil, err
	}
	var b Blob
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, err
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Size() != b.Size {
		return nil, fmt.Errorf("cached blob %s is damaged", base)
	}
	b.Path = path
	return &b, nil
}
