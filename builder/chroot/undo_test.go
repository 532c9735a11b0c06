package chroot

import (
	"errors"
	"testing"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// TestUndoRetriedAfterFailure: an undo that failed during the early
// teardown runs again from Cleanup; one that succeeded never runs twice.
func TestUndoRetriedAfterFailure(t *testing.T) {
	state := new(multistep.BasicStateBag)
	ui := packersdk.TestUi(t)
	state.Put(stateUI, ui)
	b := &buildState{}
	state.Put(stateBuild, b)
	calls, fail := 0, true
	u := b.pushUndo("flaky", func(packersdk.Ui) error {
		calls++
		if fail {
			return errors.New("busy")
		}
		return nil
	})
	if b.runUndos(ui) == nil {
		t.Fatal("the failing undo was not reported")
	}
	fail = false
	cleanupUndo(state, u)
	cleanupUndo(state, u)
	if calls != 2 || !u.done {
		t.Fatalf("calls %d done %v: want one failed try, one retry, then nothing", calls, u.done)
	}
}
