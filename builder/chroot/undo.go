package chroot

import (
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// undo is what a step must take back: its Cleanup runs it, and so does
// stepEarlyCleanup, which tears the chroot down before the export. It is
// marked done only once it succeeded, so a teardown that failed early is
// tried again by Cleanup.
type undo struct {
	name string
	fn   func(ui packersdk.Ui) error
	done bool
}

func (u *undo) run(ui packersdk.Ui) error {
	if u == nil || u.done {
		return nil
	}
	if err := u.fn(ui); err != nil {
		return err
	}
	u.done = true
	return nil
}

// pushUndo records an undo in the state bag, in the order steps ran.
func pushUndo(state multistep.StateBag, name string, fn func(ui packersdk.Ui) error) *undo {
	u := &undo{name: name, fn: fn}
	state.Put(stateUndos, append(undosOf(state), u))
	return u
}

func undosOf(state multistep.StateBag) []*undo {
	list, _ := state.GetOk(stateUndos)
	undos, _ := list.([]*undo)
	return undos
}

// cleanupUndo is the Cleanup of a step whose whole undo is u.
func cleanupUndo(state multistep.StateBag, u *undo) {
	ui := uiOf(state)
	if err := u.run(ui); err != nil {
		ui.Error(err.Error())
	}
}
