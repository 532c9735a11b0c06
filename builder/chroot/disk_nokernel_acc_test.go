package chroot

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-build/packer-plugin-strata/internal/acctest"
)

// TestAccDiskWithoutKernel: an image without a kernel asked for as a disk
// fails with the error that names the package, before any output is
// written, and a link to the host's kernel does not count.
func TestAccDiskWithoutKernel(t *testing.T) {
	e := acctest.Setup(t)
	tree := filepath.Join(t.TempDir(), "tree")
	for _, d := range []string{"etc", "boot"} {
		os.MkdirAll(filepath.Join(tree, d), 0o755)
	}
	os.WriteFile(filepath.Join(tree, "etc", "os-release"), []byte("ID=debian\n"), 0o644)
	// Links that lead to the host's kernel if followed on the host.
	os.Symlink("/boot/vmlinuz-host", filepath.Join(tree, "boot", "vmlinuz-6.1.0-99-amd64"))
	os.Symlink("/vmlinuz", filepath.Join(tree, "vmlinuz"))
	archive := filepath.Join(t.TempDir(), "nokernel.tar")
	acctest.RunIn(t, tree, "tar", "--numeric-owner", "--owner=0", "--group=0", "-cf", archive, ".")
	store := filepath.Join(acctest.Scratch(t), "store")
	dir := t.TempDir()
	r := e.Build(t, dir, acctest.Fixture("noprov.pkr.hcl"), map[string]string{"store_dir": store, "archive": archive, "formats": `["tar", "disk"]`})
	log := r.Output()
	if r.Code == 0 {
		t.Fatalf("a disk without a kernel was built:\n%s", log)
	}
	if !strings.Contains(log, "the image has no kernel") || !strings.Contains(log, "linux-image-cloud-amd64") {
		t.Errorf("the error does not say to install linux-image-cloud-amd64:\n%s", log)
	}
	if strings.Contains(log, "Writing") || strings.Contains(log, "Exporting") {
		t.Errorf("the export began before the kernel check:\n%s", log)
	}
	out := filepath.Join(dir, "output-plain")
	for _, f := range []string{"rootfs.tar", "disk.raw", "packages.tsv"} {
		if _, err := os.Stat(filepath.Join(out, f)); err == nil {
			t.Errorf("the failed build wrote %s", f)
		}
	}
	acctest.AssertClean(t, store)
	acctest.AssertNoLoop(t, dir)
}
