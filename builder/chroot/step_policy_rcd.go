package chroot

import (
	"context"
	"fmt"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"golang.org/x/sys/unix"
)

// policyRcD makes invoke-rc.d (and so package scripts) refuse to start
// services: exit status 101 means "action forbidden by policy".
const policyRcD = "#!/bin/sh\n# Installed by strata-chroot for the duration of the build.\nexit 101\n"

// stepPolicyRcD installs /usr/sbin/policy-rc.d during the build when
// prevent_service_start is on, and restores what was there afterwards.
//
// Uses cfg, root; pushes an undo.
type stepPolicyRcD struct {
	undo *undo
}

func (s *stepPolicyRcD) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	b := buildOf(state)
	cfg := b.cfg
	ui := uiOf(state)
	if !*cfg.PreventServiceStart {
		return multistep.ActionContinue
	}
	root := b.root
	if st, err := root.Lstat("/usr/sbin"); err != nil || st.Mode&unix.S_IFMT == unix.S_IFREG {
		ui.Message("The image has no /usr/sbin, so no invoke-rc.d to block: no policy-rc.d")
		return multistep.ActionContinue
	}
	saved, err := savePath(root, "/usr/sbin/policy-rc.d")
	if err != nil {
		return halt(state, fmt.Errorf("prevent_service_start: %w", err))
	}
	if err := saved.replace([]byte(policyRcD), 0o755); err != nil {
		return halt(state, fmt.Errorf("prevent_service_start: writing policy-rc.d: %w", err))
	}
	ui.Message("Service starts blocked by /usr/sbin/policy-rc.d for the build")
	s.undo = b.pushUndo("policy-rc.d", func(ui packersdk.Ui) error {
		kept, err := saved.restore()
		if kept {
			ui.Message("/usr/sbin/policy-rc.d was replaced by a provisioner; the image keeps the provisioner's")
		}
		return err
	})
	return multistep.ActionContinue
}

func (s *stepPolicyRcD) Cleanup(state multistep.StateBag) { cleanupUndo(state, s.undo) }
