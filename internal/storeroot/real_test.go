package storeroot

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReal: a path is where it leads: links followed (the last one too),
// .. applied after the link before it, the part not yet there appended.
func TestReal(t *testing.T) {
	dir, _ := filepath.EvalSymlinks(t.TempDir())
	store := filepath.Join(dir, "store")
	os.MkdirAll(filepath.Join(store, "layers"), 0o700)
	os.MkdirAll(filepath.Join(dir, "a", "b"), 0o700)
	os.Symlink(store, filepath.Join(dir, "link"))
	os.Symlink(filepath.Join(dir, "a", "b"), filepath.Join(dir, "deep"))
	os.Symlink(filepath.Join(dir, "gone"), filepath.Join(dir, "dangling"))
	for in, want := range map[string]string{
		filepath.Join(dir, "link") + "/layers":        filepath.Join(store, "layers"),
		filepath.Join(dir, "link") + "/new/x":         filepath.Join(store, "new", "x"),
		filepath.Join(dir, "deep") + "/../layers-out": filepath.Join(dir, "a", "layers-out"),
		filepath.Join(dir, "new") + "/../link/layers": filepath.Join(store, "layers"),
		filepath.Join(dir, "plain"):                   filepath.Join(dir, "plain"),
	} {
		got, err := Real(in)
		if err != nil || got != want {
			t.Errorf("Real(%s) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := Real(filepath.Join(dir, "dangling", "x")); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("a dangling link on the way: %v", err)
	}
}

// TestCheckTree: a part of a store that is a link, or another user's, is
// refused.
func TestCheckTree(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "blobs"), 0o700)
	if err := CheckTree(dir, "blobs/sha256"); err != nil {
		t.Fatalf("a missing part: %v", err)
	}
	os.Symlink(t.TempDir(), filepath.Join(dir, "blobs", "sha256"))
	if err := CheckTree(dir, "blobs/sha256"); err == nil || !strings.Contains(err.Error(), "symlink") {
		t.Errorf("a link: %v", err)
	}
	if os.Geteuid() == 0 {
		os.Remove(filepath.Join(dir, "blobs", "sha256"))
		os.Chown(filepath.Join(dir, "blobs"), 65534, 65534)
		if err := CheckTree(dir, "blobs/sha256"); err == nil || !strings.Contains(err.Error(), "uid 65534") {
			t.Errorf("another user's part: %v", err)
		}
	}
}
