package pkgcache

import (
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Shared index sets and the image binary caches kept beside them are
// marked used by their directory's modification time: a build that finds
// one sets it to now (markUsed), and prune removes what no build used
// since its cutoff. A new InRelease (a point release, a security update)
// makes a new set each time, so without this the old ones would pile up.

// markUsed records that a build uses the directory d now.
func markUsed(d string) {
	now := time.Now()
	os.Chtimes(d, now, now)
}

// pruneIndexes removes the shared index sets and image binary caches no
// build used since cutoff. Each goes by a rename out of place first, then
// its time is read again: a build that marked it used in between keeps
// it (it is renamed back); a build that looks after the rename finds none
// and publishes a new one.
func (s *Store) pruneIndexes(cutoff time.Time, dryRun bool, res *PruneResult) error {
	ents, err := os.ReadDir(filepath.Join(s.dir, "indexes"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range ents {
		key := e.Name()
		if CheckDigest(key) != nil || !e.IsDir() {
			continue // "checked" and anything not a set
		}
		dir := s.indexesDir(key)
		images, _ := os.ReadDir(filepath.Join(dir, "image"))
		for _, im := range images {
			if CheckDigest(im.Name()) != nil {
				continue
			}
			gone, n, err := s.removeUnused(filepath.Join(dir, "image", im.Name()), "indexes "+key, cutoff, dryRun)
			if err != nil {
				return err
			}
			if gone {
				res.ImageCaches++
				res.Bytes += n
			}
		}
		gone, n, err := s.removeUnused(dir, "indexes "+key, cutoff, dryRun)
		if err != nil {
			return err
		}
		if gone {
			res.IndexSets++
			res.Bytes += n
			if !dryRun {
				os.Remove(filepath.Join(s.dir, "indexes", "checked", key))
			}
		}
	}
	return nil
}

// removeUnused removes the directory d when no build marked it used since
// cutoff, under the lock lockName publishing takes. It says whether it
// did (or would) and how many bytes d held.
func (s *Store) removeUnused(d, lockName string, cutoff time.Time, dryRun bool) (bool, int64, error) {
	if !usedBefore(d, cutoff) {
		return false, 0, nil
	}
	size := dirBytes(d)
	if dryRun {
		return true, size, nil
	}
	unlock, err := s.Lock(urlKey(lockName))
	if err != nil {
		return false, 0, err
	}
	defer unlock()
	tmp, err := os.MkdirTemp(filepath.Join(s.dir, "tmp"), "pruned-*")
	if err != nil {
		return false, 0, err
	}
	defer os.RemoveAll(tmp)
	moved := filepath.Join(tmp, "d")
	if err := os.Rename(d, moved); err != nil {
		if os.IsNotExist(err) {
			return false, 0, nil
		}
		return false, 0, err
	}
	if !usedBefore(moved, cutoff) {
		// A build found it between the first look and the rename.
		return false, 0, os.Rename(moved, d)
	}
	return true, size, nil
}

// usedBefore tells whether d exists and was last marked used before cutoff.
func usedBefore(d string, cutoff time.Time) bool {
	fi, err := os.Lstat(d)
	return err == nil && fi.IsDir() && fi.ModTime().Before(cutoff)
}

// dirBytes is the size of the regular files under d.
func dirBytes(d string) int64 {
	var n int64
	filepath.WalkDir(d, func(_ string, e fs.DirEntry, err error) error {
		if err == nil && e.Type().IsRegular() {
			if fi, err := e.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
