package chroot

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckHostFollowsLinks: an output_dir that leads into the store
// through a link overlaps it, as the same path written out would; Prepare,
// which checks only the template, takes it.
func TestCheckHostFollowsLinks(t *testing.T) {
	withHostSources(t, "deb http://mirror.test/debian bookworm main\n")
	raw := baseConfig(t)
	store := raw["store_dir"].(string)
	os.MkdirAll(filepath.Join(store, "layers"), 0o700)
	link := filepath.Join(t.TempDir(), "to-store")
	os.Symlink(store, link)
	raw["output_dir"] = filepath.Join(link, "layers")
	raw["packer_force"] = true
	err := checkedHost(t, raw)
	if err == nil || !strings.Contains(err.Error(), "output_dir") || !strings.Contains(err.Error(), "overlaps store_dir") {
		t.Fatalf("an output_dir leading into the store through a link: %v", err)
	}
}

// TestPrepareIgnoresHostState: an existing output dir and a work dir of
// someone else's are the build's business, not packer validate's.
func TestPrepareIgnoresHostState(t *testing.T) {
	withHostSources(t, "deb http://mirror.test/debian bookworm main\n")
	raw := baseConfig(t)
	out := t.TempDir()
	os.WriteFile(filepath.Join(out, "x"), nil, 0o644)
	raw["output_dir"] = out
	raw["store_dir"] = filepath.Join(t.TempDir(), "store")
	os.Mkdir(raw["store_dir"].(string), 0o777)
	os.Chmod(raw["store_dir"].(string), 0o777)
	var c Config
	if _, err := c.Prepare(raw); err != nil {
		t.Fatalf("Prepare looked at the host: %v", err)
	}
	err := c.checkHost()
	for _, want := range []string{"output_dir: " + out + " exists", "store_dir: "} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("checkHost: %v, want %q", err, want)
		}
	}
}

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
	if _, err := removeEarlierOutputs(dir); err == nil || !strings.Contains(err.Error(), "holds notes") {
		t.Fatalf("a file artifact.json does not name: %v", err)
	}
	os.Remove(filepath.Join(dir, "notes"))
	if n, err := removeEarlierOutputs(dir); err != nil || n != 5 {
		t.Fatalf("removed %d: %v", n, err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("left %v", ents)
	}
	if _, err := os.Stat(filepath.Join(outside, "keep")); err != nil {
		t.Fatal("a link in the dir output led the removal outside")
	}
	os.WriteFile(filepath.Join(dir, "rootfs.tar"), []byte("mine"), 0o644)
	if _, err := removeEarlierOutputs(dir); err == nil || !strings.Contains(err.Error(), "not made by strata-chroot") {
		t.Fatalf("a directory without artifact.json: %v", err)
	}
	for n, want := range map[string]string{".rootfs.tar.tmp-123": "rootfs.tar", ".rootfs.squashfs.tmp": "rootfs.squashfs", "oci.tmp": "oci", "rootfs.tar": "", ".tmpx": ""} {
		if got := pendingBase(n); got != want {
			t.Errorf("pendingBase(%q) = %q, want %q", n, got, want)
		}
	}
}
