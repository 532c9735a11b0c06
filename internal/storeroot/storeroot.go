// Package storeroot is the one place that knows where the store lives
// ($STRATA_HOME, store_dir, /var/lib/strata) and its parts (layers, package
// cache, work dirs, catalog), and that checks the store is closed to other
// users of the build host before a build trusts anything in it.
package storeroot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

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
