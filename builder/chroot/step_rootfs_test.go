package chroot

import (
	"context"
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
	if b.root != nil || b.rootfs.rec != nil || b.mountPath != "" || len(b.ledger.State().Mounts) != 0 {
		t.Fatalf("after Cleanup: root %v rec %v mountPath %q ledger %+v", b.root, b.rootfs.rec, b.mountPath, b.ledger.State())
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
	if err := s.b.rootfs.check.wait(context.Background(), uiOf(s.state)); err != nil {
		t.Fatalf("the parent's check: %v", err)
	}
	opts := s.host.mounts[0].Options
	if !strings.Contains(opts, "lowerdir="+s.b.rootfs.lowers[0]) || !strings.Contains(opts, "upperdir="+s.b.rootfs.upper) {
		t.Fatalf("overlay options %q", opts)
	}
	// Volatile: fsync in the chroot and the unmount sync nothing; the
	// commit syncs the layer (layer.Commit).
	if !strings.HasPrefix(opts, "volatile,") {
		t.Errorf("the chroot's overlay is not volatile: %q", opts)
	}
	step.Cleanup(s.state)
	s.wantCalls("kill "+s.mp, "unmount "+s.mp)
	// Released: the parent can go now.
	if err := s.b.layers.RemoveImage(parent.ID); err != nil {
		t.Fatalf("the parent is still held: %v", err)
	}
}

// TestStepRootfsTamperedParent: the parent's layers are checked beside the
// build; one changed in the store after its commit stops the build at the
// commit, before anything of it is stored, naming the layer.
func TestStepRootfsTamperedParent(t *testing.T) {
	s := newStepTest(t, nil)
	s.committed().Cleanup(s.state)
	parent := s.b.image
	l, err := s.b.layers.Layer(parent.Layers[0].DiffID)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(l.Dir, "etc/os-release"), []byte("ID=evil\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.b.cfg.parentID = parent.ID
	s.b.rootfs, s.b.mountPath, s.b.image = nil, "", nil
	os.RemoveAll(filepath.Join(s.b.cfg.WorkDir, upperDirName))
	rootfs := &stepRootfs{}
	if s.run(rootfs) != multistep.ActionContinue {
		t.Fatal(s.err())
	}
	os.WriteFile(filepath.Join(s.b.rootfs.upper, "child"), []byte("x"), 0o644)
	images, _ := s.b.layers.Images()
	commit := &stepCommit{}
	if s.run(commit) != multistep.ActionHalt || !strings.Contains(s.err(), parent.Layers[0].DiffID) {
		t.Fatalf("a child on a tampered parent committed: %s", s.err())
	}
	if after, _ := s.b.layers.Images(); len(after) != len(images) || s.b.image != nil {
		t.Fatalf("stored %d images, had %d", len(after), len(images))
	}
	commit.Cleanup(s.state)
	rootfs.Cleanup(s.state)
	if err := s.b.layers.RemoveImage(parent.ID); err != nil {
		t.Fatalf("the parent is still held: %v", err)
	}
}
