// Package treetar writes a directory tree as a canonical tar stream: the
// same tree always gives the same bytes. Entries come in lexical order named
// "./path"; owners are numeric only; every extended attribute (file
// capabilities too) travels as a PAX record; hard links, devices and fifos
// are kept; sparse files stay sparse (PAX sparse format 1.0, which GNU tar,
// Go's archive/tar reader, umoci and skopeo read). With Layer set the tree is
// an overlayfs upper dir and becomes an OCI layer: whiteouts (0/0 character
// devices) turn into ".wh.NAME" files and opaque directories get a
// ".wh..wh..opq" entry.
package treetar

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Options tune how a tree becomes a tar stream.
type Options struct {
	// ClampTime, when not zero, caps every modification time at it
	// (SOURCE_DATE_EPOCH), for reproducible archives.
	ClampTime time.Time
	// Layer converts an overlayfs upper dir into an OCI layer (whiteouts,
	// opaque directories, no trusted.overlay.* attributes, no root entry).
	Layer bool
	// Progress, when set, is called with the bytes of file content written so far.
	Progress func(written int64)
	// Warn receives entries that a tar cannot hold (sockets).
	Warn func(msg string)
	// Dense writes every regular file whole, its holes as the zeros they
	// read as: the stream then depends on the files' content alone, not on
	// where a file system keeps holes, which a copy (cp -a, another file
	// system) is free to move. For digests of trees, not for archives.
	Dense bool
}

// OCI whiteout names (image-spec layer.md).
const (
	WhiteoutPrefix = ".wh."
	WhiteoutOpaque = ".wh..wh..opq"
)

// overlayOpaque marks a directory that hides everything below it in lower layers.
const overlayOpaque = "trusted.overlay.opaque"

// Write writes root as a canonical tar stream to w.
func Write(w io.Writer, root string, opt Options) error {
	tw := &writer{tw: tar.NewWriter(w), raw: w, opt: opt, links: map[[2]uint64]string{}}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		if rel == "." && opt.Layer {
			return nil
		}
		return tw.add(p, rel)
	})
	if err != nil {
		return err
	}
	if len(tw.reserved) > 0 {
		return &ReservedNamesError{Names: tw.reserved}
	}
	return tw.tw.Close()
}

// ReservedNamesError lists the files of a layer whose names an OCI layer
// reserves for deletions (".wh.NAME" deletes NAME, ".wh..wh..opq" empties
// its directory): exported as they are, every OCI tool would delete files
// nobody deleted, and the OCI output would disagree with every other one.
type ReservedNamesError struct {
	Names []string // paths in the image, "/etc/.wh.passwd"
}

func (e *ReservedNamesError) Error() string {
	return fmt.Sprintf("the layer holds %d file(s) whose names begin with %q, which OCI layers reserve for deletions: %s; remove or rename them in the build",
		len(e.Names), WhiteoutPrefix, strings.Join(e.Names, ", "))
}

type writer struct {
	tw      *tar.Writer
	raw     io.Writer // beneath tw, for the sparse entries tw cannot encode
	opt     Options
	links   map[[2]uint64]string
	written int64
	// buf is the one copy buffer for every file: io.Copy would make a
	// new 32 KiB one per file (tar.Writer has no ReadFrom), which for a
	// base image's 4,000 files was a fifth of a layer check's time in
	// clearing and returning memory.
	buf []byte
	// reserved are the entries a layer cannot hold (ReservedNamesError).
	reserved []string
}

func (w *writer) add(p, rel string) error {
	name := "./"
	if rel != "." {
		name = "./" + filepath.ToSlash(rel)
	}
	if w.opt.Layer && strings.HasPrefix(filepath.Base(rel), WhiteoutPrefix) {
		// Checked for every entry, the walk goes on: the error names all.
		w.reserved = append(w.reserved, "/"+filepath.ToSlash(rel))
	}
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return fmt.Errorf("lstat %s: %w", p, err)
	}
	hdr := &tar.Header{
		Name:    name,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: w.clamp(time.Unix(st.Mtim.Sec, st.Mtim.Nsec)),
		Format:  tar.FormatPAX,
	}
	xattrs, err := ReadXattrs(p)
	if err != nil {
		return err
	}
	opaque := false
	if w.opt.Layer {
		opaque = xattrs[overlayOpaque] == "y"
		for k := range xattrs {
			if strings.HasPrefix(k, "trusted.overlay.") {
				delete(xattrs, k)
			}
		}
	}
	if len(xattrs) > 0 {
		hdr.PAXRecords = map[string]string{}
		for k, v := range xattrs {
			hdr.PAXRecords["SCHILY.xattr."+k] = v
		}
	}
	var sparse []segment
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		hdr.Typeflag = tar.TypeDir
		if name != "./" {
			hdr.Name += "/"
		}
	case unix.S_IFREG:
		hdr.Typeflag = tar.TypeReg
		hdr.Size = st.Size
		if st.Nlink > 1 {
			key := [2]uint64{st.Dev, st.Ino}
			if first, ok := w.links[key]; ok {
				hdr.Typeflag = tar.TypeLink
				hdr.Linkname = first
				hdr.Size = 0
				break
			}
			w.links[key] = name
		}
		if st.Blocks*512 < st.Size && !w.opt.Dense {
			if sparse, err = dataSegments(p, st.Size); err != nil {
				return err
			}
		}
	case unix.S_IFLNK:
		hdr.Typeflag = tar.TypeSymlink
		t, err := os.Readlink(p)
		if err != nil {
			return err
		}
		hdr.Linkname = t
	case unix.S_IFCHR, unix.S_IFBLK:
		major, minor := unix.Major(st.Rdev), unix.Minor(st.Rdev)
		if w.opt.Layer && st.Mode&unix.S_IFMT == unix.S_IFCHR && major == 0 && minor == 0 {
			return w.whiteout(filepath.ToSlash(filepath.Dir(rel)), WhiteoutPrefix+filepath.Base(rel), hdr.ModTime)
		}
		hdr.Typeflag = tar.TypeChar
		if st.Mode&unix.S_IFMT == unix.S_IFBLK {
			hdr.Typeflag = tar.TypeBlock
		}
		hdr.Devmajor = int64(major)
		hdr.Devminor = int64(minor)
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	case unix.S_IFSOCK:
		if w.opt.Warn != nil {
			w.opt.Warn("skipping socket " + name + " (tar cannot hold sockets)")
		}
		return nil
	default:
		return fmt.Errorf("%s: unknown file type %o", p, st.Mode&unix.S_IFMT)
	}
	if hdr.Typeflag == tar.TypeReg && holes(sparse, hdr.Size) {
		return w.addSparse(p, hdr, sparse)
	}
	if err := w.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("tar header for %s: %w", name, err)
	}
	if hdr.Typeflag == tar.TypeReg && hdr.Size > 0 {
		if err := w.copyFile(p, name, []segment{{0, hdr.Size}}); err != nil {
			return err
		}
	}
	if opaque {
		return w.whiteout(filepath.ToSlash(rel), WhiteoutOpaque, hdr.ModTime)
	}
	return nil
}

