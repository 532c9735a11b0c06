package chroot

import (
	"context"
	"fmt"

	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/strata-build/packer-plugin-strata/internal/hostexec"
)

// hookData is what host command templates can use, besides Packer's own
// template functions and user variables.
type hookData struct {
	// MountPath is the image root on the host.
	MountPath string
	// Command is the command a command_wrapper wraps.
	Command string
}

// wrap renders command_wrapper around cmd.
func (c *Config) wrap(cmd string) (string, error) {
	return c.render(c.CommandWrapper, hookData{MountPath: c.MountPath, Command: cmd})
}

// stepHostCommands runs one of the host hooks (pre_mount_commands, ...),
// each in a process group of its own that dies with the build.
//
// Uses cfg, ledger.
type stepHostCommands struct {
	option   string
	commands func(*Config) []string
}

// InnerStepName tells the three apart in -debug's pauses, -on-error's
// messages and the step times: pre_mount_commands, post_mount_commands,
// pre_unmount_commands.
func (s *stepHostCommands) InnerStepName() string { return s.option }

func (s *stepHostCommands) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	b := buildOf(state)
	cfg := b.cfg
	ui := uiOf(state)
	cmds := s.commands(cfg)
	if len(cmds) == 0 {
		return multistep.ActionContinue
	}
	ui.Say(fmt.Sprintf("Running %s ...", s.option))
	for i, tmpl := range cmds {
		rendered, err := cfg.render(tmpl, hookData{MountPath: cfg.MountPath})
		if err != nil {
			return halt(state, fmt.Errorf("%s[%d]: %w", s.option, i, err))
		}
		wrapped, err := cfg.wrap(rendered)
		if err != nil {
			return halt(state, fmt.Errorf("command_wrapper: %w", err))
		}
		ui.Message(wrapped)
		cmd := hostexec.Command(ctx, "/bin/sh", "-c", wrapped)
		cmd.Env = append(cmd.Env, "MOUNT_PATH="+cfg.MountPath)
		if err := b.host.Run(cmd, b.ledger, ui.Message); err != nil {
			return halt(state, fmt.Errorf("%s[%d] failed: %w", s.option, i, err))
		}
	}
	return multistep.ActionContinue
}

func (s *stepHostCommands) Cleanup(multistep.StateBag) {}
