package chroot

import (
	"fmt"
	"os"
	"strings"

	registryimage "github.com/hashicorp/packer-plugin-sdk/packer/registry/image"

	"github.com/strata-build/packer-plugin-strata/export"
	"github.com/strata-build/packer-plugin-strata/layer"
)

// BuilderID identifies artifacts of this builder.
const BuilderID = "strata.chroot"

// Artifact is a built image: its layers in the store and its outputs.
type Artifact struct {
	// ImageID is the image's ID, the digest of its OCI config.
	ImageID  string
	ParentID string
	Layers   []layer.LayerRef
	// Digest is "sha256:<hex>" of the canonical uncompressed rootfs tar,
	// when a flattened format was written.
	Digest    string
	OutputDir string
	Outputs   []export.Output
	files     []string
	buildName string
	source    string
}

func (a *Artifact) BuilderId() string { return BuilderID }

func (a *Artifact) Files() []string { return a.files }

func (a *Artifact) Id() string { return a.ImageID }

func (a *Artifact) String() string {
	var parts []string
	for _, o := range a.Outputs {
		parts = append(parts, fmt.Sprintf("%s (%s)", o.Path, export.HumanBytes(o.Size)))
	}
	return fmt.Sprintf("Image %s (%d layers): %s", a.ImageID, len(a.Layers), strings.Join(parts, ", "))
}

// State answers Packer's registry metadata query and the strata-specific keys
// that later post-processors read.
func (a *Artifact) State(name string) interface{} {
	switch name {
	case registryimage.ArtifactStateURI:
		labels := map[string]interface{}{"source": a.source, "build_name": a.buildName, "parent_image_id": a.ParentID}
		for _, o := range a.Outputs {
			labels["sha256_"+o.Format] = o.SHA256
			labels["path_"+o.Format] = o.Path
		}
		img, err := registryimage.FromArtifact(a,
			registryimage.WithProvider("strata"),
			registryimage.WithRegion(a.OutputDir),
			registryimage.SetLabels(labels))
		if err != nil {
			return nil
		}
		return img
	case "rootfs_digest":
		return a.Digest
	case "image_id":
		return a.ImageID
	case "parent_image_id":
		return a.ParentID
	case "output_dir":
		return a.OutputDir
	case "outputs":
		// Plain types only: state crosses the plugin RPC boundary.
		out := map[string]string{}
		for _, o := range a.Outputs {
			out[o.Format] = o.Path
		}
		return out
	}
	return nil
}

func (a *Artifact) Destroy() error {
	var errs []string
	for _, f := range a.files {
		if err := os.RemoveAll(f); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("destroying artifact: %s", strings.Join(errs, "; "))
	}
	return nil
}
