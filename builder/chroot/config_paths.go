package chroot

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/strata-build/packer-plugin-strata/internal/mount"
	"github.com/strata-build/packer-plugin-strata/internal/storeroot"
	"golang.org/x/sys/unix"
)

// Where an overlayfs upper dir cannot live.
var noOverlayUpper = map[int64]string{
	unix.OVERLAYFS_SUPER_MAGIC: "overlayfs",
	unix.NFS_SUPER_MAGIC:       "NFS",
	unix.FUSE_SUPER_MAGIC:      "FUSE",
	unix.MSDOS_SUPER_MAGIC:     "FAT",
	unix.SQUASHFS_MAGIC:        "squashfs",
	unix.ISOFS_SUPER_MAGIC:     "iso9660",
	unix.CIFS_SUPER_MAGIC:      "CIFS",
	unix.SMB2_SUPER_MAGIC:      "SMB",
	unix.ECRYPTFS_SUPER_MAGIC:  "ecryptfs",
}

// checkOverlayUpper fails when the file system holding dir (or its nearest
// existing parent) cannot hold an overlayfs upper dir.
func checkOverlayUpper(dir string) error {
	for d := dir; ; d = filepath.Dir(d) {
		var fs unix.Statfs_t
		if err := unix.Statfs(d, &fs); err == nil {
			if name, bad := noOverlayUpper[int64(fs.Type)]; bad {
				return fmt.Errorf("the work dir %s is on %s, which cannot hold an overlay's upper dir; put store_dir (or work_dir) on ext4, xfs, btrfs or tmpfs", dir, name)
			}
			return nil
		}
		if d == "/" {
			return nil
		}
	}
}

// preparePaths makes the build's directories (dirOptions) absolute, with
// mount_path defaulting to rootfs in the work dir, refuses / for any of
// them, and checks that they do not overlap (checkOverlaps).
func (c *Config) preparePaths(layout storeroot.Layout) []error {
	var errs []error
	bad := func(format string, a ...interface{}) { errs = append(errs, fmt.Errorf(format, a...)) }
	for _, p := range c.dirOptions() {
		if p.p == &c.MountPath && c.MountPath == "" {
			// work_dir, before it in the list, is absolute by now.
			c.MountPath = filepath.Join(c.WorkDir, "rootfs")
			continue
		}
		abs, err := filepath.Abs(*p.p)
		if err != nil {
			bad("%s: %v", p.opt, err)
			continue
		}
		*p.p = abs
		if abs == "/" {
			bad("%s: must not be /; choose a directory of its own", p.opt)
		}
	}
	return append(errs, c.checkOverlaps(layout)...)
}

// checkOverlaps refuses directories that would let one cleanup destroy
// another's content: output_dir, work_dir, mount_path, store_dir and the
// package cache may not be equal or nested, except the default places
// (work dirs under <store>/work, the cache under the store, the mount path
// in the work dir).
func (c *Config) checkOverlaps(layout storeroot.Layout) []error {
	var errs []error
	bad := func(format string, a ...interface{}) { errs = append(errs, fmt.Errorf(format, a...)) }
	store, work, mnt, out, cache := c.StoreDir, c.WorkDir, c.MountPath, c.OutputDir, c.PackageCache.Dir
	for _, o := range []struct{ opt, dir string }{{"store_dir", store}, {"work_dir", work}, {"mount_path", mnt}, {"package_cache.dir", cache}} {
		if overlaps(out, o.dir) {
			bad("output_dir: %s overlaps %s %s; a -force rebuild or a cleanup of one would delete the other. Use separate directories", out, o.opt, o.dir)
		}
	}
	switch {
	case work == store || within(store, work):
		bad("work_dir: %s contains the store %s; use a directory of its own (the default is %s)", work, store, layout.WorkDir("<build name>"))
	case work == layout.Work():
		bad("work_dir: %s holds every build's work dir; give this build its own, such as %s", work, layout.WorkDir(c.PackerBuildName))
	case within(work, store) && !within(work, layout.Work()):
		bad("work_dir: %s is inside the store %s but not under %s; use %s or a directory outside the store", work, store, layout.Work(), layout.WorkDir("<build name>"))
	}
	if mnt == work || overlaps(mnt, store) && !within(mnt, work) {
		bad("mount_path: %s overlaps the store or the work dir itself; leave the default (%s) or use an empty directory elsewhere", mnt, filepath.Join(work, "rootfs"))
	}
	if within(work, mnt) {
		bad("mount_path: %s contains the work dir %s; use an empty directory of its own", mnt, work)
	}
	if overlaps(cache, work) || overlaps(cache, mnt) || (overlaps(cache, store) && !within(cache, store)) || cache == store {
		bad("package_cache.dir: %s overlaps the store root, the work dir or the mount path; leave the default (%s) or use a directory of its own", cache, layout.PackageCache())
	}
	return errs
}

// within says whether p is strictly below dir.
func within(p, dir string) bool { return strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/") }

// overlaps says whether a and b are equal or one holds the other.
func overlaps(a, b string) bool { return a == b || within(a, b) || within(b, a) }

// checkPrivateIfExists checks a store directory that exists already; a new
// one is created private, and only its parents need checking.
func checkPrivateIfExists(dir string) error {
	if _, err := os.Lstat(dir); err != nil {
		return storeroot.CheckAncestors(dir)
	}
	return storeroot.CheckPrivate(dir)
}

// workMarker marks a directory as a strata work dir.
const workMarker = ".strata-work"

// checkWorkDirContents refuses a work dir that holds anything strata did not
// put there: a build recovers and removes what is in its work dir, so it
// must never be pointed at a directory of other things (or of other builds).
func checkWorkDirContents(dir string) error {
	ents, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(ents) == 0 {
		return nil
	}
	if _, err := os.Lstat(filepath.Join(dir, workMarker)); err == nil {
		for _, e := range ents {
			if fi, err := os.Lstat(filepath.Join(dir, e.Name(), workMarker)); err == nil && !fi.IsDir() {
				return fmt.Errorf("%s holds the work dir of another build (%s); give this build its own", dir, e.Name())
			}
		}
		return nil
	}
	return fmt.Errorf("%s is not empty and is not a strata work dir (no %s in it); choose a new or empty directory", dir, workMarker)
}

func checkEmptyDir(dir string) error {
	ents, err := os.ReadDir(dir)
	if os.IsNotExist(err) || (err == nil && len(ents) == 0) {
		return nil
	}
	if err != nil {
		return err
	}
	return fmt.Errorf("%s is not empty; the image is mounted there, so choose a new or empty directory", dir)
}

// recordedMountPath says whether a killed build with workDir left its image
// mounted at mnt: the next build's recovery unmounts it.
func recordedMountPath(workDir, mnt string) bool {
	st, err := mount.ReadLedger(workDir)
	return err == nil && st != nil && st.MountPath == mnt
}
