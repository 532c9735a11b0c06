package chroot

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	"github.com/hashicorp/packer-plugin-sdk/multistep/commonsteps"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/packerbuilderdata"

	"github.com/strata-build/packer-plugin-strata/internal/mount"
)

// Builder is the strata-chroot builder.
type Builder struct {
	config Config
	runner multistep.Runner
}

func (b *Builder) ConfigSpec() hcldec.ObjectSpec { return b.config.FlatMapstructure().HCL2Spec() }

func (b *Builder) Prepare(raws ...interface{}) ([]string, []string, error) {
	warnings, err := b.config.Prepare(raws...)
	if err != nil {
		return nil, warnings, err
	}
	return []string{"MountPath", "WorkDir"}, warnings, nil
}

// Run is the flow of one build: output dir, work dir, root file system,
// mounts, provisioning, teardown, export.
func (b *Builder) Run(ctx context.Context, ui packersdk.Ui, hook packersdk.Hook) (packersdk.Artifact, error) {
	cfg := &b.config
	mount.CloseOnExecInherited()
	state := new(multistep.BasicStateBag)
	state.Put("config", cfg)
	state.Put("hook", hook)
	state.Put("ui", ui)

	var source multistep.Step = &stepExtractArchive{}
	if cfg.Bootstrap != nil {
		source = &stepBootstrap{}
	}
	steps := []multistep.Step{
		&commonsteps.StepOutputDir{Force: cfg.PackerForce, Path: cfg.OutputDir},
		&stepWorkDir{},
		source,
		&stepHostCommands{option: "pre_mount_commands", commands: func(c *Config) []string { return c.PreMountCommands }},
		&stepMount{},
		&stepHostCommands{option: "post_mount_commands", commands: func(c *Config) []string { return c.PostMountCommands }},
		&stepResolvConf{},
		&stepPolicyRcD{},
		&stepCommunicator{},
		&commonsteps.StepProvision{},
		&stepHostCommands{option: "pre_unmount_commands", commands: func(c *Config) []string { return c.PreUnmountCommands }},
		&stepEarlyCleanup{},
		&stepExport{},
	}
	b.runner = commonsteps.NewRunner(steps, cfg.PackerConfig, ui)
	b.runner.Run(ctx, state)

	if err, ok := state.GetOk("error"); ok {
		if cfg.PackerOnError == "abort" {
			if root, ok := state.GetOk("mount_path"); ok {
				ui.Error(fmt.Sprintf("-on-error=abort: the chroot stays mounted at %s for debugging. "+
					"The next build with work_dir %s cleans it up (or unmount it yourself).", root, cfg.WorkDir))
			}
		}
		return nil, err.(error)
	}
	if _, ok := state.GetOk(multistep.StateCancelled); ok {
		return nil, errors.New("build was cancelled")
	}
	if _, ok := state.GetOk(multistep.StateHalted); ok {
		return nil, errors.New("build was halted")
	}
	a, ok := state.GetOk("artifact")
	if !ok {
		return nil, errors.New("build produced no artifact")
	}
	return a.(*Artifact), nil
}

// stepCommunicator hands Packer's provisioners the chroot communicator and
// publishes the build's generated data.
type stepCommunicator struct{}

func (s *stepCommunicator) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	cfg := state.Get("config").(*Config)
	root := state.Get("mount_path").(string)
	state.Put("communicator", &Communicator{Root: root, Wrapper: cfg.CommandWrapper, Env: chrootEnv(cfg.Environment)})
	data := packerbuilderdata.GeneratedData{State: state}
	data.Put("MountPath", root)
	data.Put("WorkDir", cfg.WorkDir)
	return multistep.ActionContinue
}

func (s *stepCommunicator) Cleanup(multistep.StateBag) {}
