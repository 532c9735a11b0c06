package layer

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/strata-build/packer-plugin-strata/internal/mount"
)

// GCOptions say what store garbage collection keeps.
type GCOptions struct {
	// Keep are the image IDs something still needs (the catalog's kept
	// versions).
	Keep map[string]bool
	// MinAge keeps every image and layer younger than this: a build that is
	// about to register its image must not lose it.
	MinAge time.Duration
	DryRun bool
	Now    func() time.Time
}

// GCResult says what was (or would be) deleted.
type GCResult struct {
	Images []string `json:"images"`
	Layers []string `json:"layers"`
	// InUse are layers a running build holds; they stay.
	InUse []string `json:"in_use"`
	Bytes int64    `json:"bytes"` // uncompressed tar bytes of the deleted layers
	// Blobs are compressed blobs whose layer is gone (left by a removal or
	// a pull that stopped between its two renames), as blobs/ names them.
	Blobs []string `json:"orphan_blobs"`
}

// NoGC is the result of a collection that deleted nothing: every list
// empty, not null, in JSON.
func NoGC() *GCResult {
	return &GCResult{Images: []string{}, Layers: []string{}, InUse: []string{}, Blobs: []string{}}
}

// GC deletes the images that are neither kept nor young, then the layers no
// remaining image uses that no running build holds.
func (s *Store) GC(opt GCOptions) (*GCResult, error) {
	now := time.Now
	if opt.Now != nil {
		now = opt.Now
	}
	res := NoGC()
	imgs, err := s.Images()
	if err != nil {
		return nil, err
	}
	used := map[string]bool{}
	keep := func(img *Image) {
		for _, l := range img.Layers {
			used[l.DiffID] = true
		}
	}
	for _, img := range imgs {
		// Age counts from when the image was stored, not from its
		// creation time, which source_date_epoch may put years back.
		if opt.Keep[img.ID] || now().Sub(img.Stored) < opt.MinAge {
			keep(img)
			continue
		}
		h, _ := hexOf(img.ID)
		dir := filepath.Join(s.root, imagesDir, h)
		release, free := tryExclusive(dir)
		if !free { // its build is still running
			keep(img)
			continue
		}
		res.Images = append(res.Images, img.ID)
		var err error
		if !opt.DryRun {
			err = s.removeEntry(dir)
		}
		release()
		if err != nil {
			return res, err
		}
	}
	ents, err := os.ReadDir(filepath.Join(s.root, layersDir))
	if err != nil {
		return res, err
	}
	for _, e := range ents {
		diffID := "sha256:" + e.Name()
		l, err := s.Layer(diffID)
		if err != nil || used[diffID] || now().Sub(l.Created) < opt.MinAge {
			continue
		}
		release, free := tryExclusive(filepath.Join(s.root, layersDir, e.Name()))
		if !free {
			res.InUse = append(res.InUse, diffID)
			continue
		}
		res.Layers = append(res.Layers, diffID)
		res.Bytes += l.Size
		if !opt.DryRun {
			err = s.removeEntry(filepath.Join(s.root, layersDir, e.Name()))
			if err == nil {
				err = s.removeBlobs(e.Name())
			}
		}
		release()
		if err != nil {
			return res, err
		}
	}
	return res, s.removeOrphanBlobs(res, opt, now())
}

// removeOrphanBlobs deletes the blobs whose layer the store does not have:
// a crash between removing a layer and its blobs, or between a pull's two
// renames (the blob goes first), leaves one. A pull publishing a blob holds
// its layer's pull lock until the layer is in place, so a blob whose pull
// lock is held stays, and so does one younger than MinAge.
func (s *Store) removeOrphanBlobs(res *GCResult, opt GCOptions, now time.Time) error {
	ents, err := os.ReadDir(filepath.Join(s.root, blobsDir))
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return err
	}
	for _, e := range ents {
		h, _, _ := strings.Cut(e.Name(), ".")
		if _, err := hexOf("sha256:" + h); err != nil {
			continue // not a blob's name
		}
		if _, err := os.Lstat(filepath.Join(s.root, layersDir, h)); !os.IsNotExist(err) {
			continue
		}
		if fi, err := e.Info(); err != nil || now.Sub(fi.ModTime()) < opt.MinAge {
			continue
		}
		unlock, ok := s.tryPullLock(h)
		if !ok {
			continue // being pulled
		}
		// Looked at again under the lock: the pull may have ended.
		var err error
		if _, lerr := os.Lstat(filepath.Join(s.root, layersDir, h)); os.IsNotExist(lerr) {
			res.Blobs = append(res.Blobs, e.Name())
			if !opt.DryRun {
				err = os.RemoveAll(filepath.Join(s.root, blobsDir, e.Name()))
			}
		}
		unlock()
		if err != nil {
			return err
		}
	}
	return nil
}

// removeEntry deletes a store entry: first renamed into tmp/ (so it is gone
// from view at once, and an interrupted removal is finished by the next
// Open), never while anything is mounted in it.
func (s *Store) removeEntry(dir string) error {
	if err := mount.Verify(dir); err != nil {
		return fmt.Errorf("not deleting %s: %w", dir, err)
	}
	trash, release, err := s.staging("gc-")
	if err != nil {
		return err
	}
	defer release()
	if err := os.Rename(dir, filepath.Join(trash, "x")); err != nil {
		os.Remove(trash)
		return err
	}
	return os.RemoveAll(trash)
}

// removeBlobs deletes the cached compressed blobs of a layer.
func (s *Store) removeBlobs(diffHex string) error {
	ents, err := os.ReadDir(filepath.Join(s.root, blobsDir))
	if err != nil {
		return err
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), diffHex+".") {
			if err := os.RemoveAll(filepath.Join(s.root, blobsDir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// RemoveImage deletes one image (not its layers). The caller must not hold
// the image itself (release PutImage's hold first); another process's hold
// makes it an error.
func (s *Store) RemoveImage(id string) error {
	h, err := hexOf(id)
	if err != nil {
		return err
	}
	dir := filepath.Join(s.root, imagesDir, h)
	release, free := tryExclusive(dir)
	if !free {
		return fmt.Errorf("image %s is in use by a running build", id)
	}
	defer release()
	return s.removeEntry(dir)
}

// RemoveLayerIfUnused deletes a layer no stored image uses and no running
// build holds.
func (s *Store) RemoveLayerIfUnused(diffID string) error {
	users, err := s.ImagesUsing(diffID)
	if err != nil || len(users) > 0 {
		return err
	}
	h, err := hexOf(diffID)
	if err != nil {
		return err
	}
	release, free := tryExclusive(filepath.Join(s.root, layersDir, h))
	if !free {
		return nil
	}
	defer release()
	if err := s.removeEntry(filepath.Join(s.root, layersDir, h)); err != nil {
		return err
	}
	return s.removeBlobs(h)
}
