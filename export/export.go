package export

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Formats lists every output format, in the order Export writes them.
var Formats = []string{"tar", "tar.gz", "tar.zst", "squashfs", "ext4", "dir"}

// IsFormat reports whether f is a known format.
func IsFormat(f string) bool {
	for _, k := range Formats {
		if k == f {
			return true
		}
	}
	return false
}

// FileName is the name of the output of format f inside the output directory.
func FileName(f string) string {
	if f == "dir" {
		return "rootfs"
	}
	return "rootfs." + f
}

// Output is one written output.
type Output struct {
	Format string
	Path   string
	Size   int64
	SHA256 string // hex; for "dir", the digest of the canonical tar of the tree
}

// Options control an export.
type Options struct {
	Formats       []string
	Ext4FreeSpace int64 // bytes of free space an ext4 image gets beyond its content
	TarOptions
	// Report receives progress lines for people (what runs, sizes, timings).
	Report func(string)
	// MoveDir lets the "dir" format rename root into place instead of copying
	// it: the caller no longer needs root afterwards.
	MoveDir bool
}

// Result is what Export produced.
type Result struct {
	Outputs []Output
	// RootfsDigest is "sha256:<hex>" of the canonical uncompressed tar of the
	// tree: the same for every format, and the artifact's ID.
	RootfsDigest string
}

// Export writes root into outDir in each asked-for format. Every file is
// written under a temporary name, synced and renamed, so a reader never sees
// a half-written output; each gets a "<name>.sha256" beside it.
func Export(ctx context.Context, root, outDir string, opt Options) (*Result, error) {
	report := opt.Report
	if report == nil {
		report = func(string) {}
	}
	want := map[string]bool{}
	for _, f := range opt.Formats {
		if !IsFormat(f) {
			return nil, fmt.Errorf("unknown format %q (known: %s)", f, strings.Join(Formats, ", "))
		}
		want[f] = true
	}
	size, blocks, entries, err := TreeSize(root)
	if err != nil {
		return nil, fmt.Errorf("measuring %s: %w", root, err)
	}
	report(fmt.Sprintf("Tree: %s in %d entries", HumanBytes(size), entries))

	res := &Result{}
	tarOuts, digest, err := writeTars(ctx, root, outDir, want, size, opt, report)
	if err != nil {
		return nil, err
	}
	res.RootfsDigest = "sha256:" + digest
	res.Outputs = append(res.Outputs, tarOuts...)

	if want["squashfs"] {
		o, err := timed(report, "squashfs", tmpName(outDir, "squashfs"), func() (Output, error) { return writeSquashfs(ctx, root, outDir) })
		if err != nil {
			return nil, err
		}
		res.Outputs = append(res.Outputs, o)
	}
	if want["ext4"] {
		o, err := timed(report, "ext4", tmpName(outDir, "ext4"), func() (Output, error) {
			return writeExt4(ctx, root, outDir, blocks, entries, opt.Ext4FreeSpace)
		})
		if err != nil {
			return nil, err
		}
		res.Outputs = append(res.Outputs, o)
	}
	if want["dir"] {
		o, err := timed(report, "dir", tmpName(outDir, "dir"), func() (Output, error) { return writeDir(ctx, root, outDir, digest, opt.MoveDir) })
		if err != nil {
			return nil, err
		}
		res.Outputs = append(res.Outputs, o)
	}
	return res, nil
}

// progressEvery is how often a long output reports that it is still going.
var progressEvery = 5 * time.Second

// timed runs one output's writer, reporting start, progress (the size of the
// file being written, every progressEvery) and the result.
func timed(report func(string), format, tmp string, f func() (Output, error)) (Output, error) {
	report(fmt.Sprintf("Writing %s ...", format))
	start := time.Now()
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(progressEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				so := ""
				if fi, err := os.Stat(tmp); err == nil && fi.Mode().IsRegular() {
					so = HumanBytes(fi.Size()) + " so far, "
				}
				report(fmt.Sprintf("  still writing %s: %s%s", format, so, time.Since(start).Round(time.Second)))
			}
		}
	}()
	o, err := f()
	close(done)
	if err != nil {
		return o, fmt.Errorf("writing %s: %w", format, err)
	}
	report(fmt.Sprintf("Wrote %s: %s in %s (sha256 %s)", filepath.Base(o.Path), HumanBytes(o.Size), time.Since(start).Round(time.Millisecond), short(o.SHA256)))
	return o, nil
}

