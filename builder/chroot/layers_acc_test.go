package chroot

// End-to-end tests of layered images: a child built on a parent's layers
// must flatten to exactly what one build of the same steps gives; layers
// are stored once; failed and cancelled children leave nothing; the OCI
// output is read by real OCI tools.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/strata-build/packer-plugin-strata/export/exporttest"
	"github.com/strata-build/packer-plugin-strata/internal/acctest"
	"github.com/strata-build/packer-plugin-strata/internal/mount"
	"github.com/strata-build/packer-plugin-strata/internal/treetar"
	"github.com/strata-build/packer-plugin-strata/layer"
	"github.com/strata-build/packer-plugin-strata/layer/layertest"
)

// The steps of the layered pipeline: the parent's, the child's (every hard
// case of a layer diff) and the grandchild's.
var (
	stepParent = []string{
		"set -e",
		"mkdir -p /srv/t/dir-to-file /srv/t/opaque/sub /srv/t/keep",
		"echo parent > /srv/t/gone",
		"echo a > /srv/t/opaque/sub/a && echo b > /srv/t/opaque/b",
		"echo f > /srv/t/dir-to-file/f",
		"ln -s /etc /srv/t/link-to-dir",
		"echo linked > /srv/t/hl-src",
		"echo renamed > /srv/t/rename-me",
		"echo keep > /srv/t/keep/k",
		"mknod /srv/t/null c 1 3 && mkfifo /srv/t/fifo",
		"chown 1234:5678 /srv/t/keep/k",
	}
	stepChild = []string{
		"set -e",
		"rm /srv/t/gone",
		"rm -rf /srv/t/dir-to-file && echo now-a-file > /srv/t/dir-to-file",
		"rm /srv/t/link-to-dir && mkdir /srv/t/link-to-dir && echo x > /srv/t/link-to-dir/x",
		"rm -rf /srv/t/opaque && mkdir /srv/t/opaque && echo new > /srv/t/opaque/new",
		"ln /srv/t/hl-src /srv/t/hl-dst",
		"dd if=/dev/zero of=/srv/t/sparse bs=1 count=0 seek=1G 2>/dev/null && echo end >> /srv/t/sparse",
		"mv /srv/t/rename-me /srv/t/renamed",
		"chmod 4755 /usr/local/bin/capfile",
		"echo changed >> /srv/t/keep/k",
	}
	stepGrandchild = []string{
		"set -e",
		"rm -rf /srv/t/opaque/new /srv/t/hl-dst",
		"echo grand > /srv/t/grand",
		"mkdir /srv/t/gone && echo back-as-dir > /srv/t/gone/f",
		"truncate -s 0 /srv/t/keep/k",
	}
)

// capArchive is the base image with a file capability on /usr/local/bin/capfile.
func capArchive(t *testing.T) string {
	return makeArchive(t, func(tree string) {
		p := filepath.Join(tree, "usr/local/bin/capfile")
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755)
		if err := unix.Setxattr(p, "security.capability", []byte{0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 0); err != nil {
			t.Fatal(err)
		}
	})
}

func concat(steps ...[]string) []string {
	var out []string
	for _, s := range steps {
		out = append(out, s...)
	}
	return out
}

func hclList(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(q, ",") + "]"
}

// layeredBuild runs one build of layered.pkr.hcl and returns its output dir.
func layeredBuild(t *testing.T, e *acctest.Env, store string, vars map[string]string, inline []string) string {
	t.Helper()
	v := map[string]string{"store_dir": store, "inline": hclList(inline)}
	for k, x := range vars {
		v[k] = x
	}
	dir := t.TempDir()
	r := e.Build(t, dir, acctest.Fixture("layered.pkr.hcl"), v)
	if r.Code != 0 {
		t.Fatalf("exit %d:\n%s", r.Code, r.Output())
	}
	acctest.AssertClean(t, store)
	return filepath.Join(dir, "output")
}

// entryOf is what the comparison looks at in one tree entry.
type entryOf struct {
	Type, Mode, UID, GID uint32
	Size                 int64
	Content, Link        string
	Xattrs               map[string]string
	Rdev                 uint64
}

