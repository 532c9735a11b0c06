package chroot

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/hashicorp/packer-plugin-sdk/multistep"

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
// Uses cfg.
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
		n, err := export.RemoveEarlier(dir)
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
		if err := export.RemoveWritten(dir, cfg.Formats); err != nil {
			ui.Error(err.Error())
		}
		return
	}
	ui.Say("Deleting output directory " + dir)
	if err := export.RemoveTree(dir); err != nil {
		ui.Error(fmt.Sprintf("removing %s: %v", dir, err))
	}
}
