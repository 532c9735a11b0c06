package inroot

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestReadRegularRefusesWhatIsNoFile: a FIFO, device node, socket, link or
// oversized file where the builder reads a file gives an error that says
// what is there, at once; a regular file, through directory links inside
// the root, is read.
func TestReadRegularRefusesWhatIsNoFile(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "img")
	os.MkdirAll(filepath.Join(img, "var/lib/real"), 0o755)
	os.Symlink("real", filepath.Join(img, "var/lib/dpkg"))
	os.WriteFile(filepath.Join(img, "var/lib/real/status"), []byte("Package: x\n"), 0o644)
	if err := unix.Mkfifo(filepath.Join(img, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	devErr := unix.Mknod(filepath.Join(img, "null"), unix.S_IFCHR|0o644, int(unix.Mkdev(1, 3)))
	l, err := net.Listen("unix", filepath.Join(img, "sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	os.Symlink("/var/lib/real/status", filepath.Join(img, "link"))
	big, _ := os.Create(filepath.Join(img, "big"))
	big.Truncate(3 << 30) // sparse: 3 GB that take no space
	big.Close()

	root, err := Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if b, err := root.ReadRegular("/var/lib/dpkg/status", 1<<20); err != nil || string(b) != "Package: x\n" {
		t.Fatalf("a regular file: %q %v", b, err)
	}
	cases := map[string]string{"/fifo": "a FIFO", "/sock": "a socket", "/link": "a symbolic link", "/var": "a directory", "/big": "larger than"}
	if devErr == nil {
		cases["/null"] = "a character device node"
	} else {
		t.Logf("no device node test: %v", devErr)
	}
	for p, want := range cases {
		done := make(chan error, 1)
		go func() { _, err := root.ReadRegular(p, 1<<20); done <- err }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), p) {
				t.Errorf("%s: %v, want an error saying %q", p, err, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("reading %s did not return", p)
		}
	}
	// A file that grows past the bound after the size check still ends.
	if _, err := root.ReadRegular("/var/lib/dpkg/status", 4); err == nil {
		t.Error("an 11-byte file read with a 4-byte bound")
	}
	if _, err := root.ReadRegular("/missing", 10); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing file: %v, want ErrNotExist", err)
	}
	// OpenFile follows links inside the root, and is as careful.
	if f, err := root.OpenFile("/link"); err != nil {
		t.Errorf("OpenFile through a link: %v", err)
	} else {
		f.Close()
	}
	if _, err := root.OpenFile("/fifo"); err == nil || !strings.Contains(err.Error(), "a FIFO") {
		t.Errorf("OpenFile of a FIFO: %v", err)
	}
}
