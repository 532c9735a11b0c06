package image

import (
	"time"

	catalogdb "github.com/strata-build/packer-plugin-strata/catalog"
)

// outputOf is a version's answer; stale is its stale ancestry, nil when
// it is current.
func outputOf(v *catalogdb.Version, channel string, stale *catalogdb.Staleness) DatasourceOutput {
	out := DatasourceOutput{
		ImageID:        v.ImageID,
		Version:        v.Version,
		Name:           v.Image,
		Channel:        channel,
		Created:        v.Created.UTC().Format(time.RFC3339),
		Layers:         append([]string{}, v.Layers...),
		Labels:         map[string]string{},
		Artifacts:      map[string]string{},
		ArtifactSHA256: map[string]string{},
		ParentImageID:  v.ParentID,
		Architecture:   v.Architecture,
	}
	if stale != nil {
		out.OutOfDate = true
		out.StaleAncestor = stale.Ancestor
	}
	for k, l := range v.Labels {
		out.Labels[k] = l
	}
	for _, a := range v.Artifacts {
		format := a.Format
		if format == "" {
			format = a.Path
		}
		out.Artifacts[format] = a.Path
		out.ArtifactSHA256[format] = a.SHA256
	}
	return out
}
