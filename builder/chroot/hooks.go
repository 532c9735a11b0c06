package chroot

import (
	"context"
	"fmt"
	"os/exec"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"
)

// hookData is what host command templates can use.
type hookData struct {
	// MountPath is the image root on the host.
	MountPath string
	// Command is the command a command_wrapper wraps.
	Command string
}

// wrapCommand renders command_wrapper around cmd.
func wrapCommand(wrapper, cmd, mountPath string) (string, error) {
	return interpolate.Render(wrapper, &interpolate.Context{Data: hookData{MountPath: mountPath, Command: cmd}})
}

// stepHostCommands runs one of the host hooks (pre_mount_commands, ...).
type stepHostCommands struct {
	option   string
	commands func(*Config) []string
}

func (s *stepHostCommands) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	cfg := state.Get("config").(*Config)
	ui := state.Get("ui").(packersdk.Ui)
	root := state.Get("mount_path").(string)
	cmds := s.commands(cfg)
	if len(cmds) == 0 {
		return multistep.ActionContinue
	}
	ui.Say(fmt.Sprintf("Running %s ...", s.option))
	for i, tmpl := range cmds {
		rendered, err := interpolate.Render(tmpl, &interpolate.Context{Data: hookData{MountPath: root}})
		if err != nil {
			return halt(state, fmt.Errorf("%s[%d]: %w", s.option, i, err))
		}
		wrapped, err := wrapCommand(cfg.CommandWrapper, rendered, root)
		if err != nil {
			return halt(state, fmt.Errorf("command_wrapper: %w", err))
		}
		ui.Message(wrapped)
		cmd := exec.CommandContext(ctx, "/bin/sh", "-c", wrapped)
		cmd.Env = append(cmd.Environ(), "MOUNT_PATH="+root)
		if err := runStreaming(cmd, ui); err != nil {
			return halt(state, fmt.Errorf("%s[%d] failed: %w", s.option, i, err))
		}
	}
	return multistep.ActionContinue
}

func (s *stepHostCommands) Cleanup(multistep.StateBag) {}
