package chroot

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/strata-build/packer-plugin-strata/internal/mount"
)

// Builder is the strata-chroot builder.
type Builder struct {
	config Config
	runner multistep.Runner
}

func (b *Builder) ConfigSpec() hcldec.ObjectSpec { return configSpec() }

func (b *Builder) Prepare(raws ...interface{}) ([]string, []string, error) {
	warnings, err := b.config.Prepare(raws...)
	if err != nil {
		return nil, warnings, err
	}
	return generatedData, warnings, nil
}

// generatedData are the build.* variables this builder publishes: to
// provisioners, MountPath and WorkDir; to post-processors, also ImageID,
// ParentImageID and OutputDir.
var generatedData = []string{"MountPath", "WorkDir", "ImageID", "ParentImageID", "OutputDir"}

// Run is the flow of one build: store, work dir (and recovery of a killed
// earlier build), output dir, the image root, mounts, provisioning,
// teardown, export, boot check. Each step's Cleanup undoes exactly what its Run did.
func (b *Builder) Run(ctx context.Context, ui packersdk.Ui, hook packersdk.Hook) (packersdk.Artifact, error) {
	cfg := &b.config
	mount.CloseOnExecInherited()
	state := new(multistep.BasicStateBag)
	build := &buildState{cfg: cfg, host: cfg.host}
	state.Put(stateBuild, build)
	state.Put(stateHook, hook)
	state.Put(stateUI, ui)

	var source multistep.Step = &stepExtractArchive{}
	switch {
	case cfg.Bootstrap != nil:
		source = &stepBootstrap{}
	case cfg.Parent != "":
		source = nopStep{} // the overlay of the parent's layers is the source
	}
	steps := []multistep.Step{
		&stepStore{},
		&stepArch{},
		&stepWorkDir{},
		&stepOutputDir{},
		&stepPackageCache{},
		&stepRootfs{},
		source,
		&stepHostCommands{option: "pre_mount_commands", commands: func(c *Config) []string { return c.PreMountCommands }},
		&stepMount{},
		&stepHostCommands{option: "post_mount_commands", commands: func(c *Config) []string { return c.PostMountCommands }},
		&stepResolvConf{},
		&stepAptCache{},
		&stepAptIndexes{},
		&stepPolicyRcD{},
		&stepCommunicator{},
		&stepProvision{},
		&stepRemovePackages{},
		&stepHostCommands{option: "pre_unmount_commands", commands: func(c *Config) []string { return c.PreUnmountCommands }},
		&stepEarlyCleanup{},
		&stepMinimize{},
		&stepCheckContents{},
		&stepCommit{},
		&stepImageView{},
		&stepExport{},
		&stepBootCheck{},
	}
	times := new(stepTimes)
	b.runner = newRunner(timeSteps(steps, times), cfg.PackerConfig, ui)
	b.runner.Run(ctx, state)
	ui.Say(times.String())

	if err, ok := state.GetOk(stateError); ok {
		if keptForDebugging(cfg, state) && build.mountPath != "" {
			ui.Error(fmt.Sprintf("-on-error=%s: the chroot stays mounted at %s for debugging. "+
				"The next build with work_dir %s cleans it up.", cfg.PackerOnError, cfg.MountPath, cfg.WorkDir))
		}
		return nil, err.(error)
	}
	if _, ok := state.GetOk(multistep.StateCancelled); ok {
		return nil, errors.New("build was cancelled")
	}
	if _, ok := state.GetOk(multistep.StateHalted); ok {
		return nil, errors.New("build was halted")
	}
	if build.artifact == nil {
		return nil, errors.New("build produced no artifact")
	}
	return build.artifact, nil
}

// nopStep stands where a build has nothing to do.
type nopStep struct{}

func (nopStep) Run(context.Context, multistep.StateBag) multistep.StepAction {
	return multistep.ActionContinue
}
func (nopStep) Cleanup(multistep.StateBag) {}

// halt records err for Packer and stops the build.
func halt(state multistep.StateBag, err error) multistep.StepAction {
	state.Put(stateError, err)
	uiOf(state).Error(err.Error())
	return multistep.ActionHalt
}
