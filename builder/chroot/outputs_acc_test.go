package chroot

// End-to-end tests of the outputs: sparse files stay sparse, an unchanged
// archive gives the same digest, the plugin can be reinstalled mid-build,
// and artifact.json says what the output dir holds.

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/strata-build/packer-plugin-strata/export"
	"github.com/strata-build/packer-plugin-strata/export/exporttest"
	"github.com/strata-build/packer-plugin-strata/internal/acctest"
	"github.com/strata-build/packer-plugin-strata/internal/bytesize"
)

// TestAccSparseStaysSparse: an archive of 40 KB holding a 2 GiB file with a
// hole gives small tar and ext4 outputs, and the sizes reported are what
// the tree takes on disk.
func TestAccSparseStaysSparse(t *testing.T) {
	e := acctest.Setup(t)
	tree := t.TempDir()
	for _, d := range []string{"etc", "tmp", "var/lib"} {
		os.MkdirAll(filepath.Join(tree, d), 0o755)
	}
	f, _ := os.Create(filepath.Join(tree, "var/lib/disk.img"))
	f.WriteAt([]byte("data at the start"), 0)
	f.WriteAt([]byte("data at the end"), 2<<30-15)
	f.Close()
	archive := filepath.Join(t.TempDir(), "sparse.tar.gz")
	acctest.RunIn(t, tree, "tar", "-czSf", archive, ".")
	if fi, _ := os.Stat(archive); fi.Size() > 100<<10 {
		t.Fatalf("the archive is %d bytes", fi.Size())
	}
	store := filepath.Join(acctest.Scratch(t), "store")
	dir := t.TempDir()
	r := e.Build(t, dir, acctest.Fixture("noprov.pkr.hcl"), map[string]string{"store_dir": store, "archive": archive, "formats": `["tar", "tar.zst", "ext4"]`})
	if r.Code != 0 {
		t.Fatalf("exit %d:\n%s", r.Code, r.Output())
	}
	for _, o := range []string{"rootfs.tar", "rootfs.tar.zst", "rootfs.ext4"} {
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join(dir, "output-plain", o), &st); err != nil {
			t.Fatal(err)
		}
		if st.Blocks*512 > 150<<20 {
			t.Errorf("%s takes %s on disk: the hole was filled", o, bytesize.Human(st.Blocks*512))
		}
	}
	x := t.TempDir()
	acctest.RunIn(t, x, "tar", "-xf", filepath.Join(dir, "output-plain", "rootfs.tar"))
	var st unix.Stat_t
	unix.Stat(filepath.Join(x, "var/lib/disk.img"), &st)
	if st.Size != 2<<30 || st.Blocks*512 > 1<<20 {
		t.Errorf("the file in the tar: %d bytes, %d on disk", st.Size, st.Blocks*512)
	}
	acctest.AssertClean(t, store)
}

// TestAccUnchangedArchiveSameDigest: a build of an unchanged archive with no
// provisioners gives the same rootfs digest every time, and what it gives is
// the archive's own tree. The oracle is GNU tar, not strata: the input is an
// archive GNU tar made of the base image (its setuid files among them)
// plus hard cases (a file capability, xattrs, a hard link, a fifo, a
// device node, odd owners and times), and GNU tar unpacks it and the output rootfs.tar to trees equal
// entry by entry (type, mode, owner, content, link, device, xattrs, hard
// links) and time by time. The builder puts back everything it touched
// (resolv.conf, policy-rc.d, mount points) with its directory's times.
func TestAccUnchangedArchiveSameDigest(t *testing.T) {
	e := acctest.Setup(t)
	store := filepath.Join(acctest.Scratch(t), "store")
	old := time.Unix(1234567890, 0)
	archive := makeArchive(t, func(tree string) {
		d := filepath.Join(tree, "srv/cases")
		steps := []error{
			os.MkdirAll(filepath.Join(d, "sub"), 0o750),
			os.WriteFile(filepath.Join(d, "capfile"), []byte("#!/bin/sh\n"), 0o755),
			unix.Setxattr(filepath.Join(d, "capfile"), "security.capability", []byte{0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 0),
			unix.Setxattr(filepath.Join(d, "sub"), "user.strata", []byte("on a directory"), 0),
			os.Link(filepath.Join(d, "capfile"), filepath.Join(d, "sub/hardlink")),
			unix.Mkfifo(filepath.Join(d, "fifo"), 0o640),
			unix.Mknod(filepath.Join(d, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))),
			os.Symlink("../etc/os-release", filepath.Join(d, "link")),
			os.Lchown(filepath.Join(d, "link"), 4321, 8765),
			os.Chown(filepath.Join(d, "sub"), 1234, 5678),
			unix.Lutimes(filepath.Join(d, "link"), []unix.Timeval{unix.NsecToTimeval(old.UnixNano()), unix.NsecToTimeval(old.UnixNano())}),
			os.Chtimes(filepath.Join(d, "sub"), old, old),
			os.Chtimes(d, old, old),
		}
		for i, err := range steps {
			if err != nil {
				t.Fatalf("making the hard cases (step %d): %v", i, err)
			}
		}
	})
	var digests, outs []string
	for i := 0; i < 2; i++ {
		dir := t.TempDir()
		r := e.Build(t, dir, acctest.Fixture("noprov.pkr.hcl"), map[string]string{"store_dir": store, "archive": archive})
		if r.Code != 0 {
			t.Fatalf("exit %d:\n%s", r.Code, r.Output())
		}
		outs = append(outs, filepath.Join(dir, "output-plain"))
		digests = append(digests, exporttest.ManifestOf(t, outs[i]).RootfsDigest)
	}
	if digests[0] != digests[1] {
		t.Fatalf("two builds of the same archive: %s and %s", digests[0], digests[1])
	}
	acctest.AssertClean(t, store)
	in, out := unpack(t, archive), unpack(t, filepath.Join(outs[0], "rootfs.tar"))
	compareTrees(t, "the output (first) against the input archive (second)", out, in)
	compareTimes(t, out, in)
	a, errA := os.Stat(filepath.Join(out, "srv/cases/capfile"))
	b, errB := os.Stat(filepath.Join(out, "srv/cases/sub/hardlink"))
	if errA != nil || errB != nil || !os.SameFile(a, b) {
		t.Errorf("the hard link came out as a copy (%v %v)", errA, errB)
	}
}

