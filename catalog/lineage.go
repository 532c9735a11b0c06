package catalog

import (
	"context"
	"maps"
	"slices"
	"strings"
)

// descendants walks lineage down from v, breadth first, across images.
func descendants(tx Tx, v *Version) ([]*Version, error) {
	out := []*Version{}
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
	out := []*Version{}
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

// Staleness says why a version is out of date: an ancestor of it (its
// parent, or any further up) is no longer held by any channel of its own
// image, so the version sits on a replaced base and should be rebuilt.
type Staleness struct {
	// Ancestor is the nearest such ancestor, image@version.
	Ancestor string `json:"stale_ancestor"`
	// Chain is the way up to it: the parent first, Ancestor last.
	Chain []string `json:"chain"`
	// AncestorChannels are the channels of Ancestor's image and what they
	// hold now (channel=version): what to rebuild on.
	AncestorChannels []string `json:"stale_ancestor_channels"`
}

// OutOfDate is a channel head with a stale ancestor.
type OutOfDate struct {
	Image   string `json:"image"`
	Channel string `json:"channel"`
	Version string `json:"version"`
	Parent  string `json:"parent"` // image@version of the direct parent
	Staleness
}

// staleness answers questions about channel heads within one transaction,
// reading each image's channel heads once.
type staleness struct {
	tx    Tx
	heads map[string]map[string]string // image -> channel -> version
}

func (s *staleness) headsOf(img string) (map[string]string, error) {
	if h, ok := s.heads[img]; ok {
		return h, nil
	}
	m := map[string]string{}
	chs, err := s.tx.ChannelNames(img)
	if err != nil {
		return nil, err
	}
	for _, ch := range chs {
		h, err := s.tx.History(img, ch)
		if err != nil {
			return nil, err
		}
		if len(h) > 0 {
			m[ch] = h[len(h)-1].Version
		}
	}
	s.heads[img] = m
	return m, nil
}

// of walks v's whole ancestry and answers the nearest ancestor that no
// channel of its image holds, nil when there is none (v is current).
func (s *staleness) of(v *Version) (*Staleness, error) {
	as, err := ancestors(s.tx, v)
	if err != nil {
		return nil, err
	}
	var chain []string
	for _, a := range as {
		chain = append(chain, a.Ref())
		h, err := s.headsOf(a.Image)
		if err != nil {
			return nil, err
		}
		held := false
		now := []string{}
		for _, ch := range slices.Sorted(maps.Keys(h)) {
			now = append(now, ch+"="+h[ch])
			if h[ch] == a.Version {
				held = true
			}
		}
		if !held {
			return &Staleness{Ancestor: a.Ref(), Chain: chain, AncestorChannels: now}, nil
		}
	}
	return nil, nil
}

// OutOfDate lists, for image (or every image when empty), the channel heads
// with a stale ancestor: their parent, or any ancestor further up, is no
// longer on any channel of its own image (a base was replaced under a
// runtime the app sits on). They should be rebuilt.
func (c *Catalog) OutOfDate(ctx context.Context, image string) ([]OutOfDate, error) {
	out := []OutOfDate{}
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
		s := &staleness{tx: tx, heads: map[string]map[string]string{}}
		for _, img := range names {
			hs, err := s.headsOf(img)
			if err != nil {
				return err
			}
			for _, ch := range slices.Sorted(maps.Keys(hs)) {
				v, err := tx.Version(img, hs[ch])
				if err != nil || v.ParentID == "" {
					continue
				}
				st, err := s.of(v)
				if err != nil {
					return err
				}
				if st != nil {
					out = append(out, OutOfDate{Image: img, Channel: ch, Version: v.Version, Parent: st.Chain[0], Staleness: *st})
				}
			}
		}
		return nil
	})
	return out, err
}

// Stale answers whether image@version sits on a stale ancestor (nil when
// it does not), by the same rule as OutOfDate.
func (c *Catalog) Stale(ctx context.Context, image, version string) (*Staleness, error) {
	var out *Staleness
	err := c.store.View(ctx, func(tx Tx) error {
		v, err := getVersion(tx, image, version)
		if err != nil {
			return err
		}
		out, err = (&staleness{tx: tx, heads: map[string]map[string]string{}}).of(v)
		return err
	})
	return out, err
}

// StaleOf answers Stale for many versions in one transaction (each image's
// channel heads read once), keyed by image@version; current versions are
// left out.
func (c *Catalog) StaleOf(ctx context.Context, vs []*Version) (map[string]*Staleness, error) {
	out := map[string]*Staleness{}
	err := c.store.View(ctx, func(tx Tx) error {
		s := &staleness{tx: tx, heads: map[string]map[string]string{}}
		for _, v := range vs {
			if v.ParentID == "" {
				continue
			}
			st, err := s.of(v)
			if err != nil {
				return err
			}
			if st != nil {
				out[v.Ref()] = st
			}
		}
		return nil
	})
	return out, err
}

// ResolveParent turns what a user names as a parent into one image ID:
// NAME@VERSION, or an image ID as sha256:<hex> in full or as a prefix of at
// least 12 hex digits that only one image ID in the catalog starts with. A
// full digest that no version has is accepted as a base from outside the
// catalog (external is then true).
func (c *Catalog) ResolveParent(ctx context.Context, ref string) (id string, external bool, err error) {
	if name, version, ok := strings.Cut(ref, "@"); ok {
		v, err := c.Get(ctx, name, version)
		if err != nil {
			return "", false, err
		}
		return v.ImageID, false, nil
	}
	hex := strings.TrimPrefix(ref, "sha256:")
	if len(hex) < 12 || strings.Trim(hex, "0123456789abcdef") != "" {
		return "", false, invalid("parent %q: name it NAME@VERSION or by its image ID (sha256:<hex>, at least 12 digits)", ref)
	}
	var ids []string
	err = c.store.View(ctx, func(tx Tx) error {
		vs, err := tx.VersionsByImageIDPrefix("sha256:" + hex)
		if err != nil {
			return err
		}
		seen := map[string][]string{}
		for _, v := range vs {
			if _, ok := seen[v.ImageID]; !ok {
				ids = append(ids, v.ImageID)
			}
			seen[v.ImageID] = append(seen[v.ImageID], v.Ref())
		}
		if len(ids) > 1 {
			var which []string
			for _, id := range ids {
				which = append(which, id+" ("+strings.Join(seen[id], ", ")+")")
			}
			return invalid("parent %q is ambiguous: it starts %s; give more digits or NAME@VERSION", ref, strings.Join(which, " and "))
		}
		return nil
	})
	switch {
	case err != nil:
		return "", false, err
	case len(ids) == 1:
		return ids[0], false, nil
	case len(hex) == 64:
		return "sha256:" + hex, true, nil
	}
	return "", false, notFound("no version in the catalog has an image ID starting with %s", ref)
}
