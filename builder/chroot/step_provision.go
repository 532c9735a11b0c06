package chroot

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// stepProvision runs the template's provisioners in the chroot (Packer's
// provision hook) and, when one of them failed, the template's
// error-cleanup-provisioner. It is the builder's own rather than the SDK's
// commonsteps.StepProvision: that package also holds the SDK's download
// step, whose S3 and GCS getters (the AWS SDK, gRPC, Google's storage
// client) cost every start of the plugin tens of milliseconds of package
// initialisation, and Packer starts the plugin five times a build.
type stepProvision struct {
	// failed is set when a provisioner failed: only then does the
	// error-cleanup-provisioner run (a later step's failure is not
	// provisioning's, and by then the chroot is torn down).
	failed bool
}

// Values of the build.* variables the chroot does not have. The names and
// values are the ones Packer's other builders give, so templates written
// for them read the same.
const (
	idNotImplemented       = "ERR_ID_NOT_IMPLEMENTED_BY_BUILDER"
	httpIPNotImplemented   = "ERR_HTTP_IP_NOT_IMPLEMENTED_BY_BUILDER"
	httpPortNotImplemented = "ERR_HTTP_PORT_NOT_IMPLEMENTED_BY_BUILDER"
	httpAddrNotImplemented = "ERR_HTTP_ADDR_NOT_IMPLEMENTED_BY_BUILDER"
)

func (s *stepProvision) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	action, failed := runProvisionHook(ctx, state, packersdk.HookProvision)
	s.failed = failed
	return action
}

// Cleanup runs the error-cleanup-provisioner after a provisioner failed
// (Packer gives the hook nothing to run when the template has none). An
// interrupted build does not run it, as with Packer's other builders.
func (s *stepProvision) Cleanup(state multistep.StateBag) {
	if s.failed {
		runProvisionHook(context.Background(), state, packersdk.HookCleanupProvision)
	}
}

// provisionHookData is what the provisioners see as build.*: the builder's
// own variables (stepCommunicator put them in the state) and the ones every
// Packer builder provides, set to Packer's "not implemented" values where a
// chroot has nothing to give (no instance, no HTTP server, no SSH).
func provisionHookData(state multistep.StateBag) map[string]interface{} {
	data := map[string]interface{}{}
	if d, ok := state.GetOk(stateGeneratedData); ok {
		for k, v := range d.(map[string]interface{}) {
			data[k] = v
		}
	}
	data["ID"] = idNotImplemented
	data["PackerRunUUID"] = os.Getenv("PACKER_RUN_UUID")
	data["PackerHTTPIP"] = httpIPNotImplemented
	data["PackerHTTPPort"] = httpPortNotImplemented
	data["PackerHTTPAddr"] = httpAddrNotImplemented
	return data
}

// runProvisionHook runs the hook of the given type; failed says the hook
// itself failed (not the build being cancelled). The hook runs in a
// goroutine so that a cancelled build stops waiting for it (the hook's
// own context is cancelled too; Packer stops the provisioner).
func runProvisionHook(ctx context.Context, state multistep.StateBag, hookType string) (action multistep.StepAction, failed bool) {
	hook := state.Get(stateHook).(packersdk.Hook)
	ui := uiOf(state)
	comm, _ := state.Get(stateCommunicator).(packersdk.Communicator)
	data := provisionHookData(state)
	// Post-processors read the same variables.
	state.Put(stateGeneratedData, data)

	if hookType == packersdk.HookCleanupProvision {
		ui.Say("Provisioning failed: running the error-cleanup-provisioner, if the template has one...")
	}
	done := make(chan error, 1)
	go func() { done <- hook.Run(ctx, hookType, ui, comm, data) }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if err == nil {
				return multistep.ActionContinue, false
			}
			if hookType == packersdk.HookCleanupProvision {
				// The build's own error stays first.
				orig, _ := state.Get(stateError).(error)
				err = fmt.Errorf("error-cleanup-provisioner: %w (the build had failed: %v)", err, orig)
			}
			state.Put(stateError, err)
			return multistep.ActionHalt, true
		case <-ctx.Done():
			log.Printf("provisioning stopped: %v", ctx.Err())
			// Said now, not when the runner's watcher gets to it: the
			// cleanups that follow (-on-error's among them) read it.
			state.Put(multistep.StateCancelled, true)
			return multistep.ActionHalt, false
		case <-tick.C:
			if _, cancelled := state.GetOk(multistep.StateCancelled); cancelled {
				log.Printf("provisioning stopped: the build was cancelled")
				return multistep.ActionHalt, false
			}
		}
	}
}
