package durable

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestTreeSkipsWhatItMustNotOpen: a FIFO (opening it would wait for a
// writer), a dangling symlink and a whiteout device are passed over; files
// and directories are synced.
func TestTreeSkipsWhatItMustNotOpen(t *testing.T) {
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "etc", "sub"), 0o755))
	must(os.WriteFile(filepath.Join(root, "etc", "sub", "f"), []byte("x"), 0o644))
	must(unix.Mkfifo(filepath.Join(root, "etc", "fifo"), 0o600))
	must(os.Symlink("/nowhere", filepath.Join(root, "etc", "link")))
	if os.Geteuid() == 0 {
		must(unix.Mknod(filepath.Join(root, "etc", "gone"), unix.S_IFCHR, 0))
	}
	must(Tree(root))
	must(FS(root))
	if err := Tree(filepath.Join(root, "missing")); err == nil {
		t.Error("a missing tree synced without an error")
	}
}
