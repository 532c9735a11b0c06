package catalog

import (
	"context"
	"fmt"
	"strings"
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
	// Override, for Promote: promote although the channel's policy
	// refuses; Reason is then required, and what was missing is recorded
	// in the channel's history.
	Override bool
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
	if opt.Override && strings.TrimSpace(opt.Reason) == "" {
		return invalid("--override needs --reason: the channel's history records why a policy was overridden")
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
	override, err := c.enforcePolicy(tx, channel, v, opt)
	if err != nil {
		return nil, false, err
	}
	entry := &ChannelEntry{Image: image, Channel: channel, Version: version, Previous: prev,
		Action: ActionPromote, Actor: opt.Actor, Reason: opt.Reason, Time: c.Now().UTC(), Override: override}
	return entry, true, tx.AppendChannelEntry(entry)
}

// enforcePolicy refuses a promotion of v to channel that the channel's
// policy does not allow, unless opt.Override; then it returns what was
// missing, for the history.
func (c *Catalog) enforcePolicy(tx Tx, channel string, v *Version, opt MoveOptions) (string, error) {
	p, err := policyTx(tx, v.Image, channel)
	if err != nil || p == nil {
		return "", err
	}
	missing, err := c.policyMissing(tx, p, v)
	if err != nil || len(missing) == 0 {
		return "", err
	}
	if opt.Override {
		return strings.Join(missing, "; "), nil
	}
	return "", fmt.Errorf("%w: %s may not go to %s: %s (the policy requires %s); record evidence with strata evidence add, or promote with --override --reason",
		ErrPolicy, v.Ref(), channel, strings.Join(missing, "; "), p.Describe())
}