// tmpName is where an external tool writes format f before the rename.
func tmpName(outDir, f string) string {
	return filepath.Join(outDir, "."+FileName(f)+".tmp")
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// pendingFile is an output being written under a temporary name.
type pendingFile struct {
	f     *os.File
	final string
	h     hash.Hash
	n     int64
}

func createPending(final string) (*pendingFile, error) {
	f, err := os.CreateTemp(filepath.Dir(final), "."+filepath.Base(final)+".tmp-*")
	if err != nil {
		return nil, err
	}
	return &pendingFile{f: f, final: final, h: sha256.New()}, nil
}

func (p *pendingFile) Write(b []byte) (int, error) {
	n, err := p.f.Write(b)
	p.h.Write(b[:n])
	p.n += int64(n)
	return n, err
}

func (p *pendingFile) abort() {
	p.f.Close()
	os.Remove(p.f.Name())
}

// finish syncs the file and renames it into place.
func (p *pendingFile) finish(mode os.FileMode) error {
	err := p.f.Sync()
	if cerr := p.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(p.f.Name(), mode)
	}
	if err == nil {
		err = os.Rename(p.f.Name(), p.final)
	}
	if err != nil {
		os.Remove(p.f.Name())
	}
	return err
}

// commit finishes the output and writes the checksum file beside it.
func (p *pendingFile) commit(format string) (Output, error) {
	if err := p.finish(0o644); err != nil {
		return Output{}, err
	}
	sum := hex.EncodeToString(p.h.Sum(nil))
	if err := writeChecksum(p.final, sum); err != nil {
		return Output{}, err
	}
	return Output{Format: format, Path: p.final, Size: p.n, SHA256: sum}, nil
}

// writeChecksum writes "<path>.sha256" in sha256sum(1) format, atomically.
func writeChecksum(path, sum string) error {
	return WriteFileAtomic(path+".sha256", []byte(sum+"  "+filepath.Base(path)+"\n"), 0o644)
}

// WriteFileAtomic writes data to a temporary file beside path, syncs it and
// renames it over path.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	p, err := createPending(path)
	if err != nil {
		return err
	}
	if _, err := p.Write(data); err != nil {
		p.abort()
		return err
	}
	return p.finish(mode)
}

// writeTars streams the tree once and fans the tar out to every tar format,
// hashing the uncompressed stream for the rootfs digest on the way.
func writeTars(ctx context.Context, root, outDir string, want map[string]bool, size int64, opt Options, report func(string)) ([]Output, string, error) {
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
		}
	}
	var names []string
	for _, f := range []string{"tar", "tar.gz", "tar.zst"} {
		if !want[f] {
			continue
		}
		p, err := createPending(filepath.Join(outDir, FileName(f)))
		if err != nil {
			abortAll()
			return nil, "", err
		}
		s := sink{format: f, p: p}
		switch f {
		case "tar":
			sinks = append(sinks, p)
		case "tar.gz":
			gz, _ := gzip.NewWriterLevel(p, gzip.DefaultCompression)
			s.closer = gz
			sinks = append(sinks, gz)
		case "tar.zst":
			zw, err := zstd.NewWriter(p, zstd.WithEncoderLevel(zstd.SpeedDefault))
			if err != nil {
				abortAll()
				return nil, "", err
			}
			s.closer = zw
			sinks = append(sinks, zw)
		}
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
	topt := opt.TarOptions
	topt.Progress = func(written int64) {
		mu.Lock()
		defer mu.Unlock()
		if time.Since(last) < 5*time.Second {
			return
		}
		last = time.Now()
		pct := 100.0
		if size > 0 {
			pct = float64(written) * 100 / float64(size)
		}
		report(fmt.Sprintf("  %s of %s (%.0f%%), %s", HumanBytes(written), HumanBytes(size), pct, time.Since(start).Round(time.Second)))
	}
	fan := newFanout(sinks...)
	err := WriteTar(&ctxWriter{ctx: ctx, w: fan}, root, topt)
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
		o, err := s.p.commit(s.format)
		if err != nil {
			for _, r := range open[i+1:] {
				r.p.abort()
			}
			return nil, "", err
		}
		outs = append(outs, o)
		report(fmt.Sprintf("Wrote %s: %s (sha256 %s)", filepath.Base(o.Path), HumanBytes(o.Size), short(o.SHA256)))
	}
	report(fmt.Sprintf("Tar stream done in %s", time.Since(start).Round(time.Millisecond)))
	return outs, hex.EncodeToString(digest.Sum(nil)), nil
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

