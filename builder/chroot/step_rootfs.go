package chroot

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/strata-build/packer-plugin-strata/internal/inroot"
	"github.com/strata-build/packer-plugin-strata/internal/mount"
)

// stepRootfs mounts the image root at mount_path: the new layer's directory
// (the upper dir), bound there. Everything the build mounts later sits on
// this mount, so the build owns all of it. It stays mounted until the end.
//
// Reads stateConfig, stateLedger; writes stateMountPath, stateRoot.
type stepRootfs struct {
	root    *inroot.Root
	mounted *mount.MountRecord
}

func (s *stepRootfs) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	cfg := configOf(state)
	ledger := ledgerOf(state)
	upper := filepath.Join(cfg.WorkDir, upperDirName)
	if err := os.Mkdir(upper, 0o755); err != nil {
		return halt(state, fmt.Errorf("creating the new layer's directory: %w", err))
	}
	if err := os.MkdirAll(cfg.MountPath, 0o755); err != nil {
		return halt(state, fmt.Errorf("mount_path: %w", err))
	}
	if err := ledger.SetMountPath(cfg.MountPath); err != nil {
		return halt(state, err)
	}
	rec, err := mountHost(ledger, mount.Spec{FSType: "bind", Source: upper, Target: cfg.MountPath})
	if err != nil {
		return halt(state, fmt.Errorf("mounting the image root at %s: %w", cfg.MountPath, err))
	}
	s.mounted = rec
	s.root, err = inroot.Open(cfg.MountPath)
	if err != nil {
		return halt(state, err)
	}
	state.Put(stateMountPath, cfg.MountPath)
	state.Put(stateRoot, s.root)
	return multistep.ActionContinue
}

func (s *stepRootfs) Cleanup(state multistep.StateBag) {
	if s.root != nil {
		s.root.Close()
	}
	if s.mounted == nil {
		return
	}
	ui := uiOf(state)
	cfg := configOf(state)
	ledger := ledgerOf(state)
	// Anything still inside the chroot goes first, then whatever is
	// mounted on the root, then the root.
	if _, err := mount.KillRootedUnderSince(cfg.MountPath, ledger.Owner().Start, 5*time.Second); err != nil {
		ui.Error(err.Error())
		return
	}
	if err := unmountRecords(ui, ledger, []mount.MountRecord{*s.mounted}); err != nil {
		ui.Error(fmt.Sprintf("unmounting the image root %s: %v", cfg.MountPath, err))
		return
	}
	s.mounted = nil
}

// mountHost mounts spec on a host path (not inside an image), recording it
// in the ledger ahead and with its mount ID once made.
func mountHost(ledger *mount.Ledger, spec mount.Spec) (*mount.MountRecord, error) {
	if err := ledger.Intend(spec.Target, spec.FSType); err != nil {
		return nil, err
	}
	if err := mount.Mount(spec); err != nil {
		ledger.Unmounted(spec.Target)
		return nil, err
	}
	id, err := mount.IDAt(spec.Target)
	if err != nil {
		return nil, err
	}
	if err := ledger.Mounted(spec.Target, id); err != nil {
		return nil, err
	}
	return &mount.MountRecord{Target: spec.Target, FSType: spec.FSType, ID: id}, nil
}

// unmountRecords unmounts recs and everything stacked on them, children
// first, and forgets them in the ledger once they are gone.
func unmountRecords(ui interface{ Error(string) }, ledger *mount.Ledger, recs []mount.MountRecord) error {
	_, lazy, err := mount.UnmountOwned(recs)
	for _, l := range lazy {
		ui.Error(fmt.Sprintf("Warning: %s stayed busy and was unmounted lazily", l))
	}
	if err != nil {
		return err
	}
	for _, r := range recs {
		if err := ledger.Unmounted(r.Target); err != nil {
			return err
		}
	}
	return nil
}
