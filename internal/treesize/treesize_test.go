package treesize

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

func write(t *testing.T, p string, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestSparseFile: a 1 GiB file holding 8 KiB of data is 1 GiB apparent and
// about 8 KiB allocated.
func TestSparseFile(t *testing.T) {
	root := t.TempDir()
	f, err := os.Create(filepath.Join(root, "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(make([]byte, 8192), 1<<29); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 30); err != nil {
		t.Fatal(err)
	}
	f.Close()
	s, err := Measure(root)
	if err != nil {
		t.Fatal(err)
	}
	if s.Apparent != 1<<30 {
		t.Errorf("apparent %d, want %d", s.Apparent, 1<<30)
	}
	if s.Allocated <= 0 || s.Allocated > 1<<20 {
		t.Errorf("allocated %d: the hole counts for nothing, the data and the directory for something", s.Allocated)
	}
	if s.Entries != 2 {
		t.Errorf("%d entries, want the root and the file", s.Entries)
	}
}

// TestLinksAndSpecialFiles: a symlink counts its target's length and is
// never followed (root included); a hard-linked file counts once per link;
// a FIFO is measured without blocking; directories have no apparent size
// but allocated blocks.
func TestLinksAndSpecialFiles(t *testing.T) {
	root := t.TempDir()
	big := filepath.Join(t.TempDir(), "big")
	write(t, big, string(make([]byte, 100000)))
	write(t, filepath.Join(root, "f"), "12345")
	if err := os.Link(filepath.Join(root, "f"), filepath.Join(root, "hard")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(big, filepath.Join(root, "to-big")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Dir(big), filepath.Join(root, "to-dir")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(root, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Measure(root)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(5 + 5 + len(big) + len(filepath.Dir(big))); s.Apparent != want {
		t.Errorf("apparent %d, want %d (both links of f, the symlinks' targets' lengths)", s.Apparent, want)
	}
	if s.Entries != 6 {
		t.Errorf("%d entries, want 6 (root, f, hard, to-big, to-dir, fifo)", s.Entries)
	}
	var st unix.Stat_t
	if err := unix.Lstat(root, &st); err != nil {
		t.Fatal(err)
	}
	if s.Allocated < st.Blocks*512 || s.Allocated > 1<<20 {
		t.Errorf("allocated %d: the root directory's blocks count, the linked 100 kB file's not", s.Allocated)
	}

	link := filepath.Join(t.TempDir(), "root-link")
	if err := os.Symlink(root, link); err != nil {
		t.Fatal(err)
	}
	s, err = Measure(link)
	if err != nil {
		t.Fatal(err)
	}
	if s.Entries != 1 || s.Apparent != int64(len(root)) {
		t.Errorf("a symlinked root measured as %+v: followed", s)
	}
}

// TestSplit: an entry inPart chooses counts in part with everything under
// it; inPart is asked about every other entry but the root, and a name that
// merely starts like a chosen directory's is not under it.
func TestSplit(t *testing.T) {
	root := t.TempDir()
	write(t, filepath.Join(root, "usr/bin/x"), "xx")
	write(t, filepath.Join(root, "tmp/a/b/c"), "ccc")
	write(t, filepath.Join(root, "tmp/a-b"), "dddd")
	write(t, filepath.Join(root, "var/log/l"), "eeeee")
	var asked []string
	total, part, err := MeasureSplit(root, func(rel string) bool {
		asked = append(asked, rel)
		return rel == "tmp/a" || rel == "var/log/l"
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"tmp", "tmp/a", "tmp/a-b", "usr", "usr/bin", "usr/bin/x", "var", "var/log", "var/log/l"}; !slices.Equal(asked, want) {
		t.Errorf("asked about %v, want %v", asked, want)
	}
	if part.Apparent != 3+5 || part.Entries != 4 {
		t.Errorf("part %+v, want 8 bytes in 4 entries (tmp/a, tmp/a/b, tmp/a/b/c, var/log/l)", part)
	}
	if total.Apparent != 2+3+4+5 || total.Entries != 12 {
		t.Errorf("total %+v, want 14 bytes in 12 entries", total)
	}
	if part.Allocated <= 0 || part.Allocated >= total.Allocated {
		t.Errorf("part allocated %d of %d", part.Allocated, total.Allocated)
	}
	plain, err := Measure(root)
	if err != nil {
		t.Fatal(err)
	}
	if plain != total {
		t.Errorf("Measure %+v, MeasureSplit's total %+v", plain, total)
	}
}

func TestMissingRoot(t *testing.T) {
	if _, err := Measure(filepath.Join(t.TempDir(), "none")); !os.IsNotExist(err) {
		t.Errorf("err %v, want not exist", err)
	}
}
