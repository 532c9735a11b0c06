// Package bench holds the benchmarks behind bench/run.sh's tables.
package bench

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/strata-build/packer-plugin-strata/export"
)

func benchTree(b *testing.B) string {
	tree := os.Getenv("STRATA_BENCH_TREE")
	if tree == "" {
		b.Skip("set STRATA_BENCH_TREE to a root file system tree (bench/run.sh does)")
	}
	return tree
}

// BenchmarkExportStrataTarZst is strata's exporter: one pass over the tree,
// canonical tar, zstd, sha256 of both.
func BenchmarkExportStrataTarZst(b *testing.B) {
	tree := benchTree(b)
	for i := 0; i < b.N; i++ {
		out := b.TempDir()
		res, err := export.Export(context.Background(), export.Source{Root: tree}, out, export.Options{Formats: []string{"tar.zst"}})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(res.Outputs[0].Size)/(1<<20), "MiB")
	}
}

// BenchmarkExportTarPipeZstd is what a user would run instead, with the same
// fidelity options, plus sha256sum of the result as strata does.
func BenchmarkExportTarPipeZstd(b *testing.B) {
	tree := benchTree(b)
	for i := 0; i < b.N; i++ {
		out := filepath.Join(b.TempDir(), "rootfs.tar.zst")
		cmd := exec.Command("sh", "-c", `tar --numeric-owner --xattrs --xattrs-include='*' -cf - -C "$1" . | zstd -q -T0 -3 -o "$2" && sha256sum "$2" >/dev/null`, "sh", tree, out)
		if o, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%v %s", err, o)
		}
		fi, _ := os.Stat(out)
		b.ReportMetric(float64(fi.Size())/(1<<20), "MiB")
	}
}

// BenchmarkSquashfsStrataDefault is strata's squashfs export with its
// default compressor (zstd level 3): mksquashfs, alongside it the canonical
// tar pass that computes the rootfs digest, then the sha256 of the file.
func BenchmarkSquashfsStrataDefault(b *testing.B) {
	tree := benchTree(b)
	for i := 0; i < b.N; i++ {
		out := b.TempDir()
		res, err := export.Export(context.Background(), export.Source{Root: tree}, out, export.Options{Formats: []string{"squashfs"}})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(res.Outputs[0].Size)/(1<<20), "MiB")
	}
}

// BenchmarkSquashfsPipeMksquashfs is mksquashfs alone at the same level,
// plus sha256sum of the result as strata does.
func BenchmarkSquashfsPipeMksquashfs(b *testing.B) {
	tree := benchTree(b)
	for i := 0; i < b.N; i++ {
		out := filepath.Join(b.TempDir(), "rootfs.squashfs")
		cmd := exec.Command("sh", "-c", `mksquashfs "$1" "$2" -comp zstd -Xcompression-level 3 -noappend -xattrs -quiet -no-progress && sha256sum "$2" >/dev/null`, "sh", tree, out)
		if o, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%v %s", err, o)
		}
		fi, _ := os.Stat(out)
		b.ReportMetric(float64(fi.Size())/(1<<20), "MiB")
	}
}

// BenchmarkSquashfsMksquashfsDefaultLevel is mksquashfs -comp zstd at its
// own default level (15): what strata used to run; plus sha256sum, as the
// other rows have.
func BenchmarkSquashfsMksquashfsDefaultLevel(b *testing.B) {
	tree := benchTree(b)
	for i := 0; i < b.N; i++ {
		out := filepath.Join(b.TempDir(), "rootfs.squashfs")
		cmd := exec.Command("sh", "-c", `mksquashfs "$1" "$2" -comp zstd -noappend -xattrs -quiet -no-progress && sha256sum "$2" >/dev/null`, "sh", tree, out)
		if o, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%v %s", err, o)
		}
		fi, _ := os.Stat(out)
		b.ReportMetric(float64(fi.Size())/(1<<20), "MiB")
	}
}
