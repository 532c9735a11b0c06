// Package catalog is the rollback catalog: images, their immutable versions,
// channels that point at versions with an append-only history, and the
// semantics on top (promote, rollback, revoke, lineage, diff, gc). Backends
// implement the narrow Store interface; every rule lives here, once.
package catalog

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Version is one registered build of an image. Its content never changes
// after registration; only its revocation state does.
type Version struct {
	Image    string            `json:"image"`
	Version  string            `json:"version"`
	Seq      int64             `json:"seq"`      // registration order within the image
	ImageID  string            `json:"image_id"` // content digest, e.g. the rootfs digest
	ParentID string            `json:"parent_id,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
	Tags     []string          `json:"tags,omitempty"`
	// Description is free text about the version.
	Description string `json:"description,omitempty"`
	// Layers are the image's layers, bottom first, by diffID
	// (sha256:<hex> of the uncompressed layer tar), when a layered builder
	// made it.
	Layers []string `json:"layers,omitempty"`
	// Architecture is the image's Debian architecture (`arm64`); "" for a
	// version registered before the catalog recorded it (the build host's).
	Architecture string `json:"architecture,omitempty"`
	// Platforms are the version's images of other architectures, each
	// registered under the same version (a multi-architecture version:
	// channels move all of them together). Filled when one version is read.
	Platforms []Platform `json:"platforms,omitempty"`
	// Artifacts are the files of the version (one per output format).
	Artifacts []Artifact `json:"artifacts,omitempty"`
	Packages  []Package  `json:"packages,omitempty"`
	Build     BuildInfo  `json:"build"`
	Created   time.Time  `json:"created"`
	// Evidence are the test results recorded on the version, oldest
	// first (filled when one version is read; Register records those it
	// is given in the registering transaction).
	Evidence []Evidence `json:"evidence,omitempty"`

	Revoked       bool       `json:"revoked"`
	RevokedReason string     `json:"revoked_reason,omitempty"`
	RevokedAt     *time.Time `json:"revoked_at,omitempty"` // nil unless revoked
	// RevokedBy is who revoked it (a user, or a strata serve token's name).
	RevokedBy string `json:"revoked_by,omitempty"`
}

// Platform is one more architecture's image of a version.
type Platform struct {
	Architecture string     `json:"architecture"`
	ImageID      string     `json:"image_id"`
	ParentID     string     `json:"parent_id,omitempty"`
	Layers       []string   `json:"layers,omitempty"`
	Artifacts    []Artifact `json:"artifacts,omitempty"`
	Packages     []Package  `json:"packages,omitempty"`
	Build        BuildInfo  `json:"build"`
	Created      time.Time  `json:"created"`
}

// ForArch is the version as one architecture sees it: v itself when it is
// of arch (or of no recorded architecture), else v with the image ID,
// parent, layers, artifacts, packages and build of its platform of arch;
// false when it has none.
func (v *Version) ForArch(arch string) (*Version, bool) {
	if arch == "" || v.Architecture == "" || v.Architecture == arch {
		return v, true
	}
	for _, p := range v.Platforms {
		if p.Architecture == arch {
			out := *v
			out.Architecture, out.ImageID, out.ParentID, out.Layers = p.Architecture, p.ImageID, p.ParentID, p.Layers
			out.Artifacts, out.Packages, out.Build = p.Artifacts, p.Packages, p.Build
			// The version's registry references hold every architecture
			// (an image index): a pull picks this one's image from them.
			for _, a := range v.Artifacts {
				if a.Format == FormatRegistry {
					out.Artifacts = append(slices.Clip(out.Artifacts), a)
				}
			}
			return &out, true
		}
	}
	return nil, false
}

// Architectures lists the version's architectures, its own first.
func (v *Version) Architectures() []string {
	var a []string
	if v.Architecture != "" {
		a = append(a, v.Architecture)
	}
	for _, p := range v.Platforms {
		a = append(a, p.Architecture)
	}
	return a
}

// Ref is "image@version".
func (v *Version) Ref() string { return v.Image + "@" + v.Version }

// Artifact is one file of a version.
type Artifact struct {
	Format string `json:"format,omitempty"`
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Package is one installed package of a version's package manifest.
type Package struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Arch    string `json:"arch,omitempty"`
}

// BuildInfo says which packer run made a version.
type BuildInfo struct {
	PackerRunUUID string `json:"packer_run_uuid,omitempty"`
	BuildName     string `json:"build_name,omitempty"`
	TemplateHash  string `json:"template_hash,omitempty"`
	// OutputDir is the output directory a builder wrote the artifacts to,
	// recorded when the version was registered from it (never from
	// hand-typed paths): gc may delete files there.
	OutputDir string `json:"output_dir,omitempty"`
}

// Image is a named series of versions.
type Image struct {
	Name     string    `json:"name"`
	Created  time.Time `json:"created"`
	Versions int       `json:"versions"`
	Latest   string    `json:"latest,omitempty"`
}

// Action is what moved a channel.
type Action string

const (
	ActionPromote  Action = "promote"
	ActionRollback Action = "rollback"
)

// ChannelEntry is one assignment in a channel's append-only history.
type ChannelEntry struct {
	ID       int64     `json:"id"` // increases with every entry of the whole catalog
	Image    string    `json:"image"`
	Channel  string    `json:"channel"`
	Version  string    `json:"version"`
	Previous string    `json:"previous,omitempty"`
	Action   Action    `json:"action"`
	Actor    string    `json:"actor,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	Time     time.Time `json:"time"`
	// Override is what a channel policy found missing when a promotion
	// went ahead anyway (--override): "" for an ordinary move.
	Override string `json:"override,omitempty"`
}

// Channel is a channel's current assignment.
type Channel struct {
	Image   string    `json:"image"`
	Name    string    `json:"channel"`
	Version string    `json:"version"`
	Since   time.Time `json:"since"`
	Revoked bool      `json:"revoked"` // the version it points at has been revoked since
}

// Errors a caller can act on; use errors.Is.
var (
	ErrNotFound   = errors.New("not found")
	ErrConflict   = errors.New("conflict")
	ErrRevoked    = errors.New("revoked")
	ErrNoRollback = errors.New("nothing to roll back to")
	ErrInvalid    = errors.New("invalid")
	// ErrPolicy is a promotion a channel policy refuses.
	ErrPolicy = errors.New("refused by the channel policy")
)

func notFound(format string, a ...interface{}) error {
	return fmt.Errorf("%w: %s", ErrNotFound, fmt.Sprintf(format, a...))
}

func invalid(format string, a ...interface{}) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, a...))
}

// checkText refuses control characters in free text the catalog records
// (actors, reasons, labels, tags, descriptions): printed in a table they
// could forge rows or drive the terminal.
func checkText(kind, s string) error {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return invalid("%s %q contains a control character; use printable text", kind, s)
		}
	}
	return nil
}

// ValidDigest checks a "sha256:<64 hex>" digest.
func ValidDigest(kind, d string) error {
	hex, ok := strings.CutPrefix(d, "sha256:")
	if !ok || len(hex) != 64 || strings.Trim(hex, "0123456789abcdef") != "" {
		return invalid("%s %q is not a sha256 digest; write sha256: and 64 lowercase hex digits", kind, d)
	}
	return nil
}
