package chroot

// End-to-end tests of the layer store under the CLI: strata layers, export
// and gc of what builds left, and a store whose layers were tampered with.

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/strata-build/packer-plugin-strata/export/exporttest"
	"github.com/strata-build/packer-plugin-strata/internal/acctest"
	"github.com/strata-build/packer-plugin-strata/layer/layertest"
)

// layerEntries lists the tar entries of layer i of the one image in an OCI
// layout.
func layerEntries(t *testing.T, dir string, i int) map[string]bool {
	t.Helper()
	var index struct {
		Manifests []struct{ Digest string } `json:"manifests"`
	}
	b, _ := os.ReadFile(filepath.Join(dir, "index.json"))
	json.Unmarshal(b, &index)
	if len(index.Manifests) != 1 {
		t.Fatalf("index.json: %s", b)
	}
	blob := func(d string) string { return filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(d, "sha256:")) }
	var m struct {
		Layers []struct{ Digest string } `json:"layers"`
	}
	b, _ = os.ReadFile(blob(index.Manifests[0].Digest))
	json.Unmarshal(b, &m)
	out := map[string]bool{}
	for _, name := range strings.Split(strings.TrimSpace(acctest.RunIn(t, dir, "tar", "-tzf", blob(m.Layers[i].Digest))), "\n") {
		out[name] = true
	}
	return out
}

// TestAccStrataLayersExportGC drives the strata CLI over a real store:
// layers lists them with their images, export writes an image in other
// formats after its build, and gc --apply deletes the images no catalog
// version names and the layers only they used, but never a layer a running
// build holds.
func TestAccStrataLayersExportGC(t *testing.T) {
	e := acctest.Setup(t)
	cli := os.Getenv("STRATA_CLI")
	if cli == "" {
		t.Fatal("STRATA_CLI must name bin/strata (make test sets it)")
	}
	store := filepath.Join(acctest.Scratch(t), "store")
	catalogURL := "sqlite://" + filepath.Join(t.TempDir(), "catalog.db")
	strata := func(args ...string) string {
		t.Helper()
		return acctest.RunIn(t, store, cli, append([]string{"--store", store, "--catalog", catalogURL}, args...)...)
	}
	base := exporttest.ManifestOf(t, layeredBuild(t, e, store, map[string]string{"archive": baseArchive(t), "formats": `["tar"]`}, []string{"true"}))
	keptOut := layeredBuild(t, e, store, map[string]string{"parent": base.ImageID, "formats": `["tar.zst"]`}, []string{"echo kept > /etc/kept"})
	kept := exporttest.ManifestOf(t, keptOut)
	orphan := exporttest.ManifestOf(t, layeredBuild(t, e, store, map[string]string{"parent": base.ImageID, "formats": `["tar"]`}, []string{"echo orphan > /etc/orphan"}))
	held := exporttest.ManifestOf(t, layeredBuild(t, e, store, map[string]string{"parent": base.ImageID, "formats": `["tar"]`}, []string{"echo held > /etc/held"}))

	var ls []struct {
		DiffID string   `json:"diff_id"`
		Images []string `json:"images"`
	}
	json.Unmarshal([]byte(strata("layers", "--json")), &ls)
	if len(ls) != 4 {
		t.Fatalf("layers: %+v", ls)
	}
	for _, l := range ls {
		if l.DiffID == base.Layers[0].DiffID && len(l.Images) != 4 {
			t.Errorf("the base layer is used by %d images, want 4", len(l.Images))
		}
	}

	// export after the build: oci and squashfs of the kept child.
	out := filepath.Join(t.TempDir(), "exported")
	strata("export", kept.ImageID, "--format", "oci", "--format", "squashfs", "--output", out)
	strata("verify", out)
	if m := exporttest.ManifestOf(t, out); m.ImageID != kept.ImageID || len(m.Outputs) != 2 {
		t.Fatalf("the export's artifact.json: %+v", m)
	}
	acctest.RunIn(t, out, "umoci", "unpack", "--image", filepath.Join(out, "oci")+":latest", filepath.Join(t.TempDir(), "b"))

	// A build runs on the held image while gc runs.
	v := map[string]string{"store_dir": store, "parent": held.ImageID, "inline": hclList([]string{"touch /tmp/provisioning", "sleep 600"})}
	r := e.Start(t, t.TempDir(), acctest.Fixture("layered.pkr.hcl"), v)
	r.WaitForFile(t, filepath.Join(store, "work", "layer", "rootfs", "tmp", "provisioning"))

	strata("register", "app", "--from-output", keptOut, "--promote", "production")
	var gc struct {
		Store struct {
			Images []string `json:"images"`
			Layers []string `json:"layers"`
			InUse  []string `json:"in_use"`
		} `json:"store"`
	}
	json.Unmarshal([]byte(strata("gc", "--apply", "--min-age", "1ns", "--json")), &gc)
	has := func(list []string, s string) bool {
		for _, x := range list {
			if x == s {
				return true
			}
		}
		return false
	}
	if !has(gc.Store.Images, orphan.ImageID) || !has(gc.Store.Layers, orphan.Layers[1].DiffID) {
		t.Errorf("gc kept the unregistered image or its layer: %+v", gc.Store)
	}
	if has(gc.Store.Layers, kept.Layers[1].DiffID) || has(gc.Store.Layers, base.Layers[0].DiffID) {
		t.Errorf("gc deleted a layer a kept version needs: %+v", gc.Store)
	}
	if !has(gc.Store.InUse, held.Layers[1].DiffID) {
		t.Errorf("gc did not spare the layer a running build holds: %+v", gc.Store)
	}
	s := layertest.StoreOf(t, store)
	if _, err := s.Layer(held.Layers[1].DiffID); err != nil {
		t.Fatal("the held layer is gone")
	}
	syscall.Kill(-r.Cmd.Process.Pid, syscall.SIGINT)
	r.Wait(t, 2*time.Minute)
	acctest.AssertClean(t, store)
}

