package chroot

// End-to-end tests of where the builder's paths lead and what it reads from
// an image: a path is checked where it leads, -force removes only an earlier
// build's outputs, and a file in the image is read only when it is one.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAccDpkgStatusFIFO: a provisioner that replaces the image's dpkg
// database with a FIFO makes the build fail at once, saying so, with
// nothing left mounted (a plain open of the FIFO would block for ever).
func TestAccDpkgStatusFIFO(t *testing.T) {
	e := acceptance(t)
	vars := archiveVars(t, baseArchive(t), "rm /var/lib/dpkg/status", "mkfifo /var/lib/dpkg/status")
	dir := t.TempDir()
	r := e.start(t, dir, fixture("archive.pkr.hcl"), vars)
	r.wait(t, 5*time.Minute)
	if r.code == 0 || !strings.Contains(r.out.String(), "/var/lib/dpkg/status in the image is a FIFO, not a regular file") {
		t.Fatalf("exit %d, want a failure naming the FIFO:\n%s", r.code, r.out.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "output-app")); err == nil {
		t.Error("the failed build left its output dir")
	}
	assertClean(t, vars["store_dir"])
}
