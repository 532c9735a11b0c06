package catalog

import "github.com/strata-build/packer-plugin-strata/layer"

// ContentInStore is a ContentExists for a host with a layer store at
// layers: a version's content is there when its image is complete in the
// store (a layered version whose files were discarded can still be a
// parent), or when every file it recorded is on disk at its size.
func ContentInStore(layers string) func(*Version) bool {
	return func(v *Version) bool {
		if len(v.Layers) > 0 {
			if s, err := layer.OpenExisting(layers); err == nil {
				if img, err := s.Image(v.ImageID); err == nil && s.Complete(img) == nil {
					return true
				}
			}
		}
		if len(v.Artifacts) == 0 && len(v.Layers) > 0 {
			return false
		}
		return ArtifactsOnDisk(v)
	}
}
