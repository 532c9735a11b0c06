package layer

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Image is a stored image: an OCI config over its layers.
type Image struct {
	// ID is the digest of Config, "sha256:<hex>".
	ID string `json:"id"`
	// Layers are the image's layers, base first.
	Layers []LayerRef `json:"layers"`
	// Parent is the image this one was built on, "" for a base.
	Parent  string    `json:"parent,omitempty"`
	Created time.Time `json:"created"`
	// Config is the OCI image config, byte for byte as its ID was taken.
	Config []byte `json:"-"`
	// Stored is when the image was put in this store (not in image.json).
	Stored time.Time `json:"-"`
}

// LayerRef names one layer of an image.
type LayerRef struct {
	DiffID string `json:"diff_id"`
	Size   int64  `json:"size"`
}

// ConfigFile is the parsed config.
func (img *Image) ConfigFile() (*v1.ConfigFile, error) {
	return v1.ParseConfigFile(strings.NewReader(string(img.Config)))
}

// ImageID is the one rule for an image's ID: the sha256 of its config.
func ImageID(config []byte) string {
	sum := sha256.Sum256(config)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// ImageSpec describes a new image: a parent's layers (none for a base) plus
// one new layer.
type ImageSpec struct {
	Parent *Image
	Layer  *Layer
	// Created is the image's and the history entry's time
	// (SOURCE_DATE_EPOCH for a reproducible ID).
	Created   time.Time
	CreatedBy string
	Comment   string
	// Labels go on top of the parent's.
	Labels map[string]string
	// Architecture and Variant are a base image's OCI platform (a child
	// keeps its parent's); Architecture defaults to the host's.
	Architecture, Variant string
}

// defaultPath is a base image's PATH, as in Debian's images.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Config builds the OCI config of spec: the parent's (its environment,
// labels, history) with the new layer and history entry appended.
func (spec ImageSpec) Config() ([]byte, error) {
	cfg := &v1.ConfigFile{
		Architecture: runtime.GOARCH,
		OS:           "linux",
		Config:       v1.Config{Env: []string{defaultPath}},
	}
	if spec.Architecture != "" {
		cfg.Architecture, cfg.Variant = spec.Architecture, spec.Variant
	}
	if spec.Parent != nil {
		parent, err := spec.Parent.ConfigFile()
		if err != nil {
			return nil, fmt.Errorf("the parent's config: %w", err)
		}
		cfg = parent.DeepCopy()
	}
	created := v1.Time{Time: spec.Created.UTC()}
	cfg.Created = created
	cfg.RootFS.Type = "layers"
	diff, err := v1.NewHash(spec.Layer.DiffID)
	if err != nil {
		return nil, err
	}
	cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, diff)
	cfg.History = append(cfg.History, v1.History{Created: created, CreatedBy: spec.CreatedBy, Comment: spec.Comment})
	if len(spec.Labels) > 0 {
		if cfg.Config.Labels == nil {
			cfg.Config.Labels = map[string]string{}
		}
		maps.Copy(cfg.Config.Labels, spec.Labels)
	}
	return json.Marshal(cfg)
}

// PutImage stores the image spec describes and returns it. The same spec
// (same layers, config and times) gives the same ID. The image and its
// layers come back held (see lock.go), whether the image is new or was
// stored already, so no garbage collection takes it before its build is
// done: the caller calls release then.
func (s *Store) PutImage(spec ImageSpec) (got *Image, created bool, release func(), err error) {
	cfg, err := spec.Config()
	if err != nil {
		return nil, false, nil, err
	}
	img := &Image{ID: ImageID(cfg), Created: spec.Created.UTC(), Config: cfg}
	if spec.Parent != nil {
		img.Parent = spec.Parent.ID
		img.Layers = append(img.Layers, spec.Parent.Layers...)
	}
	img.Layers = append(img.Layers, LayerRef{DiffID: spec.Layer.DiffID, Size: spec.Layer.Size})
	return s.storeImage(img)
}

