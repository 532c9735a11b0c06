package chroot

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	"golang.org/x/sys/unix"

	"github.com/strata-build/packer-plugin-strata/internal/dpkg"
)

// stepCheckContents checks the finished tree before anything is committed:
// every package allowed_packages allows and denied_packages does not deny,
// and no setuid or setgid file that allowed_setuid does not list (or their
// bits cleared, with strip_setuid). A violation fails the build, listing
// every offender, and leaves no layer, image or output.
//
// Reads stateConfig, stateRoot.
type stepCheckContents struct{}

func (s *stepCheckContents) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	cfg := configOf(state)
	ui := uiOf(state)
	var problems []string
	if len(cfg.AllowedPackages) > 0 || len(cfg.DeniedPackages) > 0 {
		pkgs, err := dpkg.ReadImage(rootOf(state))
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
	var offenders []string
	for _, f := range special {
		if !slices.Contains(cfg.AllowedSetuid, f.path) {
			offenders = append(offenders, f.String())
		}
	}
	if len(offenders) > 0 {
		if cfg.StripSetuid {
			for _, f := range special {
				if slices.Contains(cfg.AllowedSetuid, f.path) {
					continue
				}
				if err := unix.Chmod(filepath.Join(cfg.MountPath, f.path), f.mode&^(unix.S_ISUID|unix.S_ISGID)&0o7777); err != nil {
					return halt(state, fmt.Errorf("strip_setuid: %s: %w", f.path, err))
				}
			}
			ui.Message(fmt.Sprintf("strip_setuid: cleared the setuid/setgid bit of %d file(s): %s", len(offenders), strings.Join(offenders, ", ")))
		} else {
			problems = append(problems, fmt.Sprintf("allowed_setuid: %d setuid/setgid file(s) not allowed (add them to allowed_setuid, or set strip_setuid = true): %s", len(offenders), strings.Join(offenders, ", ")))
		}
	}
	if len(problems) > 0 {
		return halt(state, fmt.Errorf("the image breaks its content rules:\n  %s", strings.Join(problems, "\n  ")))
	}
	ui.Message(fmt.Sprintf("Contents checked: %d setuid/setgid file(s), all allowed", len(special)-len(offenders)))
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

func (f specialFile) String() string {
	what := "setuid"
	switch {
	case f.mode&unix.S_ISUID != 0 && f.mode&unix.S_ISGID != 0:
		what = "setuid+setgid"
	case f.mode&unix.S_ISGID != 0:
		what = "setgid"
	}
	return fmt.Sprintf("%s (%s)", f.path, what)
}

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
