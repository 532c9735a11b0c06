package export

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/strata-build/packer-plugin-strata/internal/bytesize"
	"github.com/strata-build/packer-plugin-strata/internal/fanout"
	"github.com/strata-build/packer-plugin-strata/internal/treetar"
	"github.com/strata-build/packer-plugin-strata/layer"
)

// tarFormats are the formats one tar stream feeds.
var tarFormats = []string{"tar", "tar.gz", "tar.zst"}

// writeTars streams the tree once and fans the tar out to every tar format,
// hashing the uncompressed stream for the rootfs digest on the way.
func writeTars(ctx context.Context, root, outDir string, want map[string]bool, size int64, opt Options) ([]Output, string, error) {
	report := opt.Report
	digest := sha256.New()
	sinks := []io.Writer{digest}
	type sink struct {
		format string
		p      *pendingFile
		closer io.Closer // the compressor, flushed before commit
	}
	var open []sink
	abortAll := func() {
		for _, s := range open {
			if s.closer != nil {
				s.closer.Close()
			}
			s.p.abort()
			if opt.Tracker != nil {
				opt.Tracker.RemoveTemp(s.p.f.Name())
			}
		}
	}
	var names []string
	for _, f := range tarFormats {
		if !want[f] {
			continue
		}
		p, err := createPending(filepath.Join(outDir, FileName(f)))
		if err != nil {
			abortAll()
			return nil, "", err
		}
		if opt.Tracker != nil {
			opt.Tracker.AddTemp(p.f.Name())
		}
		s := sink{format: f, p: p}
		w, closer, err := compressor(f, p)
		if err != nil {
			open = append(open, s)
			abortAll()
			return nil, "", err
		}
		s.closer = closer
		sinks = append(sinks, w)
		open = append(open, s)
		names = append(names, FileName(f))
	}
	what := "rootfs digest"
	if len(names) > 0 {
		what = strings.Join(names, ", ")
	}
	report("Writing " + what + " ...")
	start := time.Now()
	var mu sync.Mutex
	last := start
	topt := opt.Options
	topt.Progress = func(written int64) {
		mu.Lock()
		defer mu.Unlock()
		if time.Since(last) < progressEvery {
			return
		}
		last = time.Now()
		pct := 100.0
		if size > 0 {
			pct = float64(written) * 100 / float64(size)
		}
		report(fmt.Sprintf("  %s of %s (%.0f%%), %s", bytesize.Human(written), bytesize.Human(size), pct, time.Since(start).Round(time.Second)))
	}
	fan := fanout.New(sinks...)
	err := treetar.Write(&ctxWriter{ctx: ctx, w: fan}, root, topt)
	if cerr := fan.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		abortAll()
		return nil, "", fmt.Errorf("writing tar: %w", err)
	}
	var outs []Output
	for i, s := range open {
		if s.closer != nil {
			if err := s.closer.Close(); err != nil {
				abortAll()
				return nil, "", err
			}
		}
		tmp := s.p.f.Name()
		o, err := s.p.commit(s.format)
		if opt.Tracker != nil {
			opt.Tracker.RemoveTemp(tmp)
		}
		if err != nil {
			for _, r := range open[i+1:] {
				r.p.abort()
			}
			return nil, "", err
		}
		outs = append(outs, o)
		report(fmt.Sprintf("Wrote %s: %s (sha256 %s)", filepath.Base(o.Path), bytesize.Human(o.Size), layer.ShortDigest(o.SHA256)))
	}
	report(fmt.Sprintf("Tar stream done in %s", time.Since(start).Round(time.Millisecond)))
	return outs, hex.EncodeToString(digest.Sum(nil)), nil
}

// compressor is the writer for tar format f on top of w, and what to close.
func compressor(f string, w io.Writer) (io.Writer, io.Closer, error) {
	switch f {
	case "tar.gz":
		gz, err := gzip.NewWriterLevel(w, gzip.DefaultCompression)
		return gz, gz, err
	case "tar.zst":
		zw, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedDefault))
		return zw, zw, err
	}
	return w, nil, nil
}

// ctxWriter stops a long write when the build is cancelled.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c *ctxWriter) Write(b []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(b)
}

// TreeDigest is "sha256:<hex>" of the canonical tar of the tree at root as
// it is (no time clamped), with every file written whole (treetar's Dense):
// what a dir output's rootfs.tree-sha256 records. It depends only on what a
// copy with cp -a keeps, on any file system: names, content, modes, owners,
// times, extended attributes, links and devices; not on inode numbers,
// directory sizes, access times or where holes happen to be.
func TreeDigest(ctx context.Context, root string) (string, error) {
	h := sha256.New()
	if err := treetar.Write(&ctxWriter{ctx: ctx, w: h}, root, treetar.Options{Dense: true}); err != nil {
		return "", err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}
