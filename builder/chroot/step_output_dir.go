package chroot

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	"golang.org/x/sys/unix"

	"github.com/strata-build/packer-plugin-strata/export"
	"github.com/strata-build/packer-plugin-strata/internal/mount"
)

// stepOutputDir makes the output dir. An existing one is refused unless
// packer runs with -force (checkHost said so before anything was made), and
// then only what an earlier build of this builder wrote there is removed:
// the files its artifact.json names. A directory the builder did not make,
// or one holding anything else, is refused and left alone. It runs after
// the work dir's recovery, so a killed build's mounts are gone before
// anything is deleted. A build that fails removes what it wrote: the
// output dir when it made it, else the files it may have written there.
//
// Reads stateConfig.
type stepOutputDir struct {
	made bool // this build created the directory
	used bool // this build writes into it (made, or emptied under -force)
}

func (s *stepOutputDir) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	cfg := configOf(state)
	ui := uiOf(state)
	dir := cfg.OutputDir
	if _, err := os.Lstat(dir); err == nil {
		if !cfg.PackerForce {
			return halt(state, fmt.Errorf("output_dir %s exists; remove it, choose another output_dir, or run packer with -force to replace it", dir))
		}
		if err := cfg.recheckDirs(); err != nil {
			return halt(state, fmt.Errorf("-force: %w", err))
		}
		n, err := removeEarlierOutputs(dir)
		if err != nil {
			return halt(state, fmt.Errorf("-force: %w", err))
		}
		if n > 0 {
			ui.Say(fmt.Sprintf("Deleted the %d output file(s) of the earlier build in %s", n, dir))
		}
		// The earlier build made the directory: this one takes it over.
		s.used = true
	}
	// A `dir` output holds the image's world-writable /tmp: only root may
	// reach it.
	mode := os.FileMode(0o755)
	if slices.Contains(cfg.Formats, "dir") {
		mode = 0o700
	}
	if !s.used {
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			return halt(state, fmt.Errorf("output_dir: %w", err))
		}
		// Made here and now, or refused: never a directory that appeared
		// since the check.
		if err := os.Mkdir(dir, mode); err != nil {
			return halt(state, fmt.Errorf("output_dir: %w", err))
		}
		s.made, s.used = true, true
	}
	if err := os.Chmod(dir, mode); err != nil {
		return halt(state, fmt.Errorf("output_dir: %w", err))
	}
	return multistep.ActionContinue
}

func (s *stepOutputDir) Cleanup(state multistep.StateBag) {
	if !s.used {
		return
	}
	_, cancelled := state.GetOk(multistep.StateCancelled)
	_, halted := state.GetOk(multistep.StateHalted)
	if !cancelled && !halted {
		return
	}
	cfg := configOf(state)
	ui := uiOf(state)
	dir := cfg.OutputDir
	if err := cfg.recheckDirs(); err != nil {
		ui.Error(fmt.Sprintf("Not removing %s: %v", dir, err))
		return
	}
	if err := mount.Verify(dir); err != nil {
		ui.Error(fmt.Sprintf("Not removing %s: %v", dir, err))
		return
	}
	if !s.made {
		// Another build made it: only what this one may have written goes.
		ui.Say("Deleting what this build wrote in " + dir)
		if err := removeNames(dir, outputNames(cfg.Formats), true); err != nil {
			ui.Error(err.Error())
		}
		return
	}
	ui.Say("Deleting output directory " + dir)
	if err := removeNames(dir, nil, false); err != nil {
		ui.Error(err.Error())
		return
	}
	if err := os.Remove(dir); err != nil {
		ui.Error(fmt.Sprintf("removing %s: %v", dir, err))
	}
}

// removeEarlierOutputs empties an output dir an earlier build of this
// builder made, for -force: the directory must hold its artifact.json
// (read through export, which owns the format) and nothing that file does
// not name, and nothing may be mounted in it. It returns how many entries
// it removed. An empty directory is taken as it is.
func removeEarlierOutputs(dir string) (int, error) {
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
		return 0, fmt.Errorf("output_dir %s was not made by strata-chroot, or its build did not finish (%v); -force removes only the outputs an earlier build recorded in its %s: remove the directory yourself or choose another output_dir",
			dir, err, export.ManifestName)
	}
	names := recordedNames(m)
	var foreign []string
	for _, e := range ents {
		if !names[e.Name()] {
			foreign = append(foreign, e.Name())
		}
	}
	if len(foreign) > 0 {
		return 0, fmt.Errorf("output_dir %s holds %s, which the earlier build's %s does not name; -force removes only that build's outputs: move them away or choose another output_dir",
			dir, strings.Join(foreign, ", "), export.ManifestName)
	}
	if err := mount.Verify(dir); err != nil {
		return 0, fmt.Errorf("not removing output_dir: %w", err)
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
func readManifestIn(root *os.Root, dir string) (*export.Manifest, error) {
	f, err := root.OpenFile(export.ManifestName, os.O_RDONLY|unix.O_NONBLOCK|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() || fi.Size() > maxManifestSize {
		return nil, fmt.Errorf("%s is not a regular file of at most %d bytes", export.ManifestName, maxManifestSize)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxManifestSize))
	if err != nil {
		return nil, err
	}
	return export.ParseManifest(dir, b)
}

// openRealDir holds the directory dir, a path checkHost resolved (no link
// on it), open as an os.Root, refusing a link anywhere on the way: one
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
func recordedNames(m *export.Manifest) map[string]bool {
	names := map[string]bool{export.ManifestName: true}
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
			names[export.TreeDigestName] = true
		case "oci":
		default:
			names[base+".sha256"] = true
		}
	}
	return names
}

// outputNames are the entries a build with these formats writes in its
// output dir.
func outputNames(formats []string) map[string]bool {
	m := &export.Manifest{Packages: export.PackagesName, SBOM: export.SBOMName}
	for _, f := range formats {
		m.Outputs = append(m.Outputs, export.Output{Format: f, Path: export.FileName(f)})
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
		case n == export.ManifestName && (names == nil || names[n]):
			last = true
		case names == nil || names[n]:
			order = append(order, n)
		case pending && names[pendingBase(n)]:
			order = append(order, n)
		}
	}
	if last {
		order = append(order, export.ManifestName)
	}
	for _, n := range order {
		if err := root.RemoveAll(n); err != nil {
			return fmt.Errorf("removing %s: %w", filepath.Join(dir, n), err)
		}
	}
	return nil
}
