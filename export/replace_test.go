package export

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRemoveEarlierOutputs: -force empties an output dir of what its
// artifact.json names, and refuses one with anything else or none.
func TestRemoveEarlierOutputs(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "keep"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(dir, "rootfs.tar"), []byte("tar"), 0o644)
	os.WriteFile(filepath.Join(dir, "rootfs.tar.sha256"), []byte("sum"), 0o644)
	os.MkdirAll(filepath.Join(dir, "rootfs", "etc"), 0o755)
	os.Symlink(outside, filepath.Join(dir, "rootfs", "etc", "out")) // the image's own link
	os.WriteFile(filepath.Join(dir, "rootfs.tree-sha256"), []byte("sum"), 0o644)
	os.WriteFile(filepath.Join(dir, "artifact.json"), []byte(`{"schema_version":1,"outputs":[{"format":"tar","path":"rootfs.tar"},{"format":"dir","path":"rootfs"}]}`), 0o644)
	os.WriteFile(filepath.Join(dir, "notes"), nil, 0o644)
	if _, err := RemoveEarlier(dir); err == nil || !strings.Contains(err.Error(), "holds notes") {
		t.Fatalf("a file artifact.json does not name: %v", err)
	}
	os.Remove(filepath.Join(dir, "notes"))
	if n, err := RemoveEarlier(dir); err != nil || n != 5 {
		t.Fatalf("removed %d: %v", n, err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("left %v", ents)
	}
	if _, err := os.Stat(filepath.Join(outside, "keep")); err != nil {
		t.Fatal("a link in the dir output led the removal outside")
	}
	os.WriteFile(filepath.Join(dir, "rootfs.tar"), []byte("mine"), 0o644)
	if _, err := RemoveEarlier(dir); err == nil || !strings.Contains(err.Error(), "not made by strata-chroot") {
		t.Fatalf("a directory without artifact.json: %v", err)
	}
	for n, want := range map[string]string{".rootfs.tar.tmp-123": "rootfs.tar", ".rootfs.squashfs.tmp": "rootfs.squashfs", "oci.tmp": "oci", "rootfs.tar": "", ".tmpx": ""} {
		if got := pendingBase(n); got != want {
			t.Errorf("pendingBase(%q) = %q, want %q", n, got, want)
		}
	}
}
