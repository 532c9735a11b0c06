// Package treesize measures a directory tree in one walk: the one definition
// of a tree's size that exports, the builder's messages and minimize share.
package treesize

import (
	"io/fs"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Stats measures a tree, or part of one.
type Stats struct {
	// Apparent is the sum of the sizes of everything but directories:
	// regular files and symlinks (their target's length), as
	// du --apparent-size counts them but directories.
	Apparent int64
	// Allocated is what the entries take on disk, directories included:
	// blocks allocated, so holes in sparse files count for nothing. File
	// systems are sized by it.
	Allocated int64
	// Entries counts every entry, the root included.
	Entries int64
}

func (s *Stats) add(st *unix.Stat_t) {
	s.Entries++
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		s.Apparent += st.Size
	}
	s.Allocated += st.Blocks * 512
}

// Measure measures the tree at root. It lstats every entry once and never
// follows a symlink (root included), so a FIFO or a device never blocks it.
// A hard-linked file counts once per link. Like the walkers it replaces it
// does not stop at mount points: callers measure trees with nothing mounted
// in them (a tree just bootstrapped, extracted or unmounted, an output).
func Measure(root string) (Stats, error) {
	total, _, err := MeasureSplit(root, nil)
	return total, err
}

// MeasureSplit measures the tree at root as Measure does, and apart the
// part of it under the entries inPart chooses: inPart gets each entry's path
// relative to root ("var/lib/apt/lists"), never the root itself, and an
// entry it chooses is counted in part with everything under it (inPart is
// not asked about those). total includes part. inPart may be nil.
func MeasureSplit(root string, inPart func(rel string) bool) (total, part Stats, err error) {
	partDir := "" // the chosen directory being walked, relative to root
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		total.add(&st)
		if p == root || inPart == nil {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		if partDir != "" && strings.HasPrefix(rel, partDir+"/") {
			part.add(&st)
			return nil
		}
		partDir = ""
		if inPart(rel) {
			part.add(&st)
			if st.Mode&unix.S_IFMT == unix.S_IFDIR {
				partDir = rel
			}
		}
		return nil
	})
	return total, part, err
}
