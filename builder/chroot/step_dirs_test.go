package chroot

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/strata-build/packer-plugin-strata/internal/mount"
)

// TestStepStoreOpensTheStore: the store root is made closed to other users
// and the layer store opened into the build state.
func TestStepStoreOpensTheStore(t *testing.T) {
	s := newStepTest(t, nil)
	if a := s.run(&stepStore{}); a != multistep.ActionContinue {
		t.Fatal(s.err())
	}
	if s.b.layers == nil {
		t.Fatal("no layer store in the build state")
	}
	for _, d := range []string{s.b.cfg.StoreDir, s.b.cfg.PackageCache.Dir} {
		if fi, err := os.Stat(d); err != nil || fi.Mode().Perm() != 0o700 {
			t.Fatalf("%s: %v %v, want a directory of mode 0700", d, fi, err)
		}
	}
	s.wantCalls()
}

// TestStepStoreChecksTheHostFirst: a host check that fails (an output dir
// there without -force) halts before anything is made.
func TestStepStoreChecksTheHostFirst(t *testing.T) {
	s := newStepTest(t, nil)
	os.MkdirAll(s.b.cfg.OutputDir, 0o755)
	if s.run(&stepStore{}) != multistep.ActionHalt || !strings.Contains(s.err(), "-force") {
		t.Fatalf("want a halt naming -force, have %q", s.err())
	}
	if _, err := os.Stat(s.b.cfg.StoreDir); !os.IsNotExist(err) || s.b.layers != nil {
		t.Fatalf("the store was made (%v) or opened (%v)", err, s.b.layers)
	}
}

// TestStepWorkDirRecoversAndCleansUp: the work dir is locked, what an
// earlier build's ledger lists is undone (through the host), a fresh
// ledger is set; Cleanup removes the build's trees and the ledger, and
// lets the lock go.
func TestStepWorkDirRecoversAndCleansUp(t *testing.T) {
	s := newStepTest(t, nil).withLedger()
	work := s.b.cfg.WorkDir
	// The earlier build mounted its root and was killed.
	prior := s.b.ledger
	prior.SetMountPath(s.mp)
	os.MkdirAll(s.mp, 0o755)
	if _, err := s.host.MountRecorded(prior, mountSpec("bind", s.mp)); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(work, workMarker), nil, 0o600)
	s.b.ledger = nil
	s.host.calls = nil

	step := &stepWorkDir{}
	if a := s.run(step); a != multistep.ActionContinue {
		t.Fatal(s.err())
	}
	s.wantCalls("recover", "unmount "+s.mp)
	if s.b.ledger == nil || len(s.b.ledger.State().Mounts) != 0 {
		t.Fatalf("want a fresh ledger, have %+v", s.b.ledger)
	}
	if again := (&stepWorkDir{}); s.run(again) != multistep.ActionHalt || !strings.Contains(s.err(), "in use by another running build") {
		t.Fatalf("a second build took the locked work dir: %q", s.err())
	}
	os.MkdirAll(filepath.Join(work, upperDirName, "etc"), 0o755)
	os.MkdirAll(filepath.Join(s.mp, "etc"), 0o755)
	step.Cleanup(s.state)
	if got := entries(t, work); !slices.Equal(got, []string{".lock", workMarker}) {
		t.Fatalf("the work dir keeps %v after Cleanup", got)
	}
	if st, _ := mount.ReadLedger(work); st != nil {
		t.Fatalf("the ledger stayed: %+v", st)
	}
	if s.run(&stepWorkDir{}) != multistep.ActionContinue {
		t.Fatalf("the lock was not let go: %s", s.err())
	}
}

// TestStepWorkDirKeepsLedgerWhileMounted: a mount of the build's still
// there at Cleanup keeps the ledger (the next build undoes it) and every
// tree under the work dir.
func TestStepWorkDirKeepsLedgerWhileMounted(t *testing.T) {
	s := newStepTest(t, nil)
	step := &stepWorkDir{}
	if a := s.run(step); a != multistep.ActionContinue {
		t.Fatal(s.err())
	}
	s.b.ledger.SetMountPath(s.mp)
	os.MkdirAll(filepath.Join(s.mp, "etc"), 0o755)
	if _, err := s.host.MountRecorded(s.b.ledger, mountSpec("bind", s.mp)); err != nil {
		t.Fatal(err)
	}
	step.Cleanup(s.state)
	if st, _ := mount.ReadLedger(s.b.cfg.WorkDir); st == nil || len(st.Mounts) != 1 {
		t.Fatalf("the ledger was not kept: %+v", st)
	}
	if got := entries(t, s.mp); !slices.Equal(got, []string{"etc"}) {
		t.Fatalf("the mounted root was emptied: %v", got)
	}
}

// TestStepOutputDirMadeAndRemovedOnHalt: the output dir is made for the
// build; a failed build removes it, a finished one keeps it.
func TestStepOutputDirMadeAndRemovedOnHalt(t *testing.T) {
	for _, fail := range []bool{false, true} {
		s := newStepTest(t, func(raw map[string]interface{}) { raw["formats"] = []string{"dir"} })
		steps := []multistep.Step{&stepOutputDir{}}
		if fail {
			steps = append(steps, haltStep{})
		}
		if s.runAll(steps...) != fail {
			t.Fatalf("halted: %q", s.err())
		}
		fi, err := os.Stat(s.b.cfg.OutputDir)
		if fail && !os.IsNotExist(err) {
			t.Fatalf("a failed build left its output dir: %v", err)
		}
		if !fail && (err != nil || fi.Mode().Perm() != 0o700) {
			t.Fatalf("output dir %v %v: want mode 0700 (a dir output holds the image's /tmp)", fi, err)
		}
	}
}

// TestStepOutputDirOfAnotherBuildLeftAlone: an existing output dir without
// -force halts, and Cleanup leaves it and its content.
func TestStepOutputDirOfAnotherBuildLeftAlone(t *testing.T) {
	s := newStepTest(t, nil)
	os.MkdirAll(s.b.cfg.OutputDir, 0o755)
	os.WriteFile(filepath.Join(s.b.cfg.OutputDir, "keep"), []byte("x"), 0o644)
	if !s.runAll(&stepOutputDir{}) || !strings.Contains(s.err(), "-force") {
		t.Fatalf("want a halt naming -force, have %q", s.err())
	}
	if got := entries(t, s.b.cfg.OutputDir); !slices.Equal(got, []string{"keep"}) {
		t.Fatalf("the other build's output dir has %v", got)
	}
}
