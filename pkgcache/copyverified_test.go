package pkgcache

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
)

// TestCopyVerifiedFailsClosed: an entry without a sha256 (or without a
// size) is an error, never a copy nobody checked.
func TestCopyVerifiedFailsClosed(t *testing.T) {
	src := t.TempDir()
	data := []byte("Package: x\n")
	if err := os.WriteFile(filepath.Join(src, "list"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	dir, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	sum := sha256.Sum256(data)
	good := expected{SHA256: hex.EncodeToString(sum[:]), Size: int64(len(data))}
	dst := t.TempDir()
	if _, err := copyVerified(dir, "list", filepath.Join(dst, "ok"), good); err != nil {
		t.Fatalf("a file as expected: %v", err)
	}
	for name, e := range map[string]expected{
		"no-sha256": {Size: int64(len(data))},
		"no-size":   {SHA256: good.SHA256, Size: -1},
		"nothing":   {Size: -1},
	} {
		if _, err := copyVerified(dir, "list", filepath.Join(dst, name), e); err == nil {
			t.Errorf("%s: copied without a check", name)
		}
		if _, err := os.Lstat(filepath.Join(dst, name)); err == nil {
			t.Errorf("%s: a copy was left", name)
		}
	}
}