// describe walks a tree into comparable entries (no times, no inodes).
func describe(t *testing.T, root string) map[string]entryOf {
	t.Helper()
	out := map[string]entryOf{}
	err := filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		e := entryOf{Type: st.Mode & unix.S_IFMT, Mode: st.Mode & 0o7777, UID: st.Uid, GID: st.Gid}
		x, _ := treetar.ReadXattrs(p)
		e.Xattrs = x
		switch e.Type {
		case unix.S_IFREG:
			e.Size = st.Size
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			h := sha256.New()
			io.Copy(h, f)
			f.Close()
			e.Content = hex.EncodeToString(h.Sum(nil))
		case unix.S_IFLNK:
			e.Link, _ = os.Readlink(p)
		case unix.S_IFCHR, unix.S_IFBLK:
			e.Rdev = st.Rdev
		}
		if rel == "." {
			e = entryOf{Type: e.Type, Mode: e.Mode, UID: e.UID, GID: e.GID}
		}
		out[rel] = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func compareTrees(t *testing.T, what, a, b string) {
	t.Helper()
	ta, tb := describe(t, a), describe(t, b)
	var diffs []string
	for p, ea := range ta {
		eb, ok := tb[p]
		if !ok {
			diffs = append(diffs, "only in the first: "+p)
			continue
		}
		if fmt.Sprint(ea) != fmt.Sprint(eb) {
			diffs = append(diffs, fmt.Sprintf("%s differs:\n    first  %+v\n    second %+v", p, ea, eb))
		}
	}
	for p := range tb {
		if _, ok := ta[p]; !ok {
			diffs = append(diffs, "only in the second: "+p)
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		if len(diffs) > 30 {
			diffs = append(diffs[:30], fmt.Sprintf("... and %d more", len(diffs)-30))
		}
		t.Errorf("%s: %d differences:\n%s", what, len(diffs), strings.Join(diffs, "\n"))
	}
}

func counts(t *testing.T, s *layer.Store) (int, int) {
	t.Helper()
	ls, err := s.Layers()
	if err != nil {
		t.Fatal(err)
	}
	is, err := s.Images()
	if err != nil {
		t.Fatal(err)
	}
	return len(ls), len(is)
}

// TestAccLayeredEqualsFullBuild: parent + child (+ grandchild) flattened
// equals one full build of the same steps, file by file, over every hard
// case of a layer diff; the OCI output unpacks (umoci; skopeo for zstd) to
// the same tree and skopeo reads it; with oci_compression = "zstd" its
// layers are zstd blobs (gzip by default), each decompressing to its DiffID.
func TestAccLayeredEqualsFullBuild(t *testing.T) {
	e := acctest.Setup(t)
	archive := capArchive(t)
	store := filepath.Join(acctest.Scratch(t), "store")

	parentOut := layeredBuild(t, e, store, map[string]string{"archive": archive}, stepParent)
	parent := exporttest.ManifestOf(t, parentOut)
	childOut := layeredBuild(t, e, store, map[string]string{"parent": parent.ImageID, "formats": `["dir", "oci"]`, "image_version": "1.2.3"}, stepChild)
	child := exporttest.ManifestOf(t, childOut)
	grandOut := layeredBuild(t, e, store, map[string]string{"parent": child.ImageID[:19], "formats": `["dir", "oci"]`, "oci_compression": "zstd"}, stepGrandchild)
	grand := exporttest.ManifestOf(t, grandOut)
	fullChild := layeredBuild(t, e, store, map[string]string{"archive": archive}, concat(stepParent, stepChild[1:]))
	fullGrand := layeredBuild(t, e, store, map[string]string{"archive": archive}, concat(stepParent, stepChild[1:], stepGrandchild[1:]))

	if len(child.Layers) != 2 || child.ParentImageID != parent.ImageID || len(grand.Layers) != 3 || grand.ParentImageID != child.ImageID {
		t.Fatalf("lineage: child %+v, grandchild %+v", child, grand)
	}
	if child.Layers[0] != parent.Layers[0] || grand.Layers[1] != child.Layers[1] {
		t.Fatal("a child does not reuse its parent's layers")
	}
	// The child's layer holds its change and nothing of the builder's.
	entries := layerEntries(t, filepath.Join(childOut, "oci"), 1)
	for _, want := range []string{"./srv/t/.wh.gone", "./srv/t/opaque/", "./srv/t/opaque/.wh..wh..opq", "./srv/t/opaque/new",
		"./srv/t/dir-to-file", "./srv/t/link-to-dir/x", "./srv/t/hl-dst", "./srv/t/.wh.rename-me", "./srv/t/renamed", "./usr/local/bin/capfile"} {
		if !entries[want] {
			t.Errorf("the child's layer lacks %s", want)
		}
	}
	for e := range entries {
		for _, bad := range []string{"resolv.conf", "policy-rc.d", "/var/lib/apt/lists/", "/tmp/", "/proc", "/dev/pts", "/run/", "machine-id", "./srv/t/keep/k.", "./etc/hostname"} {
			if strings.Contains(e, bad) {
				t.Errorf("the child's layer carries %s", e)
			}
		}
	}
	t.Logf("child layer: %d entries", len(entries))
	compareTrees(t, "parent+child vs one build", filepath.Join(childOut, "rootfs"), filepath.Join(fullChild, "rootfs"))
	compareTrees(t, "three layers vs one build", filepath.Join(grandOut, "rootfs"), filepath.Join(fullGrand, "rootfs"))

	// The sparse file stayed sparse through the layer.
	var st unix.Stat_t
	unix.Stat(filepath.Join(childOut, "rootfs/srv/t/sparse"), &st)
	if st.Size != 1<<30+4 || st.Blocks*512 > 1<<20 {
		t.Errorf("the sparse file: %d bytes, %d on disk", st.Size, st.Blocks*512)
	}

	// OCI: skopeo reads it, umoci unpacks it to the same tree.
	for _, o := range []struct{ out, ref string }{{childOut, "1.2.3"}, {grandOut, "latest"}} {
		insp := acctest.RunIn(t, o.out, "skopeo", "inspect", "--raw", "oci:"+filepath.Join(o.out, "oci")+":"+o.ref)
		var m struct {
			Layers []struct {
				MediaType string `json:"mediaType"`
			} `json:"layers"`
			Annotations map[string]string `json:"annotations"`
		}
		if err := json.Unmarshal([]byte(insp), &m); err != nil {
			t.Fatalf("skopeo inspect: %v\n%s", err, insp)
		}
		if len(m.Layers) != len(exporttest.ManifestOf(t, o.out).Layers) || m.Annotations["org.opencontainers.image.base.name"] != "test-parent" ||
			m.Annotations["org.opencontainers.image.base.digest"] == "" || m.Annotations["org.opencontainers.image.created"] == "" {
			t.Errorf("the OCI manifest: %s", insp)
		}
		cfg := acctest.RunIn(t, o.out, "skopeo", "inspect", "--config", "oci:"+filepath.Join(o.out, "oci")+":"+o.ref)
		if !strings.Contains(cfg, `"org.example.test": "layered"`) {
			t.Errorf("the OCI config lacks the label: %s", cfg)
		}
	}
	// Each layer blob is compressed as oci_compression says (gzip by
	// default, zstd for the grandchild) and decompresses, with gzip and zstd
	// themselves, to the DiffID the config lists.
	for _, o := range []struct{ out, ref, compression string }{{childOut, "1.2.3", "gzip"}, {grandOut, "latest", "zstd"}} {
		checkOCILayers(t, filepath.Join(o.out, "oci"), o.ref, o.compression, len(exporttest.ManifestOf(t, o.out).Layers))
	}
	if !strings.Contains(acctest.RunIn(t, childOut, "skopeo", "inspect", "oci:"+filepath.Join(childOut, "oci")+":1.2.3"), `"org.opencontainers.image.version": "1.2.3"`) {
		t.Error("the version annotation or label is missing")
	}
	// umoci unpacks the child's gzip layers to its tree. umoci 0.4 reads no
	// zstd layers: skopeo (containers/image, another zstd decoder) converts
	// the grandchild's to gzip first, then umoci unpacks them to its tree.
	bundle := filepath.Join(t.TempDir(), "bundle")
	acctest.RunIn(t, childOut, "umoci", "unpack", "--image", filepath.Join(childOut, "oci")+":1.2.3", bundle)
	compareTrees(t, "umoci unpack vs dir output (child, gzip)", filepath.Join(bundle, "rootfs"), filepath.Join(childOut, "rootfs"))
	converted := filepath.Join(t.TempDir(), "gzip")
	acctest.RunIn(t, grandOut, "skopeo", "copy", "--dest-compress-format", "gzip", "oci:"+filepath.Join(grandOut, "oci")+":latest", "oci:"+converted+":latest")
	bundle = filepath.Join(t.TempDir(), "bundle")
	acctest.RunIn(t, grandOut, "umoci", "unpack", "--image", converted+":latest", bundle)
	compareTrees(t, "skopeo zstd->gzip, umoci unpack vs dir output (grandchild)", filepath.Join(bundle, "rootfs"), filepath.Join(grandOut, "rootfs"))

	// The config digest is the image ID.
	cfgDigest := strings.TrimSpace(acctest.RunIn(t, grandOut, "sh", "-c", "skopeo inspect --config --raw oci:"+filepath.Join(grandOut, "oci")+":latest | sha256sum | cut -d' ' -f1"))
	if "sha256:"+cfgDigest != grand.ImageID {
		t.Errorf("the OCI config's digest %s is not the image ID %s", cfgDigest, grand.ImageID)
	}
	if cli := os.Getenv("STRATA_CLI"); cli != "" {
		acctest.RunIn(t, grandOut, cli, "verify", grandOut)
	}
}

// checkOCILayers: the OCI layout's image ref has n layers, each of media
// type tar+compression, whose blob decompressed by the compressor's own
// command has the sha256 the config lists as its DiffID.
func checkOCILayers(t *testing.T, layout, ref, compression string, n int) {
	t.Helper()
	var m struct {
		Layers []struct {
			MediaType, Digest string
		} `json:"layers"`
	}
	var cfg struct {
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}
	raw := acctest.RunIn(t, layout, "skopeo", "inspect", "--raw", "oci:"+layout+":"+ref)
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		t.Fatal(err)
	}
	rawCfg := acctest.RunIn(t, layout, "skopeo", "inspect", "--config", "--raw", "oci:"+layout+":"+ref)
	if err := json.Unmarshal([]byte(rawCfg), &cfg); err != nil {
		t.Fatal(err)
	}
	if len(m.Layers) != n || len(cfg.RootFS.DiffIDs) != n {
		t.Fatalf("%s: %d layers and %d diff_ids, want %d", layout, len(m.Layers), len(cfg.RootFS.DiffIDs), n)
	}
	for i, l := range m.Layers {
		if want := "application/vnd.oci.image.layer.v1.tar+" + compression; l.MediaType != want {
			t.Errorf("%s layer %d: media type %s, want %s", layout, i, l.MediaType, want)
		}
		blob := filepath.Join(layout, "blobs", "sha256", strings.TrimPrefix(l.Digest, "sha256:"))
		sum := strings.Fields(acctest.RunIn(t, layout, "sh", "-c", compression+` -dc <"$1" | sha256sum`, "sh", blob))[0]
		if "sha256:"+sum != cfg.RootFS.DiffIDs[i] {
			t.Errorf("%s layer %d: %s -dc gives sha256:%s, the config's DiffID is %s", layout, i, compression, sum, cfg.RootFS.DiffIDs[i])
		}
	}
}

// TestAccChildrenShareAndFailuresLeaveNothing: two children of one parent
// share the parent's layer on disk; a child whose provisioner fails, or that
// is interrupted, leaves no layer, no image and no mount; a killed child is
// cleaned up by the next build.
func TestAccChildrenShareAndFailuresLeaveNothing(t *testing.T) {
	e := acctest.Setup(t)
	store := filepath.Join(acctest.Scratch(t), "store")
	parent := exporttest.ManifestOf(t, layeredBuild(t, e, store, map[string]string{"archive": baseArchive(t), "formats": `["tar"]`}, []string{"echo parent > /etc/parent"}))
	a := exporttest.ManifestOf(t, layeredBuild(t, e, store, map[string]string{"parent": parent.ImageID, "formats": `["oci"]`}, []string{"echo a > /etc/a"}))
	b := exporttest.ManifestOf(t, layeredBuild(t, e, store, map[string]string{"parent": parent.ImageID, "formats": `["oci"]`}, []string{"echo b > /etc/b"}))
	s := layertest.StoreOf(t, store)
	if a.Layers[0] != b.Layers[0] {
		t.Fatal("the children do not share the base layer")
	}
	base, err := s.Layer(a.Layers[0].DiffID)
	if err != nil {
		t.Fatal(err)
	}
	users, _ := s.ImagesUsing(base.DiffID)
	if len(users) != 3 {
		t.Errorf("the base layer is used by %d images, want 3 (parent and two children)", len(users))
	}
	if a.Layers[1].Size > 1<<20 || b.Layers[1].Size > 1<<20 {
		t.Errorf("a child's layer holds more than its change: %d and %d bytes", a.Layers[1].Size, b.Layers[1].Size)
	}
	layers, images := counts(t, s)

	// A failing provisioner.
	v := map[string]string{"store_dir": store, "parent": parent.ImageID, "inline": hclList([]string{"echo doomed > /etc/doomed", "exit 7"})}
	r := e.Build(t, t.TempDir(), acctest.Fixture("layered.pkr.hcl"), v)
	if r.Code == 0 {
		t.Fatal("a failing child succeeded")
	}
	if l, i := counts(t, s); l != layers || i != images {
		t.Fatalf("a failed child left %d layers and %d images behind", l-layers, i-images)
	}
	acctest.AssertClean(t, store)

	// Ctrl-C in the middle.
	v["inline"] = hclList([]string{"touch /tmp/provisioning", "sleep 600"})
	r = e.Start(t, t.TempDir(), acctest.Fixture("layered.pkr.hcl"), v)
	r.WaitForFile(t, filepath.Join(store, "work", "layer", "rootfs", "tmp", "provisioning"))
	syscall.Kill(-r.Cmd.Process.Pid, syscall.SIGINT)
	r.Wait(t, 2*time.Minute)
	if r.Code == 0 {
		t.Fatal("an interrupted child exited 0")
	}
	if l, i := counts(t, s); l != layers || i != images {
		t.Fatalf("a cancelled child left %d layers and %d images behind", l-layers, i-images)
	}
	acctest.AssertClean(t, store)

	// SIGKILL, then a new child with the same work dir.
	r = e.Start(t, t.TempDir(), acctest.Fixture("layered.pkr.hcl"), v)
	r.WaitForFile(t, filepath.Join(store, "work", "layer", "rootfs", "tmp", "provisioning"))
	killPacker(t, r)
	if ms, _ := mount.Under(filepath.Join(store, "work")); len(ms) == 0 {
		t.Fatal("expected the killed child's overlay to be left")
	}
	v["inline"] = hclList([]string{"true"})
	r = e.Build(t, t.TempDir(), acctest.Fixture("layered.pkr.hcl"), v)
	if r.Code != 0 || !strings.Contains(r.Output(), "Cleaned up after an earlier build") {
		t.Fatalf("the rebuild: exit %d\n%s", r.Code, r.Output())
	}
	acctest.AssertClean(t, store)
}

// TestAccReproducibleImageID: two builds of the same template with
// source_date_epoch give the same layer diffIDs and image ID, also when a
// provisioner installs a package from the mirror.
func TestAccReproducibleImageID(t *testing.T) {
	e := acctest.Setup(t)
	store := filepath.Join(acctest.Scratch(t), "store")
	vars := map[string]string{"archive": baseArchive(t), "formats": `["tar"]`, "source_date_epoch": "1700000000"}
	var base []string
	for i := 0; i < 2; i++ {
		base = append(base, exporttest.ManifestOf(t, layeredBuild(t, e, store, vars, []string{"echo same > /etc/same"})).ImageID)
	}
	if base[0] != base[1] {
		t.Fatalf("two builds gave %s and %s", base[0], base[1])
	}
	var child []string
	var diffs []string
	for i := 0; i < 2; i++ {
		m := exporttest.ManifestOf(t, layeredBuild(t, e, store, map[string]string{"parent": base[0], "formats": `["oci"]`, "source_date_epoch": "1700000000"},
			[]string{"apt-get update -qq", "apt-get install -y -qq --no-install-recommends jq >/dev/null", "jq --version"}))
		child = append(child, m.ImageID)
		diffs = append(diffs, m.Layers[1].DiffID)
	}
	if diffs[0] != diffs[1] || child[0] != child[1] {
		t.Fatalf("a child that installs jq: layers %v, images %v", diffs, child)
	}
}

// TestAccOverlayUnsupportedStore: a parent build whose work dir lies on a
// file system that cannot hold an overlay upper dir fails before any mount.
func TestAccOverlayUnsupportedStore(t *testing.T) {
	e := acctest.Setup(t)
	store := filepath.Join(acctest.Scratch(t), "store")
	parent := exporttest.ManifestOf(t, layeredBuild(t, e, store, map[string]string{"archive": baseArchive(t), "formats": `["tar"]`}, []string{"true"}))
	// An overlayfs mount to put the work dir on.
	dir := acctest.Scratch(t)
	for _, d := range []string{"lower", "upper", "work", "merged"} {
		os.MkdirAll(filepath.Join(dir, d), 0o700)
	}
	if err := mount.Mount(mount.Spec{FSType: "overlay", Source: "overlay", Target: filepath.Join(dir, "merged"),
		Options: "lowerdir=" + filepath.Join(dir, "lower") + ",upperdir=" + filepath.Join(dir, "upper") + ",workdir=" + filepath.Join(dir, "work")}); err != nil {
		t.Fatal(err)
	}
	v := map[string]string{"store_dir": store, "parent": parent.ImageID, "work_dir": filepath.Join(dir, "merged", "w"), "inline": hclList([]string{"true"})}
	r := e.Build(t, t.TempDir(), acctest.Fixture("layered.pkr.hcl"), v)
	if r.Code == 0 || !strings.Contains(r.Output(), "cannot hold an overlay's upper dir") {
		t.Fatalf("exit %d:\n%s", r.Code, r.Output())
	}
	if ms, _ := mount.Under(filepath.Join(dir, "merged")); len(ms) != 1 {
		t.Fatalf("the refused build mounted something: %+v", ms)
	}
	if out, err := exec.Command("umount", filepath.Join(dir, "merged")).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
}
