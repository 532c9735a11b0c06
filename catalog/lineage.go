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
