package layer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/strata-build/packer-plugin-strata/internal/durable"
	"github.com/strata-build/packer-plugin-strata/internal/mount"
	"github.com/strata-build/packer-plugin-strata/internal/treetar"
)

// Layer is a committed layer.
type Layer struct {
	DiffID string `json:"diff_id"` // sha256 of the uncompressed OCI layer tar
	// Size is the uncompressed OCI layer tar's length in bytes.
	Size    int64     `json:"size"`
	Entries int64     `json:"entries"`
	Created time.Time `json:"created"`
	// Clamp is the SOURCE_DATE_EPOCH (Unix seconds) the tar's mtimes were
	// capped at, 0 for none: the blob made later must hash the same.
	Clamp int64 `json:"clamp,omitempty"`
	// Dir is the layer's tree, for overlayfs (not in layer.json).
	Dir string `json:"-"`
}

// CommitOptions tune a commit.
type CommitOptions struct {
	// ClampTime caps the layer tar's mtimes (SOURCE_DATE_EPOCH), so the same
	// change gives the same diffID whenever it is built.
	ClampTime time.Time
	// Progress is told the tar bytes hashed so far.
	Progress func(int64)
}

// syncFSAbove is the entry count above which a layer's tree is synced
// with one syncfs rather than file by file.
const syncFSAbove = 2000

// syncTree writes a layer's tree of entries entries to disk before it is
// published, as every layer is (committed or pulled): a child's few files
// one by one, a base's thousands at once.
func syncTree(dir string, entries int64) error {
	sync := durable.Tree
	if entries > syncFSAbove {
		sync = durable.FS
	}
	if err := sync(dir); err != nil {
		return fmt.Errorf("syncing the layer: %w", err)
	}
	return nil
}

// Commit makes dir (an overlayfs upper dir, or a base tree) a layer. Its
// diffID is computed from its OCI layer tar, then dir itself moves into the
// store (it must be on the store's file system, else it is copied). When the
// store has the layer already, dir is removed and the stored one stands.
// created says whether this commit added the layer. The layer comes back
// held (see lock.go) whether it is new or reused, so no garbage collection
// can take it before the caller's image uses it: the caller calls release
// when its build is done.
func (s *Store) Commit(ctx context.Context, dir string, opt CommitOptions) (l *Layer, created bool, release func(), err error) {
	diffID, size, entries, err := DiffID(ctx, dir, opt)
	if err != nil {
		return nil, false, nil, err
	}
	if l, release, err := s.reuse(diffID, dir); !errors.Is(err, ErrNotFound) {
		return l, false, release, err
	}
	staged, releaseStaging, err := s.staging("layer-")
	if err != nil {
		return nil, false, nil, err
	}
	defer releaseStaging()
	fail := func(err error) (*Layer, bool, func(), error) {
		os.RemoveAll(staged)
		return nil, false, nil, err
	}
	if err := moveTree(dir, filepath.Join(staged, diffDir)); err != nil {
		return fail(err)
	}
	// On the disk before it is published: the chroot's overlay is mounted
	// volatile (its unmount syncs nothing, so it does not wait for every
	// other writer's data on the file system), and a base's tree was never
	// in one.
	if err := syncTree(filepath.Join(staged, diffDir), entries); err != nil {
		return fail(err)
	}
	l = &Layer{DiffID: diffID, Size: size, Entries: entries, Created: time.Now().UTC()}
	if !opt.ClampTime.IsZero() {
		l.Clamp = opt.ClampTime.Unix()
	}
	meta, _ := json.MarshalIndent(l, "", "  ")
	if err := writeSynced(filepath.Join(staged, layerMeta), append(meta, '\n')); err != nil {
		return fail(err)
	}
	if err := writeSynced(filepath.Join(staged, lockFile), nil); err != nil {
		return fail(err)
	}
	// Held before it is visible: the lock file's inode moves with the rename.
	hold, err := lockShared(filepath.Join(staged, lockFile))
	if err != nil {
		return fail(err)
	}
	h, _ := hexOf(diffID)
	for {
		created, err = publish(staged, filepath.Join(s.root, layersDir, h))
		if err != nil {
			hold.Close()
			return fail(err)
		}
		if created {
			l, err = s.Layer(diffID)
			if err != nil {
				hold.Close()
				return nil, false, nil, err
			}
			return l, true, func() { hold.Close() }, nil
		}
		// Another commit published the same layer first: hold that one
		// and drop ours, unless a deletion took it meanwhile.
		if l, release, err := s.reuse(diffID, staged); !errors.Is(err, ErrNotFound) {
			hold.Close()
			return l, false, release, err
		}
	}
}

// reuse holds the stored layer diffID, if the store has it, and removes
// dir, the same content, which the caller no longer needs.
func (s *Store) reuse(diffID, dir string) (*Layer, func(), error) {
	l, release, err := s.holdLayer(diffID)
	if err != nil {
		return nil, nil, err
	}
	if err := mount.Verify(dir); err != nil {
		release()
		return nil, nil, err
	}
	if err := os.RemoveAll(dir); err != nil {
		release()
		return nil, nil, err
	}
	return l, release, nil
}

// DiffID hashes dir's OCI layer tar without keeping it: the diffID, the
// tar's size and its number of entries.
func DiffID(ctx context.Context, dir string, opt CommitOptions) (string, int64, int64, error) {
	h := sha256.New()
	cw := &countingWriter{ctx: ctx, w: h}
	err := treetar.Write(cw, dir, treetar.Options{Layer: true, ClampTime: opt.ClampTime, Progress: opt.Progress})
	if err != nil {
		return "", 0, 0, fmt.Errorf("hashing the layer %s: %w", dir, err)
	}
	entries, _ := countEntries(dir)
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), cw.n, entries, nil
}

type countingWriter struct {
	ctx context.Context
	w   io.Writer
	n   int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

func countEntries(dir string) (int64, error) {
	var n int64
	err := filepath.Walk(dir, func(string, os.FileInfo, error) error { n++; return nil })
	return n - 1, err
}

// moveTree renames from to to, or copies it when they are on different
// file systems (a work dir outside the store), keeping everything a layer
// holds: owners, modes, xattrs (overlay's too), devices, links, holes.
func moveTree(from, to string) error {
	err := os.Rename(from, to)
	if !errors.Is(err, unix.EXDEV) {
		return err
	}
	if out, err := exec.Command("cp", "-a", "--sparse=auto", from, to).CombinedOutput(); err != nil {
		os.RemoveAll(to)
		return fmt.Errorf("copying the layer into the store: %v\n%s", err, out)
	}
	return os.RemoveAll(from)
}

// Layer returns a committed layer.
func (s *Store) Layer(diffID string) (*Layer, error) {
	h, err := hexOf(diffID)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(s.root, layersDir, h)
	b, err := os.ReadFile(filepath.Join(dir, layerMeta))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("layer %s: %w", diffID, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	var l Layer
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("layer %s: %w", diffID, err)
	}
	if l.DiffID != diffID {
		return nil, fmt.Errorf("layer %s: its layer.json names %s", diffID, l.DiffID)
	}
	l.Dir = filepath.Join(dir, diffDir)
	return &l, nil
}

// clampTime is the time the layer's tar was clamped at.
func (l *Layer) clampTime() time.Time {
	if l.Clamp == 0 {
		return time.Time{}
	}
	return time.Unix(l.Clamp, 0).UTC()
}
