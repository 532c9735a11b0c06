package catalog

import (
	"context"
	"strings"
)

// FormatRegistry is the artifact kind of a version pushed to an OCI
// registry: Path is the reference ("host/repository:tag"), SHA256 the
// manifest digest's hex.
const FormatRegistry = "oci-registry"

// RegistryRef is one pushed reference of a version.
type RegistryRef struct {
	Ref    string // host[:port]/repository:tag
	Digest string // the manifest's, "sha256:<hex>"
}

// AddRegistryRefs records references a version was pushed to, in one
// transaction. A reference already recorded takes the new digest (a tag
// pushed again); the version's files are not touched.
func (c *Catalog) AddRegistryRefs(ctx context.Context, image, version string, refs []RegistryRef) error {
	for _, r := range refs {
		if r.Ref == "" || strings.ContainsAny(r.Ref, " \t\n") {
			return invalid("registry reference %q: write host/repository:tag", r.Ref)
		}
		if err := ValidDigest("manifest digest", r.Digest); err != nil {
			return err
		}
		if err := checkText("registry reference", r.Ref); err != nil {
			return err
		}
	}
	return c.store.Update(ctx, func(tx Tx) error {
		if err := tx.LockImage(image); err != nil {
			return err
		}
		v, err := getVersion(tx, image, version)
		if err != nil {
			return err
		}
		arts := v.Artifacts
	next:
		for _, r := range refs {
			a := Artifact{Format: FormatRegistry, Path: r.Ref, SHA256: strings.TrimPrefix(r.Digest, "sha256:")}
			for i := range arts {
				if arts[i].Format == FormatRegistry && arts[i].Path == r.Ref {
					arts[i] = a
					continue next
				}
			}
			arts = append(arts, a)
		}
		return tx.SetArtifacts(image, version, arts)
	})
}

// RegistryRefs are the references a version was pushed to, oldest first.
func (v *Version) RegistryRefs() []RegistryRef {
	var out []RegistryRef
	for _, a := range v.Artifacts {
		if a.Format == FormatRegistry {
			out = append(out, RegistryRef{Ref: a.Path, Digest: "sha256:" + a.SHA256})
		}
	}
	return out
}
