package catalog

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// VersionScheme picks the version of a registration that gives none.
type VersionScheme string

const (
	SchemeSemver    VersionScheme = "semver"    // next patch of the highest x.y.z, or 1.0.0
	SchemeTimestamp VersionScheme = "timestamp" // UTC YYYYMMDD.HHMMSS
)

// RegisterOptions tune Register.
type RegisterOptions struct {
	Scheme VersionScheme
	// AllowDuplicate registers content (an image ID) that the image has
	// registered already; without it that is a conflict.
	AllowDuplicate bool
	// Promote, when set, points this channel at the new version in the same
	// transaction: the version is never visible without its promotion.
	Promote string
	// Channels are more channels to point at the new version, in the same
	// transaction, after the version is in.
	Channels []string
	Move     MoveOptions
}

// Register adds a complete version in one transaction. An empty Version is
// the one the same packer run registered for another architecture (see
// sameRunVersion), else assigned by the scheme. Registering an existing version is a conflict;
// versions are immutable.
func (c *Catalog) Register(ctx context.Context, v *Version, opt RegisterOptions) (*Version, error) {
	if err := ValidName("image", v.Image); err != nil {
		return nil, err
	}
	if err := ValidDigest("image ID", v.ImageID); err != nil {
		return nil, err
	}
	if v.ParentID != "" {
		if err := ValidDigest("parent image ID", v.ParentID); err != nil {
			return nil, err
		}
	}
	for _, a := range v.Artifacts {
		if a.Path == "" || (a.SHA256 != "" && len(a.SHA256) != 64) {
			return nil, invalid("artifact %+v: needs a path and a 64-hex sha256", a)
		}
	}
	if err := CheckText(v); err != nil {
		return nil, err
	}
	for _, l := range v.Layers {
		if err := ValidDigest("layer", l); err != nil {
			return nil, err
		}
	}
	for i := range v.Evidence {
		e := &v.Evidence[i]
		if err := checkEvidence(e); err != nil {
			return nil, err
		}
	}
	channels := opt.Channels
	if opt.Promote != "" {
		channels = append([]string{opt.Promote}, channels...)
	}
	for _, ch := range channels {
		if err := checkMove(ch, opt.Move); err != nil {
			return nil, err
		}
	}
	out := *v
	err := c.store.Update(ctx, func(tx Tx) error {
		if err := tx.LockImage(out.Image); err != nil {
			return err
		}
		if out.Version == "" {
			joined, err := sameRunVersion(tx, &out)
			if err != nil {
				return err
			}
			out.Version = joined
		}
		if out.Version == "" {
			next, err := c.nextVersion(tx, out.Image, opt.Scheme)
			if err != nil {
				return err
			}
			out.Version = next
		}
		if have, err := tx.Version(out.Image, out.Version); err == nil {
			if out.Architecture == "" || have.Architecture == "" || slices.Contains(have.Architectures(), out.Architecture) {
				return fmt.Errorf("%w: %s@%s is already registered; versions are immutable", ErrConflict, out.Image, out.Version)
			}
			// Another architecture's image of the version: one version,
			// one image per architecture, moved by channels together.
			p := Platform{Architecture: out.Architecture, ImageID: out.ImageID, ParentID: out.ParentID, Layers: out.Layers,
				Artifacts: out.Artifacts, Packages: out.Packages, Build: out.Build, Created: c.Now().UTC()}
			if err := tx.InsertPlatform(out.Image, out.Version, &p); err != nil {
				return err
			}
			// Its test results are the version's too: channels move every
			// architecture together, so their policies see all of them.
			for _, e := range v.Evidence {
				e.Image, e.Version = out.Image, out.Version
				if e.Time.IsZero() {
					e.Time = p.Created
				}
				if err := tx.InsertEvidence(&e); err != nil {
					return err
				}
				have.Evidence = append(have.Evidence, e)
			}
			have.Platforms = append(have.Platforms, p)
			out = *have
			return nil
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		if !opt.AllowDuplicate {
			same, err := tx.VersionsByImageID(out.ImageID)
			if err != nil {
				return err
			}
			for _, s := range same {
				if s.Image == out.Image {
					return fmt.Errorf("%w: %s already holds this content (%s); register it again only with --allow-duplicate (allow_duplicate)", ErrConflict, s.Ref(), out.ImageID)
				}
			}
		}
		seq, err := tx.MaxSeq(out.Image)
		if err != nil {
			return err
		}
		out.Seq = seq + 1
		if out.Created.IsZero() {
			out.Created = c.Now().UTC()
		}
		out.Revoked, out.RevokedReason, out.RevokedAt = false, "", nil
		if err := tx.InsertVersion(&out); err != nil {
			return err
		}
		// The evidence goes in before any channel moves: the channels'
		// policies see it.
		out.Evidence = slices.Clone(v.Evidence)
		for i := range out.Evidence {
			e := &out.Evidence[i]
			e.Image, e.Version = out.Image, out.Version
			if e.Time.IsZero() {
				e.Time = out.Created
			}
			if err := tx.InsertEvidence(e); err != nil {
				return err
			}
		}
		for _, ch := range channels {
			if _, _, err := c.promoteTx(tx, out.Image, ch, out.Version, opt.Move); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// CheckText checks what of v people type: the version's syntax, and no
// control character in its free text (tags, labels, description, build
// info). Register checks it too; a caller can say it earlier.
func CheckText(v *Version) error {
	if len(v.Version) > maxNameLen {
		return invalid("version %q: at most %d characters", v.Version, maxNameLen)
	}
	if v.Version != "" && !versionRe.MatchString(v.Version) {
		return invalid("version %q: use letters, digits, '.', '_', '+' and '-'", v.Version)
	}
	return checkVersionText(v)
}

// checkVersionText refuses control characters anywhere in a version's
// free text.
func checkVersionText(v *Version) error {
	texts := map[string]string{"build name": v.Build.BuildName, "run UUID": v.Build.PackerRunUUID,
		"template hash": v.Build.TemplateHash, "output dir": v.Build.OutputDir, "description": v.Description}
	for k, l := range v.Labels {
		texts["label "+k] = l
		texts["label name"] = k
	}
	for _, t := range v.Tags {
		texts["tag"] = t
		if err := checkText("tag", t); err != nil {
			return err
		}
	}
	for _, kind := range slices.Sorted(maps.Keys(texts)) {
		if err := checkText(kind, texts[kind]); err != nil {
			return err
		}
	}
	for _, a := range v.Artifacts {
		if err := checkText("artifact path", a.Path); err != nil {
			return err
		}
	}
	return nil
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

// sameRunLookback bounds how many of an image's latest versions
// sameRunVersion reads.
const sameRunLookback = 50

// sameRunVersion is the version a registration that names none joins: the
// one the same packer run (its run UUID) registered for another
// architecture and that has none of v's yet, so that a template with one
// source per architecture registers one version without naming it. "" when
// there is none (another run, the same architecture again, no run UUID).
func sameRunVersion(tx Tx, v *Version) (string, error) {
	if v.Build.PackerRunUUID == "" || v.Architecture == "" {
		return "", nil
	}
	vs, err := tx.Versions(v.Image, false)
	if err != nil {
		return "", err
	}
	for i := len(vs) - 1; i >= 0 && i >= len(vs)-sameRunLookback; i-- {
		if vs[i].Build.PackerRunUUID != v.Build.PackerRunUUID || vs[i].Revoked {
			continue
		}
		have, err := tx.Version(v.Image, vs[i].Version)
		if err != nil {
			return "", err
		}
		if have.Architecture != "" && !slices.Contains(have.Architectures(), v.Architecture) {
			return have.Version, nil
		}
	}
	return "", nil
}
