package chroot

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/strata-build/packer-plugin-strata/internal/bytesize"
	"github.com/strata-build/packer-plugin-strata/internal/hostexec"
	"github.com/strata-build/packer-plugin-strata/internal/treesize"
)

// stepExtractArchive unpacks source_archive into the image root, keeping
// numeric owners, modes, xattrs, capabilities and holes in sparse files.
//
// Uses cfg, ledger.
type stepExtractArchive struct{}

func (s *stepExtractArchive) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	b := buildOf(state)
	cfg := b.cfg
	ui := uiOf(state)
	ui.Say("Extracting " + cfg.SourceArchive + " ...")
	start := time.Now()
	// GNU tar detects the compression itself and refuses members that would
	// land outside the target directory.
	cmd := hostexec.Command(ctx, "tar", "--extract", "--file", cfg.SourceArchive, "--directory", cfg.MountPath,
		"--numeric-owner", "--same-permissions", "--same-owner", "--xattrs", "--xattrs-include=*", "--acls")
	if _, err := b.host.Output(cmd, b.ledger); err != nil {
		return halt(state, fmt.Errorf("source_archive: extracting %s: %w", cfg.SourceArchive, err))
	}
	t, err := treesize.Measure(cfg.MountPath)
	if err != nil {
		return halt(state, err)
	}
	ui.Message(fmt.Sprintf("Extracted %s in %d entries in %s", bytesize.Human(t.Allocated), t.Entries, time.Since(start).Round(100*time.Millisecond)))
	return multistep.ActionContinue
}

func (s *stepExtractArchive) Cleanup(multistep.StateBag) {}
