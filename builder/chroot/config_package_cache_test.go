package chroot

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-build/packer-plugin-strata/export"
)

// TestReadSnapshot reads package_cache.snapshot in both forms it takes: a
// build's artifact.json, as export writes it, and a plain map of InRelease
// URLs to sha256; and refuses files that pin nothing or pin no digest.
func TestReadSnapshot(t *testing.T) {
	const url = "http://deb.example/debian/dists/bookworm/InRelease"
	hex := strings.Repeat("ab", 32)
	dir := t.TempDir()

	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	m := &export.Manifest{ImageID: "sha256:" + hex, PackageSnapshot: &export.PackageSnapshot{ID: "x", Releases: map[string]string{url: "sha256:" + hex}}}
	if err := export.WriteManifest(out, m); err != nil {
		t.Fatal(err)
	}
	snap, err := readSnapshot(filepath.Join(out, export.ManifestName))
	if err != nil || len(snap) != 1 || snap[url] != hex {
		t.Fatalf("artifact.json: got %v, %v; want %s -> %s", snap, err, url, hex)
	}

	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	snap, err = readSnapshot(write("plain.json", `{"`+url+`": "`+hex+`"}`))
	if err != nil || len(snap) != 1 || snap[url] != hex {
		t.Fatalf("plain map: got %v, %v; want %s -> %s", snap, err, url, hex)
	}

	for _, c := range []struct{ name, content, want string }{
		{"empty.json", `{}`, "records no InRelease files"},
		{"nosnap.json", `{"schema_version": 2, "image_id": "sha256:` + hex + `", "layers": []}`, "has no package_snapshot"},
		{"nohash.json", `{"` + url + `": "sha256:1234"}`, url + " has no sha256"},
		{"broken.json", `{"`, "is neither a build's artifact.json nor a map"},
		{"newer.json", `{"schema_version": 99, "package_snapshot": {"releases": {"` + url + `": "` + hex + `"}}}`, "newer than this strata understands"},
	} {
		p := write(c.name, c.content)
		if snap, err := readSnapshot(p); err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: got %v, %v; want an error naming %s and saying %q", c.name, snap, err, p, c.want)
		}
	}
}
