// Package durable gets a tree that was written to the disk before it is
// published (renamed into view), so no crash leaves a published entry whose
// files are not all there.
package durable

import (
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Tree fsyncs every regular file and directory under root, root included.
// Symlinks, devices and FIFOs are never opened (a FIFO would block, a
// device is not ours to touch): their entries are in their directories,
// which are synced.
func Tree(root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() && !d.IsDir() {
			return nil
		}
		return syncPath(p)
	})
}

// FS syncs the whole file system root is on (syncfs): one call for a tree of
// many files, which also writes out whatever else is pending there.
func FS(root string) error {
	f, err := os.Open(root)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Syncfs(int(f.Fd()))
}

func syncPath(p string) error {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return &fs.PathError{Op: "open", Path: p, Err: err}
	}
	defer unix.Close(fd)
	if err := unix.Fsync(fd); err != nil {
		return &fs.PathError{Op: "fsync", Path: p, Err: err}
	}
	return nil
}
