package chroot

import (
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/strata-build/packer-plugin-strata/internal/treetar"
	"github.com/strata-build/packer-plugin-strata/layer"
	"golang.org/x/sys/unix"
)

// buildTimeState is what a build leaves that never belongs in a layer: package
// lists and caches apt fetched, temporary files, logs written during the
// build, files that differ from run to run. Each is a directory in the
// image and a glob of names in it. They are removed from the new layer
// before commit (for a child, that puts the parent's version back): the
// build needs them while it runs, so keeping them off the layer with tmpfs
// mounts would break provisioners that expect them on disk.
var buildTimeState = []struct{ dir, glob string }{
	{"var/lib/apt/lists", "*"},
	{"var/cache/apt", "*.bin"},
	{"var/cache/apt/archives", "*.deb"},
	{"var/cache/apt/archives/partial", "*"},
	{"var/log/apt", "*"},
	{"var/log", "dpkg.log"},
	{"var/log", "alternatives.log"},
	{"var/log", "bootstrap.log"},
	{"tmp", "*"},
	{"var/tmp", "*"},
	{"var/cache/ldconfig", "aux-cache"},
	// dpkg's and debconf's backups of their databases from before the build.
	{"var/lib/dpkg", "*-old"},
	{"var/cache/debconf", "*-old"},
	{"var/lib/dbus", "machine-id"},
}

// keepInState are names the globs match that must stay: apt's partial dir.
var keepInState = map[string]bool{"var/lib/apt/lists/partial": true, "var/cache/apt/archives/partial": true}

// scrubBuildState removes buildTimeState from a layer's tree (an upper dir, or
// a base image's tree) and empties /etc/machine-id, which must exist but
// be unique per machine. A child's directory that held nothing but
// build-time state goes back to the parent's entirely (its times too). It
// only descends through real directories: a symlink in the image is never
// followed on the host. It returns what it removed, as in-image paths.
func scrubBuildState(tree string, lowers []string) ([]string, error) {
	var removed []string
	defer func() {
		for _, s := range buildTimeState {
			revertEmptyDir(tree, s.dir, lowers)
		}
	}()
	for _, s := range buildTimeState {
		dir, ok := realDir(tree, s.dir)
		if !ok {
			continue
		}
		ents, err := os.ReadDir(dir)
		if err != nil {
			return removed, err
		}
		for _, e := range ents {
			rel := path.Join(s.dir, e.Name())
			if ok, _ := path.Match(s.glob, e.Name()); !ok || keepInState[rel] {
				continue
			}
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return removed, err
			}
			removed = append(removed, "/"+rel)
		}
	}
	if dir, ok := realDir(tree, "etc"); ok {
		id := filepath.Join(dir, "machine-id")
		var st unix.Stat_t
		if unix.Lstat(id, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFREG && st.Size > 0 {
			if err := unix.Truncate(id, 0); err != nil {
				return removed, err
			}
			removed = append(removed, "/etc/machine-id (emptied)")
		}
	}
	return removed, nil
}

// realDir is tree/rel when every component of rel is a real directory in
// tree (no symlink, no whiteout).
func realDir(tree, rel string) (string, bool) {
	cur := tree
	for _, part := range strings.Split(rel, "/") {
		cur = filepath.Join(cur, part)
		var st unix.Stat_t
		if err := unix.Lstat(cur, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return "", false
		}
	}
	return cur, true
}

// revertEmptyDir removes a child's copy of dir when it is now empty, not
// opaque, and the layers below have it as a directory: the parent's stands.
func revertEmptyDir(tree, dir string, lowers []string) {
	if len(lowers) == 0 {
		return
	}
	d, ok := realDir(tree, dir)
	if !ok {
		return
	}
	if ents, err := os.ReadDir(d); err != nil || len(ents) > 0 {
		return
	}
	if x, _ := treetar.ReadXattrs(d); x["trusted.overlay.opaque"] == "y" {
		return
	}
	low, ok := layer.LowerEntry(lowers, dir)
	if !ok {
		return
	}
	var st unix.Stat_t
	if unix.Lstat(low, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
		unix.Rmdir(d)
	}
}
