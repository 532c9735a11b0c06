package chroot

// End-to-end tests of where the builder's paths lead and what it reads from
// an image: a path is checked where it leads, -force removes only an earlier
// build's outputs, and a file in the image is read only when it is one.

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-build/packer-plugin-strata/export/exporttest"
	"github.com/strata-build/packer-plugin-strata/internal/acctest"
)

// TestAccDpkgStatusFIFO: a provisioner that replaces the image's dpkg
// database with a FIFO makes the build fail at once, saying so, with
// nothing left mounted (a plain open of the FIFO would block for ever).
func TestAccDpkgStatusFIFO(t *testing.T) {
	e := acctest.Setup(t)
	vars := archiveVars(t, baseArchive(t), "rm /var/lib/dpkg/status", "mkfifo /var/lib/dpkg/status")
	dir := t.TempDir()
	r := e.Start(t, dir, acctest.Fixture("archive.pkr.hcl"), vars)
	r.Wait(t, 5*time.Minute)
	if r.Code == 0 || !strings.Contains(r.Output(), "/var/lib/dpkg/status in the image is a FIFO, not a regular file") {
		t.Fatalf("exit %d, want a failure naming the FIFO:\n%s", r.Code, r.Output())
	}
	if _, err := os.Stat(filepath.Join(dir, "output-app")); err == nil {
		t.Error("the failed build left its output dir")
	}
	acctest.AssertClean(t, vars["store_dir"])
}

// varArgs turns vars into packer's -var flags.
func varArgs(vars map[string]string) []string {
	var argv []string
	for k, v := range vars {
		argv = append(argv, "-var", k+"="+v)
	}
	return argv
}

// TestAccForceThroughALinkIntoTheStore: an output_dir whose way leads into
// the store through a link another user made (here <link>/layers, the
// store's layers) is refused, -force or not, and the layers stay; the
// comparison is of where paths lead, not of how they are written.
func TestAccForceThroughALinkIntoTheStore(t *testing.T) {
	e := acctest.Setup(t)
	vars := archiveVars(t, baseArchive(t), "true")
	store := vars["store_dir"]
	canary := filepath.Join(store, "layers", "canary")
	os.MkdirAll(filepath.Dir(canary), 0o700)
	os.WriteFile(canary, []byte("every image's layers"), 0o600)
	// A directory nobody may write in, as a shared workspace would be.
	dir := t.TempDir()
	os.Chmod(filepath.Dir(dir), 0o755)
	os.Chmod(dir, 0o755)
	os.Chown(dir, 65534, 65534)
	asNobody(t, "ln", "-s", store, filepath.Join(dir, "out"))
	vars["output_dir"] = filepath.Join(dir, "out", "layers")
	r := e.Build(t, dir, acctest.Fixture("archive.pkr.hcl"), vars, "-force")
	if r.Code == 0 || !strings.Contains(r.Output(), "overlaps store_dir") {
		t.Fatalf("exit %d, want output_dir refused as overlapping the store:\n%s", r.Code, r.Output())
	}
	if b, err := os.ReadFile(canary); err != nil || string(b) != "every image's layers" {
		t.Fatalf("the store's layers were touched: %q %v", b, err)
	}
	acctest.AssertClean(t, store)
}

