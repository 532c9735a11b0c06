package chroot

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	"golang.org/x/sys/unix"

	"github.com/strata-build/packer-plugin-strata/internal/dpkg"
	"github.com/strata-build/packer-plugin-strata/internal/inroot"
)

// stepCheckContents checks the finished tree before anything is committed:
// every package allowed_packages allows and denied_packages does not deny,
// and no setuid or setgid file that allowed_setuid does not list (or their
// bits cleared, with strip_setuid). A violation fails the build, listing
// every offender, and leaves no layer, image or output.
//
// Uses cfg, root.
type stepCheckContents struct{}

func (s *stepCheckContents) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	b := buildOf(state)
	cfg := b.cfg
	ui := uiOf(state)
	var problems []string
	if len(cfg.AllowedPackages) > 0 || len(cfg.DeniedPackages) > 0 {
		pkgs, err := dpkg.ReadImage(b.root)
		if err != nil {
			return halt(state, err)
		}
		var notAllowed, denied []string
		for _, p := range pkgs {
			if len(cfg.AllowedPackages) > 0 && !matchesAny(cfg.AllowedPackages, p.Name) {
				notAllowed = append(notAllowed, p.Name+" "+p.Version)
			}
			if matchesAny(cfg.DeniedPackages, p.Name) {
				denied = append(denied, p.Name+" "+p.Version)
			}
		}
		if len(notAllowed) > 0 {
			problems = append(problems, fmt.Sprintf("allowed_packages: %d package(s) match none of %v: %s", len(notAllowed), cfg.AllowedPackages, strings.Join(notAllowed, ", ")))
		}
		if len(denied) > 0 {
			problems = append(problems, fmt.Sprintf("denied_packages: %d package(s) match %v: %s", len(denied), cfg.DeniedPackages, strings.Join(denied, ", ")))
		}
	}
	special, err := setuidFiles(cfg.MountPath)
	if err != nil {
		return halt(state, err)
	}
	allowed := cfg.allowedSetuid()
	var offenders []specialFile
	for _, f := range special {
		if !slices.Contains(allowed, f.path) {
			offenders = append(offenders, f)
		}
	}
	if len(offenders) > 0 {
		owners := setuidOwners(b.root, offenders)
		described := make([]string, len(offenders))
		for i, f := range offenders {
			described[i] = f.describe(owners[f.path])
		}
		if cfg.StripSetuid {
			for _, f := range offenders {
				if err := unix.Chmod(filepath.Join(cfg.MountPath, f.path), f.mode&^(unix.S_ISUID|unix.S_ISGID)&0o7777); err != nil {
					return halt(state, fmt.Errorf("strip_setuid: %s: %w", f.path, err))
				}
			}
			ui.Message(fmt.Sprintf("strip_setuid: cleared the setuid/setgid bit of %d file(s): %s", len(offenders), strings.Join(described, ", ")))
		} else {
			problems = append(problems, fmt.Sprintf("allowed_setuid: %d setuid/setgid file(s) not allowed: %s.\n"+
				"    To keep their bits, add this line to the source block (it adds to allowed_setuid, defaults included):\n"+
				"      %s\n"+
				"    or set strip_setuid = true to clear the bits instead", len(offenders), strings.Join(described, ", "), cfg.setuidFixLine(offenders)))
		}
	}
	if len(problems) > 0 {
		return halt(state, fmt.Errorf("the image breaks its content rules:\n  %s", strings.Join(problems, "\n  ")))
	}
	ui.Message(fmt.Sprintf("Contents checked: %d setuid/setgid file(s) allowed", len(special)-len(offenders)))
	return multistep.ActionContinue
}

func (s *stepCheckContents) Cleanup(multistep.StateBag) {}

func matchesAny(globs []string, name string) bool {
	for _, g := range globs {
		if ok, _ := path.Match(g, name); ok {
			return true
		}
	}
	return false
}

type specialFile struct {
	path string
	mode uint32
}

// describe names the file, its bit and the package that brought it, such
// as "/usr/bin/sudo (setuid, from package sudo)".
func (f specialFile) describe(owner string) string {
	from := "in no package: a provisioner made it"
	if owner != "" {
		from = "from package " + owner
	}
	return fmt.Sprintf("%s (%s, %s)", f.path, f.bits(), from)
}

func (f specialFile) bits() string {
	what := "setuid"
	switch {
	case f.mode&unix.S_ISUID != 0 && f.mode&unix.S_ISGID != 0:
		what = "setuid+setgid"
	case f.mode&unix.S_ISGID != 0:
		what = "setgid"
	}
	return what
}

// setuidFixLine is the option line that allows the offenders on top of
// what is allowed already: allowed_setuid_extra, keeping its entries.
func (c *Config) setuidFixLine(offenders []specialFile) string {
	paths := slices.Clone(c.AllowedSetuidExtra)
	for _, f := range offenders {
		if !slices.Contains(paths, f.path) {
			paths = append(paths, f.path)
		}
	}
	quoted := make([]string, len(paths))
	for i, p := range paths {
		quoted[i] = strconv.Quote(p)
	}
	return "allowed_setuid_extra = [" + strings.Join(quoted, ", ") + "]"
}

// setuidOwners names the package whose file list holds each file, as
// `dpkg -S` would: it reads the image's /var/lib/dpkg/info/*.list inside
// the image root, regular files only, never following a link or blocking
// on a FIFO the image put there. A file no list names is missing from the
// map; so is every file when the image has no dpkg database.
func setuidOwners(root *inroot.Root, files []specialFile) map[string]string {
	want := map[string]string{} // a path as a list may record it -> the file's path
	for _, f := range files {
		want[f.path] = f.path
		// On a merged /usr, packages list /bin/x for /usr/bin/x.
		if alias, ok := strings.CutPrefix(f.path, "/usr"); ok && slices.Contains([]string{"/bin", "/sbin", "/lib"}, path.Dir(alias)) {
			want[alias] = f.path
		}
	}
	owners := map[string]string{}
	ents, err := root.ReadDir(dpkgInfoDir)
	if err != nil {
		return owners
	}
	for _, e := range ents {
		pkg, ok := strings.CutSuffix(e.Name(), ".list")
		if !ok || !e.Type().IsRegular() {
			continue
		}
		pkg, _, _ = strings.Cut(pkg, ":") // libfoo:amd64
		f, err := root.OpenNoFollow(dpkgInfoDir + "/" + e.Name())
		if err != nil {
			continue
		}
		// A file list is a few hundred KiB at most; an image's bigger one
		// is read only that far.
		sc := bufio.NewScanner(io.LimitReader(f, maxFileList))
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			if p, hit := want[sc.Text()]; hit && owners[p] == "" {
				owners[p] = pkg
			}
		}
		f.Close()
	}
	return owners
}

const (
	// dpkgInfoDir holds each installed package's file list (<package>.list).
	dpkgInfoDir = "/var/lib/dpkg/info"
	maxFileList = 64 << 20
)

// setuidFiles lists the regular files with a setuid or setgid bit in the
// tree at root (nothing mounted in it), as in-image paths.
func setuidFiles(root string) ([]specialFile, error) {
	var out []specialFile
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		if st.Mode&(unix.S_ISUID|unix.S_ISGID) != 0 {
			rel, _ := filepath.Rel(root, p)
			out = append(out, specialFile{path: "/" + rel, mode: st.Mode})
		}
		return nil
	})
	return out, err
}
