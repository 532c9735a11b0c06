package chroot

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/strata-build/packer-plugin-strata/internal/mount"
)

// hostResolvConf is the host's resolver configuration; tests move it.
var hostResolvConf = "/etc/resolv.conf"

// stepResolvConf gives the chroot name resolution for the build by the
// resolv_conf mode, and puts the image's own /etc/resolv.conf (file, relative
// or absolute symlink, or nothing) back exactly afterwards. The host's file
// is only ever read.
type stepResolvConf struct {
	undo *undo
}

func (s *stepResolvConf) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	cfg := state.Get("config").(*Config)
	ui := state.Get("ui").(packersdk.Ui)
	root := state.Get("mount_path").(string)
	if cfg.ResolvConf == "none" {
		return multistep.ActionContinue
	}
	restore, err := useHostResolvConf(root, cfg.ResolvConf)
	if err != nil {
		return halt(state, fmt.Errorf("resolv_conf = %q: %w", cfg.ResolvConf, err))
	}
	ui.Message(fmt.Sprintf("resolv.conf: %s", cfg.ResolvConf))
	s.undo = pushUndo(state, "resolv.conf", func(packersdk.Ui) error { return restore() })
	return multistep.ActionContinue
}

func (s *stepResolvConf) Cleanup(state multistep.StateBag) {
	ui := state.Get("ui").(packersdk.Ui)
	if err := s.undo.run(ui); err != nil {
		ui.Error(err.Error())
	}
}

// useHostResolvConf applies mode ("copy-host" or "bind-host") to the image at
// root and returns the function that undoes it.
func useHostResolvConf(root, mode string) (func() error, error) {
	saved, err := savePath(root, "/etc/resolv.conf")
	if err != nil {
		return nil, err
	}
	hostFile, err := filepath.EvalSymlinks(hostResolvConf)
	if err != nil {
		return nil, fmt.Errorf("the host has no usable %s: %w", hostResolvConf, err)
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
		return saved.restore, nil
	case "bind-host":
		if err := saved.replace(nil, 0o644); err != nil {
			saved.restore()
			return nil, err
		}
		spec := mount.Spec{FSType: "bind", Source: hostFile, Target: saved.path, Options: "ro"}
		if err := mount.Mount(spec); err != nil {
			saved.restore()
			return nil, err
		}
		return func() error {
			if _, err := mount.Unmount(saved.path, 20, 250*time.Millisecond); err != nil {
				return err
			}
			return saved.restore()
		}, nil
	}
	return nil, fmt.Errorf("unknown mode %q", mode)
}