// TestAccForceRemovesOnlyEarlierOutputs: -force replaces what an earlier
// build recorded in its artifact.json, and refuses an output dir holding
// anything else, or one no build made, touching nothing in it.
func TestAccForceRemovesOnlyEarlierOutputs(t *testing.T) {
	e := acctest.Setup(t)
	vars := archiveVars(t, baseArchive(t), "true")
	vars["formats"] = `["tar", "dir"]`
	dir := t.TempDir()
	out := filepath.Join(dir, "output-app")
	if r := e.Build(t, dir, acctest.Fixture("archive.pkr.hcl"), vars); r.Code != 0 {
		t.Fatalf("first build:\n%s", r.Output())
	}
	first := exporttest.ManifestOf(t, out)

	notes := filepath.Join(out, "notes.txt")
	os.WriteFile(notes, []byte("mine"), 0o644)
	r := e.Build(t, dir, acctest.Fixture("archive.pkr.hcl"), vars, "-force")
	if r.Code == 0 || !strings.Contains(r.Output(), "holds notes.txt, which the earlier build's artifact.json does not name") {
		t.Fatalf("exit %d, want -force refused over a file of the user's:\n%s", r.Code, r.Output())
	}
	if _, err := os.Stat(notes); err != nil {
		t.Fatal("the refused -force removed the user's file")
	}
	if m := exporttest.ManifestOf(t, out); m.ImageID != first.ImageID {
		t.Fatal("the refused -force changed the earlier outputs")
	}
	os.Remove(notes)
	if r := e.Build(t, dir, acctest.Fixture("archive.pkr.hcl"), vars, "-force"); r.Code != 0 {
		t.Fatalf("-force over an earlier build's outputs:\n%s", r.Output())
	}
	exporttest.ManifestOf(t, out)

	mine := filepath.Join(dir, "mine")
	os.Mkdir(mine, 0o755)
	os.WriteFile(filepath.Join(mine, "rootfs.tar"), []byte("not an image"), 0o644)
	vars["output_dir"] = mine
	r = e.Build(t, dir, acctest.Fixture("archive.pkr.hcl"), vars, "-force")
	if r.Code == 0 || !strings.Contains(r.Output(), "was not made by strata-chroot") {
		t.Fatalf("exit %d, want -force refused on a directory no build made:\n%s", r.Code, r.Output())
	}
	if b, _ := os.ReadFile(filepath.Join(mine, "rootfs.tar")); string(b) != "not an image" {
		t.Fatal("the refused -force touched a directory no build made")
	}
	acctest.AssertClean(t, vars["store_dir"])
}

// TestAccValidateAfterBuild: packer validate checks the template, not the
// machine: after a build, validating the same template passes, and the CI
// habit of validate then build -force works.
func TestAccValidateAfterBuild(t *testing.T) {
	e := acctest.Setup(t)
	vars := archiveVars(t, baseArchive(t))
	delete(vars, "inline") // noprov.pkr.hcl has no provisioner
	vars["formats"] = `["tar"]`
	dir := t.TempDir()
	if r := e.Build(t, dir, acctest.Fixture("noprov.pkr.hcl"), vars); r.Code != 0 {
		t.Fatalf("first build:\n%s", r.Output())
	}
	v := e.PackerRun(t, dir, append(append([]string{"validate"}, varArgs(vars)...), acctest.Fixture("noprov.pkr.hcl"))...)
	if v.Code != 0 {
		t.Fatalf("packer validate after a build: exit %d\n%s", v.Code, v.Out)
	}
	if r := e.Build(t, dir, acctest.Fixture("noprov.pkr.hcl"), vars, "-force"); r.Code != 0 {
		t.Fatalf("build -force after validate:\n%s", r.Output())
	}
	acctest.AssertClean(t, vars["store_dir"])
}

// TestAccNamedSourcesInParallel: one source used twice under two names in
// one build, built in parallel as Packer does by default, both succeed,
// each in its own work dir and output dir.
func TestAccNamedSourcesInParallel(t *testing.T) {
	e := acctest.Setup(t)
	store := filepath.Join(acctest.Scratch(t), "store")
	dir := t.TempDir()
	r := e.Build(t, dir, acctest.Fixture("named.pkr.hcl"), map[string]string{"store_dir": store, "archive": baseArchive(t)})
	if r.Code != 0 {
		t.Fatalf("exit %d:\n%s", r.Code, r.Output())
	}
	seen := map[string]bool{}
	for _, out := range []string{"output-base", "output-base.2"} {
		m := exporttest.ManifestOf(t, filepath.Join(dir, out))
		list := acctest.RunIn(t, dir, "tar", "-xOf", filepath.Join(dir, out, "rootfs.tar"), "./etc/which-source")
		seen[strings.TrimSpace(list)] = true
		if m.ImageID == "" {
			t.Errorf("%s: no image", out)
		}
	}
	if !seen["one"] || !seen["two"] {
		t.Errorf("the two outputs are not one's and two's: %v", seen)
	}
	acctest.AssertClean(t, store)
}

// asNobody runs a command as the unprivileged user nobody.
func asNobody(t *testing.T, name string, args ...string) {
	t.Helper()
	argv := append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", name}, args...)
	if out, err := exec.Command("setpriv", argv...).CombinedOutput(); err != nil {
		t.Fatalf("as nobody: %s %v: %v\n%s", name, args, err, out)
	}
}
