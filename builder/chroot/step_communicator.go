package chroot

import (
	"context"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	"github.com/hashicorp/packer-plugin-sdk/packerbuilderdata"
)

// stepCommunicator hands Packer's provisioners the chroot communicator and
// publishes the build's generated data (build.MountPath, build.WorkDir).
//
// Uses cfg, root, cache; puts the communicator and generated data.
type stepCommunicator struct{}

func (s *stepCommunicator) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	b := buildOf(state)
	cfg := b.cfg
	env := cfg.chrootEnv()
	if b.cache != nil {
		env = append(env, "APT_CONFIG="+aptCacheConfig)
	}
	state.Put(stateCommunicator, &Communicator{
		Root:       b.root,
		Wrap:       cfg.wrap,
		Env:        env,
		ChrootProg: cfg.chrootPath,
	})
	data := packerbuilderdata.GeneratedData{State: state}
	data.Put("MountPath", cfg.MountPath)
	data.Put("WorkDir", cfg.WorkDir)
	return multistep.ActionContinue
}

func (s *stepCommunicator) Cleanup(multistep.StateBag) {}
