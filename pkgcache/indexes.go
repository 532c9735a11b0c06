package pkgcache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Shared package indexes: apt's lists (InRelease and the Packages files it
// names, as apt keeps them in /var/lib/apt/lists) per set of sources,
// architecture and InRelease digests, published once per host so that a
// build whose InRelease files did not change starts with ready lists:
//
//	indexes/<key>/lists/<apt's file names>   the verified lists
//	indexes/<key>/cache/srcpkgcache.bin      apt's binary cache of the lists, made on the host
//	indexes/<key>/index.json                 what the key stands for
//	indexes/checked/<key>                    its mtime: when a build last saw upstream confirm the InRelease files
//
// A copy never changes once published (builds mount it as an overlay's
// lower dir): it is made in tmp/ and renamed into place, under the key's
// lock, so builds racing for one key make one copy.
//
// The lists come from a hostile chroot, so a file enters a copy only when
// its name is apt's name for an index an InRelease this build verified (its
// signature checked by the cache) lists and its size and sha256 are what
// that InRelease says; files are opened without following links and
// copied while hashed. apt's binary caches (pkgcache.bin, srcpkgcache.bin)
// a chroot wrote are never shared: they are memory images apt maps and
// trusts, and nothing short of parsing them proves that one written in the
// chroot describes the lists it sits beside. The copy's srcpkgcache.bin is
// made from the verified lists by the host's apt (srccache.go); each build
// adds its own dpkg status into its own pkgcache.bin.

// IndexSet names the indexes one build's apt needs.
type IndexSet struct {
	// Arch is the image's dpkg architecture.
	Arch string
	// Sources are the image's apt source entries.
	Sources []Source
	// Releases maps each InRelease URL of Sources to the sha256 of the
	// verified copy the build uses.
	Releases map[string]string
}

// ReleaseURLs are the InRelease URLs of srcs (flat repositories, with no
// dists/, have none), sorted.
func ReleaseURLs(srcs []Source) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range srcs {
		for _, suite := range s.Suites {
			if u := releaseURL(s.URI, suite); u != "" && !seen[u] {
				seen[u] = true
				out = append(out, u)
			}
		}
	}
	sort.Strings(out)
	return out
}

// releaseURL is the InRelease URL of one suite, in the cache's canonical
// form ("" for a flat repository or a URI the cache does not serve).
func releaseURL(uri, suite string) string {
	u, err := url.Parse(uri)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.HasSuffix(suite, "/") || !cleanRelative(suite) {
		return ""
	}
	return canonicalURL(u.Scheme, u.Host, path.Join("/", u.Path, "dists", suite, "InRelease"))
}

// Key names the set: the architecture, the source entries and the
// InRelease digests. "" when a source's InRelease has no digest.
func (s IndexSet) Key() string {
	if len(ReleaseURLs(s.Sources)) == 0 {
		return "" // no sources: nothing to share
	}
	lines := []string{"arch " + s.Arch}
	for _, src := range s.Sources {
		lines = append(lines, "source "+strings.TrimRight(src.URI, "/")+" "+strings.Join(src.Suites, ",")+" "+strings.Join(src.Components, ","))
	}
	for _, u := range ReleaseURLs(s.Sources) {
		h, ok := s.Releases[u]
		if !ok || CheckDigest(h) != nil {
			return ""
		}
		lines = append(lines, "release "+u+" "+h)
	}
	sort.Strings(lines[1:])
	sum := sha256.Sum256([]byte(strings.Join(lines, "\n")))
	return hex.EncodeToString(sum[:])
}

// SharedIndexes is one published copy.
type SharedIndexes struct {
	Key string
	// Lists and Cache are the lower dirs of the build's overlays at
	// /var/lib/apt/lists and /var/cache/apt.
	Lists, Cache string
	// Checked is when a build last saw upstream confirm its InRelease
	// files (or published it).
	Checked time.Time
}

func (s *Store) indexesDir(key string) string { return filepath.Join(s.dir, "indexes", key) }

