package layer

// The store's lock rule. Every lock is a flock(2) on a file, so a process
// that dies releases what it held.
//
// Staging locks: tmp/<name>.lock guards the entry tmp/<name>. Every writer
// of tmp/ (a layer or image being committed, a blob being compressed, an
// entry being deleted) takes one with staging() before its entry exists and
// holds it, exclusively, until the entry is renamed into place or removed.
// The cleaner (Open) removes an entry of tmp/ only while it holds that
// entry's lock itself, taken without waiting: an entry whose lock is held
// belongs to a running process and stays; one with no lock file is a
// leftover.
//
// Entry locks: layers/<hex>/lock and images/<hex>/lock. Shared means "in
// use": a build holds its parent's layers from before it mounts them, and
// its own layer and image from the moment Commit and PutImage return them,
// until it ends; an export holds the layers it reads. Exclusive, taken
// without waiting, means "being deleted" (GC, RemoveImage,
// RemoveLayerIfUnused): an entry whose lock is held is not deleted. A user
// takes the shared lock and then checks that the entry is still there, since
// a deletion may have finished while it waited; a new layer or image is
// locked before it is renamed into place, so no moment exists in which it
// is visible but unheld.
//
// Pull locks: tmp/pull-<hex>.lock, exclusive, makes concurrent imports of
// one layer fetch it once (import.go); its wait ends with the importer's
// context (flockContext), so an interrupted build stops waiting.
//
// Order and waiting: besides the pull lock (taken before any other), only a
// shared entry lock ever waits, for a deletion in progress to finish; a
// deletion takes a staging lock on a file it has just made, and the cleaner
// waits for nothing. So no order of these operations can deadlock.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/strata-build/packer-plugin-strata/internal/mount"
)

// staging makes a new directory under tmp/ for one writer, holding its
// staging lock (tmp/<name>.lock). release drops the lock and the lock file;
// the writer removes or renames the directory itself first.
func (s *Store) staging(prefix string) (string, func(), error) {
	for {
		f, err := os.CreateTemp(filepath.Join(s.root, tmpDir), prefix+"*.lock")
		if err != nil {
			return "", nil, err
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
			f.Close()
			os.Remove(f.Name())
			return "", nil, err
		}
		// The cleaner may have taken the new file for a leftover between
		// its creation and the lock: then it is gone, and we start again.
		if !samePath(f, f.Name()) {
			f.Close()
			continue
		}
		dir := strings.TrimSuffix(f.Name(), ".lock")
		if err := os.Mkdir(dir, 0o700); err != nil {
			f.Close()
			os.Remove(f.Name())
			return "", nil, err
		}
		return dir, func() {
			os.Remove(f.Name())
			f.Close()
		}, nil
	}
}

// samePath says whether path still names the open file f.
func samePath(f *os.File, path string) bool {
	var a, b unix.Stat_t
	if unix.Fstat(int(f.Fd()), &a) != nil || unix.Lstat(path, &b) != nil {
		return false
	}
	return a.Dev == b.Dev && a.Ino == b.Ino
}

// cleanTmp removes what no running writer holds from tmp/.
func (s *Store) cleanTmp() error {
	ents, err := os.ReadDir(filepath.Join(s.root, tmpDir))
	if err != nil {
		return err
	}
	done := map[string]bool{}
	for _, e := range ents {
		name := strings.TrimSuffix(e.Name(), ".lock")
		if done[name] {
			continue
		}
		done[name] = true
		if err := s.cleanStaged(filepath.Join(s.root, tmpDir, name)); err != nil {
			return err
		}
	}
	return nil
}

// cleanStaged removes the tmp/ entry p and its lock file, holding its lock
// while it does, unless a running writer holds it.
func (s *Store) cleanStaged(p string) error {
	lock := p + ".lock"
	f, err := os.OpenFile(lock, os.O_RDWR|unix.O_NOFOLLOW, 0)
	switch {
	case err == nil:
		defer f.Close()
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			return nil // a running writer's
		}
		if !samePath(f, lock) {
			return nil // its writer finished and removed it meanwhile
		}
	case !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("layer store: %w", err)
	}
	// Never delete through a mount.
	if err := mount.Verify(p); err != nil {
		return fmt.Errorf("layer store: %w", err)
	}
	if err := os.RemoveAll(p); err != nil {
		return fmt.Errorf("layer store: removing an unfinished write: %w", err)
	}
	if f != nil {
		os.Remove(lock)
	}
	return nil
}

// lockShared takes the entry lock file at path shared, waiting for a
// deletion in progress.
func lockShared(path string) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// flockContext takes the flock how (LOCK_EX or LOCK_SH) on f, waiting for
// its holder as long as ctx lasts: flock(2) itself cannot be interrupted,
// so it is tried without blocking, again and again.
func flockContext(ctx context.Context, f *os.File, how int) error {
	wait := 10 * time.Millisecond
	for {
		err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		if wait < 200*time.Millisecond {
			wait *= 2
		}
	}
}

// holdLayer takes a layer's entry lock shared and returns the layer, or
// ErrNotFound (wrapped) when the store lacks it, also when a deletion won
// the race for it.
func (s *Store) holdLayer(diffID string) (*Layer, func(), error) {
	h, err := hexOf(diffID)
	if err != nil {
		return nil, nil, err
	}
	f, err := lockShared(filepath.Join(s.root, layersDir, h, lockFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("layer %s: %w", diffID, ErrNotFound)
	}
	if err != nil {
		return nil, nil, err
	}
	l, err := s.Layer(diffID)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return l, func() { f.Close() }, nil
}

// tryExclusive takes the entry lock of dir (a layer's or an image's
// directory) for its deletion, without waiting. free is false when a
// running build holds the entry; otherwise the caller deletes and then
// calls release. An entry without a lock file (an image stored before
// images had one) is free.
func tryExclusive(dir string) (release func(), free bool) {
	f, err := os.Open(filepath.Join(dir, lockFile))
	if err != nil {
		return func() {}, true
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, false
	}
	return func() { f.Close() }, true
}
