package chroot

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"

	"github.com/strata-build/packer-plugin-strata/internal/storeroot"
)

// dirOption is one of the build's directories with the option that sets it.
type dirOption struct {
	opt string
	p   *string
}

// dirOptions are the build's directories, each made absolute by
// preparePaths and replaced by where it leads by checkHost. work_dir comes
// before mount_path, which defaults to a directory in it.
func (c *Config) dirOptions() []dirOption {
	return []dirOption{{"store_dir", &c.StoreDir}, {"work_dir", &c.WorkDir}, {"mount_path", &c.MountPath},
		{"package_cache.dir", &c.PackageCache.Dir}, {"output_dir", &c.OutputDir}}
}

// checkHost checks the build host's state for this build, when it starts
// (packer validate never sees it, and -force is known): every directory is
// replaced by where it leads now (storeroot.Real), and those paths must not
// overlap; the store, work dir and package cache that exist must be this
// user's alone; the work dir and mount path must be new, empty or this
// build's; an existing output dir needs -force; the parent must be in the
// store. It runs before anything is created, and returns every problem.
func (c *Config) checkHost(ctx context.Context) error {
	var errs []error
	for _, d := range c.dirOptions() {
		r, err := storeroot.Real(*d.p)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", d.opt, err))
			continue
		}
		if r == "/" {
			errs = append(errs, fmt.Errorf("%s: %s leads to /; choose a directory of its own", d.opt, *d.p))
		}
		*d.p = r
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	layout := storeroot.Layout{Root: c.StoreDir}
	errs = c.checkOverlaps(layout)
	if _, err := os.Lstat(c.OutputDir); err == nil && !c.PackerForce {
		errs = append(errs, fmt.Errorf("output_dir: %s exists; remove it, choose another output_dir, or run packer build -force to replace it", c.OutputDir))
	}
	errs = append(errs, c.checkOwners()...)
	if err := checkWorkDirContents(c.WorkDir); err != nil {
		errs = append(errs, fmt.Errorf("work_dir: %w", err))
	}
	if !within(c.MountPath, c.WorkDir) && !recordedMountPath(c.WorkDir, c.MountPath) {
		// Inside the work dir, a killed build's leftovers are recovered.
		if err := checkEmptyDir(c.MountPath); err != nil {
			errs = append(errs, fmt.Errorf("mount_path: %w", err))
		}
	}
	if c.snapshot != nil {
		if err := c.PackageCache.checkSnapshotCached(c.snapshot); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Parent != "" && len(errs) == 0 {
		if err := c.checkParent(ctx, layout); err != nil {
			errs = append(errs, fmt.Errorf("parent: %w", err))
		}
	}
	return errors.Join(errs...)
}

// checkOwners: the store, the work dir and the package cache, where they
// exist, are this user's and closed to others (a new one is created so, and
// only its parents are checked); the cache's blob directory is no link.
func (c *Config) checkOwners() []error {
	var errs []error
	for _, p := range []struct{ opt, dir string }{{"store_dir", c.StoreDir}, {"work_dir", c.WorkDir}, {"package_cache.dir", c.PackageCache.Dir}} {
		if err := checkPrivateIfExists(p.dir); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p.opt, err))
		}
	}
	if _, err := os.Lstat(c.PackageCache.Dir); err == nil {
		if err := storeroot.CheckTree(c.PackageCache.Dir, "blobs/sha256"); err != nil {
			errs = append(errs, fmt.Errorf("package_cache.dir: %w", err))
		}
	}
	return errs
}

// recheckDirs runs right before the build deletes anything: every directory
// must still lead where checkHost found it, and the store, work dir and
// cache must still be this user's alone. A link changed in between (by
// another user racing the build) stops the build with nothing removed.
func (c *Config) recheckDirs() error {
	for _, d := range c.dirOptions() {
		r, err := storeroot.Real(*d.p)
		if err != nil {
			return fmt.Errorf("%s: %w; nothing was removed", d.opt, err)
		}
		if r != *d.p {
			return fmt.Errorf("%s: %s now leads to %s (a link on its way changed during the build); nothing was removed", d.opt, *d.p, r)
		}
	}
	return errors.Join(c.checkOwners()...)
}

// dirSlot holds this process's claim on a default directory name, nil
// until one is claimed, and dirSlotName is the name. The claim lives as
// long as the plugin process.
var (
	dirSlot     net.Listener
	dirSlotName string
)

// defaultDirName is the name a build's default work_dir and output_dir
// take. Packer hands every source block made from one source the same build
// name, its label: `source "strata-chroot.base" { name = "one" }` and
// `{ name = "two" }` are both "base", and the builder is told nothing else.
// So the builds of one packer run claim the name in the order Packer
// prepares them, the template's: the first gets "base", the next "base.2",
// and so on. A claim is an abstract unix socket named for the run
// (PACKER_RUN_UUID, which other users cannot read), held by the plugin
// process: nothing is written to disk, and packer validate's claims end
// with it. Set work_dir and output_dir (such as
// "output-${source.name}") to choose the names yourself.
func defaultDirName(name string) string {
	run := os.Getenv("PACKER_RUN_UUID")
	if run == "" {
		return name
	}
	if dirSlot != nil {
		return dirSlotName
	}
	for n := 1; n <= 100; n++ {
		l, err := net.Listen("unix", "@strata-chroot/"+run+"/"+name+"/"+strconv.Itoa(n))
		if err != nil {
			continue
		}
		dirSlot, dirSlotName = l, name
		if n > 1 {
			dirSlotName = name + "." + strconv.Itoa(n)
		}
		return dirSlotName
	}
	return name
}