// SharedIndexes returns the published copy of key, if there is one.
func (s *Store) SharedIndexes(key string) (*SharedIndexes, bool) {
	if CheckDigest(key) != nil {
		return nil, false
	}
	d := s.indexesDir(key)
	if _, err := os.Stat(filepath.Join(d, "index.json")); err != nil {
		return nil, false
	}
	markUsed(d)
	si := &SharedIndexes{Key: key, Lists: filepath.Join(d, "lists"), Cache: filepath.Join(d, "cache")}
	if fi, err := os.Stat(filepath.Join(s.dir, "indexes", "checked", key)); err == nil {
		si.Checked = fi.ModTime()
	}
	return si, true
}

// MarkIndexesChecked records that upstream confirmed key's InRelease files now.
func (s *Store) MarkIndexesChecked(key string) error {
	if err := CheckDigest(key); err != nil {
		return err
	}
	d := filepath.Join(s.dir, "indexes", "checked")
	if err := os.MkdirAll(d, 0o700); err != nil {
		return err
	}
	p := filepath.Join(d, key)
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	f.Close()
	now := time.Now()
	return os.Chtimes(p, now, now)
}

// LatestReleases are the InRelease digests the cache holds for urls (each
// URL's last verified copy): the set a build starts from. ok is false when
// one is missing.
func (s *Store) LatestReleases(urls []string) (map[string]string, bool) {
	out := map[string]string{}
	for _, u := range urls {
		rec, have := s.lastOf(u)
		if !have {
			return out, false
		}
		out[u] = rec.SHA256
	}
	return out, true
}

// PublishResult says what PublishIndexes did.
type PublishResult struct {
	Key       string
	Published bool // a new copy; false: one was there (or nothing to publish)
	Files     int
	Bytes     int64
	// Why there is nothing to publish (a list missing or not as signed).
	Skipped string
	// Refused are the lists left out (not as signed, not a regular file).
	Refused []string
	// SourceCache says why the copy has no srcpkgcache.bin ("": it has
	// one, made in SourceCacheTime).
	SourceCache     string
	SourceCacheTime time.Duration
}

// PublishIndexes takes the lists a build left in the directory lists (a
// handle on the chroot's /var/lib/apt/lists) into a new shared copy for
// set, unless one exists. Only the files set's InRelease files vouch for
// are read (never through a link); the copy must hold, for every source
// entry and component, the Packages list of set.Arch, or nothing is
// published.
func (s *Store) PublishIndexes(set IndexSet, lists *os.File) (PublishResult, error) {
	key := set.Key()
	res := PublishResult{Key: key}
	if key == "" {
		res.Skipped = "an InRelease of the sources has no verified copy"
		return res, nil
	}
	if _, ok := s.SharedIndexes(key); ok {
		return res, nil
	}
	want := map[string]expected{} // apt's list name -> what it must be
	for u, h := range set.Releases {
		data, err := s.readBlob(h)
		if err != nil {
			return res, fmt.Errorf("shared indexes: the InRelease %s: %w", u, err)
		}
		if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != h {
			return res, fmt.Errorf("shared indexes: the cache's copy of %s is corrupt", u)
		}
		want[AptListName(u)] = expected{SHA256: h, Size: int64(len(data)), Index: "InRelease"}
		dir := strings.TrimSuffix(u, "InRelease")
		for p, e := range releaseFiles(data) {
			want[AptListName(dir+p)] = e
		}
	}
	var required []string
	for _, u := range ReleaseURLs(set.Sources) {
		required = append(required, AptListName(u))
	}
	for _, src := range set.Sources {
		for _, suite := range src.Suites {
			u := releaseURL(src.URI, suite)
			if u == "" {
				continue
			}
			for _, c := range src.Components {
				n := AptListName(strings.TrimSuffix(u, "InRelease") + c + "/binary-" + set.Arch + "/Packages")
				if _, listed := want[n]; listed {
					required = append(required, n)
				}
			}
		}
	}

	unlock, err := s.Lock(urlKey("indexes " + key))
	if err != nil {
		return res, err
	}
	defer unlock()
	if _, ok := s.SharedIndexes(key); ok {
		return res, nil // another build published it while we waited
	}
	tmp, err := os.MkdirTemp(filepath.Join(s.dir, "tmp"), "indexes-*")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(tmp)
	for _, d := range []string{"lists", "cache"} {
		if err := os.Mkdir(filepath.Join(tmp, d), 0o755); err != nil {
			return res, err
		}
	}
	names := make([]string, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	sort.Strings(names)
	got := map[string]bool{}
	for _, n := range names {
		size, err := copyVerified(lists, n, filepath.Join(tmp, "lists", n), want[n])
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			// Left out; if apt needs it, the copy is incomplete below.
			os.Remove(filepath.Join(tmp, "lists", n))
			res.Refused = append(res.Refused, fmt.Sprintf("%s: %v", n, err))
			continue
		}
		got[n] = true
		res.Files++
		res.Bytes += size
	}
	for _, n := range required {
		if !got[n] {
			res.Skipped = n + " is missing or not as signed (apt-get update did not finish?)"
			return res, nil
		}
	}
	start := time.Now()
	if err := makeSourceCache(context.Background(), filepath.Join(tmp, "lists"), filepath.Join(tmp, "cache"), set); err != nil {
		res.SourceCache = err.Error()
		os.RemoveAll(filepath.Join(tmp, "cache"))
		if err := os.Mkdir(filepath.Join(tmp, "cache"), 0o755); err != nil {
			return res, err
		}
	} else {
		res.SourceCacheTime = time.Since(start)
	}
	info := struct {
		Key      string            `json:"key"`
		Arch     string            `json:"arch"`
		Sources  []Source          `json:"sources"`
		Releases map[string]string `json:"releases"`
		Created  time.Time         `json:"created"`
	}{key, set.Arch, set.Sources, set.Releases, time.Now().UTC()}
	b, _ := json.MarshalIndent(info, "", "  ")
	if err := writeSynced(filepath.Join(tmp, "index.json"), b); err != nil {
		return res, err
	}
	if err := syncDir(filepath.Join(tmp, "lists")); err != nil {
		return res, err
	}
	if err := os.MkdirAll(filepath.Join(s.dir, "indexes"), 0o700); err != nil {
		return res, err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return res, err
	}
	if err := os.Rename(tmp, s.indexesDir(key)); err != nil {
		return res, fmt.Errorf("shared indexes: publishing %s: %w", key, err)
	}
	res.Published = true
	return res, s.MarkIndexesChecked(key)
}

