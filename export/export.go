// Package export writes a root file system out in the formats a build asks
// for: a directory, tar (plain, gzip, zstd), squashfs and a raw ext4 image,
// each with a checksum beside it, and the output directory's manifest
// (artifact.json) that the catalog reads.
package export

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/strata-build/packer-plugin-strata/internal/bytesize"
	"github.com/strata-build/packer-plugin-strata/internal/hostexec"
	"github.com/strata-build/packer-plugin-strata/internal/inroot"
	"github.com/strata-build/packer-plugin-strata/internal/ticker"
	"github.com/strata-build/packer-plugin-strata/internal/treesize"
	"github.com/strata-build/packer-plugin-strata/internal/treetar"
	"github.com/strata-build/packer-plugin-strata/layer"
)

// Formats lists every output format, in the order Export writes them.
var Formats = []string{"tar", "tar.gz", "tar.zst", "squashfs", "ext4", "disk", "dir", "oci"}

// flattened are the formats that hold the whole tree as one.
var flattened = []string{"tar", "tar.gz", "tar.zst", "squashfs", "ext4", "disk", "dir"}

// IsFormat reports whether f is a known format.
func IsFormat(f string) bool { return slices.Contains(Formats, f) }

// FileName is the name of the output of format f inside the output directory.
func FileName(f string) string {
	switch f {
	case "dir":
		return "rootfs"
	case "oci":
		return "oci"
	case "disk":
		return "disk.raw"
	case QCOW2Format:
		return "disk.qcow2"
	}
	return "rootfs." + f
}

// Source is what an export reads.
type Source struct {
	// Root is the image's whole tree (for a layered image, a read-only
	// overlay of its layers), for the flattened formats.
	Root string
	// Store and Image give the layer chain and the config, for oci.
	Store *layer.Store
	Image *layer.Image
}

// Output is one written output.
type Output struct {
	Format string `json:"format"`
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	// SHA256 is the hex digest of the file; for "dir", the tree digest
	// (TreeDigest: what rootfs.tree-sha256 records and `strata verify`
	// checks).
	SHA256 string `json:"sha256"`
}

// Options control an export.
type Options struct {
	Formats []string
	// Ext4FreeSpace is the free space an ext4 image gets beyond its content;
	// Ext4InodeRatio the bytes of it per free inode.
	Ext4FreeSpace  int64
	Ext4InodeRatio int64
	// SquashfsCompression is a compressor as ParseSquashfsCompression reads it.
	SquashfsCompression string
	OCI                 OCIOptions
	// Disk shapes the disk format.
	Disk DiskOptions
	treetar.Options
	// Report receives progress lines for people (what runs, sizes, timings).
	Report func(string)
	// Tracker learns of the host programs the export runs, and of the
	// temporary files it writes, so a later build can clean up after a
	// killed one.
	Tracker Tracker
}

// Tracker is what a build records of an export in progress.
type Tracker interface {
	hostexec.Tracker
	AddTemp(path string) error
	RemoveTemp(path string) error
}

// Result is what Export produced.
type Result struct {
	Outputs []Output
	// RootfsDigest is "sha256:<hex>" of the canonical uncompressed tar of the
	// whole tree: the same for every flattened format ("" with none).
	RootfsDigest string
	Tree         treesize.Stats
}

// Export writes root into outDir in each asked-for format. Every file is
// written under a temporary name, synced and renamed, so a reader never sees
// a half-written output; each gets a "<name>.sha256" beside it.
func Export(ctx context.Context, src Source, outDir string, opt Options) (*Result, error) {
	if opt.Report == nil {
		opt.Report = func(string) {}
	}
	want := map[string]bool{}
	for _, f := range opt.Formats {
		if !IsFormat(f) {
			return nil, fmt.Errorf("unknown format %q (known: %s)", f, strings.Join(Formats, ", "))
		}
		want[f] = true
	}
	var disk *diskPlan
	if want["disk"] {
		// The kernel, the initramfs and the options are checked before
		// anything is written.
		root, err := inroot.Open(src.Root)
		if err != nil {
			return nil, err
		}
		disk, err = planDisk(ctx, root, src, opt)
		root.Close()
		if err != nil {
			return nil, err
		}
	}
	res := &Result{}
	if slices.ContainsFunc(flattened, func(f string) bool { return want[f] }) {
		var err error
		if res, err = exportTree(ctx, src.Root, outDir, want, opt, disk); err != nil {
			return nil, err
		}
	}
	if want["oci"] {
		if opt.OCI.Compression == "" {
			opt.OCI.Compression = layer.Gzip
		}
		o, err := timed(opt.Report, "oci", filepath.Join(outDir, FileName("oci")+".tmp"), func() (Output, error) {
			return writeOCI(ctx, src, filepath.Join(outDir, FileName("oci")), opt.OCI, opt.Tracker)
		})
		if err != nil {
			return nil, err
		}
		res.Outputs = append(res.Outputs, o)
	}
	return res, nil
}

