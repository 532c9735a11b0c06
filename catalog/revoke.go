package catalog

import (
	"context"
	"strings"
)

// RevokeOptions tune Revoke and Restore.
type RevokeOptions struct {
	Reason      string
	Descendants bool // also every version built on it, by lineage
	// Actor is who revokes, recorded on each version revoked (revoked_by).
	Actor string
}

// Revoke marks a version (and optionally its descendants) revoked: the data
// source no longer resolves it and no channel can be promoted or rolled back
// to it. It returns every version it changed.
func (c *Catalog) Revoke(ctx context.Context, image, version string, opt RevokeOptions) ([]*Version, error) {
	if strings.TrimSpace(opt.Reason) == "" {
		return nil, invalid("revoking needs a reason")
	}
	if err := checkText("reason", opt.Reason); err != nil {
		return nil, err
	}
	return c.setRevoked(ctx, image, version, true, opt)
}

// Restore undoes Revoke.
func (c *Catalog) Restore(ctx context.Context, image, version string, opt RevokeOptions) ([]*Version, error) {
	return c.setRevoked(ctx, image, version, false, opt)
}

func (c *Catalog) setRevoked(ctx context.Context, image, version string, revoked bool, opt RevokeOptions) ([]*Version, error) {
	if err := checkText("actor", opt.Actor); err != nil {
		return nil, err
	}
	changed := []*Version{}
	err := c.store.Update(ctx, func(tx Tx) error {
		v, err := getVersion(tx, image, version)
		if err != nil {
			return err
		}
		targets := []*Version{v}
		if opt.Descendants {
			d, err := descendants(tx, v)
			if err != nil {
				return err
			}
			targets = append(targets, d...)
		}
		locked := map[string]bool{}
		for _, t := range targets {
			if !locked[t.Image] {
				if err := tx.LockImage(t.Image); err != nil {
					return err
				}
				locked[t.Image] = true
			}
		}
		at := c.Now().UTC()
		for _, t := range targets {
			if t.Revoked == revoked {
				continue
			}
			reason := opt.Reason
			if !revoked {
				reason = ""
			}
			if err := tx.SetRevoked(t.Image, t.Version, revoked, reason, at.UnixNano()); err != nil {
				return err
			}
			by := opt.Actor
			if !revoked {
				by = ""
			}
			if err := tx.SetRevokedBy(t.Image, t.Version, by); err != nil {
				return err
			}
			t.Revoked, t.RevokedReason, t.RevokedBy = revoked, reason, by
			if revoked {
				t.RevokedAt = &at
			} else {
				t.RevokedAt = nil
			}
			changed = append(changed, t)
		}
		return nil
	})
	return changed, err
}
