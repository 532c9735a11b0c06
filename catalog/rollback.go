package catalog

import (
	"context"
	"errors"
	"fmt"
)

// RollbackTarget is a candidate a rollback considered.
type RollbackTarget struct {
	Version string `json:"version"`
	Skipped string `json:"skipped,omitempty"` // why it was passed over
}

// Rollback moves channel back to the newest earlier version in its history
// that is not revoked and whose content still exists (or to opt.To). It
// returns the new entry and the candidates it passed over.
func (c *Catalog) Rollback(ctx context.Context, image, channel string, opt MoveOptions) (*ChannelEntry, []RollbackTarget, error) {
	if err := checkText("actor", opt.Actor); err != nil {
		return nil, nil, err
	}
	if err := checkText("reason", opt.Reason); err != nil {
		return nil, nil, err
	}
	var entry *ChannelEntry
	skipped := []RollbackTarget{}
	err := c.store.Update(ctx, func(tx Tx) error {
		if err := requireImage(tx, image); err != nil {
			return err
		}
		if err := tx.LockImage(image); err != nil {
			return err
		}
		h, err := assignedHistory(tx, image, channel)
		if err != nil {
			return err
		}
		st := stack(h)
		current := h[len(h)-1].Version
		target := ""
		for i := len(st) - 2; i >= 0; i-- {
			cand := st[i].Version
			if cand == current {
				continue
			}
			if opt.To != "" && cand != opt.To {
				continue
			}
			v, err := tx.Version(image, cand)
			switch {
			case errors.Is(err, ErrNotFound):
				skipped = append(skipped, RollbackTarget{cand, "deleted from the catalog"})
				continue
			case err != nil:
				return err
			case v.Revoked:
				skipped = append(skipped, RollbackTarget{cand, "revoked: " + v.RevokedReason})
				continue
			case !c.ContentExists(v):
				skipped = append(skipped, RollbackTarget{cand, "its artifacts are gone"})
				continue
			}
			target = cand
			break
		}
		if target == "" {
			why := ""
			for _, s := range skipped {
				why += fmt.Sprintf("; %s: %s", s.Version, s.Skipped)
			}
			if opt.To != "" {
				return fmt.Errorf("%w: %s is not an earlier version of channel %s that a rollback can reach%s", ErrNoRollback, opt.To, channel, why)
			}
			return fmt.Errorf("%w: channel %s of %s has no earlier usable version%s", ErrNoRollback, channel, image, why)
		}
		entry = &ChannelEntry{Image: image, Channel: channel, Version: target, Previous: current,
			Action: ActionRollback, Actor: opt.Actor, Reason: opt.Reason, Time: c.Now().UTC()}
		return tx.AppendChannelEntry(entry)
	})
	if err != nil {
		return nil, skipped, err
	}
	return entry, skipped, nil
}

// stack replays a channel's history into the versions a rollback can walk
// back through: a promotion pushes; a rollback to X pops back down to X.
// The last element is what the channel holds.
func stack(h []ChannelEntry) []ChannelEntry {
	var st []ChannelEntry
	for _, e := range h {
		if e.Action == ActionRollback {
			i := len(st) - 1
			for i >= 0 && st[i].Version != e.Version {
				i--
			}
			if i >= 0 {
				st = st[:i+1]
				continue
			}
		}
		st = append(st, e)
	}
	return st
}
