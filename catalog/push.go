package catalog

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/strata-build/packer-plugin-strata/layer"
	"github.com/strata-build/packer-plugin-strata/registry"
)

// PushRefs are the references a version goes to in the repository repo
// (host/path, no tag): its version, then each of tags (channel names).
func PushRefs(repo, version string, tags []string) ([]string, error) {
	if strings.ContainsAny(repo, "@") || strings.Contains(repo[strings.LastIndex(repo, "/")+1:], ":") {
		return nil, invalid("push: %q: name a repository (host/path) without a tag; the tags are the version and the channels", repo)
	}
	out := []string{repo + ":" + version}
	for _, t := range tags {
		out = append(out, repo+":"+t)
	}
	for _, r := range out {
		if _, err := name.ParseReference(r, name.StrictValidation); err != nil {
			return nil, invalid("push: %s: %v", r, err)
		}
	}
	return out, nil
}

// Push uploads version v's image from the layer store to refs and records
// each reference with the manifest digest on v. Only a finished push is
// recorded. The parent's recorded reference in the same registry, when
// there is one, is offered for cross-repository mounts.
//
// A version with images of several architectures goes as an OCI image
// index of all of them (registry.PushIndex); an image this host lacks is
// pulled first from a reference recorded on the version. The version is
// read again after the push: an architecture registered while it ran (the
// other source of the same packer build, whose own push may have ended
// first) is pushed with the others in another round, so the tags end on an
// index of every architecture whichever push ends last.
func (c *Catalog) Push(ctx context.Context, store *layer.Store, v *Version, refs []string, opt registry.PushOptions) (*registry.Pushed, error) {
	const rounds = 3
	for round := 1; ; round++ {
		cur, err := c.Get(ctx, v.Image, v.Version)
		if err != nil {
			return nil, err
		}
		pushed, err := c.pushOnce(ctx, store, cur, refs, opt)
		if err != nil {
			return nil, err
		}
		after, err := c.Get(ctx, v.Image, v.Version)
		if err != nil {
			return nil, err
		}
		if len(after.Platforms) == len(cur.Platforms) || round == rounds {
			return pushed, nil
		}
	}
}

// pushOnce pushes v's images as they are now and records the references.
func (c *Catalog) pushOnce(ctx context.Context, store *layer.Store, v *Version, refs []string, opt registry.PushOptions) (*registry.Pushed, error) {
	archs := v.Architectures()
	if len(archs) == 0 {
		archs = []string{""} // registered before the catalog kept architectures
	}
	var imgs []*layer.Image
	for _, arch := range archs {
		pv, _ := v.ForArch(arch)
		img, err := store.Image(pv.ImageID)
		if err != nil && len(v.Platforms) > 0 {
			// Another host built it: its recorded reference brings it.
			p, perr := c.Pull(ctx, store, pv, opt.Options)
			if perr != nil {
				return nil, fmt.Errorf("push %s: its %s image is not in this host's store and pulling it failed: %w", v.Ref(), arch, perr)
			}
			p.Release()
			img, err = store.Image(pv.ImageID)
		}
		if err != nil {
			return nil, fmt.Errorf("push %s: its layers are not in this host's store (%w); pull it first (strata pull %s)", v.Ref(), err, v.Ref())
		}
		imgs = append(imgs, img)
	}
	var pushed *registry.Pushed
	var err error
	if len(imgs) == 1 {
		if opt.MountFrom == "" && v.ParentID != "" && len(refs) > 0 {
			if r, err := name.ParseReference(refs[0]); err == nil {
				opt.MountFrom = c.parentRefIn(ctx, v.ParentID, r.Context().RegistryStr())
			}
		}
		pushed, err = registry.Push(ctx, store, imgs[0], refs, opt)
	} else {
		pushed, err = registry.PushIndex(ctx, store, imgs, refs, opt)
	}
	if err != nil {
		return nil, err
	}
	recs := make([]RegistryRef, len(refs))
	for i, r := range refs {
		recs[i] = RegistryRef{Ref: r, Digest: pushed.Digest}
	}
	if err := c.AddRegistryRefs(ctx, v.Image, v.Version, recs); err != nil {
		return nil, fmt.Errorf("pushed %s but recording it: %w", v.Ref(), err)
	}
	return pushed, nil
}

// parentRefIn is a reference of the parent image in the registry host, ""
// when none is recorded.
func (c *Catalog) parentRefIn(ctx context.Context, parentID, host string) string {
	var vs []*Version
	c.store.View(ctx, func(tx Tx) error {
		vs, _ = tx.VersionsByImageID(parentID)
		return nil
	})
	for _, pv := range vs {
		for _, r := range pv.RegistryRefs() {
			if ref, err := name.ParseReference(r.Ref); err == nil && ref.Context().RegistryStr() == host {
				return ref.Context().Digest(r.Digest).String()
			}
		}
	}
	return ""
}

// Pull fetches version v's image into the layer store from a registry
// reference recorded on it (by digest, so a moved tag cannot change what
// comes), trying each until one answers.
func (c *Catalog) Pull(ctx context.Context, store *layer.Store, v *Version, opt registry.Options) (*registry.Pulled, error) {
	refs := v.RegistryRefs()
	if len(refs) == 0 {
		return nil, fmt.Errorf("%s is not in this host's layer store and was never pushed to a registry (push it from the host that built it: strata push %s REPO)", v.Ref(), v.Ref())
	}
	var errs []error
	tried := map[string]bool{}
	for _, r := range refs {
		ref, err := name.ParseReference(r.Ref)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		byDigest := ref.Context().Digest(r.Digest).String()
		if tried[byDigest] {
			continue
		}
		tried[byDigest] = true
		// An index (a multi-architecture version) holds v's image among
		// others: its manifest's digest is what is pulled. Another image
		// than the version's is refused before anything is stored.
		manifest, err := registry.ManifestFor(ctx, byDigest, v.ImageID, opt)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		p, err := registry.Pull(ctx, store, manifest, registry.Expect{ImageID: v.ImageID, Parent: v.ParentID}, opt)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		return p, nil
	}
	return nil, fmt.Errorf("pulling %s: %w", v.Ref(), errors.Join(errs...))
}
