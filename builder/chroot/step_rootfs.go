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
	rec    *mount.MountRecord
	upper  string
	parent *layer.Image
	lowers []string // the parent's layer trees, top first
	// check is the parent's layers' check against their diffIDs, which
	// runs beside the build until stepCommit waits for it.
	check *parentCheck
}

// unmountRootfs stops what still runs in the chroot, closes the image
// root (an open handle keeps the mount busy), then unmounts the root and
// everything on it.
func (b *buildState) unmountRootfs(ui packersdk.Ui) error {
	r := b.rootfs
	if r == nil || r.rec == nil {
		return nil
	}
	mountPath := b.cfg.MountPath
	if _, err := b.host.KillChroot(mountPath, b.ledger.Owner().Start, 5*time.Second); err != nil {
		return err
	}
	if b.root != nil {
		b.root.Close()
		b.root = nil
	}
	if err := unmountRecords(ui, b.host, b.ledger, []mount.MountRecord{*r.rec}); err != nil {
		return fmt.Errorf("unmounting the image root %s: %w", mountPath, err)
	}
	r.rec = nil
	b.mountPath = ""
	return nil
}

// stepRootfs mounts the image root at mount_path and holds the parent's
// layers against garbage collection for the rest of the build.
//
// Uses cfg, ledger, layers; sets rootfs, root and mountPath.
type stepRootfs struct {
	release func()
}

func (s *stepRootfs) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	b := buildOf(state)
	cfg := b.cfg
	ui := uiOf(state)
	ledger := b.ledger
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
	rootfs := &rootfsMount{upper: upper}
	b.rootfs = rootfs
	spec := mount.Spec{FSType: "bind", Source: upper, Target: cfg.MountPath}
	if cfg.parentID != "" {
		store := b.layers
		parent, err := store.Image(cfg.parentID)
		if err != nil {
			return halt(state, fmt.Errorf("parent: %w", err))
		}
		if s.release, err = store.Hold(parent); err != nil {
			return halt(state, fmt.Errorf("parent: %w", err))
		}
		// Held, then checked beside the build: nothing is made of a
		// parent that is not what was committed (see parentCheck).
		rootfs.check = startParentCheck(ctx, store, parent)
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
		rootfs.parent, rootfs.lowers = parent, lowers
		// Volatile: the commit syncs the layer itself, once.
		spec = mount.Spec{FSType: "overlay", Source: "overlay", Target: cfg.MountPath, Options: layer.VolatileOverlayOptions(lowers, upper, work)}
		ui.Say(fmt.Sprintf("Building on %s: %d layer(s) as the overlay's lower dirs, nothing copied", parent.ID, len(parent.Layers)))
	}
	rec, err := b.host.MountRecorded(ledger, spec)
	if err != nil {
		return halt(state, fmt.Errorf("mounting the image root at %s: %w", cfg.MountPath, err))
	}
	rootfs.rec = rec
	if b.root, err = inroot.Open(cfg.MountPath); err != nil {
		return halt(state, err)
	}
	b.mountPath = cfg.MountPath
	return multistep.ActionContinue
}

func (s *stepRootfs) Cleanup(state multistep.StateBag) {
	if s.release != nil {
		defer s.release()
	}
	if r := buildOf(state).rootfs; r != nil {
		// Before the hold goes (deferred calls run last first).
		defer r.check.stop()
	}
	if err := buildOf(state).unmountRootfs(uiOf(state)); err != nil {
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

// unmountRecords unmounts recs and everything stacked on them, children
// first, and forgets them in the ledger once they are gone.
func unmountRecords(ui interface{ Error(string) }, h host, ledger *mount.Ledger, recs []mount.MountRecord) error {
	lazy, err := h.UnmountRecorded(ledger, recs)
	warnLazy(ui, lazy)
	return err
}

// warnLazy tells of mounts that stayed busy and were detached lazily.
func warnLazy(ui interface{ Error(string) }, lazy []string) {
	for _, l := range lazy {
		ui.Error(fmt.Sprintf("Warning: %s stayed busy and was unmounted lazily", l))
	}
}
