package chroot

import (
	"context"
	"fmt"
	"os"
	"slices"

	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/strata-build/packer-plugin-strata/internal/mount"
)

// stepOutputDir makes the output dir. An existing one is refused unless
// packer runs with -force, and then removed only when nothing is mounted
// under it. It runs after the work dir's recovery, so a killed build's
// mounts are gone before anything is deleted. A build that fails removes
// the output dir it made.
//
// Reads stateConfig.
type stepOutputDir struct {
	made bool
}

func (s *stepOutputDir) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	cfg := configOf(state)
	ui := uiOf(state)
	dir := cfg.OutputDir
	if _, err := os.Lstat(dir); err == nil {
		if !cfg.PackerForce {
			return halt(state, fmt.Errorf("output_dir %s exists; remove it, choose another output_dir, or run packer with -force to replace it", dir))
		}
		if err := mount.Verify(dir); err != nil {
			return halt(state, fmt.Errorf("-force: not removing output_dir: %w", err))
		}
		ui.Say("Deleting previous output directory " + dir)
		if err := os.RemoveAll(dir); err != nil {
			return halt(state, fmt.Errorf("-force: removing %s: %w", dir, err))
		}
	}
	// A `dir` output holds the image's world-writable /tmp: only root may
	// reach it.
	mode := os.FileMode(0o755)
	if slices.Contains(cfg.Formats, "dir") {
		mode = 0o700
	}
	if err := os.MkdirAll(dir, mode); err != nil {
		return halt(state, fmt.Errorf("output_dir: %w", err))
	}
	if err := os.Chmod(dir, mode); err != nil {
		return halt(state, fmt.Errorf("output_dir: %w", err))
	}
	s.made = true
	return multistep.ActionContinue
}

func (s *stepOutputDir) Cleanup(state multistep.StateBag) {
	if !s.made {
		return
	}
	_, cancelled := state.GetOk(multistep.StateCancelled)
	_, halted := state.GetOk(multistep.StateHalted)
	if !cancelled && !halted {
		return
	}
	cfg := configOf(state)
	ui := uiOf(state)
	if err := mount.Verify(cfg.OutputDir); err != nil {
		ui.Error(fmt.Sprintf("Not removing %s: %v", cfg.OutputDir, err))
		return
	}
	ui.Say("Deleting output directory " + cfg.OutputDir)
	if err := os.RemoveAll(cfg.OutputDir); err != nil {
		ui.Error(fmt.Sprintf("removing %s: %v", cfg.OutputDir, err))
	}
}