// runTool runs a host program, returning its combined output in the error.
func runTool(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// finishFile syncs a file a tool wrote, renames it into place and writes
// its checksum file.
func finishFile(tmp, final, format string) (Output, error) {
	sum, n, err := FileSHA256(tmp)
	if err == nil {
		var f *os.File
		if f, err = os.Open(tmp); err == nil {
			err = f.Sync()
			f.Close()
		}
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, final)
	}
	if err != nil {
		os.Remove(tmp)
		return Output{}, err
	}
	if err := writeChecksum(final, sum); err != nil {
		return Output{}, err
	}
	return Output{Format: format, Path: final, Size: n, SHA256: sum}, nil
}

func writeSquashfs(ctx context.Context, root, outDir string) (Output, error) {
	final := filepath.Join(outDir, FileName("squashfs"))
	tmp := tmpName(outDir, "squashfs")
	os.Remove(tmp)
	// mksquashfs keeps owners, modes, hard links, devices and (with -xattrs)
	// extended attributes, which carry file capabilities.
	if err := runTool(ctx, "mksquashfs", root, tmp, "-comp", "zstd", "-noappend", "-xattrs", "-no-progress", "-quiet"); err != nil {
		os.Remove(tmp)
		return Output{}, err
	}
	return finishFile(tmp, final, "squashfs")
}

func writeExt4(ctx context.Context, root, outDir string, blocks, entries, free int64) (Output, error) {
	final := filepath.Join(outDir, FileName("ext4"))
	tmp := tmpName(outDir, "ext4")
	inodes := entries + entries/4 + 1024
	// Content blocks, inode tables (256 bytes each), plus 10% and a fixed
	// margin for metadata and the journal; then the free space asked for.
	bytes := blocks*4096 + inodes*256
	bytes += bytes/10 + 32<<20 + free
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		os.Remove(tmp)
		err = runTool(ctx, "mke2fs", "-q", "-F", "-t", "ext4", "-b", "4096", "-N", fmt.Sprint(inodes),
			"-L", "rootfs", "-E", "root_owner=0:0", "-d", root, tmp, fmt.Sprintf("%dk", bytes/1024))
		if err == nil {
			return finishFile(tmp, final, "ext4")
		}
		if !strings.Contains(err.Error(), "No space") && !strings.Contains(err.Error(), "Could not allocate") {
			break
		}
		bytes += bytes / 2
	}
	os.Remove(tmp)
	return Output{}, err
}

func writeDir(ctx context.Context, root, outDir, digest string, move bool) (Output, error) {
	final := filepath.Join(outDir, FileName("dir"))
	tmp := tmpName(outDir, "dir")
	os.RemoveAll(tmp)
	moved := false
	if move {
		moved = os.Rename(root, tmp) == nil
	}
	if !moved {
		// cp -a keeps owners, modes, hard links, devices, xattrs and capabilities.
		if err := runTool(ctx, "cp", "-a", "--reflink=auto", root, tmp); err != nil {
			os.RemoveAll(tmp)
			return Output{}, err
		}
	}
	if err := os.Rename(tmp, final); err != nil {
		return Output{}, err
	}
	size, _, _, err := TreeSize(final)
	if err != nil {
		return Output{}, err
	}
	if err := WriteFileAtomic(final+".sha256", []byte(digest+"  "+filepath.Base(final)+"/ (canonical tar of the tree)\n"), 0o644); err != nil {
		return Output{}, err
	}
	return Output{Format: "dir", Path: final, Size: size, SHA256: digest}, nil
}

// HumanBytes formats n in binary units.
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
