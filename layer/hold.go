package layer

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Hold keeps img's layers from garbage collection while a build uses them:
// a shared lock on each layer, released by the returned function (or when
// the process dies). GC takes the lock exclusively, without waiting, before
// it deletes a layer.
func (s *Store) Hold(img *Image) (func(), error) {
	var held []*os.File
	release := func() {
		for _, f := range held {
			f.Close()
		}
	}
	for _, l := range img.Layers {
		h, err := hexOf(l.DiffID)
		if err != nil {
			release()
			return nil, err
		}
		f, err := os.Open(filepath.Join(s.root, layersDir, h, lockFile))
		if err != nil {
			release()
			return nil, fmt.Errorf("layer %s: %w", l.DiffID, ErrNotFound)
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_SH); err != nil {
			f.Close()
			release()
			return nil, err
		}
		held = append(held, f)
		// GC may have deleted it while we waited for the lock.
		if _, err := s.Layer(l.DiffID); err != nil {
			release()
			return nil, err
		}
	}
	return release, nil
}

// inUse says whether a running build holds the layer (and takes it
// exclusively when not: the caller must call the returned release).
func (s *Store) tryExclusive(diffHex string) (func(), bool) {
	f, err := os.Open(filepath.Join(s.root, layersDir, diffHex, lockFile))
	if err != nil {
		return func() {}, true
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, false
	}
	return func() { f.Close() }, true
}