// copyVerified copies the regular file name in dir (never through a link)
// to dst, keeping its modification time, when it has e's size and sha256.
// An entry without both is an error: nothing is copied unchecked. Nothing
// is left at dst when it fails.
func copyVerified(dir *os.File, name, dst string, e expected) (int64, error) {
	if CheckDigest(e.SHA256) != nil || e.Size < 0 {
		return 0, fmt.Errorf("no sha256 and size to check it against")
	}
	return copyChecked(dir, name, dst, e.Size+1, func(n int64, sum string) error {
		if n != e.Size {
			return fmt.Errorf("%w: %d bytes, the InRelease says %d", ErrMismatch, n, e.Size)
		}
		if sum != "" && sum != e.SHA256 {
			return fmt.Errorf("%w: its content changed or is not what the InRelease says", ErrMismatch)
		}
		return nil
	})
}

// copyBounded copies the regular file name in dir (never through a link)
// to dst, keeping its modification time, when it is at most max bytes: for
// files no signed index describes (apt's binary caches of an image).
func copyBounded(dir *os.File, name, dst string, max int64) (int64, error) {
	return copyChecked(dir, name, dst, max+1, func(n int64, _ string) error {
		if n > max {
			return fmt.Errorf("larger than %d bytes", max)
		}
		return nil
	})
}

// copyChecked copies up to limit bytes of the regular file name in dir to
// dst and keeps the copy when check accepts it: first given the file's size
// alone (sum ""), then the copy's size and sha256.
func copyChecked(dir *os.File, name, dst string, limit int64, check func(n int64, sum string) error) (n int64, err error) {
	fd, err := unix.Openat(int(dir.Fd()), name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	switch {
	case err == unix.ENOENT:
		return 0, os.ErrNotExist
	case err == unix.ELOOP:
		return 0, fmt.Errorf("a symbolic link: not followed")
	case err != nil:
		return 0, err
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if !fi.Mode().IsRegular() {
		return 0, fmt.Errorf("not a regular file")
	}
	if err := check(fi.Size(), ""); err != nil {
		return 0, err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			os.Remove(dst)
		}
	}()
	h := sha256.New()
	n, err = io.Copy(io.MultiWriter(out, h), io.LimitReader(f, limit))
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, err
	}
	if err := check(n, hex.EncodeToString(h.Sum(nil))); err != nil {
		return n, err
	}
	return n, os.Chtimes(dst, fi.ModTime(), fi.ModTime())
}

