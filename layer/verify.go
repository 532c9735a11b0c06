package layer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/strata-build/packer-plugin-strata/internal/treetar"
)

// ErrDamaged is returned (wrapped) for a layer whose tree no longer hashes
// to its diffID: it was changed after it was committed.
var ErrDamaged = errors.New("the layer store is damaged")

// VerifyLayer re-reads a layer's tree as its OCI layer tar and checks that
// it still hashes to its diffID, the name it was committed under. Its cost
// is one read of the layer (what a child build pays for each parent layer
// before it mounts it; see docs/builders/chroot.mdx for the figures).
func (s *Store) VerifyLayer(ctx context.Context, l *Layer) error {
	h := sha256.New()
	cw := &countingWriter{ctx: ctx, w: h}
	if err := treetar.Write(cw, l.Dir, treetar.Options{Layer: true, ClampTime: l.clampTime()}); err != nil {
		return fmt.Errorf("layer %s: re-reading %s: %w", l.DiffID, l.Dir, err)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != l.DiffID {
		return fmt.Errorf("layer %s (%s) now hashes to %s: it was changed after it was committed; rebuild the images that use it (strata layers lists them), and strata gc removes it once none does: %w",
			l.DiffID, l.Dir, got, ErrDamaged)
	}
	if cw.n != l.Size {
		return fmt.Errorf("layer %s: its tar is %d bytes, layer.json records %d: %w", l.DiffID, cw.n, l.Size, ErrDamaged)
	}
	return nil
}

// VerifyImage checks every layer of img (VerifyLayer), base first, and
// stops at the first that fails.
func (s *Store) VerifyImage(ctx context.Context, img *Image) error {
	for _, ref := range img.Layers {
		l, err := s.Layer(ref.DiffID)
		if err != nil {
			return err
		}
		if err := s.VerifyLayer(ctx, l); err != nil {
			return err
		}
	}
	return nil
}
