package emulated

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strata-build/packer-plugin-strata/export"
	"github.com/strata-build/packer-plugin-strata/export/exporttest"
	"github.com/strata-build/packer-plugin-strata/internal/acctest"
)

// TestAccDiskArm64: an arm64 bookworm (bootstrapped through qemu-user) with
// Debian's arm64 cloud kernel, systemd and the image's systemd-boot becomes
// a disk with the arm64 root partition type and EFI/BOOT/BOOTAA64.EFI that
// boots under qemu-system-aarch64 (virt, AAVMF, TCG) to multi-user.target.
// Slow: the emulated maintainer scripts (the kernel's initramfs above all)
// and an emulated boot take about half an hour on 2 cores.
func TestAccDiskArm64(t *testing.T) {
	t.Parallel()
	e := acctest.Setup(t)
	acctest.Slow(t)
	for _, need := range []string{"/usr/lib/binfmt.d/qemu-aarch64.conf", "/usr/share/AAVMF/AAVMF_CODE.fd", "/usr/bin/qemu-system-aarch64"} {
		if _, err := os.Stat(need); err != nil {
			t.Skipf("needs %s (make test-deps: qemu-user-static, qemu-efi-aarch64, qemu-system-arm)", need)
		}
	}
	dir := acctest.Scratch(t)
	store := filepath.Join(dir, "store")
	start := time.Now()
	r := e.Start(t, dir, acctest.Fixture("disk-arm64.pkr.hcl"), map[string]string{"store_dir": store, "cache_dir": e.CacheDir})
	r.Wait(t, 50*time.Minute)
	log := r.Output()
	t.Logf("arm64 disk build with its boot check: %s", time.Since(start).Round(time.Second))
	acctest.AssertNoVM(t, dir)
	acctest.AssertClean(t, filepath.Join(store, "work"))
	acctest.AssertNoLoop(t, dir)
	if r.Code != 0 {
		t.Fatalf("exit %d:\n%s", r.Code, log)
	}
	for _, l := range strings.Split(log, "\n") {
		for _, k := range []string{"Bootstrapping", "Installing", "Exporting", "Boot check"} {
			if strings.Contains(l, k) {
				t.Log(strings.TrimSpace(l))
			}
		}
	}
	logDiskExport(t, log)
	out := filepath.Join(dir, "output-arm64disk")
	bc := bootCheckOf(t, out)
	if bc.Accel != "tcg" || bc.BootTimeMS <= 0 {
		t.Errorf("boot check %+v", bc)
	}
	t.Logf("arm64 boot under TCG: %d ms from the kernel's start (%s), %d ms in all (firmware included)", bc.BootTimeMS, bc.BootTimeSource, bc.TotalMS)
	for _, want := range []string{"Disk: kernel /boot/vmlinuz-", "-cloud-arm64 for arm64", "systemd-boot from the image's /usr/lib/systemd/boot/efi/systemd-bootaa64.efi",
		"Boot check passed under tcg", "multi-user.target"} {
		if !strings.Contains(log, want) {
			t.Errorf("the build log lacks %q", want)
		}
	}
	if m := exporttest.ManifestOf(t, out); m.Architecture != "arm64" {
		t.Errorf("artifact.json architecture %q", m.Architecture)
	}
	raw := filepath.Join(out, "disk.raw")
	acctest.RunIn(t, out, "sha256sum", "-c", "disk.raw.sha256")
	tab, _ := diskLayoutOf(t, raw, export.RootArm64Type, "BOOTAA64.EFI")
	espOff := strconv.FormatInt(tab.PartitionTable.Partitions[0].Start*512, 10)
	if ls := acctest.RunIn(t, out, "mdir", "-b", "-i", raw+"@@"+espOff, "::/EFI/BOOT"); strings.Contains(ls, "X64") {
		t.Errorf("the arm64 disk has an x64 boot program: %s", ls)
	}
	entries := strings.Fields(acctest.RunIn(t, out, "mdir", "-b", "-i", raw+"@@"+espOff, "::/loader/entries"))
	if len(entries) != 1 {
		t.Fatalf("loader entries: %v", entries)
	}
	rootUUID := strings.ToLower(tab.PartitionTable.Partitions[1].UUID)
	if entry := acctest.RunIn(t, out, "mtype", "-i", raw+"@@"+espOff, entries[0]); !strings.Contains(entry, "options root=PARTUUID="+rootUUID+" ro console=ttyAMA0") {
		t.Errorf("the loader entry:\n%s", entry)
	}
}
