package chroot

import (
	"errors"
	"slices"
	"testing"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// chrootMounts are the calls stepMount makes, in its order.
func chrootMounts(mp string) []string {
	return []string{
		"mount proc " + mp + "/proc", "mount sysfs " + mp + "/sys", "mount bind " + mp + "/dev",
		"mount devpts " + mp + "/dev/pts", "mount bind " + mp + "/dev/ptmx",
		"mount tmpfs " + mp + "/dev/shm", "mount tmpfs " + mp + "/run",
	}
}

// chrootUnmounts are the calls of the chroot's teardown: its processes
// stopped, the mounts unmounted children first, latest first.
func chrootUnmounts(mp string) []string {
	return []string{
		"kill " + mp,
		"unmount " + mp + "/dev/shm", "unmount " + mp + "/dev/ptmx", "unmount " + mp + "/dev/pts",
		"unmount " + mp + "/run", "unmount " + mp + "/dev", "unmount " + mp + "/sys", "unmount " + mp + "/proc",
	}
}

// TestStepMountOrderAndTeardown: the chroot's file systems are mounted in
// order, each recorded in the ledger; the undo (run at a halt by Cleanup)
// unmounts them children first, removes the mount points it created and
// leaves the image as it was, then the root itself goes.
func TestStepMountOrderAndTeardown(t *testing.T) {
	s := newStepTest(t, nil)
	s.mounted()
	if s.runAll(&stepMount{}, haltStep{}) != true {
		t.Fatal("the build did not halt")
	}
	want := append(chrootMounts(s.mp), chrootUnmounts(s.mp)...)
	s.wantCalls(want...)
	if got := entries(t, s.mp); !slices.Equal(got, []string{"etc"}) {
		t.Fatalf("the image has %v after the teardown, want only its own etc", got)
	}
	if len(s.b.undos) != 1 || !s.b.undos[0].done {
		t.Fatalf("undos %+v: want the mounts' undo, done", s.b.undos)
	}
	if ms := s.b.ledger.State().Mounts; len(ms) != 1 || ms[0].Target != s.mp {
		t.Fatalf("the ledger keeps %+v, want only the image root", ms)
	}
}

// TestStepMountHaltsMidway: a mount that fails halts the build; Cleanup
// unmounts only what was mounted before it, and removes the mount points
// made for it too.
func TestStepMountHaltsMidway(t *testing.T) {
	s := newStepTest(t, nil)
	s.mounted()
	s.host.fail["mount bind "+s.mp+"/dev"] = errInjected
	if !s.runAll(&stepMount{}) {
		t.Fatal("a failed mount did not halt")
	}
	s.wantCalls("mount proc "+s.mp+"/proc", "mount sysfs "+s.mp+"/sys", "mount bind "+s.mp+"/dev",
		"kill "+s.mp, "unmount "+s.mp+"/sys", "unmount "+s.mp+"/proc")
	if got := entries(t, s.mp); !slices.Equal(got, []string{"etc"}) {
		t.Fatalf("the image has %v after the teardown, want only its own etc", got)
	}
}

// TestStepMountUndoDoneOnlyAfterSuccess: an unmount that fails leaves the
// undo not done, so that the step's Cleanup tries the teardown again; once
// it succeeded it never runs again.
func TestStepMountUndoDoneOnlyAfterSuccess(t *testing.T) {
	s := newStepTest(t, nil)
	s.mounted()
	step := &stepMount{}
	if a := s.run(step); a != multistep.ActionContinue {
		t.Fatal(s.err())
	}
	s.host.calls = nil
	s.host.fail["unmount "+s.mp+"/run"] = errors.New("busy")
	if s.run(&stepEarlyCleanup{}) != multistep.ActionHalt {
		t.Fatal("a failed teardown did not halt")
	}
	if step.undo.done {
		t.Fatal("the undo is done though its unmount failed")
	}
	s.host.calls = nil
	step.Cleanup(s.state)
	if !step.undo.done {
		t.Fatalf("the retried teardown did not finish: %v", s.host.calls)
	}
	if len(s.host.mounts) != 1 {
		t.Fatalf("still mounted: %+v", s.host.mounts)
	}
	s.host.calls = nil
	step.Cleanup(s.state)
	s.wantCalls()
}

// TestStepMountUnmountsWhatTheChrootMounted: a mount that appeared in the
// chroot (a provisioner's) is taken down by the undo too.
func TestStepMountUnmountsWhatTheChrootMounted(t *testing.T) {
	s := newStepTest(t, nil)
	s.mounted()
	step := &stepMount{}
	if a := s.run(step); a != multistep.ActionContinue {
		t.Fatal(s.err())
	}
	// A provisioner mounted a tmpfs in the chroot.
	if err := s.host.Mount(mountSpec("tmpfs", s.mp+"/mnt")); err != nil {
		t.Fatal(err)
	}
	s.host.calls = nil
	if err := step.undo.run(packersdk.TestUi(t)); err != nil {
		t.Fatal(err)
	}
	want := append(chrootUnmounts(s.mp), "unmount "+s.mp+"/mnt")
	s.wantCalls(want...)
}

// TestStepEarlyCleanupOrder: the chroot's processes are stopped first, then
// the undos run latest first; the first that fails halts the build and
// stays not done, and those before it in the list do not run.
func TestStepEarlyCleanupOrder(t *testing.T) {
	s := newStepTest(t, nil)
	s.mounted()
	var order []string
	failResolv := true
	for _, name := range []string{"mounts", "resolv.conf", "policy-rc.d"} {
		s.b.pushUndo(name, func(packersdk.Ui) error {
			order = append(order, name)
			if name == "resolv.conf" && failResolv {
				return errInjected
			}
			return nil
		})
	}
	if s.run(&stepEarlyCleanup{}) != multistep.ActionHalt {
		t.Fatal("a failed undo did not halt")
	}
	s.wantCalls("kill " + s.mp)
	if !slices.Equal(order, []string{"policy-rc.d", "resolv.conf"}) || s.b.undos[1].done || !s.b.undos[2].done || s.b.undos[0].done {
		t.Fatalf("ran %v; done %v %v %v", order, s.b.undos[0].done, s.b.undos[1].done, s.b.undos[2].done)
	}
	failResolv = false
	order = nil
	if s.run(&stepEarlyCleanup{}) != multistep.ActionContinue {
		t.Fatal(s.err())
	}
	if !slices.Equal(order, []string{"resolv.conf", "mounts"}) {
		t.Fatalf("the second teardown ran %v, want the two not done", order)
	}
}
