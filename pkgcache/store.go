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
//	indexes/<key>/       verified apt lists builds share (indexes.go)
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

// ErrDigest is a name that is not a sha256 digest: 64 lowercase hex digits.
var ErrDigest = errors.New("not a sha256 digest (64 lowercase hex digits)")

// CheckDigest is the one check that a digest taken from an index, a
// record or a request may name a file in the cache: anything but 64
// lowercase hex digits ("../x", "./", upper case) is refused, so no
// digest ever leads outside the cache's directories.
func CheckDigest(hex string) error {
	if len(hex) != 64 {
		return fmt.Errorf("%q: %w", truncate(hex), ErrDigest)
	}
	for i := 0; i < len(hex); i++ {
		if c := hex[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return fmt.Errorf("%q: %w", truncate(hex), ErrDigest)
		}
	}
	return nil
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// BlobPath is where the blob with sha256 hex lives.
func (s *Store) BlobPath(hex string) (string, error) {
	if err := CheckDigest(hex); err != nil {
		return "", err
	}
	return filepath.Join(s.dir, "blobs", "sha256", hex), nil
}

// Has says whether the blob is in the cache (never for a bad digest).
func (s *Store) Has(hex string) bool {
	p, err := s.BlobPath(hex)
	if err != nil {
		return false
	}
	_, err = os.Stat(p)
	return err == nil
}

// readBlob reads a (small) blob.
func (s *Store) readBlob(hex string) ([]byte, error) {
	p, err := s.BlobPath(hex)
	if err != nil {
		return nil, err
	}
	return os.ReadFile(p)
}

// Lock takes the cache's lock on key (a file's sha256, or a URL's) for as
// long as it fetches that file; other builds wait, then find it cached.
func (s *Store) Lock(key string) (func(), error) {
	unlock, _, err := s.LockWait(key, -1)
	return unlock, err
}

// LockWait is Lock that waits at most wait (forever when wait < 0). When
// another build still holds the lock after that, it returns locked false
// and a no-op unlock: the caller goes on without the lock (downloading to
// a temporary file and publishing by rename is safe without it), so a
// download that drips never holds up another build for longer than wait.
func (s *Store) LockWait(key string, wait time.Duration) (unlock func(), locked bool, err error) {
	if err := CheckDigest(key); err != nil {
		return nil, false, fmt.Errorf("package cache lock: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(s.dir, "locks", key), os.O_CREATE|os.O_RDWR|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, false, err
	}
	if wait < 0 {
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
			f.Close()
			return nil, false, err
		}
		return func() { f.Close() }, true, nil
	}
	deadline := time.Now().Add(wait)
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, true, nil
		}
		if err != unix.EWOULDBLOCK || !time.Now().Before(deadline) {
			f.Close()
			if err != unix.EWOULDBLOCK {
				return nil, false, err
			}
			return func() {}, false, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ErrMismatch is a download that is not what the index says.
var ErrMismatch = errors.New("does not match the index")

// Put copies r into the cache when it has the expected sha256 and size and
// returns the blob's hex digest. It never reads more than size+1 bytes: a
// download that goes on past its signed size is cut there. With want ""
// (and size < 0) the content is taken as it is: an InRelease, read in full
// and verified by its signature before.
func (s *Store) Put(r io.Reader, want string, size int64) (string, int64, error) {
	if want != "" {
		if err := CheckDigest(want); err != nil {
			return "", 0, err
		}
		if size < 0 {
			return "", 0, fmt.Errorf("%s: the index gives no size: not cached", want)
		}
	}
	if size >= 0 {
		r = io.LimitReader(r, size+1)
	}
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
	if size >= 0 && n > size {
		return got, n, fmt.Errorf("%w: more than the %d bytes the index says (stopped reading there)", ErrMismatch, size)
	}
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
	dst, _ := s.BlobPath(got)
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return "", n, err
	}
	return got, n, nil
}

// urlRecord is what a URL held when it was last fetched. Fetched is the
// cache's own clock (If-Modified-Since is built from it, never from a date
// upstream sent); Date is the Date field of the InRelease, which a later
// copy may not go back before.
type urlRecord struct {
	URL     string    `json:"url"`
	SHA256  string    `json:"sha256"`
	ETag    string    `json:"etag,omitempty"`
	Date    time.Time `json:"date,omitempty"`
	Fetched time.Time `json:"fetched"`
	// Keyrings names (by content) the keyrings whose good signature the
	// copy carried when it was stored.
	Keyrings string `json:"keyrings,omitempty"`
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
	if json.Unmarshal(b, &r) != nil || r.URL != url || !s.Has(r.SHA256) {
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
