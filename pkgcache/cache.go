// Package pkgcache is the persistent apt package cache that builds share, so
// a package is downloaded once per build host, and the host's apt sources.
package pkgcache

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Cache is a directory of downloaded .deb files shared by builds.
type Cache struct {
	dir string
}

// Open creates the cache directory when needed.
func Open(dir string) (*Cache, error) {
	if !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("package cache dir %q must be absolute", dir)
	}
	if err := os.MkdirAll(filepath.Join(dir, "archives", "partial"), 0o755); err != nil {
		return nil, fmt.Errorf("creating package cache: %w", err)
	}
	return &Cache{dir: dir}, nil
}

// Dir is the cache's root directory.
func (c *Cache) Dir() string { return c.dir }

// ArchivesDir holds the .deb files, laid out as apt's /var/cache/apt/archives.
func (c *Cache) ArchivesDir() string { return filepath.Join(c.dir, "archives") }

// Lock takes the cache exclusively (two builds filling it at once would race
// on the same file names) and returns the function that releases it.
func (c *Cache) Lock() (func(), error) {
	f, err := os.OpenFile(filepath.Join(c.dir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking package cache: %w", err)
	}
	return func() { f.Close() }, nil
}

// Stats counts the .deb files and their bytes.
func (c *Cache) Stats() (files int, bytes int64) {
	ents, _ := os.ReadDir(c.ArchivesDir())
	for _, e := range ents {
		if filepath.Ext(e.Name()) != ".deb" {
			continue
		}
		if fi, err := e.Info(); err == nil {
			files++
			bytes += fi.Size()
		}
	}
	return files, bytes
}
