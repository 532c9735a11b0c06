package chroot

import (
	"fmt"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// undo is what a step must take back: its Cleanup runs it, and so does
// earlyCleanup, which tears the chroot down before the commit. It is
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

// pushUndo records an undo in the build state, in the order steps ran.
func (b *buildState) pushUndo(name string, fn func(ui packersdk.Ui) error) *undo {
	u := &undo{name: name, fn: fn}
	b.undos = append(b.undos, u)
	return u
}

// runUndos runs every undo, latest first, stopping at the first that
// fails (its step's Cleanup tries it again).
func (b *buildState) runUndos(ui packersdk.Ui) error {
	for i := len(b.undos) - 1; i >= 0; i-- {
		if err := b.undos[i].run(ui); err != nil {
			return fmt.Errorf("tearing down %s: %w", b.undos[i].name, err)
		}
	}
	return nil
}

// cleanupUndo is the Cleanup of a step whose whole undo is u.
func cleanupUndo(state multistep.StateBag, u *undo) {
	ui := uiOf(state)
	if err := u.run(ui); err != nil {
		ui.Error(err.Error())
	}
}
