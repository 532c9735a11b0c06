package chroot

import (
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// undo is what a step must take back: its Cleanup runs it, and so does
// stepEarlyCleanup, which must tear the chroot down before the export. It
// runs at most once.
type undo struct {
	name string
	fn   func(ui packersdk.Ui) error
	done bool
}

func (u *undo) run(ui packersdk.Ui) error {
	if u == nil || u.done {
		return nil
	}
	u.done = true
	return u.fn(ui)
}

const stateUndos = "strata_undos"

// pushUndo records an undo in the state bag, in the order steps ran.
func pushUndo(state multistep.StateBag, name string, fn func(ui packersdk.Ui) error) *undo {
	u := &undo{name: name, fn: fn}
	list, _ := state.GetOk(stateUndos)
	undos, _ := list.([]*undo)
	state.Put(stateUndos, append(undos, u))
	return u
}

func undosOf(state multistep.StateBag) []*undo {
	list, _ := state.GetOk(stateUndos)
	undos, _ := list.([]*undo)
	return undos
}
