package catalog

import (
	"context"
	"fmt"
)

// MoveOptions say who moves a channel and why.
type MoveOptions struct {
	Actor  string
	Reason string
	// From, for Promote: only the version that channel currently holds may
	// be promoted (staging → production).
	From string
	// To, for Rollback: the version to go back to instead of the newest
	// earlier one; it must be in the channel's rollback history.
	To string
}

// Promote points channel at version (or, with From and no version, at what
// From holds). Promoting what the channel already holds changes nothing and
// returns the current entry.
func (c *Catalog) Promote(ctx context.Context, image, channel, version string, opt MoveOptions) (*ChannelEntry, bool, error) {
	if err := checkMove(channel, opt); err != nil {
		return nil, false, err
	}
	var entry *ChannelEntry
	changed := false
	err := c.store.Update(ctx, func(tx Tx) error {
		var err error
		entry, changed, err = c.promoteTx(tx, image, channel, version, opt)
		return err
	})
	if err != nil {
		return nil, false, err
	}
	return entry, changed, nil
}

// checkMove checks a channel move's names and text before any transaction.
func checkMove(channel string, opt MoveOptions) error {
	if err := ValidName("channel", channel); err != nil {
		return err
	}
	if opt.From != "" {
		if err := ValidName("channel", opt.From); err != nil {
			return err
		}
		if opt.From == channel {
			return invalid("--from %s is the channel being promoted", channel)
		}
	}
	if err := checkText("actor", opt.Actor); err != nil {
		return err
	}
	return checkText("reason", opt.Reason)
}

// promoteTx is Promote inside a transaction that is already open.
func (c *Catalog) promoteTx(tx Tx, image, channel, version string, opt MoveOptions) (*ChannelEntry, bool, error) {
	if err := requireImage(tx, image); err != nil {
		return nil, false, err
	}
	if err := tx.LockImage(image); err != nil {
		return nil, false, err
	}
	if opt.From != "" {
		fh, err := assignedHistory(tx, image, opt.From)
		if err != nil {
			return nil, false, err
		}
		held := fh[len(fh)-1].Version
		if version == "" {
			version = held
		} else if version != held {
			return nil, false, fmt.Errorf("%w: %s holds %s@%s, not %s; only what %s holds may be promoted from it", ErrConflict, opt.From, image, held, version, opt.From)
		}
	}
	if version == "" {
		return nil, false, invalid("promote needs a version (or --from a channel)")
	}
	v, err := getVersion(tx, image, version)
	if err != nil {
		return nil, false, err
	}
	if v.Revoked {
		return nil, false, fmt.Errorf("%w: %s is revoked (%s) and cannot be promoted; restore it first", ErrRevoked, v.Ref(), v.RevokedReason)
	}
	if !c.ContentExists(v) {
		return nil, false, fmt.Errorf("%w: the artifacts of %s are gone, so no channel may point at it", ErrConflict, v.Ref())
	}
	h, err := tx.History(image, channel)
	if err != nil {
		return nil, false, err
	}
	prev := ""
	if len(h) > 0 {
		prev = h[len(h)-1].Version
		if prev == version {
			last := h[len(h)-1]
			return &last, false, nil
		}
	}
	entry := &ChannelEntry{Image: image, Channel: channel, Version: version, Previous: prev,
		Action: ActionPromote, Actor: opt.Actor, Reason: opt.Reason, Time: c.Now().UTC()}
	return entry, true, tx.AppendChannelEntry(entry)
}
