package chroot

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// The provisioners see the builder's build.* variables and the ones every
// Packer builder gives, with Packer's values for what a chroot lacks; the
// post-processors see the same.
func TestStepProvisionHookData(t *testing.T) {
	t.Setenv("PACKER_RUN_UUID", "run-1")
	state := new(multistep.BasicStateBag)
	hook := &recordingHook{}
	state.Put(stateUI, packersdk.TestUi(t))
	state.Put(stateHook, hook)
	state.Put(stateGeneratedData, map[string]interface{}{"MountPath": "/mnt/x", "WorkDir": "/work"})
	step := &stepProvision{}
	if a := step.Run(context.Background(), state); a != multistep.ActionContinue {
		t.Fatalf("action %v", a)
	}
	step.Cleanup(state)
	if got := hook.runs(); len(got) != 1 || got[0] != packersdk.HookProvision {
		t.Fatalf("hooks %q: a build without error runs only the provision hook", got)
	}
	want := map[string]interface{}{
		"MountPath": "/mnt/x", "WorkDir": "/work", "PackerRunUUID": "run-1",
		"ID": idNotImplemented, "PackerHTTPIP": httpIPNotImplemented,
		"PackerHTTPPort": httpPortNotImplemented, "PackerHTTPAddr": httpAddrNotImplemented,
	}
	for k, v := range want {
		if hook.data[k] != v {
			t.Errorf("build.%s is %v, want %v", k, hook.data[k], v)
		}
	}
	if len(hook.data) != len(want) {
		t.Errorf("hook data %v, want %v", hook.data, want)
	}
	if gd := state.Get(stateGeneratedData).(map[string]interface{}); gd["PackerRunUUID"] != "run-1" || gd["MountPath"] != "/mnt/x" {
		t.Errorf("the post-processors' variables: %v", gd)
	}
}

// A failing error-cleanup-provisioner does not hide the build's own error.
func TestStepProvisionCleanupFails(t *testing.T) {
	state := new(multistep.BasicStateBag)
	state.Put(stateUI, packersdk.TestUi(t))
	state.Put(stateHook, failingHook{})
	step := &stepProvision{}
	if a := step.Run(context.Background(), state); a != multistep.ActionHalt {
		t.Fatalf("action %v, want halt", a)
	}
	step.Cleanup(state)
	err, _ := state.Get(stateError).(error)
	if err == nil || !strings.Contains(err.Error(), "error-cleanup-provisioner: cleanup broke") ||
		!strings.Contains(err.Error(), "the build had failed: shell broke") {
		t.Errorf("error %v", err)
	}
}

type failingHook struct{}

func (failingHook) Run(_ context.Context, typ string, _ packersdk.Ui, _ packersdk.Communicator, _ interface{}) error {
	if typ == packersdk.HookCleanupProvision {
		return errors.New("cleanup broke")
	}
	return errors.New("shell broke")
}
