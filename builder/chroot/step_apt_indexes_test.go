package chroot

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
)

// aptIndexesTest is a build with the package cache on (offline: no
// upstream) and the image root mounted, ready for stepAptIndexes.
func aptIndexesTest(t *testing.T) (*stepTest, *stepPackageCache) {
	s, cache := withPackageCache(t)
	t.Cleanup(func() { cache.Cleanup(s.state) })
	s.mounted()
	if s.run(&stepAptCache{}) != multistep.ActionContinue { // makes the build's /run/strata
		t.Fatal(s.err())
	}
	return s, cache
}

// TestStepAptIndexes: the build gets overlays at apt's lists and cache dirs
// (lower: an empty dir while no shared copy exists), recorded in the
// ledger, and a note for strata-packages on its /run; the undo takes both
// down, the deeper first, removes the mount points it made and its dirs in the
// work dir, and is done only then.
func TestStepAptIndexes(t *testing.T) {
	if asImageRoot(t) {
		return
	}
	s, _ := aptIndexesTest(t)
	lists, cache := filepath.Join(s.mp, aptListsDir), filepath.Join(s.mp, aptCacheDirPath)
	step := &stepAptIndexes{}
	if s.run(step) != multistep.ActionContinue {
		t.Fatal(s.err())
	}
	s.wantCalls("mount overlay "+lists, "mount overlay "+cache)
	if ms := s.b.ledger.State().Mounts; len(ms) != 3 || ms[1].Target != lists || ms[2].Target != cache {
		t.Fatalf("the ledger has %+v, want the root and the two overlays", ms)
	}
	var info aptIndexesInfoFile
	b, err := os.ReadFile(filepath.Join(s.mp, aptIndexesInfo))
	if err != nil || json.Unmarshal(b, &info) != nil {
		t.Fatalf("no note for strata-packages: %v %s", err, b)
	}
	if info.Shared || !info.Pinned {
		t.Fatalf("note %+v: want no shared copy yet, pinned (offline)", info)
	}
	if len(s.b.undos) != 1 {
		t.Fatalf("undos %+v, want the indexes' one", s.b.undos)
	}
	step.Cleanup(s.state)
	s.wantCalls("unmount "+lists, "unmount "+cache) // the deeper first
	if !s.b.undos[0].done {
		t.Fatal("the undo is not done after it succeeded")
	}
	if _, err := os.Stat(filepath.Join(s.b.cfg.WorkDir, "apt-indexes")); !os.IsNotExist(err) {
		t.Fatalf("the work dir keeps apt-indexes: %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.mp, "var")); !os.IsNotExist(err) {
		t.Fatalf("the mount points the step made stayed in the image: %v", err)
	}
	if ms := s.b.ledger.State().Mounts; len(ms) != 1 {
		t.Fatalf("the ledger keeps %+v, want only the image root", ms)
	}
	step.Cleanup(s.state) // done: nothing more
	s.wantCalls()
}

// TestStepAptIndexesHaltsMidway: when the second overlay fails, the build
// halts, and Cleanup takes down only the first; an unmount that fails
// leaves the undo to be tried again.
func TestStepAptIndexesHaltsMidway(t *testing.T) {
	if asImageRoot(t) {
		return
	}
	s, _ := aptIndexesTest(t)
	lists, cache := filepath.Join(s.mp, aptListsDir), filepath.Join(s.mp, aptCacheDirPath)
	s.host.fail["mount overlay "+cache] = errInjected
	s.host.fail["unmount "+lists] = errInjected
	step := &stepAptIndexes{}
	if !s.runAll(step) {
		t.Fatal("the build did not halt")
	}
	s.wantCalls("mount overlay "+lists, "mount overlay "+cache, "unmount "+lists)
	if s.b.undos[0].done {
		t.Fatal("the undo is done although its unmount failed")
	}
	step.Cleanup(s.state)
	s.wantCalls("unmount " + lists)
	if !s.b.undos[0].done {
		t.Fatal("the undo is not done after it succeeded")
	}
	if got := entries(t, s.mp); !slices.Equal(got, []string{"etc", "run"}) {
		t.Fatalf("the image has %v, want only its own etc and the build's run", got)
	}
}

// TestStepAptIndexesWithoutCache: without the package cache nothing
// vouches for shared lists; the step does nothing.
func TestStepAptIndexesWithoutCache(t *testing.T) {
	s := newStepTest(t, nil)
	s.mounted()
	if s.run(&stepAptIndexes{}) != multistep.ActionContinue || len(s.b.undos) != 0 {
		t.Fatalf("without the cache: %q, undos %v", s.err(), s.b.undos)
	}
	s.wantCalls()
}

// The parent's binary caches are kept for all its children, so only a tree
// nothing of the template touched before this step makes them.
func TestTreeChangedBeforeIndexes(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, ""},
		{Config{PreMountCommands: []string{"true"}}, "pre_mount_commands"},
		{Config{PostMountCommands: []string{"touch {{.MountPath}}/etc/apt/apt.conf.d/x"}}, "post_mount_commands"},
		{Config{ChrootMounts: []MountConfig{{Type: "bind", Source: "/srv/apt", Target: "/etc/apt"}}}, "chroot_mounts"},
	} {
		got := treeChangedBeforeIndexes(&c.cfg)
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("%+v: %q, want %q", c.cfg, got, c.want)
		}
	}
}
