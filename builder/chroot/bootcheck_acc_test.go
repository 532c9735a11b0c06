package chroot

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-build/packer-plugin-strata/export/exporttest"
	"github.com/strata-build/packer-plugin-strata/internal/acctest"
)

// TestAccBootCheck: a minimized bookworm with linux-image-cloud-amd64 and
// systemd-sysv, exported as a disk, boots under QEMU (TCG) to
// multi-user.target; artifact.json records it and the disk is unchanged.
// The same tree with init=/bin/false on the kernel command line panics: the
// build fails with the console's tail. No VM is left either way.
func TestAccBootCheck(t *testing.T) {
	e := acctest.Setup(t)
	acctest.Slow(t)
	store := acctest.Scratch(t)
	vars := map[string]string{"store_dir": store, "cache_dir": e.CacheDir}

	dir := t.TempDir()
	r := e.Build(t, dir, acctest.Fixture("bootcheck.pkr.hcl"), vars, "-var", `formats=["disk","tar.zst"]`)
	log := r.Output()
	acctest.AssertNoVM(t, dir)
	acctest.AssertClean(t, filepath.Join(store, "work", "server"))
	if r.Code != 0 {
		t.Fatalf("build failed:\n%s", log)
	}
	out := filepath.Join(dir, "output-server")
	m := exporttest.ManifestOf(t, out)
	bc := m.BootCheck
	if bc == nil || !bc.Passed || bc.Disk != "disk.raw" || bc.Accel != "tcg" || bc.BootTimeMS <= 0 || bc.TotalMS < bc.BootTimeMS || bc.Expect == "" {
		t.Fatalf("artifact.json boot_check %+v\n%s", bc, log)
	}
	if !strings.Contains(log, "Boot check passed under tcg") || !strings.Contains(log, "multi-user.target") {
		t.Errorf("the build did not report the boot:\n%s", log)
	}
	t.Logf("boot under TCG: %d ms from the kernel's start (%s), %d ms in all", bc.BootTimeMS, bc.BootTimeSource, bc.TotalMS)
	// The boot wrote nothing to the disk, and artifact.json still checks.
	acctest.RunIn(t, out, "sha256sum", "-c", "disk.raw.sha256")
	if r := e.Strata(t, nil, "verify", out); r.Code != 0 {
		t.Errorf("strata verify after the boot check: %s", r.Out)
	}

	// init=/bin/false: the initramfs hands over to it, it exits, the
	// kernel panics.
	dir2 := t.TempDir()
	vars["archive"] = filepath.Join(out, "rootfs.tar.zst")
	vars["cmdline"] = "init=/bin/false"
	r = e.Build(t, dir2, acctest.Fixture("bootcheck.pkr.hcl"), vars)
	log = r.Output()
	acctest.AssertNoVM(t, dir2)
	acctest.AssertClean(t, filepath.Join(store, "work", "server"))
	if r.Code == 0 {
		t.Fatalf("a kernel that panics passed the boot check:\n%s", log)
	}
	for _, want := range []string{"boot check failed: kernel panic", "Kernel panic - not syncing: Attempted to kill init", "console lines:"} {
		if !strings.Contains(log, want) {
			t.Errorf("the failure lacks %q:\n%s", want, log)
		}
	}
}
