package test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-build/packer-plugin-strata/internal/inroot"
	"github.com/strata-build/packer-plugin-strata/internal/mount"
)

// A hostile image pointing /tmp at /run must not get the checks' tmpfs laid
// over its /run: the mount is refused before anything is mounted.
func TestMountInRefusesATargetALinkMoves(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	if err := os.MkdirAll(filepath.Join(root, "run"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/run", filepath.Join(root, "tmp")); err != nil {
		t.Fatal(err)
	}
	img, err := inroot.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	ledger, err := mount.NewLedger(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ledger.Close()
	_, err = mountIn(img, ledger, mount.Spec{FSType: "tmpfs", Source: "tmp", Target: "/tmp"})
	if err == nil || !strings.Contains(err.Error(), "leads to /run") {
		t.Fatalf("mountIn through /tmp -> /run: %v", err)
	}
	if st := ledger.State(); len(st.Mounts) != 0 {
		t.Errorf("the ledger records %v", st.Mounts)
	}
}

// A run killed with its tmpfs still mounted is undone by the next run: the
// mount its ledger recorded is taken down and its directory removed; a
// live run's directory and a mount no ledger names are left alone.
func TestNewRunDirUndoesKilledRuns(t *testing.T) {
	runs := filepath.Join(t.TempDir(), "runs")
	if err := os.Mkdir(runs, 0o700); err != nil {
		t.Fatal(err)
	}
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	killed := filepath.Join(runs, "run-killed")
	scratch := filepath.Join(killed, "scratch")
	other := filepath.Join(killed, "other")
	for _, d := range []string{scratch, other} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{scratch, other} {
		if err := mount.Mount(mount.Spec{FSType: "tmpfs", Source: "strata-test", Target: d}); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, d := range []string{scratch, other} {
			mount.Unmount(d, 1, 0)
		}
	})
	id, err := mount.IDAt(scratch)
	if err != nil {
		t.Fatal(err)
	}
	st := mount.State{Owner: mount.Proc{PID: dead.Process.Pid, Start: 1}, Mounts: []mount.MountRecord{{Target: scratch, FSType: "tmpfs", ID: id}}}
	b, _ := json.Marshal(st)
	if err := os.WriteFile(filepath.Join(killed, mount.LedgerName), b, 0o600); err != nil {
		t.Fatal(err)
	}
	live := filepath.Join(runs, "run-live")
	if err := os.Mkdir(live, 0o700); err != nil {
		t.Fatal(err)
	}
	l, err := mount.NewLedger(live)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	// The mount no ledger recorded keeps the killed run's directory there:
	// the next run refuses to remove a directory with a mount in it.
	if _, err := newRunDir(runs); err == nil || !strings.Contains(err.Error(), "still mounted") {
		t.Fatalf("newRunDir with a foreign mount in a killed run's directory: %v", err)
	}
	if ms, _ := mount.Under(scratch); len(ms) != 0 {
		t.Errorf("the killed run's recorded tmpfs is still mounted: %v", ms)
	}
	if ms, _ := mount.Under(other); len(ms) != 1 {
		t.Errorf("a mount no ledger recorded was touched: %v", ms)
	}
	mount.Unmount(other, 1, 0)
	dir, err := newRunDir(runs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(killed); !os.IsNotExist(err) {
		t.Errorf("the killed run's directory is still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(live, mount.LedgerName)); err != nil {
		t.Errorf("a live run's directory was touched: %v", err)
	}
	if filepath.Dir(dir) != runs {
		t.Errorf("the new run's directory is %s", dir)
	}
	// Anyone else's directory is refused.
	if err := os.Chmod(runs, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := newRunDir(runs); err == nil || !strings.Contains(err.Error(), "0700") {
		t.Errorf("newRunDir in a world-writable directory: %v", err)
	}
}
