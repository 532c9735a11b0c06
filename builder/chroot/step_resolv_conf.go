package chroot

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/strata-build/packer-plugin-strata/internal/inroot"
	"github.com/strata-build/packer-plugin-strata/internal/mount"
)

// stepResolvConf gives the chroot name resolution for the build by the
// resolv_conf mode, and afterwards puts the image's own /etc/resolv.conf
// (file, relative or absolute symlink, or nothing) back exactly, unless a
// provisioner replaced the builder's copy with its own: that one stays. The
// host's file is only ever read.
//
// Uses cfg, root, ledger; pushes an undo.
type stepResolvConf struct {
	undo *undo
}

func (s *stepResolvConf) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	b := buildOf(state)
	cfg := b.cfg
	ui := uiOf(state)
	if cfg.ResolvConf == "none" {
		return multistep.ActionContinue
	}
	restore, err := useHostResolvConf(b.host, b.root, b.ledger, cfg.ResolvConf)
	if err != nil {
		return halt(state, fmt.Errorf("resolv_conf = %q: %w", cfg.ResolvConf, err))
	}
	ui.Message(fmt.Sprintf("resolv.conf: %s", cfg.ResolvConf))
	s.undo = b.pushUndo("resolv.conf", restore)
	return multistep.ActionContinue
}

func (s *stepResolvConf) Cleanup(state multistep.StateBag) { cleanupUndo(state, s.undo) }

// useHostResolvConf applies mode ("copy-host" or "bind-host") to the image
// and returns the function that undoes it.
func useHostResolvConf(h host, root *inroot.Root, ledger *mount.Ledger, mode string) (func(packersdk.Ui) error, error) {
	saved, err := savePath(root, "/etc/resolv.conf")
	if err != nil {
		return nil, err
	}
	hostResolvConf := hostPath(h, "/etc/resolv.conf")
	hostFile, err := filepath.EvalSymlinks(hostResolvConf)
	if err != nil {
		return nil, fmt.Errorf("the host has no usable %s: %w", hostResolvConf, err)
	}
	restore := func(ui packersdk.Ui) error {
		kept, err := saved.restore()
		if kept {
			ui.Say("/etc/resolv.conf was changed by a provisioner; the image keeps the provisioner's version")
		}
		return err
	}
	switch mode {
	case "copy-host":
		data, err := os.ReadFile(hostFile)
		if err != nil {
			return nil, err
		}
		if err := saved.replace(data, 0o644); err != nil {
			saved.restore()
			return nil, err
		}
		return restore, nil
	case "bind-host":
		if err := saved.replace(nil, 0o644); err != nil {
			saved.restore()
			return nil, err
		}
		made, err := mountInImage(h, root, ledger, plannedMount{Spec: mount.Spec{FSType: "bind", Source: hostFile, Target: "/etc/resolv.conf", Options: "ro"}, File: true})
		if err != nil {
			saved.restore()
			return nil, err
		}
		return func(ui packersdk.Ui) error {
			if made.ID != 0 {
				if err := unmountRecords(ui, h, ledger, []mount.MountRecord{made.MountRecord}); err != nil {
					return err
				}
				made.ID = 0
			}
			return restore(ui)
		}, nil
	}
	return nil, fmt.Errorf("unknown mode %q", mode)
}
