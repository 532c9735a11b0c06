package catalog

import (
	"fmt"

	catalogdb "github.com/strata-build/packer-plugin-strata/catalog"
)

// Artifact is a registered version.
type Artifact struct {
	Version       *catalogdb.Version
	URL           string // the catalog
	generatedData map[string]interface{}
}

func (a *Artifact) BuilderId() string { return BuilderID }

// Files are none: the files belong to the input artifact.
func (a *Artifact) Files() []string { return nil }

// Id is NAME@VERSION.
func (a *Artifact) Id() string { return a.Version.Ref() }

func (a *Artifact) String() string {
	return fmt.Sprintf("%s (%s) in the catalog", a.Version.Ref(), a.Version.ImageID)
}

// State answers generated_data (the builder's, passed on) and the
// registered version's image_name, version, image_id and catalog.
func (a *Artifact) State(name string) interface{} {
	switch name {
	case "generated_data":
		return a.generatedData
	case "image_name":
		return a.Version.Image
	case "version":
		return a.Version.Version
	case "image_id":
		return a.Version.ImageID
	case "catalog":
		return catalogdb.RedactURL(a.URL)
	}
	return nil
}

// Destroy does nothing: a registered version leaves the catalog only by
// strata revoke and gc, never because a later post-processor discarded it.
func (a *Artifact) Destroy() error { return nil }
