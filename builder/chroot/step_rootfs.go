package chroot

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"golang.org/x/sys/unix"

	"github.com/strata-build/packer-plugin-strata/internal/inroot"
	"github.com/strata-build/packer-plugin-strata/internal/mount"
	"github.com/strata-build/packer-plugin-strata/layer"
)

// rootfsMount is the image root's own mount at mount_path: the new layer's
// directory (the upper dir) bound there for a base image, or an overlay of
// the parent's layers with the upper dir on top for a child. Everything the
// build mounts later sits on it, so the build owns all of it.
type rootfsMount struct {
	rec *mount.MountRecord
	// root is the mounted root held open; it goes first at unmount (an open
	// handle keeps the mount busy).
	root   *inroot.Root
	upper  string
	parent *layer.Image
	lowers []string // the parent's layer trees, top first
}

// unmount stops what still runs in the chroot, then unmounts the root and
// everything on it.
func (r *rootfsMount) unmount(ui packersdk.Ui, ledger *mount.Ledger, mountPath string) error {
	if r == nil || r.rec == nil {
		return nil
	}
	if _, err := mount.KillRootedUnderSince(mountPath, ledger.Owner().Start, 5*time.Second); err != nil {
		return err
	}
	if r.root != nil {
		r.root.Close()
		r.root = nil
	}
	if err := unmountRecords(ui, ledger, []mount.MountRecord{*r.rec}); err != nil {
		return fmt.Errorf("unmounting the image root %s: %w", mountPath, err)
	}
	r.rec = nil
	return nil
}

// stepRootfs mounts the image root at mount_path and holds the parent's
// layers against garbage collection for the rest of the build.
//
// Reads stateConfig, stateLedger, stateLayers; writes stateMountPath,
// stateRoot, stateRootfs.
type stepRootfs struct {
	rootfs  *rootfsMount
	release func()
}

func (s *stepRootfs) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	cfg := configOf(state)
	ui := uiOf(state)
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
	s.rootfs = &rootfsMount{upper: upper}
	spec := mount.Spec{FSType: "bind", Source: upper, Target: cfg.MountPath}
	if cfg.parentID != "" {
		store := layersOf(state)
		parent, err := store.Image(cfg.parentID)
		if err != nil {
			return halt(state, fmt.Errorf("parent: %w", err))
		}
		if s.release, err = store.Hold(parent); err != nil {
			return halt(state, fmt.Errorf("parent: %w", err))
		}
		// Held, then checked: what is mounted is what was committed.
		start := time.Now()
		if err := store.VerifyImage(ctx, parent); err != nil {
			return halt(state, fmt.Errorf("parent %s: %w", parent.ID, err))
		}
		ui.Message(fmt.Sprintf("Parent's %d layer(s) checked against their diffIDs in %s", len(parent.Layers), time.Since(start).Round(time.Millisecond)))
		lowers, err := store.LowerDirs(parent)
		if err != nil {
			return halt(state, fmt.Errorf("parent: %w", err))
		}
		// The merged root takes the upper dir's owner, mode and times: make
		// them the parent's.
		if err := copyDirAttrs(lowers[0], upper); err != nil {
			return halt(state, err)
		}
		work := filepath.Join(cfg.WorkDir, ovlWorkDirName)
		if err := os.Mkdir(work, 0o700); err != nil {
			return halt(state, err)
		}
		s.rootfs.parent, s.rootfs.lowers = parent, lowers
		spec = mount.Spec{FSType: "overlay", Source: "overlay", Target: cfg.MountPath, Options: layer.OverlayOptions(lowers, upper, work)}
		ui.Say(fmt.Sprintf("Building on %s: %d layer(s) as the overlay's lower dirs, nothing copied", parent.ID, len(parent.Layers)))
	}
	rec, err := mountHost(ledger, spec)
	if err != nil {
		return halt(state, fmt.Errorf("mounting the image root at %s: %w", cfg.MountPath, err))
	}
	s.rootfs.rec = rec
	state.Put(stateRootfs, s.rootfs)
	if s.rootfs.root, err = inroot.Open(cfg.MountPath); err != nil {
		return halt(state, err)
	}
	state.Put(stateMountPath, cfg.MountPath)
	state.Put(stateRoot, s.rootfs.root)
	return multistep.ActionContinue
}

func (s *stepRootfs) Cleanup(state multistep.StateBag) {
	if s.release != nil {
		defer s.release()
	}
	if err := s.rootfs.unmount(uiOf(state), ledgerOf(state), configOf(state).MountPath); err != nil {
		uiOf(state).Error(err.Error())
	}
}

// copyDirAttrs gives to the owner, mode and times of from.
func copyDirAttrs(from, to string) error {
	var st unix.Stat_t
	if err := unix.Lstat(from, &st); err != nil {
		return err
	}
	if err := os.Lchown(to, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	if err := unix.Chmod(to, st.Mode&0o7777); err != nil {
		return err
	}
	return unix.UtimesNano(to, []unix.Timespec{st.Atim, st.Mtim})
}

// mountHost mounts spec on a host path (not inside an image), recording it
// in the ledger ahead and with its mount ID once made.
func mountHost(ledger *mount.Ledger, spec mount.Spec) (*mount.MountRecord, error) {
	return mount.MountRecorded(ledger, spec)
}

// unmountRecords unmounts recs and everything stacked on them, children
// first, and forgets them in the ledger once they are gone.
func unmountRecords(ui interface{ Error(string) }, ledger *mount.Ledger, recs []mount.MountRecord) error {
	lazy, err := mount.UnmountRecorded(ledger, recs)
	warnLazy(ui, lazy)
	return err
}

// warnLazy tells of mounts that stayed busy and were detached lazily.
func warnLazy(ui interface{ Error(string) }, lazy []string) {
	for _, l := range lazy {
		ui.Error(fmt.Sprintf("Warning: %s stayed busy and was unmounted lazily", l))
	}
}
