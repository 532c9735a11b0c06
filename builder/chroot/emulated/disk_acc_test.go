package emulated

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/strata-build/packer-plugin-strata/export"
	"github.com/strata-build/packer-plugin-strata/export/exporttest"
	"github.com/strata-build/packer-plugin-strata/internal/acctest"
	"github.com/strata-build/packer-plugin-strata/layer/layertest"
)

// The disk tests share one kernel-bearing base (disk-base.pkr.hcl: minbase,
// minimized, linux-image-cloud-amd64 and systemd-sysv, a disk with an ext4
// root and systemd-boot, boot-checked), built once per test binary.
var (
	diskOnce     sync.Once
	diskBaseRun  *acctest.Proc
	diskBaseDir  string
	diskBaseErr  string
	diskBaseVars map[string]string
)

func diskBase(t *testing.T) (*acctest.Proc, string, map[string]string) {
	e := acctest.Setup(t)
	diskOnce.Do(func() {
		dir, err := os.MkdirTemp("", "strata-acc-disk-")
		if err != nil {
			diskBaseErr = err.Error()
			return
		}
		diskBaseDir = dir
		acctest.RemoveAfter(dir)
		diskBaseVars = map[string]string{"store_dir": filepath.Join(dir, "store"), "cache_dir": e.CacheDir}
		diskBaseRun = e.Build(t, dir, acctest.Fixture("disk-base.pkr.hcl"), diskBaseVars)
		if diskBaseRun.Code != 0 {
			diskBaseErr = "the disk base build failed:\n" + diskBaseRun.Output()
		}
	})
	if diskBaseErr != "" {
		t.Fatal(diskBaseErr)
	}
	return diskBaseRun, diskBaseDir, diskBaseVars
}

// sfdiskTable is what sfdisk --json says of a disk image.
type sfdiskTable struct {
	PartitionTable struct {
		Label      string `json:"label"`
		ID         string `json:"id"`
		SectorSize int64  `json:"sectorsize"`
		Partitions []struct {
			Start int64  `json:"start"`
			Size  int64  `json:"size"`
			Type  string `json:"type"`
			UUID  string `json:"uuid"`
			Name  string `json:"name"`
			Attrs string `json:"attrs"`
		} `json:"partitions"`
	} `json:"partitiontable"`
}

// diskLayout checks a disk's partition table (GPT; an ESP and an x86-64
// root with the Discoverable Partitions Specification's types) and its
// ESP (a clean FAT file system read with mtools at its offset, nothing
// mounted), and returns the table and the root partition's byte offset.
func diskLayout(t *testing.T, raw string) (sfdiskTable, int64) {
	t.Helper()
	return diskLayoutOf(t, raw, export.RootX8664Type, "BOOTX64.EFI")
}

// diskLayoutOf is diskLayout for an architecture's root partition type and
// removable-media boot program.
func diskLayoutOf(t *testing.T, raw, rootType, bootName string) (sfdiskTable, int64) {
	t.Helper()
	var tab sfdiskTable
	if err := json.Unmarshal([]byte(acctest.RunIn(t, filepath.Dir(raw), "sfdisk", "--json", raw)), &tab); err != nil {
		t.Fatal(err)
	}
	p := tab.PartitionTable
	if p.Label != "gpt" || len(p.Partitions) != 2 {
		t.Fatalf("%s: want GPT with two partitions, got %+v", raw, p)
	}
	esp, root := p.Partitions[0], p.Partitions[1]
	if !strings.EqualFold(esp.Type, export.ESPType) || !strings.EqualFold(root.Type, rootType) {
		t.Errorf("partition types %s, %s; want the ESP's %s and the root's %s", esp.Type, root.Type, export.ESPType, rootType)
	}
	espOff := strconv.FormatInt(esp.Start*p.SectorSize, 10)
	acctest.RunIn(t, filepath.Dir(raw), "minfo", "-i", raw+"@@"+espOff, "::")
	if ls := acctest.RunIn(t, filepath.Dir(raw), "mdir", "-b", "-i", raw+"@@"+espOff, "::/EFI/BOOT"); !strings.Contains(ls, bootName) {
		t.Errorf("the ESP has no /EFI/BOOT/%s: %s", bootName, ls)
	}
	return tab, root.Start * p.SectorSize
}

