package catalog

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// Images lists images.
func (c *Catalog) Images(ctx context.Context) ([]Image, error) {
	var out []Image
	err := c.store.View(ctx, func(tx Tx) error {
		var err error
		out, err = tx.Images()
		return err
	})
	return out, err
}

// Versions lists an image's versions in registration order.
func (c *Catalog) Versions(ctx context.Context, image string) ([]*Version, error) {
	var out []*Version
	err := c.store.View(ctx, func(tx Tx) error {
		if err := requireImage(tx, image); err != nil {
			return err
		}
		var err error
		out, err = tx.Versions(image, false)
		return err
	})
	return out, err
}

func requireImage(tx Tx, image string) error {
	ok, err := tx.ImageExists(image)
	if err != nil {
		return err
	}
	if !ok {
		return notFound("image %q is not in the catalog", image)
	}
	return nil
}

// Get returns one version with all its content.
func (c *Catalog) Get(ctx context.Context, image, version string) (*Version, error) {
	var out *Version
	err := c.store.View(ctx, func(tx Tx) error {
		var err error
		out, err = getVersion(tx, image, version)
		return err
	})
	return out, err
}

func getVersion(tx Tx, image, version string) (*Version, error) {
	if err := requireImage(tx, image); err != nil {
		return nil, err
	}
	v, err := tx.Version(image, version)
	if errors.Is(err, ErrNotFound) {
		return nil, notFound("%s@%s: no such version of %s", image, version, image)
	}
	return v, err
}

// Channels lists an image's channels and where they point.
func (c *Catalog) Channels(ctx context.Context, image string) ([]Channel, error) {
	out := []Channel{}
	err := c.store.View(ctx, func(tx Tx) error {
		if err := requireImage(tx, image); err != nil {
			return err
		}
		names, err := tx.ChannelNames(image)
		if err != nil {
			return err
		}
		for _, n := range names {
			h, err := tx.History(image, n)
			if err != nil {
				return err
			}
			if len(h) == 0 {
				continue
			}
			last := h[len(h)-1]
			ch := Channel{Image: image, Name: n, Version: last.Version, Since: last.Time}
			if v, err := tx.Version(image, last.Version); err == nil {
				ch.Revoked = v.Revoked
			}
			out = append(out, ch)
		}
		return nil
	})
	return out, err
}

// Resolve returns the version a channel points at, refusing a revoked one.
func (c *Catalog) Resolve(ctx context.Context, image, channel string) (*Version, error) {
	var out *Version
	err := c.store.View(ctx, func(tx Tx) error {
		h, err := assignedHistory(tx, image, channel)
		if err != nil {
			return err
		}
		v, err := getVersion(tx, image, h[len(h)-1].Version)
		if err != nil {
			return err
		}
		if v.Revoked {
			return fmt.Errorf("%w: %s on channel %s is revoked (%s); roll the channel back", ErrRevoked, v.Ref(), channel, v.RevokedReason)
		}
		out = v
		return nil
	})
	return out, err
}

// ResolveTag returns the newest version (by registration) of image that
// carries tag and is not revoked. With none it is ErrNotFound; when every
// tagged version is revoked, ErrRevoked.
func (c *Catalog) ResolveTag(ctx context.Context, image, tag string) (*Version, error) {
	var out *Version
	err := c.store.View(ctx, func(tx Tx) error {
		if err := requireImage(tx, image); err != nil {
			return err
		}
		vs, err := tx.Versions(image, false)
		if err != nil {
			return err
		}
		revoked := 0
		for i := len(vs) - 1; i >= 0; i-- {
			if !slices.Contains(vs[i].Tags, tag) {
				continue
			}
			if vs[i].Revoked {
				revoked++
				continue
			}
			out, err = getVersion(tx, image, vs[i].Version)
			return err
		}
		if revoked > 0 {
			return fmt.Errorf("%w: every version of %s tagged %q is revoked (%d); tag a new version", ErrRevoked, image, tag, revoked)
		}
		return notFound("no version of %s is tagged %q; register one with that tag", image, tag)
	})
	return out, err
}

// assignedHistory is a channel's history, which must not be empty.
func assignedHistory(tx Tx, image, channel string) ([]ChannelEntry, error) {
	if err := requireImage(tx, image); err != nil {
		return nil, err
	}
	h, err := tx.History(image, channel)
	if err == nil && len(h) == 0 {
		err = notFound("channel %q of %s has never been assigned", channel, image)
	}
	return h, err
}

// History lists a channel's assignments, oldest first.
func (c *Catalog) History(ctx context.Context, image, channel string) ([]ChannelEntry, error) {
	var out []ChannelEntry
	err := c.store.View(ctx, func(tx Tx) error {
		if err := requireImage(tx, image); err != nil {
			return err
		}
		var err error
		out, err = tx.History(image, channel)
		if err == nil && len(out) == 0 {
			return notFound("channel %q of %s has no history", channel, image)
		}
		return err
	})
	return out, err
}
