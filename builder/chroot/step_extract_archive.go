package chroot

import (
	"context"
	"fmt"
	"os/exec"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/strata-build/packer-plugin-strata/export"
)

// stepExtractArchive unpacks source_archive into the root file system,
// keeping numeric owners, modes, xattrs and capabilities.
type stepExtractArchive struct{}

func (s *stepExtractArchive) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	cfg := state.Get("config").(*Config)
	ui := state.Get("ui").(packersdk.Ui)
	root := state.Get("mount_path").(string)
	ui.Say("Extracting " + cfg.SourceArchive + " ...")
	start := time.Now()
	// GNU tar detects the compression itself and refuses members that would
	// land outside the target directory.
	cmd := exec.CommandContext(ctx, "tar", "--extract", "--file", cfg.SourceArchive, "--directory", root,
		"--numeric-owner", "--same-permissions", "--same-owner", "--xattrs", "--xattrs-include=*", "--acls")
	if out, err := cmd.CombinedOutput(); err != nil {
		return halt(state, fmt.Errorf("source_archive: extracting %s: %w\n%s", cfg.SourceArchive, err, out))
	}
	size, _, entries, _ := export.TreeSize(root)
	ui.Message(fmt.Sprintf("Extracted %s in %d entries in %s", export.HumanBytes(size), entries, time.Since(start).Round(100*time.Millisecond)))
	return multistep.ActionContinue
}

func (s *stepExtractArchive) Cleanup(multistep.StateBag) {}
