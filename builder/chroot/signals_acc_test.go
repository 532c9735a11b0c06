package chroot

// End-to-end tests of builds stopped from outside: SIGINT to the process
// group mid-provision, a killed build followed by a new one, and
// -on-error=abort keeping the chroot mounted for debugging.

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/strata-build/packer-plugin-strata/internal/acctest"
	"github.com/strata-build/packer-plugin-strata/internal/mount"
)

func TestAccInterruptMidProvision(t *testing.T) {
	e := acctest.Setup(t)
	vars := archiveVars(t, baseArchive(t), "touch /tmp/provisioning", "sleep 600")
	dir := t.TempDir()
	r := e.Start(t, dir, acctest.Fixture("archive.pkr.hcl"), vars)
	r.WaitForFile(t, filepath.Join(vars["store_dir"], "work", "app", "rootfs", "tmp", "provisioning"))
	// A second build with the same work dir is refused and disturbs nothing.
	second := e.Build(t, t.TempDir(), acctest.Fixture("archive.pkr.hcl"), vars)
	if second.Code == 0 || !strings.Contains(second.Output(), "in use by another running build") {
		t.Fatalf("a concurrent build on the same work dir was not refused:\n%s", second.Output())
	}
	if ms, _ := mount.Under(filepath.Join(vars["store_dir"], "work")); len(ms) == 0 {
		t.Fatal("the refused build tore down the running build's mounts")
	}
	// Ctrl-C as a terminal sends it: to the whole process group.
	syscall.Kill(-r.Cmd.Process.Pid, syscall.SIGINT)
	r.Wait(t, 2*time.Minute)
	if r.Code == 0 {
		t.Fatalf("an interrupted build exited 0:\n%s", r.Output())
	}
	if _, err := os.Stat(filepath.Join(dir, "output-app")); err == nil {
		t.Error("output dir left after an interrupted build")
	}
	acctest.AssertClean(t, filepath.Join(vars["store_dir"], "work"))
}

// pluginPIDs finds the plugin processes among packer's descendants (packer
// re-executes itself once before it starts plugins).
func pluginPIDs(packerPID int) []int {
	parent := map[int]int{}
	comm := map[int]string{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(stat)
		open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		fields := strings.Fields(s[close+1:])
		if open < 0 || len(fields) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(fields[1])
		parent[pid] = ppid
		comm[pid] = s[open+1 : close]
	}
	var pids []int
	for pid := range parent {
		for p := parent[pid]; p > 1; p = parent[p] {
			if p == packerPID {
				if strings.HasPrefix(comm[pid], "packer-plugin-s") {
					pids = append(pids, pid)
				}
				break
			}
		}
	}
	return pids
}

// packerPIDs is packer and its re-executed child.
func packerPIDs(top int) []int {
	pids := []int{top}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil {
			s := string(stat)
			fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
			if len(fields) > 1 && fields[1] == strconv.Itoa(top) && strings.Contains(s, "(packer)") {
				pid, _ := strconv.Atoi(e.Name())
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

func TestAccKilledBuildThenRebuild(t *testing.T) {
	e := acctest.Setup(t)
	archive := baseArchive(t)
	vars := archiveVars(t, archive, "touch /tmp/provisioning", "sleep 600")
	workDir := filepath.Join(vars["store_dir"], "work")
	r := e.Start(t, t.TempDir(), acctest.Fixture("archive.pkr.hcl"), vars)
	r.WaitForFile(t, filepath.Join(workDir, "app", "rootfs", "tmp", "provisioning"))
	plugins := pluginPIDs(r.Cmd.Process.Pid)
	t.Logf("packer %d, plugins %v", r.Cmd.Process.Pid, plugins)
	if len(plugins) == 0 {
		t.Fatal("no plugin process found under packer")
	}
	// Every packer process (packer re-executes itself) and the plugin; the
	// provisioner's own process in the chroot is left, as a real kill leaves it.
	for _, p := range append(plugins, packerPIDs(r.Cmd.Process.Pid)...) {
		syscall.Kill(p, syscall.SIGKILL)
	}
	r.Wait(t, time.Minute)
	if r.Code == 0 {
		t.Fatal("a killed packer exited 0")
	}
	// What a killed run leaves: mounts and the provisioner's process.
	if ms, _ := mount.Under(workDir); len(ms) == 0 {
		t.Fatal("expected the killed run's mounts to be left behind")
	}
	if pids, _ := mount.RootedUnder(workDir); len(pids) == 0 {
		t.Fatal("expected the killed run's chroot process to be left behind")
	}
	vars2 := archiveVars(t, archive, "echo second build")
	vars2["store_dir"] = vars["store_dir"]
	r2 := e.Build(t, t.TempDir(), acctest.Fixture("archive.pkr.hcl"), vars2)
	if r2.Code != 0 {
		t.Fatalf("the rebuild failed:\n%s", r2.Output())
	}
	if !strings.Contains(r2.Output(), "Cleaned up after an earlier build") {
		t.Errorf("the rebuild did not report cleaning up:\n%s", r2.Output())
	}
	acctest.AssertClean(t, workDir)
}

// -on-error=abort and run-cleanup-provisioner keep the chroot mounted after
// a failed provisioner; the latter runs the template's
// error-cleanup-provisioner in it first. The next build cleans up.
func TestAccOnErrorAbortKeepsMounts(t *testing.T) {
	e := acctest.Setup(t)
	archive := baseArchive(t)
	for _, mode := range []string{"abort", "run-cleanup-provisioner"} {
		t.Run(mode, func(t *testing.T) {
			vars := archiveVars(t, archive, "exit 1")
			workDir := filepath.Join(vars["store_dir"], "work")
			hostDir := t.TempDir()
			vars["bind_src"] = hostDir
			vars["cleanup_marker"] = "cleanup-ran"
			r := e.Build(t, t.TempDir(), acctest.Fixture("archive.pkr.hcl"), vars, "-on-error="+mode)
			if r.Code != 1 {
				t.Fatalf("exit code %d:\n%s", r.Code, r.Output())
			}
			if !strings.Contains(r.Output(), "-on-error="+mode+": the chroot stays mounted at") {
				t.Errorf("-on-error=%s does not say where the mounts are:\n%s", mode, r.Output())
			}
			if ms, _ := mount.Under(workDir); len(ms) == 0 {
				t.Fatalf("-on-error=%s should keep the mounts", mode)
			}
			_, err := os.Stat(filepath.Join(hostDir, "cleanup-ran"))
			if ran := err == nil; ran != (mode == "run-cleanup-provisioner") {
				t.Errorf("-on-error=%s: the error-cleanup-provisioner ran: %v, want %v\n%s", mode, ran, !ran, r.Output())
			}
			vars2 := archiveVars(t, archive, "true")
			vars2["store_dir"] = vars["store_dir"]
			if r2 := e.Build(t, t.TempDir(), acctest.Fixture("archive.pkr.hcl"), vars2); r2.Code != 0 {
				t.Fatalf("the next build failed:\n%s", r2.Output())
			}
			acctest.AssertClean(t, workDir)
		})
	}
}
