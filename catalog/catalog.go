package catalog

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Catalog applies the catalog's rules over a Store.
type Catalog struct {
	store Store
	// Now is the clock; tests move it.
	Now func() time.Time
	// ContentExists says whether a version's artifacts are still there; a
	// rollback never lands on a version whose content is gone. The default
	// checks every artifact path exists with its recorded size.
	ContentExists func(v *Version) bool
}

// New wraps a store.
func New(s Store) *Catalog {
	return &Catalog{store: s, Now: time.Now, ContentExists: artifactsOnDisk}
}

// Store is the underlying store.
func (c *Catalog) Store() Store { return c.store }

// Close closes the store.
func (c *Catalog) Close() error { return c.store.Close() }

func artifactsOnDisk(v *Version) bool {
	for _, a := range v.Artifacts {
		fi, err := os.Stat(a.Path)
		if err != nil {
			return false
		}
		if fi.Mode().IsRegular() && a.Size > 0 && fi.Size() != a.Size {
			return false
		}
	}
	return true
}

var (
	nameRe    = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,127}$`)
	versionRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$`)
	semverRe  = regexp.MustCompile(`^v?(\d+)\.(\d+)\.(\d+)$`)
)

// ValidName checks an image or channel name.
func ValidName(kind, s string) error {
	if !nameRe.MatchString(s) {
		return invalid("%s %q: use lowercase letters, digits, '.', '_' and '-', starting with a letter or digit", kind, s)
	}
	return nil
}

// VersionScheme picks the version of a registration that gives none.
type VersionScheme string

const (
	SchemeSemver    VersionScheme = "semver"    // next patch of the highest x.y.z, or 1.0.0
	SchemeTimestamp VersionScheme = "timestamp" // UTC YYYYMMDD.HHMMSS
)

// RegisterOptions tune Register.
type RegisterOptions struct {
	Scheme VersionScheme
}