// exportTree writes the flattened formats of the tree at root.
func exportTree(ctx context.Context, root, outDir string, want map[string]bool, opt Options, disk *diskPlan) (*Result, error) {
	tree, err := treesize.Measure(root)
	if err != nil {
		return nil, fmt.Errorf("measuring %s: %w", root, err)
	}
	opt.Report(fmt.Sprintf("Tree: %s on disk (%s apparent) in %d entries", bytesize.Human(tree.Allocated), bytesize.Human(tree.Apparent), tree.Entries))

	// The tar stream (which also yields the rootfs digest), the image
	// tools and the dir copy only read the tree: they run side by side, and whichever fails
	// first stops the other.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type tarResult struct {
		outs   []Output
		digest string
		err    error
	}
	tarDone := make(chan tarResult, 1)
	go func() {
		outs, digest, err := writeTars(ctx, root, outDir, want, tree.Apparent, opt)
		if err != nil {
			cancel()
		}
		tarDone <- tarResult{outs, digest, err}
	}()

	res := &Result{Tree: tree}
	e := exporter{ctx: ctx, root: root, outDir: outDir, opt: opt, tree: tree, diskPlan: disk}
	var images []Output
	var imageErr error
	for _, f := range []struct {
		format string
		write  func() ([]Output, error)
	}{{"squashfs", one(e.squashfs)}, {"ext4", one(e.ext4)}, {"disk", e.disk}, {"dir", one(e.dir)}} {
		if !want[f.format] || imageErr != nil {
			continue
		}
		o, err := timedAll(opt.Report, f.format, tmpName(outDir, f.format), f.write)
		if err != nil {
			imageErr = err
			cancel()
			continue
		}
		images = append(images, o...)
	}
	t := <-tarDone
	// An image's error first: the tar stream's is then only the cancel.
	if imageErr != nil {
		return nil, imageErr
	}
	if t.err != nil {
		return nil, t.err
	}
	res.RootfsDigest = "sha256:" + t.digest
	res.Outputs = append(append(res.Outputs, t.outs...), images...)
	return res, nil
}

// exporter writes the formats that external tools make.
type exporter struct {
	ctx    context.Context
	root   string
	outDir string
	opt    Options
	tree   treesize.Stats
	// diskPlan is what the disk format checked before the export began.
	diskPlan *diskPlan
}

// one makes a writer of one output a writer of several.
func one(f func() (Output, error)) func() ([]Output, error) {
	return func() ([]Output, error) {
		o, err := f()
		if err != nil {
			return nil, err
		}
		return []Output{o}, nil
	}
}

// run runs a host tool in its own process group, tracked.
func (e *exporter) run(name string, args ...string) error {
	return e.runEnv(nil, name, args...)
}

// runEnv runs a host tool with env added to its environment.
func (e *exporter) runEnv(env []string, name string, args ...string) error {
	return e.runCmd(e.command(env, name, args...))
}

// command prepares a host tool with env added to its environment.
func (e *exporter) command(env []string, name string, args ...string) *exec.Cmd {
	cmd := hostexec.Command(e.ctx, name, args...)
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

// runCmd runs a prepared host tool in its own process group, tracked.
func (e *exporter) runCmd(cmd *exec.Cmd) error {
	var t hostexec.Tracker
	if e.opt.Tracker != nil {
		t = e.opt.Tracker
	}
	_, err := hostexec.Output(cmd, t)
	return err
}

// temp marks a temporary output path in the tracker.
func (e *exporter) temp(p string) func() {
	if e.opt.Tracker == nil {
		return func() {}
	}
	e.opt.Tracker.AddTemp(p)
	return func() { e.opt.Tracker.RemoveTemp(p) }
}

// progressEvery is how often a long output reports that it is still going.
var progressEvery = 5 * time.Second

// timed runs one output's writer, reporting start, progress (the size of the
// file being written, every progressEvery) and the result.
func timed(report func(string), format, tmp string, f func() (Output, error)) (Output, error) {
	report(fmt.Sprintf("Writing %s ...", format))
	start := time.Now()
	stop := ticker.Every(progressEvery, func(elapsed time.Duration) {
		so := ""
		if fi, err := os.Stat(tmp); err == nil && fi.Mode().IsRegular() {
			so = bytesize.Human(fi.Size()) + " so far, "
		}
		report(fmt.Sprintf("  still writing %s: %s%s", format, so, elapsed.Round(time.Second)))
	})
	o, err := f()
	stop()
	if err != nil {
		return o, fmt.Errorf("writing %s: %w", format, err)
	}
	report(fmt.Sprintf("Wrote %s: %s in %s (sha256 %s)", filepath.Base(o.Path), bytesize.Human(o.Size), time.Since(start).Round(time.Millisecond), layer.ShortDigest(o.SHA256)))
	return o, nil
}

// timedAll is timed for a writer of several outputs (disk.raw and
// disk.qcow2).
func timedAll(report func(string), format, tmp string, f func() ([]Output, error)) ([]Output, error) {
	var outs []Output
	_, err := timed(report, format, tmp, func() (Output, error) {
		var err error
		outs, err = f()
		if err != nil {
			return Output{}, err
		}
		return outs[0], nil
	})
	if err == nil {
		for _, o := range outs[1:] {
			report(fmt.Sprintf("Wrote %s: %s (sha256 %s)", filepath.Base(o.Path), bytesize.Human(o.Size), layer.ShortDigest(o.SHA256)))
		}
	}
	return outs, err
}

// tmpName is where an external tool writes format f before the rename.
func tmpName(outDir, f string) string {
	return filepath.Join(outDir, "."+FileName(f)+".tmp")
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

// lookPath is exec.LookPath; a variable so tests can hide tools.
var lookPath = exec.LookPath
