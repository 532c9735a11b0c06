package export

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/strata-build/packer-plugin-strata/internal/mount"
)

// RemoveEarlier empties an output directory an earlier build (strata-chroot
// or strata export) made, to replace it (-force, --force): the directory
// must hold that build's artifact.json and nothing the file does not name,
// and nothing may be mounted in it. Nothing else is ever removed: a
// directory of the user's, or one holding anything more, is an error that
// says what to do. It returns how many entries it removed; an empty
// directory is taken as it is. dir must be a path with no link on it
// (storeroot.Real's); it is held open so that no link swapped in later
// leads the removal elsewhere.
func RemoveEarlier(dir string) (int, error) {
	root, err := openRealDir(dir)
	if err != nil {
		return 0, err
	}
	defer root.Close()
	ents, err := readRootDir(root)
	if err != nil {
		return 0, err
	}
	if len(ents) == 0 {
		return 0, nil
	}
	m, err := readManifestIn(root, dir)
	if err != nil {
		return 0, fmt.Errorf("%s was not made by strata-chroot or strata export, or its build did not finish (%v); only the outputs an earlier build recorded in its %s are replaced: remove the directory yourself or choose another one",
			dir, err, ManifestName)
	}
	names := recordedNames(m)
	var foreign []string
	for _, e := range ents {
		if !names[e.Name()] {
			foreign = append(foreign, e.Name())
		}
	}
	if len(foreign) > 0 {
		return 0, fmt.Errorf("%s holds %s, which the earlier build's %s does not name; only that build's outputs are replaced: move them away or choose another directory",
			dir, strings.Join(foreign, ", "), ManifestName)
	}
	if err := mount.Verify(dir); err != nil {
		return 0, fmt.Errorf("not removing anything in %s: %w", dir, err)
	}
	if err := removeNames(dir, names, false); err != nil {
		return 0, err
	}
	return len(ents), nil
}

// maxManifestSize bounds an artifact.json read back for -force.
const maxManifestSize = 16 << 20

// readManifestIn reads the artifact.json of the output dir held open as
// root, a regular file opened without blocking, and parses it as export
// does.
func readManifestIn(root *os.Root, dir string) (*Manifest, error) {
	f, err := root.OpenFile(ManifestName, os.O_RDONLY|unix.O_NONBLOCK|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() || fi.Size() > maxManifestSize {
		return nil, fmt.Errorf("%s is not a regular file of at most %d bytes", ManifestName, maxManifestSize)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxManifestSize))
	if err != nil {
		return nil, err
	}
	return ParseManifest(dir, b)
}

// openRealDir holds the directory dir, a resolved path (no link on it),
// open as an os.Root, refusing a link anywhere on the way: one
// that appeared since the check would lead the removal elsewhere.
func openRealDir(dir string) (*os.Root, error) {
	fd, err := unix.Openat2(unix.AT_FDCWD, dir, &unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: unix.RESOLVE_NO_SYMLINKS})
	if err != nil {
		return nil, fmt.Errorf("opening %s without following links: %w; nothing was removed", dir, err)
	}
	defer unix.Close(fd)
	return os.OpenRoot("/proc/self/fd/" + strconv.Itoa(fd))
}

// readRootDir lists the directory a root holds.
func readRootDir(root *os.Root) ([]os.DirEntry, error) {
	d, err := root.Open(".")
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.ReadDir(-1)
}

// recordedNames are the entries of an output dir its artifact.json names:
// itself, the package manifest and SBOM, each output with its checksum file
// or (dir) tree digest.
func recordedNames(m *Manifest) map[string]bool {
	names := map[string]bool{ManifestName: true}
	for _, n := range []string{m.Packages, m.SBOM} {
		if n != "" {
			names[n] = true
		}
	}
	for _, o := range m.Outputs {
		base := filepath.Base(o.Path)
		names[base] = true
		switch o.Format {
		case "dir":
			names[TreeDigestName] = true
		case "oci":
		default:
			names[base+".sha256"] = true
		}
	}
	return names
}

// outputNames are the entries a build with these formats writes in its
// output directory.
func outputNames(formats []string) map[string]bool {
	m := &Manifest{Packages: PackagesName, SBOM: SBOMName}
	for _, f := range formats {
		m.Outputs = append(m.Outputs, Output{Format: f, Path: FileName(f)})
	}
	return recordedNames(m)
}

// pendingBase is the output a half-written file of export's is for
// (".rootfs.tar.tmp-123", ".rootfs.squashfs.tmp", "oci.tmp"), or "".
func pendingBase(n string) string {
	s := strings.TrimPrefix(n, ".")
	i := strings.LastIndex(s, ".tmp")
	if i <= 0 || (i+4 < len(s) && s[i+4] != '-') {
		return ""
	}
	return s[:i]
}

// removeNames removes the named entries of dir (every entry when names is
// nil), inside dir only: it is held open without a link on the way, and no
// link in it leads a removal elsewhere (os.Root). artifact.json goes last,
// so that an interrupted removal can be run again. With pending, the
// half-written files of those names go too (pendingBase).
func removeNames(dir string, names map[string]bool, pending bool) error {
	root, err := openRealDir(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	ents, err := readRootDir(root)
	if err != nil {
		return err
	}
	var order []string
	last := false
	for _, e := range ents {
		n := e.Name()
		switch {
		case n == ManifestName && (names == nil || names[n]):
			last = true
		case names == nil || names[n]:
			order = append(order, n)
		case pending && names[pendingBase(n)]:
			order = append(order, n)
		}
	}
	if last {
		order = append(order, ManifestName)
	}
	for _, n := range order {
		if err := root.RemoveAll(n); err != nil {
			return fmt.Errorf("removing %s: %w", filepath.Join(dir, n), err)
		}
	}
	return nil
}

// RemoveWritten removes from dir what a build with these formats writes
// there, half-written files too: what a failed build leaves in an output
// directory it did not make.
func RemoveWritten(dir string, formats []string) error {
	return removeNames(dir, outputNames(formats), true)
}

// RemoveTree removes the output directory dir a failed build made, and
// everything in it, through the directory held open (see RemoveEarlier).
func RemoveTree(dir string) error {
	if err := removeNames(dir, nil, false); err != nil {
		return err
	}
	return os.Remove(dir)
}