// TestAccLayerStoreIntegrity: a child's dir output built with
// source_date_epoch verifies, also after cp -a to another file system; a
// child checks its parent's layers before it mounts them, and a file
// changed in a stored parent layer stops the next child with an error
// naming the layer, nothing mounted or stored; files whose names OCI
// layers reserve for deletions are refused at commit, each named.
func TestAccLayerStoreIntegrity(t *testing.T) {
	e := acctest.Setup(t)
	cli := os.Getenv("STRATA_CLI")
	if cli == "" {
		t.Fatal("STRATA_CLI must name bin/strata (make test sets it)")
	}
	store := filepath.Join(acctest.Scratch(t), "store")
	parent := exporttest.ManifestOf(t, layeredBuild(t, e, store, map[string]string{"archive": baseArchive(t), "formats": `["tar"]`}, []string{"true"}))

	// A dir output verifies where it was written and after a copy.
	childOut := layeredBuild(t, e, store, map[string]string{"parent": parent.ImageID, "formats": `["dir"]`, "source_date_epoch": "1700000000"},
		[]string{"echo child > /etc/child", "dd if=/dev/zero of=/srv/zeros bs=64k count=4 2>/dev/null", "truncate -s 8M /srv/zeros", "echo end >> /srv/zeros"})
	acctest.RunIn(t, childOut, cli, "verify", childOut)
	mnt := filepath.Join(t.TempDir(), "tmpfs")
	os.Mkdir(mnt, 0o700)
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=1g"); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(mnt, unix.MNT_DETACH)
	acctest.RunIn(t, childOut, "cp", "-a", childOut, filepath.Join(mnt, "copy"))
	acctest.RunIn(t, mnt, cli, "verify", filepath.Join(mnt, "copy"))

	// What checking the parent costs, as the build reports it.
	good := e.Build(t, t.TempDir(), acctest.Fixture("layered.pkr.hcl"), map[string]string{"store_dir": store, "parent": parent.ImageID, "inline": hclList([]string{"true"})})
	if good.Code != 0 {
		t.Fatalf("a child: exit %d\n%s", good.Code, good.Output())
	}
	for _, line := range strings.Split(good.Output(), "\n") {
		if strings.Contains(line, "checked against their diffIDs") {
			t.Log(strings.TrimSpace(line))
		}
	}
	s := layertest.StoreOf(t, store)
	layers, images := counts(t, s)

	// Names an OCI layer reserves: refused at commit, each named.
	r := e.Build(t, t.TempDir(), acctest.Fixture("layered.pkr.hcl"), map[string]string{"store_dir": store, "parent": parent.ImageID,
		"inline": hclList([]string{"touch /.wh.etc /etc/.wh.passwd /root/.wh..wh..opq"})})
	for _, name := range []string{"/.wh.etc", "/etc/.wh.passwd", "/root/.wh..wh..opq"} {
		if r.Code == 0 || !strings.Contains(r.Output(), name) {
			t.Fatalf("a layer with %s: exit %d\n%s", name, r.Code, r.Output())
		}
	}
	if l, i := counts(t, s); l != layers || i != images {
		t.Fatalf("a refused commit left %d layers and %d images", l-layers, i-images)
	}
	acctest.AssertClean(t, store)

	// A parent layer changed in the store (as any root process could):
	// the child stops before anything of it is committed.
	base, err := s.Layer(parent.Layers[0].DiffID)
	if err != nil {
		t.Fatal(err)
	}
	passwd := filepath.Join(base.Dir, "etc", "passwd")
	b, err := os.ReadFile(passwd)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(passwd, append(b, "evil::0:0::/:/bin/sh\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	r = e.Build(t, t.TempDir(), acctest.Fixture("layered.pkr.hcl"), map[string]string{"store_dir": store, "parent": parent.ImageID, "inline": hclList([]string{"true"})})
	if r.Code == 0 || !strings.Contains(r.Output(), base.DiffID) || !strings.Contains(r.Output(), "changed after it was committed") {
		t.Fatalf("a child on a tampered parent: exit %d\n%s", r.Code, r.Output())
	}
	if l, i := counts(t, s); l != layers || i != images {
		t.Fatalf("the refused child left %d layers and %d images", l-layers, i-images)
	}
	acctest.AssertClean(t, store)
	out, _ := exec.Command(cli, "--store", store, "verify", "--layers").CombinedOutput()
	if !strings.Contains(string(out), base.DiffID) || !strings.Contains(string(out), "DAMAGED") {
		t.Errorf("strata verify --layers: %s", out)
	}
}
