package catalog

import (
	"context"
	"fmt"
	"time"
)

// The safety windows a caller should start from (the CLI's defaults).
const (
	DefaultKeepRollbacks = 5
	DefaultMinAge        = 24 * time.Hour
)

// GCOptions say what garbage collection keeps. Zero windows mean zero (no
// window), never a default: a caller that means the defaults says so with
// DefaultKeepRollbacks and DefaultMinAge. Negative windows are invalid.
type GCOptions struct {
	// KeepRollbacks is how many versions below each channel's head a
	// rollback must still be able to reach (the keep window).
	KeepRollbacks int
	// MinAge keeps every version younger than this, so a fresh build that
	// is not promoted yet survives.
	MinAge time.Duration
	// DryRun only reports.
	DryRun bool
	// Image limits the collection to one image ("" for all).
	Image string
}

// GCResult says what was (or would be) deleted and why the rest stays.
type GCResult struct {
	Deleted []*Version        `json:"deleted"`
	Kept    map[string]string `json:"kept"` // image@version -> why
	DryRun  bool              `json:"dry_run"`
	// Files are the artifact paths of the deleted versions that no kept
	// version also names: what a caller may remove from disk afterwards.
	Files []string `json:"files"`
}

// GC deletes versions that nothing needs: never what a channel holds, what
// a rollback within the keep window could reach, an ancestor of either (in
// any image), or a version younger than MinAge.
func (c *Catalog) GC(ctx context.Context, opt GCOptions) (*GCResult, error) {
	if opt.KeepRollbacks < 0 {
		return nil, invalid("keep window %d must not be negative", opt.KeepRollbacks)
	}
	if opt.MinAge < 0 {
		return nil, invalid("min age %s must not be negative", opt.MinAge)
	}
	res := &GCResult{Deleted: []*Version{}, Kept: map[string]string{}, Files: []string{}, DryRun: opt.DryRun}
	run := c.store.Update
	if opt.DryRun {
		run = c.store.View
	}
	err := run(ctx, func(tx Tx) error {
		imgs, err := tx.Images()
		if err != nil {
			return err
		}
		if opt.Image != "" {
			if err := requireImage(tx, opt.Image); err != nil {
				return err
			}
		}
		// Keep is computed over every image: an ancestor kept for a
		// child in another image must survive a per-image collection.
		keep := map[string]string{}
		var all []*Version
		byRef := map[string]*Version{}
		for _, img := range imgs {
			if !opt.DryRun {
				if err := tx.LockImage(img.Name); err != nil {
					return err
				}
			}
			vs, err := tx.Versions(img.Name, true)
			if err != nil {
				return err
			}
			for _, v := range vs {
				all = append(all, v)
				byRef[v.Ref()] = v
				if c.Now().Sub(v.Created) < opt.MinAge {
					keep[v.Ref()] = fmt.Sprintf("younger than %s", opt.MinAge)
				}
			}
			chs, err := tx.ChannelNames(img.Name)
			if err != nil {
				return err
			}
			for _, ch := range chs {
				h, err := tx.History(img.Name, ch)
				if err != nil {
					return err
				}
				st := stack(h)
				for i := len(st) - 1; i >= 0 && i >= len(st)-1-opt.KeepRollbacks; i-- {
					ref := img.Name + "@" + st[i].Version
					if i == len(st)-1 {
						keep[ref] = "held by channel " + ch
					} else if _, ok := keep[ref]; !ok {
						keep[ref] = fmt.Sprintf("rollback target of channel %s (%d back)", ch, len(st)-1-i)
					}
				}
			}
		}
		// Ancestors of everything kept are kept too.
		roots := make([]string, 0, len(keep))
		for ref := range keep {
			roots = append(roots, ref)
		}
		for _, ref := range roots {
			v, ok := byRef[ref]
			if !ok {
				continue
			}
			anc, err := ancestors(tx, v)
			if err != nil {
				return err
			}
			for _, a := range anc {
				if _, ok := keep[a.Ref()]; !ok {
					keep[a.Ref()] = "ancestor of " + ref
				}
			}
		}
		// Versions of other images survive a per-image collection, and so
		// do the files they name.
		var deleted []*Version
		stillNamed := map[string]bool{}
		for _, v := range all {
			why, kept := keep[v.Ref()]
			if !kept && (opt.Image == "" || v.Image == opt.Image) {
				deleted = append(deleted, v)
				continue
			}
			if kept {
				res.Kept[v.Ref()] = why
			}
			files, err := versionFiles(tx, v)
			if err != nil {
				return err
			}
			for _, f := range files {
				stillNamed[f] = true
			}
		}
		for _, v := range deleted {
			files, err := versionFiles(tx, v)
			if err != nil {
				return err
			}
			for _, f := range files {
				if !stillNamed[f] {
					stillNamed[f] = true // once
					res.Files = append(res.Files, f)
				}
			}
			res.Deleted = append(res.Deleted, v)
			if !opt.DryRun {
				if err := tx.DeleteVersion(v.Image, v.Version); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// versionFiles are the files a version names: its artifacts, and its
// evidence's reports and in-toto statements (read into v.Evidence, so a
// collection's result shows them too).
func versionFiles(tx Tx, v *Version) ([]string, error) {
	var files []string
	for _, a := range v.Artifacts {
		if a.Format == FormatRegistry {
			continue // a registry reference, no file
		}
		files = append(files, a.Path)
	}
	ev, err := tx.Evidence(v.Image, v.Version)
	if err != nil {
		return nil, fmt.Errorf("evidence of %s: %w", v.Ref(), err)
	}
	v.Evidence = ev
	for _, e := range ev {
		files = append(files, e.Files()...)
	}
	return files, nil
}