// whiteout writes an empty marker file named base in the directory dir.
func (w *writer) whiteout(dir, base string, mtime time.Time) error {
	name := "./" + base
	if dir != "." {
		name = "./" + dir + "/" + base
	}
	return w.tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o600, ModTime: mtime, Format: tar.FormatPAX})
}

func (w *writer) clamp(t time.Time) time.Time {
	if !w.opt.ClampTime.IsZero() && t.After(w.opt.ClampTime) {
		return w.opt.ClampTime
	}
	return t
}

// copyFile writes the segments of p's content into the current entry.
func (w *writer) copyFile(p, name string, segs []segment) error {
	// A plain descriptor, not an os.File: os.OpenFile makes every file
	// non-blocking and offers it to the poller, three system calls per
	// file that a tree of 4,000 files pays for nothing.
	// O_NONBLOCK: a FIFO put in the file's place after its Lstat is
	// opened at once instead of waiting for a writer (its pread then
	// fails); a regular file ignores it.
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: p, Err: err}
	}
	defer unix.Close(fd)
	if w.buf == nil {
		w.buf = make([]byte, 256<<10)
	}
	for _, s := range segs {
		if s.length == 0 {
			continue
		}
		n, err := io.CopyBuffer(w.tw, &fdSection{fd: fd, path: p, off: s.offset, end: s.offset + s.length}, w.buf)
		w.written += n
		if err == nil && n != s.length {
			err = fmt.Errorf("%s changed while it was read", p)
		}
		if err != nil {
			return fmt.Errorf("writing %s: %w", name, err)
		}
		if w.opt.Progress != nil {
			w.opt.Progress(w.written)
		}
	}
	return nil
}

// fdSection reads a descriptor from off up to end, by offset.
type fdSection struct {
	fd       int
	path     string
	off, end int64
}

func (r *fdSection) Read(p []byte) (int, error) {
	if r.off >= r.end {
		return 0, io.EOF
	}
	if max := r.end - r.off; int64(len(p)) > max {
		p = p[:max]
	}
	for {
		n, err := unix.Pread(r.fd, p, r.off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, &os.PathError{Op: "read", Path: r.path, Err: err}
		}
		if n == 0 {
			return 0, io.EOF
		}
		r.off += int64(n)
		return n, nil
	}
}

// ReadXattrs returns every extended attribute of p without following links.
func ReadXattrs(p string) (map[string]string, error) {
	sz, err := unix.Llistxattr(p, nil)
	if err != nil {
		if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP) {
			return nil, nil
		}
		return nil, fmt.Errorf("listxattr %s: %w", p, err)
	}
	if sz == 0 {
		return nil, nil
	}
	buf := make([]byte, sz)
	sz, err = unix.Llistxattr(p, buf)
	if err != nil {
		return nil, fmt.Errorf("listxattr %s: %w", p, err)
	}
	out := map[string]string{}
	names := strings.Split(strings.TrimRight(string(buf[:sz]), "\x00"), "\x00")
	sort.Strings(names)
	for _, name := range names {
		if name == "" {
			continue
		}
		vsz, err := unix.Lgetxattr(p, name, nil)
		if err != nil {
			return nil, fmt.Errorf("getxattr %s %s: %w", p, name, err)
		}
		val := make([]byte, vsz)
		vsz, err = unix.Lgetxattr(p, name, val)
		if err != nil {
			return nil, fmt.Errorf("getxattr %s %s: %w", p, name, err)
		}
		out[name] = string(val[:vsz])
	}
	return out, nil
}
