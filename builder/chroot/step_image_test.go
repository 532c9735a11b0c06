package chroot

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	"golang.org/x/sys/unix"
)

// TestStepMinimize: docs leave the image and the dpkg rules that keep later
// installs as slim are installed; with minimize off the tree is untouched.
func TestStepMinimize(t *testing.T) {
	if asImageRoot(t) {
		return
	}
	for _, on := range []bool{true, false} {
		s := newStepTest(t, func(raw map[string]interface{}) {
			raw["minimize"] = map[string]interface{}{"enabled": on}
		})
		s.mounted()
		doc := filepath.Join(s.mp, "usr/share/doc/nano/README")
		os.MkdirAll(filepath.Dir(doc), 0o755)
		os.WriteFile(doc, []byte("read me"), 0o644)
		if s.run(&stepMinimize{}) != multistep.ActionContinue {
			t.Fatal(s.err())
		}
		_, docErr := os.Stat(doc)
		_, rulesErr := os.Stat(filepath.Join(s.mp, dpkgExcludesFile))
		if on && (!os.IsNotExist(docErr) || rulesErr != nil) || !on && (docErr != nil || !os.IsNotExist(rulesErr)) {
			t.Fatalf("minimize %v: doc %v, dpkg rules %v", on, docErr, rulesErr)
		}
		s.wantCalls()
	}
}

// TestStepCheckContents: a setuid file allowed_setuid does not list fails
// the build, naming it and the fix; with strip_setuid its bit is cleared
// instead.
func TestStepCheckContents(t *testing.T) {
	for _, strip := range []bool{false, true} {
		s := newStepTest(t, func(raw map[string]interface{}) { raw["strip_setuid"] = strip })
		s.mounted()
		p := filepath.Join(s.mp, "usr/local/bin/tool")
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755)
		if err := os.Chmod(p, 0o755|os.ModeSetuid); err != nil {
			t.Fatal(err)
		}
		a := s.run(&stepCheckContents{})
		var st unix.Stat_t
		unix.Stat(p, &st)
		if strip {
			if a != multistep.ActionContinue || st.Mode&unix.S_ISUID != 0 {
				t.Fatalf("strip_setuid: %q, mode %o", s.err(), st.Mode)
			}
			continue
		}
		if a != multistep.ActionHalt || !strings.Contains(s.err(), "/usr/local/bin/tool (setuid, in no package") ||
			!strings.Contains(s.err(), `allowed_setuid_extra = ["/usr/local/bin/tool"]`) || st.Mode&unix.S_ISUID == 0 {
			t.Fatalf("want a halt naming the file and the fix, the bit kept: %q, mode %o", s.err(), st.Mode)
		}
	}
}

// committed runs the steps up to the commit on a tree in the upper dir.
func (s *stepTest) committed() *stepCommit {
	s.t.Helper()
	if s.run(&stepStore{}) != multistep.ActionContinue {
		s.t.Fatal(s.err())
	}
	s.mounted()
	upper := s.b.rootfs.upper
	os.MkdirAll(filepath.Join(upper, "etc"), 0o755)
	os.WriteFile(filepath.Join(upper, "etc/os-release"), []byte("ID=test\nVERSION_ID=1\n"), 0o644)
	step := &stepCommit{}
	if s.run(step) != multistep.ActionContinue {
		s.t.Fatal(s.err())
	}
	return step
}

// TestStepCommit: the root is taken down first (its processes, the open
// root, the mount), then the upper dir is committed and the image stored;
// a build that fails afterwards removes both again, a finished one keeps
// them.
func TestStepCommit(t *testing.T) {
	for _, fail := range []bool{false, true} {
		s := newStepTest(t, nil)
		step := s.committed()
		s.wantCalls("kill "+s.mp, "unmount "+s.mp)
		img := s.b.image
		if img == nil || s.b.root != nil || s.b.rootfs.rec != nil || len(img.Layers) != 1 {
			t.Fatalf("after the commit: image %+v, root %v", img, s.b.root)
		}
		if fail {
			s.state.Put(multistep.StateHalted, true)
		}
		step.Cleanup(s.state)
		_, imgErr := s.b.layers.Image(img.ID)
		_, layerErr := s.b.layers.Layer(img.Layers[0].DiffID)
		if fail != (imgErr != nil) || fail != (layerErr != nil) {
			t.Fatalf("failed build %v: image %v, layer %v", fail, imgErr, layerErr)
		}
	}
}

// TestStepCommitUnmountFails: a root that cannot be unmounted halts the
// build before anything is committed.
func TestStepCommitUnmountFails(t *testing.T) {
	s := newStepTest(t, nil)
	if s.run(&stepStore{}) != multistep.ActionContinue {
		t.Fatal(s.err())
	}
	s.mounted()
	s.host.fail["unmount "+s.mp] = errInjected
	step := &stepCommit{}
	if s.run(step) != multistep.ActionHalt || s.b.image != nil {
		t.Fatalf("halted %q, image %v", s.err(), s.b.image)
	}
	if imgs, _ := s.b.layers.Images(); len(imgs) != 0 {
		t.Fatalf("images %v", imgs)
	}
	step.Cleanup(s.state)
}

// TestStepImageViewAndExport: the committed image is mounted read-only for
// the export (the view, not the closed writable root), the export writes
// the outputs and artifact.json and makes the artifact, and Cleanup
// unmounts the view.
func TestStepImageViewAndExport(t *testing.T) {
	s := newStepTest(t, func(raw map[string]interface{}) { raw["formats"] = []string{"tar"} })
	s.committed()
	s.host.calls = nil
	if s.run(&stepOutputDir{}) != multistep.ActionContinue {
		t.Fatal(s.err())
	}
	view := &stepImageView{}
	if s.run(view) != multistep.ActionContinue {
		t.Fatal(s.err())
	}
	s.wantCalls("mount view " + s.mp)
	if s.b.view == nil || s.b.root != nil {
		t.Fatalf("view %v, writable root %v: want the view alone", s.b.view, s.b.root)
	}
	if s.run(&stepExport{}) != multistep.ActionContinue {
		t.Fatal(s.err())
	}
	a := s.b.artifact
	if a == nil || a.ImageID != s.b.image.ID || len(a.Outputs) != 1 || a.Outputs[0].Format != "tar" {
		t.Fatalf("artifact %+v", a)
	}
	if gd := a.State(stateGeneratedData).(map[string]interface{}); gd["ImageID"] != s.b.image.ID || gd["OutputDir"] != s.b.cfg.OutputDir {
		t.Fatalf("generated data %v", gd)
	}
	if got := entries(t, s.b.cfg.OutputDir); !slices.Contains(got, "artifact.json") || !slices.Contains(got, "rootfs.tar") {
		t.Fatalf("output dir %v", got)
	}
	s.wantCalls()
	view.Cleanup(s.state)
	s.wantCalls("unmount " + s.mp)
	if s.b.view != nil || len(s.host.mounts) != 0 {
		t.Fatalf("after Cleanup: view %v, mounts %+v", s.b.view, s.host.mounts)
	}
}