// Register adds a complete version in one transaction. An empty Version is
// assigned by the scheme. Registering an existing version is a conflict;
// versions are immutable.
func (c *Catalog) Register(ctx context.Context, v *Version, opt RegisterOptions) (*Version, error) {
	if err := ValidName("image", v.Image); err != nil {
		return nil, err
	}
	if v.Version != "" && !versionRe.MatchString(v.Version) {
		return nil, invalid("version %q: use letters, digits, '.', '_', '+' and '-'", v.Version)
	}
	if v.ImageID == "" {
		return nil, invalid("version needs an image ID (the content digest)")
	}
	for _, a := range v.Artifacts {
		if a.Path == "" || (a.SHA256 != "" && len(a.SHA256) != 64) {
			return nil, invalid("artifact %+v: needs a path and a 64-hex sha256", a)
		}
	}
	out := *v
	err := c.store.Update(ctx, func(tx Tx) error {
		if err := tx.LockImage(out.Image); err != nil {
			return err
		}
		if out.Version == "" {
			next, err := c.nextVersion(tx, out.Image, opt.Scheme)
			if err != nil {
				return err
			}
			out.Version = next
		}
		if _, err := tx.Version(out.Image, out.Version); err == nil {
			return fmt.Errorf("%w: %s@%s is already registered; versions are immutable", ErrConflict, out.Image, out.Version)
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		seq, err := tx.MaxSeq(out.Image)
		if err != nil {
			return err
		}
		out.Seq = seq + 1
		if out.Created.IsZero() {
			out.Created = c.Now().UTC()
		}
		out.Revoked, out.RevokedReason, out.RevokedAt = false, "", time.Time{}
		return tx.InsertVersion(&out)
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

func (c *Catalog) nextVersion(tx Tx, image string, scheme VersionScheme) (string, error) {
	if scheme == SchemeTimestamp {
		return c.Now().UTC().Format("20060102.150405"), nil
	}
	vs, err := tx.Versions(image, false)
	if err != nil {
		return "", err
	}
	best := [3]int{-1, 0, 0}
	prefix := ""
	for _, v := range vs {
		m := semverRe.FindStringSubmatch(v.Version)
		if m == nil {
			continue
		}
		var n [3]int
		for i := range n {
			n[i], _ = strconv.Atoi(m[i+1])
		}
		if n[0] > best[0] || (n[0] == best[0] && (n[1] > best[1] || (n[1] == best[1] && n[2] > best[2]))) {
			best = n
			prefix = ""
			if strings.HasPrefix(v.Version, "v") {
				prefix = "v"
			}
		}
	}
	if best[0] < 0 {
		return "1.0.0", nil
	}
	return fmt.Sprintf("%s%d.%d.%d", prefix, best[0], best[1], best[2]+1), nil
}

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
	var out []Channel
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
			if err != nil || len(h) == 0 {
				return err
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
	if err := ValidName("channel", channel); err != nil {
		return nil, false, err
	}
	if opt.From != "" {
		if err := ValidName("channel", opt.From); err != nil {
			return nil, false, err
		}
		if opt.From == channel {
			return nil, false, invalid("--from %s is the channel being promoted", channel)
		}
	}
	var entry *ChannelEntry
	changed := false
	err := c.store.Update(ctx, func(tx Tx) error {
		if err := requireImage(tx, image); err != nil {
			return err
		}
		if err := tx.LockImage(image); err != nil {
			return err
		}
		if opt.From != "" {
			fh, err := assignedHistory(tx, image, opt.From)
			if err != nil {
				return err
			}
			held := fh[len(fh)-1].Version
			if version == "" {
				version = held
			} else if version != held {
				return fmt.Errorf("%w: %s holds %s@%s, not %s; only what %s holds may be promoted from it", ErrConflict, opt.From, image, held, version, opt.From)
			}
		}
		if version == "" {
			return invalid("promote needs a version (or --from a channel)")
		}
		v, err := getVersion(tx, image, version)
		if err != nil {
			return err
		}
		if v.Revoked {
			return fmt.Errorf("%w: %s is revoked (%s) and cannot be promoted; restore it first", ErrRevoked, v.Ref(), v.RevokedReason)
		}
		if !c.ContentExists(v) {
			return fmt.Errorf("%w: the artifacts of %s are gone, so no channel may point at it", ErrConflict, v.Ref())
		}
		h, err := tx.History(image, channel)
		if err != nil {
			return err
		}
		prev := ""
		if len(h) > 0 {
			prev = h[len(h)-1].Version
			if prev == version {
				last := h[len(h)-1]
				entry = &last
				return nil
			}
		}
		entry = &ChannelEntry{Image: image, Channel: channel, Version: version, Previous: prev,
			Action: ActionPromote, Actor: opt.Actor, Reason: opt.Reason, Time: c.Now().UTC()}
		changed = true
		return tx.AppendChannelEntry(entry)
	})
	if err != nil {
		return nil, false, err
	}
	return entry, changed, nil
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

// RollbackTarget is a candidate a rollback considered.
type RollbackTarget struct {
	Version string `json:"version"`
	Skipped string `json:"skipped,omitempty"` // why it was passed over
}

// Rollback moves channel back to the newest earlier version in its history
// that is not revoked and whose content still exists (or to opt.To). It
// returns the new entry and the candidates it passed over.
func (c *Catalog) Rollback(ctx context.Context, image, channel string, opt MoveOptions) (*ChannelEntry, []RollbackTarget, error) {
	var entry *ChannelEntry
	var skipped []RollbackTarget
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

// RevokeOptions tune Revoke and Restore.
type RevokeOptions struct {
	Reason      string
	Descendants bool // also every version built on it, by lineage
}

// Revoke marks a version (and optionally its descendants) revoked: the data
// source no longer resolves it and no channel can be promoted or rolled back
// to it. It returns every version it changed.
func (c *Catalog) Revoke(ctx context.Context, image, version string, opt RevokeOptions) ([]*Version, error) {
	if strings.TrimSpace(opt.Reason) == "" {
		return nil, invalid("revoking needs a reason")
	}
	return c.setRevoked(ctx, image, version, true, opt)
}

// Restore undoes Revoke.
func (c *Catalog) Restore(ctx context.Context, image, version string, opt RevokeOptions) ([]*Version, error) {
	return c.setRevoked(ctx, image, version, false, opt)
}

func (c *Catalog) setRevoked(ctx context.Context, image, version string, revoked bool, opt RevokeOptions) ([]*Version, error) {
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
			t.Revoked, t.RevokedReason = revoked, reason
			if revoked {
				t.RevokedAt = at
			} else {
				t.RevokedAt = time.Time{}
			}
			changed = append(changed, t)
		}
		return nil
	})
	return changed, err
}

// descendants walks lineage down from v, breadth first, across images.
func descendants(tx Tx, v *Version) ([]*Version, error) {
	var out []*Version
	seen := map[string]bool{v.Ref(): true}
	queue := []*Version{v}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		kids, err := tx.Children(cur.ImageID)
		if err != nil {
			return nil, err
		}
		for _, k := range kids {
			if seen[k.Ref()] {
				continue
			}
			seen[k.Ref()] = true
			out = append(out, k)
			queue = append(queue, k)
		}
	}
	return out, nil
}

// ancestors walks lineage up from v: parent first.
func ancestors(tx Tx, v *Version) ([]*Version, error) {
	var out []*Version
	seen := map[string]bool{v.ImageID: true}
	for cur := v; cur.ParentID != ""; {
		if seen[cur.ParentID] {
			break
		}
		seen[cur.ParentID] = true
		ps, err := tx.VersionsByImageID(cur.ParentID)
		if err != nil {
			return nil, err
		}
		if len(ps) == 0 {
			break // the parent is not in this catalog (an outside base)
		}
		out = append(out, ps[0])
		cur = ps[0]
	}
	return out, nil
}

// Lineage is where a version comes from and what was built on it.
type Lineage struct {
	Version     *Version   `json:"version"`
	Ancestors   []*Version `json:"ancestors"`
	Descendants []*Version `json:"descendants"`
}

// Lineage answers ancestors and descendants of image@version.
func (c *Catalog) Lineage(ctx context.Context, image, version string) (*Lineage, error) {
	var out *Lineage
	err := c.store.View(ctx, func(tx Tx) error {
		v, err := getVersion(tx, image, version)
		if err != nil {
			return err
		}
		a, err := ancestors(tx, v)
		if err != nil {
			return err
		}
		d, err := descendants(tx, v)
		if err != nil {
			return err
		}
		out = &Lineage{Version: v, Ancestors: a, Descendants: d}
		return nil
	})
	return out, err
}

// OutOfDate is a channel head built on a parent that no channel holds any more.
type OutOfDate struct {
	Image   string   `json:"image"`
	Channel string   `json:"channel"`
	Version string   `json:"version"`
	Parent  string   `json:"parent"`          // image@version of the parent
	Current []string `json:"parent_channels"` // channels of the parent's image and what they hold now
}

// OutOfDate lists, for image (or every image when empty), the channel heads
// whose parent is no longer on any channel of its own image: they should be
// rebuilt on a current parent.
func (c *Catalog) OutOfDate(ctx context.Context, image string) ([]OutOfDate, error) {
	var out []OutOfDate
	err := c.store.View(ctx, func(tx Tx) error {
		var names []string
		if image != "" {
			if err := requireImage(tx, image); err != nil {
				return err
			}
			names = []string{image}
		} else {
			imgs, err := tx.Images()
			if err != nil {
				return err
			}
			for _, i := range imgs {
				names = append(names, i.Name)
			}
		}
		heads := map[string]map[string]string{} // image -> channel -> version
		headsOf := func(img string) (map[string]string, error) {
			if h, ok := heads[img]; ok {
				return h, nil
			}
			m := map[string]string{}
			chs, err := tx.ChannelNames(img)
			if err != nil {
				return nil, err
			}
			for _, ch := range chs {
				h, err := tx.History(img, ch)
				if err != nil {
					return nil, err
				}
				if len(h) > 0 {
					m[ch] = h[len(h)-1].Version
				}
			}
			heads[img] = m
			return m, nil
		}
		for _, img := range names {
			hs, err := headsOf(img)
			if err != nil {
				return err
			}
			for _, ch := range slices.Sorted(maps.Keys(hs)) {
				v, err := tx.Version(img, hs[ch])
				if err != nil || v.ParentID == "" {
					continue
				}
				parents, err := tx.VersionsByImageID(v.ParentID)
				if err != nil {
					return err
				}
				if len(parents) == 0 {
					continue
				}
				p := parents[0]
				ph, err := headsOf(p.Image)
				if err != nil {
					return err
				}
				onChannel := false
				var now []string
				for _, pch := range slices.Sorted(maps.Keys(ph)) {
					now = append(now, pch+"="+ph[pch])
					if ph[pch] == p.Version {
						onChannel = true
					}
				}
				if !onChannel {
					out = append(out, OutOfDate{Image: img, Channel: ch, Version: v.Version, Parent: p.Ref(), Current: now})
				}
			}
		}
		return nil
	})
	return out, err
}
