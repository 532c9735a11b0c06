package pkgcache

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Store is the cache on disk, shared by every build on the host:
//
//	blobs/sha256/<hex>   files by content: .debs, indexes, every InRelease seen
//	urls/<hex>.json      what a URL held when last fetched (its sha256, ETag)
//	usage/<id>.json      what one build used, for prune, and its snapshot
//	locks/<hex>          per-file locks, so each file is fetched once
//	tmp/                 downloads in progress
//
// A blob enters only after its size and sha256 were checked, by rename: a
// partial or corrupt download is never seen.
type Store struct {
	dir string
}

// OpenStore opens (creating when needed) the cache at dir.
func OpenStore(dir string) (*Store, error) {
	if !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("package cache dir %q must be absolute", dir)
	}
	for _, d := range []string{"blobs/sha256", "urls", "usage", "locks", "tmp", "pool-index"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, fmt.Errorf("package cache: %w", err)
		}
	}
	return &Store{dir: dir}, nil
}

// Dir is the cache's directory.
func (s *Store) Dir() string { return s.dir }

// BlobPath is where the blob with sha256 hex lives.
func (s *Store) BlobPath(hex string) string { return filepath.Join(s.dir, "blobs", "sha256", hex) }

// Has says whether the blob is in the cache.
func (s *Store) Has(hex string) bool {
	_, err := os.Stat(s.BlobPath(hex))
	return err == nil
}

// Lock takes the cache's lock on key (a file's sha256, or a URL's) for as
// long as it fetches that file; other builds wait, then find it cached.
func (s *Store) Lock(key string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(s.dir, "locks", key), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}

// ErrMismatch is a download that is not what the index says.
var ErrMismatch = errors.New("does not match the index")

// Put copies r into the cache when it has the expected sha256 (and size,
// when size >= 0) and returns the blob's hex digest. With want "" the
// content is taken as it is (an InRelease, verified by its signature).
func (s *Store) Put(r io.Reader, want string, size int64) (string, int64, error) {
	tmp, err := os.CreateTemp(filepath.Join(s.dir, "tmp"), "dl-*")
	if err != nil {
		return "", 0, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), r)
	if err != nil {
		return "", n, err
	}
	got := hex.EncodeToString(h.Sum(nil))
	if size >= 0 && n != size {
		return got, n, fmt.Errorf("%w: %d bytes, the index says %d", ErrMismatch, n, size)
	}
	if want != "" && got != want {
		return got, n, fmt.Errorf("%w: sha256 %s, the index says %s", ErrMismatch, got, want)
	}
	if err := tmp.Sync(); err != nil {
		return "", n, err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return "", n, err
	}
	if err := os.Rename(tmp.Name(), s.BlobPath(got)); err != nil {
		return "", n, err
	}
	return got, n, nil
}

// urlRecord is what a URL held when it was last fetched.
type urlRecord struct {
	URL          string    `json:"url"`
	SHA256       string    `json:"sha256"`
	ETag         string    `json:"etag,omitempty"`
	LastModified string    `json:"last_modified,omitempty"`
	Fetched      time.Time `json:"fetched"`
}

func urlKey(url string) string {
	sum := sha256.Sum256([]byte(url))
	return hex.EncodeToString(sum[:])
}

// lastOf returns the record of url, if any.
func (s *Store) lastOf(url string) (*urlRecord, bool) {
	b, err := os.ReadFile(filepath.Join(s.dir, "urls", urlKey(url)+".json"))
	if err != nil {
		return nil, false
	}
	var r urlRecord
	if json.Unmarshal(b, &r) != nil || !s.Has(r.SHA256) {
		return nil, false
	}
	return &r, true
}

// remember records what url holds now.
func (s *Store) remember(r urlRecord) error {
	b, _ := json.Marshal(r)
	tmp, err := os.CreateTemp(filepath.Join(s.dir, "tmp"), "url-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	tmp.Close()
	return os.Rename(tmp.Name(), filepath.Join(s.dir, "urls", urlKey(r.URL)+".json"))
}

// Size sums the blobs.
func (s *Store) Size() (files int, bytes int64, err error) {
	ents, err := os.ReadDir(filepath.Join(s.dir, "blobs", "sha256"))
	if err != nil {
		return 0, 0, err
	}
	for _, e := range ents {
		if fi, err := e.Info(); err == nil && !strings.HasPrefix(e.Name(), ".") {
			files++
			bytes += fi.Size()
		}
	}
	return files, bytes, nil
}
