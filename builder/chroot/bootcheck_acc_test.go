package chroot

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-build/packer-plugin-strata/internal/acctest"
)

// TestAccBootCheck: a minimized bookworm with linux-image-cloud-amd64 and
// systemd-sysv, exported as a disk, boots under QEMU (TCG) to
// multi-user.target; artifact.json records it and the disk is unchanged.
// The same tree with init=/bin/false on the kernel command line panics: the
// build fails with the console's tail. No VM is left either way.
func TestAccBootCheck(t *testing.T) {
	e := acceptance(t)
	acctest.Slow(t)
	store := scratch(t)
	vars := map[string]string{"store_dir": store, "cache_dir": e.cacheDir}

	dir := t.TempDir()
	r := e.build(t, dir, fixture("bootcheck.pkr.hcl"), vars, "-var", `formats=["disk","tar.zst"]`)
	log := r.out.String()
	assertNoVM(t, dir)
	assertClean(t, filepath.Join(store, "work", "server"))
	if r.code != 0 {
		t.Fatalf("build failed:\n%s", log)
	}
	out := filepath.Join(dir, "output-server")
	m := manifestOf(t, out)
	bc := m.BootCheck
	if bc == nil || !bc.Passed || bc.Disk != "disk.raw" || bc.Accel != "tcg" || bc.BootTimeMS <= 0 || bc.TotalMS < bc.BootTimeMS || bc.Expect == "" {
		t.Fatalf("artifact.json boot_check %+v\n%s", bc, log)
	}
	if !strings.Contains(log, "Boot check passed under tcg") || !strings.Contains(log, "multi-user.target") {
		t.Errorf("the build did not report the boot:\n%s", log)
	}
	t.Logf("boot under TCG: %d ms from the kernel's start (%s), %d ms in all", bc.BootTimeMS, bc.BootTimeSource, bc.TotalMS)
	// The boot wrote nothing to the disk, and artifact.json still checks.
	runIn(t, out, "sha256sum", "-c", "disk.raw.sha256")
	if r := e.Strata(t, nil, "verify", out); r.Code != 0 {
		t.Errorf("strata verify after the boot check: %s", r.Out)
	}

	// init=/bin/false: the initramfs hands over to it, it exits, the
	// kernel panics.
	dir2 := t.TempDir()
	vars["archive"] = filepath.Join(out, "rootfs.tar.zst")
	vars["cmdline"] = "init=/bin/false"
	r = e.build(t, dir2, fixture("bootcheck.pkr.hcl"), vars)
	log = r.out.String()
	assertNoVM(t, dir2)
	assertClean(t, filepath.Join(store, "work", "server"))
	if r.code == 0 {
		t.Fatalf("a kernel that panics passed the boot check:\n%s", log)
	}
	for _, want := range []string{"boot check failed: kernel panic", "Kernel panic - not syncing: Attempted to kill init", "console lines:"} {
		if !strings.Contains(log, want) {
			t.Errorf("the failure lacks %q:\n%s", want, log)
		}
	}
}

// assertNoVM: no QEMU process whose command line names dir is alive.
func assertNoVM(t *testing.T, dir string) {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		cmd := strings.ReplaceAll(string(b), "\x00", " ")
		if strings.Contains(cmd, "qemu-system") && strings.Contains(cmd, dir) {
			t.Errorf("a VM of the build is alive: %s: %s", filepath.Dir(p), cmd)
		}
	}
}