// compareTimes fails for every entry whose modification time differs
// between two trees (entries only in one are compareTrees' business).
func compareTimes(t *testing.T, got, want string) {
	t.Helper()
	times := func(root string) map[string]unix.Timespec {
		m := map[string]unix.Timespec{}
		filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			var st unix.Stat_t
			if unix.Lstat(p, &st) == nil {
				rel, _ := filepath.Rel(root, p)
				m[rel] = st.Mtim
			}
			return nil
		})
		return m
	}
	g, w := times(got), times(want)
	var diffs []string
	for p, tw := range w {
		if tg, ok := g[p]; ok && tg != tw {
			diffs = append(diffs, fmt.Sprintf("%s: %s, the archive has %s", p,
				time.Unix(tg.Unix()).UTC().Format(time.RFC3339Nano), time.Unix(tw.Unix()).UTC().Format(time.RFC3339Nano)))
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		t.Errorf("%d modification times differ:\n%s", len(diffs), strings.Join(diffs, "\n"))
	}
}

// TestAccMakeInstallWhileBuilding: installing the plugin while a build runs
// it replaces the files by rename; the running build carries on.
func TestAccMakeInstallWhileBuilding(t *testing.T) {
	e := acctest.Setup(t)
	vars := archiveVars(t, baseArchive(t), "touch /tmp/provisioning", "sleep 3")
	r := e.Start(t, t.TempDir(), acctest.Fixture("archive.pkr.hcl"), vars)
	r.WaitForFile(t, filepath.Join(vars["store_dir"], "work", "app", "rootfs", "tmp", "provisioning"))
	cmd := exec.Command("../../tools/install-plugin.sh", e.Packer, os.Getenv("STRATA_PLUGIN"), "github.com/strata-build/strata")
	cmd.Env = append(os.Environ(), "PACKER_PLUGIN_PATH="+e.PluginDir, "CHECKPOINT_DISABLE=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("install while a build runs: %v\n%s", err, out)
	}
	r.Wait(t, 5*time.Minute)
	if r.Code != 0 {
		t.Fatalf("the running build failed after the install:\n%s", r.Output())
	}
	acctest.AssertClean(t, vars["store_dir"])
}

// TestAccArtifactJSON: artifact.json is snake_case with a schema version,
// and every .sha256 in an output dir checks with sha256sum -c.
func TestAccArtifactJSON(t *testing.T) {
	r, _ := baseBuild(t)
	out := filepath.Join(r.Dir, "output-base")
	b, err := os.ReadFile(filepath.Join(out, export.ManifestName))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]interface{}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m["schema_version"] != float64(export.ManifestSchemaVersion) {
		t.Errorf("schema_version: %v", m["schema_version"])
	}
	for _, o := range m["outputs"].([]interface{}) {
		for k := range o.(map[string]interface{}) {
			if k != strings.ToLower(k) {
				t.Errorf("outputs key %q is not snake_case", k)
			}
		}
	}
	sums, _ := filepath.Glob(filepath.Join(out, "*.sha256"))
	if len(sums) < 5 {
		t.Fatalf("checksum files: %v", sums)
	}
	for _, s := range sums {
		acctest.RunIn(t, out, "sha256sum", "-c", filepath.Base(s))
	}
	if cli := os.Getenv("STRATA_CLI"); cli != "" {
		if o := acctest.RunIn(t, out, cli, "verify", out); !strings.Contains(o, "every output matches") {
			t.Errorf("strata verify: %s", o)
		}
	}
}
