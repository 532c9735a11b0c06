// Package export writes a root file system tree out in the formats a build asks
// for: a directory, tar (plain, gzip, zstd), squashfs and a raw ext4 image.
package export

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// TarOptions tune how a tree becomes a tar stream.
type TarOptions struct {
	// ClampTime, when not zero, caps every modification time at it
	// (SOURCE_DATE_EPOCH), for reproducible archives.
	ClampTime time.Time
	// Progress, when set, is called with the bytes of file content written so far.
	Progress func(written int64)
	// Warn receives entries that a tar cannot hold (sockets).
	Warn func(msg string)
}

// WriteTar writes root as a tar stream to w in a canonical form: entries in
// lexical order named "./path", numeric owners only (no host user names),
// hard links, device nodes, and every extended attribute (including file
// capabilities) as PAX records. The same tree always gives the same bytes.
func WriteTar(w io.Writer, root string, opt TarOptions) error {
	tw := tar.NewWriter(w)
	links := map[[2]uint64]string{}
	var written int64
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		name := "./"
		if rel != "." {
			name = "./" + filepath.ToSlash(rel)
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
			ModTime: time.Unix(st.Mtim.Sec, st.Mtim.Nsec),
			Format:  tar.FormatPAX,
		}
		if !opt.ClampTime.IsZero() && hdr.ModTime.After(opt.ClampTime) {
			hdr.ModTime = opt.ClampTime
		}
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
				if first, ok := links[key]; ok {
					hdr.Typeflag = tar.TypeLink
					hdr.Linkname = first
					hdr.Size = 0
				} else {
					links[key] = name
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
			hdr.Typeflag = tar.TypeChar
			if st.Mode&unix.S_IFMT == unix.S_IFBLK {
				hdr.Typeflag = tar.TypeBlock
			}
			hdr.Devmajor = int64(unix.Major(st.Rdev))
			hdr.Devminor = int64(unix.Minor(st.Rdev))
		case unix.S_IFIFO:
			hdr.Typeflag = tar.TypeFifo
		case unix.S_IFSOCK:
			if opt.Warn != nil {
				opt.Warn("skipping socket " + name + " (tar cannot hold sockets)")
			}
			return nil
		default:
			return fmt.Errorf("%s: unknown file type %o", p, st.Mode&unix.S_IFMT)
		}
		xattrs, err := readXattrs(p)
		if err != nil {
			return err
		}
		if len(xattrs) > 0 {
			hdr.PAXRecords = map[string]string{}
			for k, v := range xattrs {
				hdr.PAXRecords["SCHILY.xattr."+k] = v
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("tar header for %s: %w", name, err)
		}
		if hdr.Typeflag == tar.TypeReg && hdr.Size > 0 {
			f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
			if err != nil {
				return err
			}
			n, err := io.Copy(tw, f)
			f.Close()
			if err != nil {
				return fmt.Errorf("writing %s: %w", name, err)
			}
			written += n
			if opt.Progress != nil {
				opt.Progress(written)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// readXattrs returns every extended attribute of p without following links.
func readXattrs(p string) (map[string]string, error) {
	sz, err := unix.Llistxattr(p, nil)
	if err != nil {
		if err == unix.ENOTSUP || err == unix.EOPNOTSUPP {
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
	for _, name := range strings.Split(strings.TrimRight(string(buf[:sz]), "\x00"), "\x00") {
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

// TreeSize sums the content bytes and counts the entries under root, for
// progress reports and for sizing file system images.
func TreeSize(root string) (bytes int64, blocks int64, entries int64, err error) {
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		entries++
		if st.Mode&unix.S_IFMT == unix.S_IFREG {
			bytes += st.Size
		}
		blocks += (st.Size + 4095) / 4096
		return nil
	})
	return bytes, blocks, entries, err
}