func writeSynced(p string, b []byte) error {
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err = f.Write(b); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func syncDir(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// AptListName is the name apt gives the list file of an index URL in
// /var/lib/apt/lists (apt's URItoFileName): no scheme or credentials,
// some characters %-quoted, every / turned into _.
func AptListName(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		u = u[i+3:]
	}
	if at := strings.IndexByte(u, '@'); at >= 0 && at < strings.IndexByte(u+"/", '/') {
		u = u[at+1:]
	}
	var b strings.Builder
	for i := 0; i < len(u); i++ {
		c := u[i]
		if c <= 0x20 || c >= 0x7f || strings.IndexByte(`\|{}[]<>"^~_=!@#$%^&*`, c) >= 0 {
			fmt.Fprintf(&b, "%%%02x", c)
			continue
		}
		if c == '/' {
			c = '_'
		}
		b.WriteByte(c)
	}
	return b.String()
}

// Binary caches made by an image's own apt. apt rebuilds a binary cache
// that another apt version wrote (the host's srcpkgcache.bin is of no use
// to an image whose apt differs by a point release), and making one costs
// a parse of every list. So the first child of a parent image has the
// parent's own apt make srcpkgcache.bin and pkgcache.bin from a shared
// copy, before anything of the build runs in the chroot, and they are
// kept beside that copy for that parent alone:
//
//	indexes/<key>/image/<parent image ID hex>/{srcpkgcache.bin,pkgcache.bin}
//
// The trust trade-off: these files are written by the parent image's apt
// (which every build of its children runs anyway), from the verified lists
// and the parent's unmodified dpkg status, and are only ever read by
// builds of children of that same parent. A file apt maps and trusts is
// thus never carried from one image to another.

// imageCacheFiles are the binary caches kept per parent image.
var imageCacheFiles = []string{SourceCacheName, "pkgcache.bin"}

// maxImageCache bounds one binary cache file.
const maxImageCache = 1 << 30

func (s *Store) imageCacheDir(key, image string) (string, error) {
	image = strings.TrimPrefix(image, "sha256:")
	if err := CheckDigest(key); err != nil {
		return "", err
	}
	if err := CheckDigest(image); err != nil {
		return "", fmt.Errorf("image ID: %w", err)
	}
	return filepath.Join(s.indexesDir(key), "image", image), nil
}

// ImageCache returns the binary caches the parent image's apt made for
// the shared copy key, if there are.
func (s *Store) ImageCache(key, image string) (string, bool) {
	d, err := s.imageCacheDir(key, image)
	if err != nil {
		return "", false
	}
	for _, n := range imageCacheFiles {
		if fi, err := os.Lstat(filepath.Join(d, n)); err != nil || !fi.Mode().IsRegular() {
			return "", false
		}
	}
	markUsed(d)
	return d, true
}

// PublishImageCache keeps the binary caches the parent image's apt wrote
// in the directory from (a build's private upper dir) for later children
// of image. Both files must be there, regular files, not links.
func (s *Store) PublishImageCache(key, image string, from *os.File) (bool, error) {
	d, err := s.imageCacheDir(key, image)
	if err != nil {
		return false, err
	}
	if _, ok := s.SharedIndexes(key); !ok {
		return false, fmt.Errorf("no shared copy %s", key)
	}
	if _, ok := s.ImageCache(key, image); ok {
		return false, nil
	}
	unlock, err := s.Lock(urlKey("image-cache " + key + " " + image))
	if err != nil {
		return false, err
	}
	defer unlock()
	if _, ok := s.ImageCache(key, image); ok {
		return false, nil
	}
	tmp, err := os.MkdirTemp(filepath.Join(s.dir, "tmp"), "image-cache-*")
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(tmp)
	for _, n := range imageCacheFiles {
		if _, err := copyBounded(from, n, filepath.Join(tmp, n), maxImageCache); err != nil {
			return false, fmt.Errorf("%s: %w", n, err)
		}
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return false, err
	}
	if err := os.MkdirAll(filepath.Dir(d), 0o755); err != nil {
		return false, err
	}
	if err := os.Rename(tmp, d); err != nil {
		return false, err
	}
	return true, nil
}