// logDiskExport logs what the build said of the disk's making (times and
// sizes, for the record).
func logDiskExport(t *testing.T, log string) {
	t.Helper()
	for _, l := range strings.Split(log, "\n") {
		for _, k := range []string{"Tree:", "root partition (", "EFI system partition:", "GPT:", "Wrote disk", "Export done", "Boot check passed"} {
			if strings.Contains(l, k) {
				t.Log(strings.TrimSpace(l))
			}
		}
	}
}

// bootCheckOf is the boot check artifact.json records.
func bootCheckOf(t *testing.T, out string) *export.BootCheck {
	t.Helper()
	m := exporttest.ManifestOf(t, out)
	if m.BootCheck == nil || !m.BootCheck.Passed || m.BootCheck.Disk != "disk.raw" {
		t.Fatalf("%s: artifact.json records no passed boot check of disk.raw: %+v", out, m.BootCheck)
	}
	return m.BootCheck
}

// TestAccDisk: a minimized base with the cloud kernel becomes a disk that
// boots (ext4 root, systemd-boot); a child with one more package becomes
// a disk with a squashfs root and GRUB that boots and has the package; the
// same image exported again gives the same bytes; a kernel command line
// that cannot find its root fails the boot check with the console's tail.
func TestAccDisk(t *testing.T) {
	// Beside the package's other tests: a TCG boot and qemu-user's emulated
	// maintainer scripts keep about one core busy each (package doc).
	t.Parallel()
	e := acctest.Setup(t)
	r, dir, vars := diskBase(t)
	store := vars["store_dir"]
	out := filepath.Join(dir, "output-kbase")
	base := exporttest.ManifestOf(t, out)

	t.Run("Ext4SystemdBoot", func(t *testing.T) {
		log := r.Output()
		for _, want := range []string{"Minimizing the image", "Disk: kernel /boot/vmlinuz-", "systemd-boot from", "Boot check passed"} {
			if !strings.Contains(log, want) {
				t.Errorf("the build log lacks %q", want)
			}
		}
		bc := bootCheckOf(t, out)
		t.Logf("boot check: %+v", bc)
		logDiskExport(t, log)
		acctest.RunIn(t, out, "sha256sum", "-c", "disk.raw.sha256")
		raw := filepath.Join(out, "disk.raw")
		tab, rootOff := diskLayout(t, raw)
		rootUUID := strings.ToLower(tab.PartitionTable.Partitions[1].UUID)
		// The loader entry and the disk's fstab find the root by PARTUUID.
		espOff := strconv.FormatInt(tab.PartitionTable.Partitions[0].Start*512, 10)
		entries := strings.Fields(acctest.RunIn(t, out, "mdir", "-b", "-i", raw+"@@"+espOff, "::/loader/entries"))
		if len(entries) != 1 {
			t.Fatalf("loader entries: %v", entries)
		}
		entry := acctest.RunIn(t, out, "mtype", "-i", raw+"@@"+espOff, entries[0])
		if !strings.Contains(entry, "options root=PARTUUID="+rootUUID+" ro console=ttyS0") {
			t.Errorf("the loader entry does not boot root=PARTUUID=%s:\n%s", rootUUID, entry)
		}
		img := raw + "?offset=" + strconv.FormatInt(rootOff, 10)
		acctest.RunIn(t, out, "e2fsck", "-fn", img)
		fstab := acctest.RunIn(t, out, "debugfs", "-R", "cat /etc/fstab", img)
		if !strings.Contains(fstab, "PARTUUID="+rootUUID+" / ext4 ") {
			t.Errorf("the disk's fstab does not mount PARTUUID=%s on /:\n%s", rootUUID, fstab)
		}
		// The fstab is the disk's only: the image's layer keeps its own.
		s := layertest.StoreOf(t, store)
		im, err := s.Image(base.ImageID)
		if err != nil {
			t.Fatal(err)
		}
		lowers, err := s.LowerDirs(im)
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(filepath.Join(lowers[0], "etc", "fstab")); strings.Contains(string(b), "PARTUUID") {
			t.Errorf("the image's layer has the disk's fstab:\n%s", b)
		}
		// Minimize left what boot needs.
		for _, p := range []string{"boot", "usr/lib/modules"} {
			if ents, err := os.ReadDir(filepath.Join(lowers[0], p)); err != nil || len(ents) == 0 {
				t.Errorf("the minimized image has no /%s: %v", p, err)
			}
		}
		if _, err := os.Stat(filepath.Join(lowers[0], "usr", "share", "man", "man1")); err == nil {
			t.Errorf("the image was not minimized: /usr/share/man/man1 is there")
		}
		acctest.AssertClean(t, filepath.Join(store, "work"))
		acctest.AssertNoLoop(t, dir)
	})

	t.Run("Deterministic", func(t *testing.T) {
		// The same image exported again, by strata export, gives the same
		// bytes as the build's export.
		exp := filepath.Join(acctest.Scratch(t), "export")
		c := exec.Command(e.CLI, "--store", store, "export", base.ImageID, "--format", "disk", "--output", exp)
		c.Env = append(os.Environ(), "STRATA_HOME="+store)
		if b, err := c.CombinedOutput(); err != nil {
			t.Fatalf("strata export: %v\n%s", err, b)
		}
		m := exporttest.ManifestOf(t, exp)
		var want, got string
		for _, o := range base.Outputs {
			if o.Format == "disk" {
				want = o.SHA256
			}
		}
		for _, o := range m.Outputs {
			if o.Format == "disk" {
				got = o.SHA256
			}
		}
		if want == "" || got != want {
			t.Errorf("two exports of one image differ: the build's disk.raw %s, strata export's %s", want, got)
		}
		acctest.AssertNoLoop(t, exp)
	})

	t.Run("ChildSquashfsGrub", func(t *testing.T) {
		acctest.Slow(t)
		cdir := t.TempDir()
		cvars := map[string]string{"store_dir": store, "cache_dir": e.CacheDir, "parent": base.ImageID,
			"install": `["less"]`, "root_filesystem": "squashfs", "bootloader": "grub", "qcow2": "true"}
		cr := e.Build(t, cdir, acctest.Fixture("disk-child.pkr.hcl"), cvars)
		if cr.Code != 0 {
			t.Fatalf("exit %d:\n%s", cr.Code, cr.Output())
		}
		cout := filepath.Join(cdir, "output-child")
		bc := bootCheckOf(t, cout)
		t.Logf("boot check: %+v", bc)
		logDiskExport(t, cr.Output())
		for _, f := range []string{"disk.raw", "disk.qcow2"} {
			acctest.RunIn(t, cout, "sha256sum", "-c", f+".sha256")
		}
		m := exporttest.ManifestOf(t, cout)
		if m.ParentImageID != base.ImageID || len(m.Outputs) != 2 || m.Outputs[1].Format != export.QCOW2Format {
			t.Errorf("artifact.json: parent %s, outputs %+v", m.ParentImageID, m.Outputs)
		}
		raw := filepath.Join(cout, "disk.raw")
		// The qcow2 holds the same disk.
		acctest.RunIn(t, cout, "qemu-img", "compare", "-f", "raw", "-F", "qcow2", raw, filepath.Join(cout, "disk.qcow2"))
		tab, rootOff := diskLayout(t, raw)
		if !strings.Contains(tab.PartitionTable.Partitions[1].Attrs, "GUID:60") {
			t.Errorf("the squashfs root partition is not marked read-only: %q", tab.PartitionTable.Partitions[1].Attrs)
		}
		// The root partition is the child's tree: the package is there, and
		// so are the overlays that make /etc and /var writable.
		off := strconv.FormatInt(rootOff, 10)
		ls := acctest.RunIn(t, cout, "unsquashfs", "-o", off, "-lls", raw, "usr/bin/less", "etc/fstab", "etc/systemd/system/strata-overlay-dirs.service")
		for _, want := range []string{"usr/bin/less", "etc/fstab", "strata-overlay-dirs.service"} {
			if !strings.Contains(ls, want) {
				t.Errorf("the squashfs root lacks %s:\n%s", want, ls)
			}
		}
		fstab := acctest.RunIn(t, cout, "unsquashfs", "-o", off, "-cat", raw, "etc/fstab")
		if !strings.Contains(fstab, " / squashfs ro ") || !strings.Contains(fstab, "overlay /var overlay") || !strings.Contains(fstab, "overlay /etc overlay") {
			t.Errorf("the squashfs root's fstab:\n%s", fstab)
		}
		if !strings.Contains(cr.Output(), "GRUB from the build host") {
			t.Errorf("the build did not use GRUB:\n%s", cr.Output())
		}
		acctest.AssertClean(t, filepath.Join(store, "work"))
		acctest.AssertNoLoop(t, cdir)
	})

	t.Run("PanicFailsBootCheck", func(t *testing.T) {
		acctest.Slow(t)
		// The last root= wins: the initramfs gives up on a root that is not
		// there and, with panic=1, reboots; the VM stops and the boot check
		// fails with the console's last lines.
		cdir := t.TempDir()
		cvars := map[string]string{"store_dir": store, "cache_dir": e.CacheDir, "parent": base.ImageID, "install": `["less"]`,
			"kernel_cmdline": "root=PARTUUID=00000000-0000-0000-0000-000000000000 rootdelay=3 panic=1"}
		cr := e.Build(t, cdir, acctest.Fixture("disk-child.pkr.hcl"), cvars)
		log := cr.Output()
		if cr.Code == 0 {
			t.Fatalf("a disk whose root is not there passed the boot check:\n%s", log)
		}
		for _, want := range []string{"boot check failed", "console lines", "00000000-0000-0000-0000-000000000000 does not exist"} {
			if !strings.Contains(log, want) {
				t.Errorf("the failure lacks %q:\n%s", want, log)
			}
		}
		acctest.AssertClean(t, filepath.Join(store, "work"))
		acctest.AssertNoLoop(t, cdir)
	})

	t.Run("SIGTERMDuringExport", func(t *testing.T) {
		// SIGTERM to the build's process group (as CI and systemd stop a
		// job) while the root partition is being made: the build stops, and
		// leaves no output, no temporary file, no mount, no loop device and
		// no program of its own running.
		cdir := t.TempDir()
		cvars := map[string]string{"store_dir": store, "cache_dir": e.CacheDir, "parent": base.ImageID, "install": `["less"]`}
		cr := e.Start(t, cdir, acctest.Fixture("disk-child.pkr.hcl"), cvars)
		cout := filepath.Join(cdir, "output-child")
		cr.WaitForFile(t, filepath.Join(cout, ".disk.raw.tmp.parts", "root.img"))
		syscall.Kill(-cr.Cmd.Process.Pid, syscall.SIGTERM)
		cr.Wait(t, 2*time.Minute)
		if cr.Code == 0 {
			t.Fatalf("a build stopped by SIGTERM exited 0:\n%s", cr.Output())
		}
		if ents, err := os.ReadDir(cout); err == nil {
			for _, en := range ents {
				t.Errorf("the stopped build left %s in its output dir", en.Name())
			}
		}
		if out, _ := exec.Command("pgrep", "-af", cdir).Output(); len(out) > 0 {
			t.Errorf("programs of the stopped build still run:\n%s", out)
		}
		acctest.AssertClean(t, filepath.Join(store, "work"))
		acctest.AssertNoLoop(t, cdir)
	})
}
