// Package storeroot is the one place that knows where the store lives
// ($STRATA_HOME, store_dir, /var/lib/strata) and its parts (layers, package
// cache, work dirs, catalog), and that checks the store is closed to other
// users of the build host before a build trusts anything in it.
package storeroot

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Default is the store root when neither store_dir nor $STRATA_HOME say.
const Default = "/var/lib/strata"

// Resolve picks the store root: explicit (store_dir), else $STRATA_HOME,
// else Default. The result is absolute.
func Resolve(explicit string) (string, error) {
	root := explicit
	if root == "" {
		root = os.Getenv("STRATA_HOME")
	}
	if root == "" {
		root = Default
	}
	return filepath.Abs(root)
}

// Layout names the parts of a store root.
type Layout struct{ Root string }

// Layers is the content-addressed layer and image store.
func (l Layout) Layers() string { return filepath.Join(l.Root, "layers") }

// PackageCache is the shared apt cache.
func (l Layout) PackageCache() string { return filepath.Join(l.Root, "cache", "apt") }

// Work holds one work dir per build name.
func (l Layout) Work() string { return filepath.Join(l.Root, "work") }

// WorkDir is the default work dir of a build.
func (l Layout) WorkDir(build string) string { return filepath.Join(l.Work(), build) }

// CatalogFile is the embedded SQLite catalog.
func (l Layout) CatalogFile() string { return filepath.Join(l.Root, "catalog.db") }

// CatalogURL is the embedded catalog's URL.
func (l Layout) CatalogURL() string { return "sqlite://" + l.CatalogFile() }

// DirMode is the mode of every directory the store creates: the build host's
// other users have no business inside (a world-writable /tmp in a chroot
// under the work dir would otherwise be theirs too).
const DirMode = 0o700

// Ensure creates dir (and missing parents) closed to other users, then
// checks it with CheckPrivate.
func Ensure(dir string) error {
	if err := os.MkdirAll(dir, DirMode); err != nil {
		return err
	}
	return CheckPrivate(dir)
}

// CheckPrivate fails unless dir is a directory owned by this user (root) and
// not writable by group or others, and every directory above it is owned by
// root or this user and writable by others only with the sticky bit (like
// /tmp): otherwise another user could swap a path the build trusts.
func CheckPrivate(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Lstat(abs, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return fmt.Errorf("%s is not a directory (a symlink or file is not accepted)", abs)
	}
	me := uint32(os.Geteuid())
	if st.Uid != me {
		return fmt.Errorf("%s is owned by uid %d, not by the user running the build (uid %d); "+
			"give it to that user (chown) or choose another directory", abs, st.Uid, me)
	}
	if st.Mode&0o022 != 0 {
		return fmt.Errorf("%s is writable by other users (mode %04o); run chmod go-w %s", abs, st.Mode&0o7777, abs)
	}
	return CheckAncestors(abs)
}

// CheckAncestors checks every directory above p: owned by root or this user,
// and not writable by others unless sticky.
func CheckAncestors(p string) error {
	me := uint32(os.Geteuid())
	for d := filepath.Dir(p); ; d = filepath.Dir(d) {
		var st unix.Stat_t
		if err := unix.Stat(d, &st); err != nil {
			if errors.Is(err, unix.ENOENT) && d != "/" {
				continue // created later, by root, 0700
			}
			return err
		}
		if st.Uid != 0 && st.Uid != me {
			return fmt.Errorf("%s, above %s, is owned by uid %d: that user could replace what the build relies on; "+
				"choose a path whose parents belong to root", d, p, st.Uid)
		}
		if st.Mode&0o002 != 0 && st.Mode&unix.S_ISVTX == 0 {
			return fmt.Errorf("%s, above %s, is writable by every user (mode %04o) without the sticky bit; "+
				"choose another path or run chmod o-w %s", d, p, st.Mode&0o7777, d)
		}
		if d == "/" {
			return nil
		}
	}
}

// Real is where the path p leads now: absolute, with every symlink followed
// and every .. applied where the kernel would apply it, for as much of p as
// exists; the part yet to be made is appended, cleaned. Every check of a
// directory the builder or the CLI deletes in (overlap, ownership) is made
// on this path, never on the string a template or a flag gave: a symlink
// must not lead a check one way and a delete another. A link on the way
// whose target is missing is an error.
func Real(p string) (string, error) {
	if p == "" {
		return "", errors.New("empty path")
	}
	if !filepath.IsAbs(p) {
		wd, err := os.Getwd()
		if err != nil {
			return "", err
		}
		p = wd + "/" + p
	}
	for i := 0; i < 40; i++ {
		r, err := realOnce(p)
		if err != nil {
			return "", err
		}
		if r == p {
			return r, nil
		}
		p = r
	}
	return "", fmt.Errorf("%s: too many levels of symbolic links", p)
}

// realOnce resolves p's longest existing prefix and appends the rest.
func realOnce(p string) (string, error) {
	parts := strings.Split(p, "/")
	for i := len(parts); i >= 1; i-- {
		prefix := strings.Join(parts[:i], "/")
		if prefix == "" {
			prefix = "/"
		}
		real, err := filepath.EvalSymlinks(prefix)
		if err == nil {
			return filepath.Join(append([]string{real}, parts[i:]...)...), nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("resolving %s: %w", p, err)
		}
		if fi, lerr := os.Lstat(prefix); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
			target, _ := os.Readlink(prefix)
			return "", fmt.Errorf("%s is a symlink to %s, which does not exist; create it or choose another path", prefix, target)
		}
	}
	return filepath.Clean(p), nil
}

// CheckTree checks a store directory that exists (CheckPrivate) and the
// parts below it that exist too, each component on the way a real
// directory (never a symlink) of this user, closed to others: the CLI runs
// as root over a store, and a part another user could swap or link
// elsewhere would lead it to read or delete in that user's choice of place.
// dir is the Real path.
func CheckTree(dir string, parts ...string) error {
	if err := CheckPrivate(dir); err != nil {
		return err
	}
	me := uint32(os.Geteuid())
	for _, part := range parts {
		p := dir
		for _, c := range strings.Split(filepath.Clean(part), "/") {
			p = filepath.Join(p, c)
			var st unix.Stat_t
			if err := unix.Lstat(p, &st); err != nil {
				if errors.Is(err, unix.ENOENT) {
					break
				}
				return err
			}
			if st.Mode&unix.S_IFMT != unix.S_IFDIR {
				return fmt.Errorf("%s is not a directory (a symlink is not accepted in a store); remove it or choose another store", p)
			}
			if st.Uid != me || st.Mode&0o022 != 0 {
				return fmt.Errorf("%s is owned by uid %d with mode %04o: only the store's owner (uid %d) may write there; fix its owner and mode (chown, chmod go-w) or choose another store", p, st.Uid, st.Mode&0o7777, me)
			}
		}
	}
	return nil
}
