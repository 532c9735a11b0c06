package layer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

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

// Blob returns the layer's compressed blob, made once and kept in the
// store. Making it re-reads the layer and checks its diffID on the way.
func (s *Store) Blob(ctx context.Context, l *Layer, compression string) (*Blob, error) {
	h, err := hexOf(l.DiffID)
	if err != nil {
		return nil, err
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
	tmp, err := os.Create(filepath.Join(staged, "blob"))
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
	default:
		return nil, fmt.Errorf("compression %q: use gzip or zstd", compression)
	}
	if err != nil {
		return nil, err
	}
	diff := sha256.New()
	size := &countingWriter{ctx: ctx, w: io.Discard}
	fan := fanout.New(comp, diff, size)
	werr := treetar.Write(fan, l.Dir, treetar.Options{Layer: true, ClampTime: l.clampTime()})
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
	if err := os.Rename(tmp.Name(), base); err != nil {
		return nil, err
	}
	meta, _ := json.Marshal(b)
	metaTmp := filepath.Join(staged, "blob.json")
	if err := writeSynced(metaTmp, meta); err != nil {
		return nil, err
	}
	if err := os.Rename(metaTmp, base+".json"); err != nil {
		return nil, err
	}
	b.Path = base
	return b, nil
}

func readBlobMeta(base string) (*Blob, error) {
	data, err := os.ReadFile(base + ".json")
	if err != nil {
		return nil, err
	}
	var b Blob
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, err
	}
	fi, err := os.Stat(base)
	if err != nil || fi.Size() != b.Size {
		return nil, fmt.Errorf("cached blob %s is damaged", base)
	}
	b.Path = base
	return &b, nil
}
