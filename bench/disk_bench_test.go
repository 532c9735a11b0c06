package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/strata-build/packer-plugin-strata/export"
)

// BenchmarkDiskStrata is strata's disk export of the tree: ESP (mkfs.vfat,
// mtools: systemd-boot, the image's kernel and initramfs), ext4 root
// (mke2fs -d), GPT by sfdisk, sha256 of disk.raw, and the rootfs digest.
func BenchmarkDiskStrata(b *testing.B) {
	tree := benchTree(b)
	for i := 0; i < b.N; i++ {
		out := b.TempDir()
		res, err := export.Export(context.Background(), export.Source{Root: tree}, out, export.Options{Formats: []string{"disk"}})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(res.Outputs[0].Size)/(1<<20), "MiB")
	}
}

// BenchmarkDiskRepart is systemd-repart alone making the same two
// partitions of the same sizes from the same tree: an ESP (vfat) holding
// systemd-boot, the kernel, the initramfs and a loader entry, and an ext4
// root holding the tree; then sha256sum of the disk, as strata hashes its
// output. The sizes are those of strata's disk of the tree (one export
// outside the timing).
func BenchmarkDiskRepart(b *testing.B) {
	tree := benchTree(b)
	ref := b.TempDir()
	if _, err := export.Export(context.Background(), export.Source{Root: tree}, ref, export.Options{Formats: []string{"disk"}}); err != nil {
		b.Fatal(err)
	}
	espSize, rootSize := partitionSizes(b, filepath.Join(ref, export.FileName("disk")))
	kernels, _ := filepath.Glob(filepath.Join(tree, "boot", "vmlinuz-*"))
	if len(kernels) != 1 {
		b.Fatalf("want one kernel in the tree, found %v", kernels)
	}
	version := filepath.Base(kernels[0])[len("vmlinuz-"):]
	stage := b.TempDir()
	esp := filepath.Join(stage, "esp")
	for dst, src := range map[string]string{
		"EFI/BOOT/BOOTX64.EFI": "/usr/lib/systemd/boot/efi/systemd-bootx64.efi",
		"vmlinuz":              kernels[0],
		"initrd.img":           filepath.Join(tree, "boot", "initrd.img-"+version),
	} {
		os.MkdirAll(filepath.Dir(filepath.Join(esp, dst)), 0o755)
		if out, err := exec.Command("cp", src, filepath.Join(esp, dst)).CombinedOutput(); err != nil {
			b.Fatalf("%v %s", err, out)
		}
	}
	os.MkdirAll(filepath.Join(esp, "loader/entries"), 0o755)
	os.WriteFile(filepath.Join(esp, "loader/entries/image.conf"), []byte("title image\nlinux /vmlinuz\ninitrd /initrd.img\noptions root=PARTLABEL=root-x86-64 ro console=ttyS0\n"), 0o644)
	defs := filepath.Join(stage, "defs")
	os.MkdirAll(defs, 0o755)
	os.WriteFile(filepath.Join(defs, "00-esp.conf"), []byte(fmt.Sprintf("[Partition]\nType=esp\nFormat=vfat\nCopyFiles=%s:/\nSizeMinBytes=%d\nSizeMaxBytes=%d\n", esp, espSize, espSize)), 0o644)
	os.WriteFile(filepath.Join(defs, "10-root.conf"), []byte(fmt.Sprintf("[Partition]\nType=root\nFormat=ext4\nCopyFiles=%s:/\nSizeMinBytes=%d\nSizeMaxBytes=%d\n", tree, rootSize, rootSize)), 0o644)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		disk := filepath.Join(b.TempDir(), "disk.raw")
		cmd := exec.Command("sh", "-c", `systemd-repart --empty=create --size=auto --dry-run=no --definitions="$1" "$2" >/dev/null && sha256sum "$2" >/dev/null`, "sh", defs, disk)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("systemd-repart: %v\n%s", err, out)
		}
		fi, _ := os.Stat(disk)
		b.ReportMetric(float64(fi.Size())/(1<<20), "MiB")
	}
}

// partitionSizes reads the ESP's and the root's sizes in bytes from a
// GPT disk image.
func partitionSizes(b *testing.B, disk string) (esp, root int64) {
	out, err := exec.Command("sfdisk", "--json", disk).Output()
	if err != nil {
		b.Fatalf("sfdisk --json %s: %v", disk, err)
	}
	var t struct {
		PartitionTable struct {
			SectorSize int64 `json:"sectorsize"`
			Partitions []struct {
				Size int64 `json:"size"`
			} `json:"partitions"`
		} `json:"partitiontable"`
	}
	if err := json.Unmarshal(out, &t); err != nil || len(t.PartitionTable.Partitions) != 2 {
		b.Fatalf("sfdisk --json %s: %v %s", disk, err, out)
	}
	ss := t.PartitionTable.SectorSize
	if ss == 0 {
		ss = 512
	}
	return t.PartitionTable.Partitions[0].Size * ss, t.PartitionTable.Partitions[1].Size * ss
}