// storeImage stores img (its ID, layers and config set) as PutImage does.
func (s *Store) storeImage(img *Image) (got *Image, created bool, release func(), err error) {
	cfg := img.Config
	releaseLayers, err := s.Hold(img)
	if err != nil {
		return nil, false, nil, fmt.Errorf("image %s: %w", img.ID, err)
	}
	h, _ := hexOf(img.ID)
	final := filepath.Join(s.root, imagesDir, h)
	if got, releaseImage, err := s.holdImage(img.ID); !errors.Is(err, ErrNotFound) {
		if err != nil {
			releaseLayers()
			return nil, false, nil, err
		}
		return got, false, func() { releaseImage(); releaseLayers() }, nil
	}
	staged, releaseStaging, err := s.staging("image-")
	if err != nil {
		releaseLayers()
		return nil, false, nil, err
	}
	defer releaseStaging()
	fail := func(err error) (*Image, bool, func(), error) {
		os.RemoveAll(staged)
		releaseLayers()
		return nil, false, nil, err
	}
	meta, _ := json.MarshalIndent(img, "", "  ")
	for name, data := range map[string][]byte{configDoc: cfg, imageMeta: append(meta, '\n'), lockFile: nil} {
		if err := writeSynced(filepath.Join(staged, name), data); err != nil {
			return fail(err)
		}
	}
	hold, err := lockShared(filepath.Join(staged, lockFile))
	if err != nil {
		return fail(err)
	}
	for {
		created, err = publish(staged, final)
		if err != nil {
			hold.Close()
			return fail(err)
		}
		if created {
			if got, err = s.Image(img.ID); err != nil {
				hold.Close()
				releaseLayers()
				return nil, false, nil, err
			}
			return got, true, func() { hold.Close(); releaseLayers() }, nil
		}
		// Stored by another build meanwhile: hold that one, drop ours.
		if got, releaseImage, err := s.holdImage(img.ID); !errors.Is(err, ErrNotFound) {
			hold.Close()
			os.RemoveAll(staged)
			if err != nil {
				releaseLayers()
				return nil, false, nil, err
			}
			return got, false, func() { releaseImage(); releaseLayers() }, nil
		}
	}
}

// holdImage takes a stored image's entry lock shared and returns the image;
// ErrNotFound (wrapped) when the store lacks it. An image stored before
// images had a lock file is returned unheld.
func (s *Store) holdImage(id string) (*Image, func(), error) {
	h, err := hexOf(id)
	if err != nil {
		return nil, nil, err
	}
	f, err := lockShared(filepath.Join(s.root, imagesDir, h, lockFile))
	release := func() {}
	switch {
	case err == nil:
		release = func() { f.Close() }
	case !errors.Is(err, os.ErrNotExist):
		return nil, nil, err
	}
	img, err := s.Image(id)
	if err != nil {
		release()
		return nil, nil, err
	}
	return img, release, nil
}

// Image returns a stored image by its ID ("sha256:<hex>") or by a prefix of
// it at least 12 hex digits long that only one image has.
func (s *Store) Image(id string) (*Image, error) {
	h, err := s.resolveImage(id)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(s.root, imagesDir, h)
	meta, err := os.ReadFile(filepath.Join(dir, imageMeta))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("image %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	var img Image
	if err := json.Unmarshal(meta, &img); err != nil {
		return nil, fmt.Errorf("image %s: %w", id, err)
	}
	if img.Config, err = os.ReadFile(filepath.Join(dir, configDoc)); err != nil {
		return nil, err
	}
	if fi, err := os.Stat(filepath.Join(dir, imageMeta)); err == nil {
		img.Stored = fi.ModTime()
	}
	if ImageID(img.Config) != img.ID || "sha256:"+h != img.ID {
		return nil, fmt.Errorf("image %s: its config does not have that digest; the store is damaged", id)
	}
	return &img, nil
}

func (s *Store) resolveImage(id string) (string, error) {
	h := strings.TrimPrefix(id, "sha256:")
	if len(h) == 64 {
		if _, err := hexOf("sha256:" + h); err != nil {
			return "", err
		}
		return h, nil
	}
	if len(h) < 12 || strings.Trim(h, "0123456789abcdef") != "" {
		return "", fmt.Errorf("%q is not an image ID: write sha256: and its hex digest (at least 12 digits)", id)
	}
	ents, err := os.ReadDir(filepath.Join(s.root, imagesDir))
	if err != nil {
		return "", err
	}
	var found []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), h) {
			found = append(found, e.Name())
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("image %s: %w", id, ErrNotFound)
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("image ID %s is ambiguous: it starts %d images; give more digits", id, len(found))
}

// Images lists every stored image, oldest first.
func (s *Store) Images() ([]*Image, error) {
	ents, err := os.ReadDir(filepath.Join(s.root, imagesDir))
	if err != nil {
		return nil, err
	}
	out := []*Image{}
	for _, e := range ents {
		img, err := s.Image("sha256:" + e.Name())
		if err != nil {
			continue // not complete: invisible
		}
		out = append(out, img)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// Complete checks that every layer of img is in the store.
func (s *Store) Complete(img *Image) error {
	for _, l := range img.Layers {
		if _, err := s.Layer(l.DiffID); err != nil {
			return fmt.Errorf("image %s is incomplete: %w", img.ID, err)
		}
	}
	return nil
}

// LowerDirs are img's layer trees top layer first, as overlayfs lowerdir
// lists them.
func (s *Store) LowerDirs(img *Image) ([]string, error) {
	dirs := make([]string, 0, len(img.Layers))
	for i := len(img.Layers) - 1; i >= 0; i-- {
		l, err := s.Layer(img.Layers[i].DiffID)
		if err != nil {
			return nil, err
		}
		dirs = append(dirs, l.Dir)
	}
	return dirs, nil
}
