package catalog

import (
	"os"
	"regexp"
	"time"
)

// Catalog applies the catalog's rules over a Store.
type Catalog struct {
	store Store
	// Now is the clock; tests move it.
	Now func() time.Time
	// ContentExists says whether a version's artifacts are still there; a
	// rollback never lands on a version whose content is gone. The default
	// checks every artifact path exists with its recorded size.
	ContentExists func(v *Version) bool
	// Created says Open made this catalog just now (it did not exist).
	Created bool
}

// New wraps a store.
func New(s Store) *Catalog {
	return &Catalog{store: s, Now: time.Now, ContentExists: ArtifactsOnDisk}
}

// Store is the underlying store.
func (c *Catalog) Store() Store { return c.store }

// Close closes the store.
func (c *Catalog) Close() error { return c.store.Close() }

// ArtifactsOnDisk says whether every file of v is on disk, at its recorded
// size (a registry reference counts as there): the catalog's default
// ContentExists.
func ArtifactsOnDisk(v *Version) bool {
	for _, a := range v.Artifacts {
		if a.Format == FormatRegistry {
			continue // in a registry: pullable, no file
		}
		fi, err := os.Stat(a.Path)
		if err != nil {
			return false
		}
		if fi.Mode().IsRegular() && a.Size > 0 && fi.Size() != a.Size {
			return false
		}
	}
	return true
}

// Names and versions are at most maxNameLen characters. The length is
// checked apart from the patterns: a bounded repetition ({0,127}) compiles
// into a large program, and every start of the plugin and the CLI paid
// for it (2 ms of package initialisation).
const maxNameLen = 128

var (
	nameRe    = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)
	versionRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]*$`)
	semverRe  = regexp.MustCompile(`^v?(\d+)\.(\d+)\.(\d+)$`)
)

// ValidName checks an image or channel name.
func ValidName(kind, s string) error {
	if len(s) > maxNameLen {
		return invalid("%s %q: at most %d characters", kind, s, maxNameLen)
	}
	if !nameRe.MatchString(s) {
		return invalid("%s %q: use lowercase letters, digits, '.', '_' and '-', starting with a letter or digit", kind, s)
	}
	return nil
}
