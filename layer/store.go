// Package layer is the content-addressed layer and image store. A layer is
// a read-only directory tree (in overlayfs form: whiteouts are 0/0 character
// devices, opaque directories carry trusted.overlay.opaque) named by its
// diffID, the sha256 of its uncompressed OCI layer tar. An image is an OCI
// image config over an ordered list of layers; its ID is the config's
// digest, as in OCI and Docker. Layers stack as overlayfs lower dirs, so a
// child image costs only its own change.
//
// Writes are atomic: everything is assembled under tmp/, synced and renamed
// into place, so a half-written layer or image is never visible and is
// removed at the next Open. A committed layer is never written again.
// Which operation takes which lock, and in which order, is written once, in
// lock.go.
package layer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Store is a layer and image store rooted at a directory.
type Store struct {
	root string
}

// Parts of a store.
const (
	layersDir = "layers"
	imagesDir = "images"
	blobsDir  = "blobs"
	tmpDir    = "tmp"
	diffDir   = "diff"
	layerMeta = "layer.json"
	lockFile  = "lock"
	imageMeta = "image.json"
	configDoc = "config.json"
)

// Open opens (creating when needed) the store at root and removes what an
// interrupted write left in tmp/ (see lock.go for what it leaves alone).
func Open(root string) (*Store, error) {
	for _, d := range []string{layersDir, imagesDir, blobsDir, tmpDir} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			return nil, fmt.Errorf("layer store: %w", err)
		}
	}
	s := &Store{root: root}
	if err := s.cleanTmp(); err != nil {
		return nil, err
	}
	return s, nil
}

// OpenExisting opens the store at root to read it: it creates nothing and
// leaves tmp/ alone. A directory that holds no store is an error.
func OpenExisting(root string) (*Store, error) {
	if fi, err := os.Stat(filepath.Join(root, imagesDir)); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("layer store: %s holds no store", root)
	}
	return &Store{root: root}, nil
}

// Root is the store's directory.
func (s *Store) Root() string { return s.root }

// hexOf takes "sha256:<hex>" apart; it refuses anything else.
func hexOf(digest string) (string, error) {
	h, ok := strings.CutPrefix(digest, "sha256:")
	if !ok || len(h) != 64 || strings.Trim(h, "0123456789abcdef") != "" {
		return "", fmt.Errorf("%q is not a sha256 digest", digest)
	}
	return h, nil
}

// ErrNotFound is returned (wrapped) for a layer or image the store lacks.
var ErrNotFound = errors.New("not in the layer store")

// syncDir fsyncs a directory, so a rename into it survives a crash.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// writeSynced writes a file and fsyncs it.
func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// publish renames a finished staging dir to final. When final exists (the
// same content committed by someone else first), it says so and leaves both
// alone: content-addressed entries are identical, and the caller holds the
// existing one before it drops its own.
func publish(staged, final string) (created bool, err error) {
	if err := syncDir(staged); err != nil {
		return false, err
	}
	err = os.Rename(staged, final)
	if errors.Is(err, unix.EEXIST) || errors.Is(err, unix.ENOTEMPTY) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, syncDir(filepath.Dir(final))
}
