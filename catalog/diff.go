package catalog

import (
	"context"
	"sort"
)

// Change is one difference between two versions.
type Change struct {
	Name string `json:"name"`
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
}

// Diff is what changed from version A to version B.
type Diff struct {
	A, B             string   `json:"-"`
	PackagesAdded    []Change `json:"packages_added"`
	PackagesRemoved  []Change `json:"packages_removed"`
	PackagesChanged  []Change `json:"packages_changed"`
	LabelsChanged    []Change `json:"labels_changed"` // From or To empty: added or removed
	ArtifactsChanged []Change `json:"artifacts_changed"`
	ImageIDChanged   bool     `json:"image_id_changed"`
	ParentChanged    bool     `json:"parent_changed"`
}

// Empty says whether nothing differs.
func (d *Diff) Empty() bool {
	return len(d.PackagesAdded)+len(d.PackagesRemoved)+len(d.PackagesChanged)+len(d.LabelsChanged)+len(d.ArtifactsChanged) == 0 &&
		!d.ImageIDChanged && !d.ParentChanged
}

// Diff compares imageA@versionA with imageB@versionB.
func (c *Catalog) Diff(ctx context.Context, imageA, versionA, imageB, versionB string) (*Diff, error) {
	var a, b *Version
	err := c.store.View(ctx, func(tx Tx) error {
		var err error
		if a, err = getVersion(tx, imageA, versionA); err != nil {
			return err
		}
		b, err = getVersion(tx, imageB, versionB)
		return err
	})
	if err != nil {
		return nil, err
	}
	return DiffVersions(a, b), nil
}

// DiffVersions compares two versions already at hand.
func DiffVersions(a, b *Version) *Diff {
	d := &Diff{A: a.Ref(), B: b.Ref(), ImageIDChanged: a.ImageID != b.ImageID, ParentChanged: a.ParentID != b.ParentID,
		PackagesAdded: []Change{}, PackagesRemoved: []Change{}, PackagesChanged: []Change{}, LabelsChanged: []Change{}, ArtifactsChanged: []Change{}}
	pa, pb := map[string]string{}, map[string]string{}
	for _, p := range a.Packages {
		pa[p.Name] = p.Version
	}
	for _, p := range b.Packages {
		pb[p.Name] = p.Version
	}
	for _, n := range unionKeys(pa, pb) {
		va, ina := pa[n]
		vb, inb := pb[n]
		switch {
		case ina && !inb:
			d.PackagesRemoved = append(d.PackagesRemoved, Change{Name: n, From: va})
		case !ina && inb:
			d.PackagesAdded = append(d.PackagesAdded, Change{Name: n, To: vb})
		case va != vb:
			d.PackagesChanged = append(d.PackagesChanged, Change{Name: n, From: va, To: vb})
		}
	}
	for _, k := range unionKeys(a.Labels, b.Labels) {
		if a.Labels[k] != b.Labels[k] {
			d.LabelsChanged = append(d.LabelsChanged, Change{Name: k, From: a.Labels[k], To: b.Labels[k]})
		}
	}
	aa, ab := map[string]string{}, map[string]string{}
	for _, x := range a.Artifacts {
		aa[artifactKey(x)] = x.SHA256
	}
	for _, x := range b.Artifacts {
		ab[artifactKey(x)] = x.SHA256
	}
	for _, k := range unionKeys(aa, ab) {
		if aa[k] != ab[k] {
			d.ArtifactsChanged = append(d.ArtifactsChanged, Change{Name: k, From: aa[k], To: ab[k]})
		}
	}
	return d
}

func artifactKey(a Artifact) string {
	if a.Format != "" {
		return a.Format
	}
	return a.Path
}

func unionKeys(a, b map[string]string) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range []map[string]string{a, b} {
		for k := range m {
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	sort.Strings(out)
	return out
}
