package chroot

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
)

// TestStepRootfsMountsAndCleanupUnmounts: the image root is bound at
// mount_path (the upper dir its source), recorded in the ledger and held
// open; Cleanup stops the chroot's processes, closes the root and unmounts.
func TestStepRootfsMountsAndCleanupUnmounts(t *testing.T) {
	s := newStepTest(t, nil).withLedger()
	step := &stepRootfs{}
	if a := s.run(step); a != multistep.ActionContinue {
		t.Fatal(s.err())
	}
	s.wantCalls("mount bind " + s.mp)
	b := s.b
	if b.root == nil || b.mountPath != s.mp || b.rootfs == nil || b.rootfs.rec == nil {
		t.Fatalf("state after Run: root %v mountPath %q rootfs %+v", b.root, b.mountPath, b.rootfs)
	}
	if b.rootfs.upper != filepath.Join(b.cfg.WorkDir, upperDirName) || b.rootfs.parent != nil {
		t.Fatalf("rootfs %+v", b.rootfs)
	}
	if st := b.ledger.State(); st.MountPath != s.mp || len(st.Mounts) != 1 || st.Mounts[0].ID == 0 {
		t.Fatalf("ledger %+v", st)
	}
	step.Cleanup(s.state)
	s.wantCalls("kill "+s.mp, "unmount "+s.mp)
	if b.root != nil || b.rootfs.rec != nil || len(b.ledger.State().Mounts) != 0 {
		t.Fatalf("after Cleanup: root %v rec %v ledger %+v", b.root, b.rootfs.rec, b.ledger.State())
	}
	step.Cleanup(s.state)
	s.wantCalls() // a second Cleanup has nothing left to do
}

// TestStepRootfsMountFails: a failed mount halts the build with nothing
// held, nothing in the ledger, and nothing for Cleanup to unmount.
func TestStepRootfsMountFails(t *testing.T) {
	s := newStepTest(t, nil).withLedger()
	s.host.fail["mount bind "+s.mp] = errInjected
	step := &stepRootfs{}
	if a := s.run(step); a != multistep.ActionHalt {
		t.Fatal("a failed mount did not halt")
	}
	if s.b.root != nil || s.b.mountPath != "" || len(s.b.ledger.State().Mounts) != 0 {
		t.Fatalf("after a failed mount: root %v mountPath %q ledger %+v", s.b.root, s.b.mountPath, s.b.ledger.State())
	}
	s.host.calls = nil
	step.Cleanup(s.state)
	s.wantCalls()
	if _, err := os.Stat(filepath.Join(s.b.cfg.WorkDir, upperDirName)); err != nil {
		t.Fatalf("the upper dir stays for stepWorkDir's Cleanup: %v", err)
	}
}

// TestStepRootfsOnParent: a child's root is an overlay of its parent's
// layers (checked, and held against gc for the build) with the new upper
// dir on top; Cleanup unmounts it and lets the hold go.
func TestStepRootfsOnParent(t *testing.T) {
	s := newStepTest(t, nil)
	s.committed().Cleanup(s.state) // the parent build is done: its holds go
	parent := s.b.image
	s.b.cfg.parentID = parent.ID
	s.b.rootfs, s.b.mountPath = nil, ""
	os.RemoveAll(filepath.Join(s.b.cfg.WorkDir, upperDirName))
	s.host.calls = nil
	step := &stepRootfs{}
	if s.run(step) != multistep.ActionContinue {
		t.Fatal(s.err())
	}
	s.wantCalls("mount overlay " + s.mp)
	if s.b.rootfs.parent == nil || s.b.rootfs.parent.ID != parent.ID || len(s.b.rootfs.lowers) != 1 || step.release == nil {
		t.Fatalf("rootfs %+v, held %v", s.b.rootfs, step.release != nil)
	}
	opts := s.host.mounts[0].Options
	if !strings.Contains(opts, "lowerdir="+s.b.rootfs.lowers[0]) || !strings.Contains(opts, "upperdir="+s.b.rootfs.upper) {
		t.Fatalf("overlay options %q", opts)
	}
	step.Cleanup(s.state)
	s.wantCalls("kill "+s.mp, "unmount "+s.mp)
	// Released: the parent can go now.
	if err := s.b.layers.RemoveImage(parent.ID); err != nil {
		t.Fatalf("the parent is still held: %v", err)
	}
}
