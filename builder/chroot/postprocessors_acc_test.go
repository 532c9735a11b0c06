package chroot

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-build/packer-plugin-strata/internal/acctest"
)

// TestAccPackerPostProcessors runs Packer's own checksum, compress and
// manifest post-processors after every output format: they get the
// artifact's regular files (the dir output as its tree checksum file), never
// a directory, and the build log names the directories left out.
func TestAccPackerPostProcessors(t *testing.T) {
	e := acctest.Setup(t)
	archive := baseArchive(t)
	for _, c := range []struct {
		formats []string
		files   []string // what the checksum file and the tarball must hold
		dirs    []string // outputs left out of Files()
	}{
		{[]string{"dir"}, []string{"rootfs.tree-sha256", "artifact.json", "packages.tsv"}, []string{"rootfs"}},
		{[]string{"tar.zst", "squashfs", "ext4", "oci"}, []string{"rootfs.tar.zst", "rootfs.tar.zst.sha256", "rootfs.squashfs", "rootfs.ext4", "artifact.json"}, []string{"oci"}},
	} {
		name := strings.Join(c.formats, "+")
		t.Run(name, func(t *testing.T) {
			store := filepath.Join(acctest.Scratch(t), "store")
			dir := t.TempDir()
			r := e.Build(t, dir, acctest.Fixture("postprocessors.pkr.hcl"), map[string]string{"store_dir": store, "archive": archive, "formats": hclList(c.formats)})
			acctest.AssertClean(t, store)
			if r.Code != 0 {
				t.Fatalf("exit %d:\n%s", r.Code, r.Output())
			}
			out := filepath.Join(dir, "output-pp")
			for _, d := range c.dirs {
				if !strings.Contains(r.Output(), filepath.Join(out, d)) || !strings.Contains(r.Output(), "not among the files post-processors get") {
					t.Errorf("the artifact's description does not name the directory %s:\n%s", d, r.Output())
				}
			}
			// checksum: every line verifies (it names files by base name).
			sums := acctest.RunIn(t, out, "sha256sum", "--strict", "-c", filepath.Join(dir, "checksums/sha256.txt"))
			listing := acctest.RunIn(t, dir, "tar", "-tzf", "compressed/image.tar.gz")
			b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
			if err != nil {
				t.Fatal(err)
			}
			var m struct {
				Builds []struct {
					Files []struct {
						Name string `json:"name"`
					} `json:"files"`
				} `json:"builds"`
			}
			if err := json.Unmarshal(b, &m); err != nil || len(m.Builds) != 1 {
				t.Fatalf("manifest.json: %v\n%s", err, b)
			}
			var manifestFiles []string
			for _, f := range m.Builds[0].Files {
				manifestFiles = append(manifestFiles, filepath.Base(f.Name))
			}
			for _, f := range c.files {
				if !strings.Contains("\n"+sums, "\n"+f+": OK") {
					t.Errorf("checksum did not verify %s:\n%s", f, sums)
				}
				if !strings.Contains("\n"+listing, "\n"+f+"\n") && !strings.Contains(listing, "/"+f+"\n") {
					t.Errorf("compress did not pack %s:\n%s", f, listing)
				}
				if !strings.Contains(strings.Join(manifestFiles, " ")+" ", f+" ") {
					t.Errorf("manifest lacks %s: %v", f, manifestFiles)
				}
			}
			for _, d := range c.dirs {
				if strings.Contains("\n"+sums, "\n"+d+":") {
					t.Errorf("the directory %s reached the checksum post-processor", d)
				}
			}
		})
	}
}
