package mount

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("these tests mount file systems and need root (make test runs as root)")
	}
}

// TestCleanUnderFindsStaleMounts leaves nested mounts behind as a killed
// build would, then checks CleanUnder finds and removes all of them.
func TestCleanUnderFindsStaleMounts(t *testing.T) {
	requireRoot(t)
	work := t.TempDir()
	a := filepath.Join(work, "rootfs", "a")
	b := filepath.Join(a, "nested")
	if err := os.MkdirAll(a, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Mount(Spec{FSType: "tmpfs", Source: "t1", Target: a}); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Mount(Spec{FSType: "tmpfs", Source: "t2", Target: b, Options: "ro,size=1m"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { CleanUnder(work) })
	found, err := Under(work)
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 2 || found[0].MountPoint != b {
		t.Fatalf("Under found %+v, want the nested mount first", found)
	}
	rep, err := CleanUnder(work)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Unmounted) != 2 || len(rep.Lazy) != 0 {
		t.Fatalf("report %+v", rep)
	}
	if err := Verify(work); err != nil {
		t.Fatal(err)
	}
}

// TestBindMountIsPrivate checks that a mount made on top of a bind mount
// does not show up at the bind's source.
func TestBindMountIsPrivate(t *testing.T) {
	requireRoot(t)
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "sub"), 0o755)
	work := t.TempDir()
	dst := filepath.Join(work, "dst")
	os.MkdirAll(dst, 0o755)
	t.Cleanup(func() { CleanUnder(work) })
	if err := Mount(Spec{FSType: "bind", Source: src, Target: dst, Options: "ro"}); err != nil {
		t.Fatal(err)
	}
	if err := Mount(Spec{FSType: "tmpfs", Source: "x", Target: filepath.Join(dst, "sub")}); err != nil {
		t.Fatal(err)
	}
	if ms, _ := Under(src); len(ms) != 0 {
		t.Fatalf("mount propagated to the source: %+v", ms)
	}
	if err := os.WriteFile(filepath.Join(dst, "file"), nil, 0o644); err == nil {
		t.Fatal("ro bind mount is writable")
	}
	if _, err := CleanUnder(work); err != nil {
		t.Fatal(err)
	}
}

func TestUnmountBusyFallsBackToLazy(t *testing.T) {
	requireRoot(t)
	work := t.TempDir()
	target := filepath.Join(work, "m")
	os.MkdirAll(target, 0o755)
	if err := Mount(Spec{FSType: "tmpfs", Source: "busy", Target: target}); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(target, "held"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := Unmount(target, 2, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Lazy || res.Attempts != 2 {
		t.Fatalf("result %+v, want a lazy unmount after 2 tries", res)
	}
	if err := Verify(work); err != nil {
		t.Fatal(err)
	}
}

// makeChroot builds a minimal real chroot from the host's /usr (bind mounted
// read-only) so that host binaries run inside it.
func makeChroot(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "rootfs")
	os.MkdirAll(filepath.Join(root, "usr"), 0o755)
	for _, l := range []string{"bin", "lib", "lib64", "sbin"} {
		if target, err := os.Readlink("/" + l); err == nil {
			os.Symlink(target, filepath.Join(root, l))
		}
	}
	if err := Mount(Spec{FSType: "bind", Source: "/usr", Target: filepath.Join(root, "usr"), Options: "ro"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { CleanUnder(filepath.Dir(root)) })
	return root
}

func TestKillRootedUnderStopsChrootProcesses(t *testing.T) {
	requireRoot(t)
	root := makeChroot(t)
	// One process that obeys TERM and one that ignores it, so both paths run.
	obeys := exec.Command("chroot", root, "/bin/sleep", "1000")
	ignores := exec.Command("chroot", root, "/bin/sh", "-c", "trap '' TERM; while :; do sleep 1; done")
	for _, c := range []*exec.Cmd{obeys, ignores} {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		go c.Wait()
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		pids, _ := RootedUnder(root)
		if len(pids) >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("chroot processes not found: %v", pids)
		}
		time.Sleep(20 * time.Millisecond)
	}
	n, err := KillRootedUnder(filepath.Dir(root), 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if n < 2 {
		t.Fatalf("killed %d, want at least 2", n)
	}
	if left, _ := RootedUnder(root); len(left) != 0 {
		t.Fatalf("still running: %v", left)
	}
	if self, _ := RootedUnder("/"); len(self) == 0 {
		t.Fatal("RootedUnder(/) should list host processes")
	}
	if _, err := CleanUnder(filepath.Dir(root)); err != nil {
		t.Fatal(err)
	}
}
