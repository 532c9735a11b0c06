package chroot

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"

	registryimage "github.com/hashicorp/packer-plugin-sdk/packer/registry/image"

	"github.com/strata-build/packer-plugin-strata/export"
	"github.com/strata-build/packer-plugin-strata/internal/bytesize"
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
	// files are the regular files of the outputs, what Files() hands to
	// post-processors; dirs the directory outputs (dir, oci), which
	// post-processors that read files cannot take.
	files     []string
	dirs      []string
	buildName string
	source    string
	// manifest is artifact.json's content, output paths absolute.
	manifest      export.Manifest
	generatedData map[string]interface{}
	runUUID       string
	configHash    string
	storeDir      string
}

// State keys this artifact answers beside Packer's own.
const (
	// StateManifest is artifact.json's content as a plain map (output
	// paths absolute), what strata-catalog registers.
	StateManifest = "strata.manifest"
	// StateBuild is a plain map of build_name, packer_run_uuid,
	// template_hash (sha256 of the builder's configuration) and store_dir.
	StateBuild = "strata.build"
)

func (a *Artifact) BuilderId() string { return BuilderID }

// Files lists the artifact's regular files only: Packer's checksum and
// compress post-processors fail on a directory. The dir output is there as
// its tree checksum file (rootfs.tree-sha256); String() names the
// directories left out.
func (a *Artifact) Files() []string { return a.files }

func (a *Artifact) Id() string { return a.ImageID }

func (a *Artifact) String() string {
	var parts []string
	for _, o := range a.Outputs {
		parts = append(parts, fmt.Sprintf("%s (%s)", o.Path, bytesize.Human(o.Size)))
	}
	s := fmt.Sprintf("Image %s (%d layers): %s", a.ImageID, len(a.Layers), strings.Join(parts, ", "))
	if len(a.dirs) > 0 {
		s += fmt.Sprintf(". Directories, not among the files post-processors get: %s", strings.Join(a.dirs, ", "))
	}
	return s
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
	case stateGeneratedData:
		return a.generatedData
	case StateManifest:
		return plainMap(a.manifest)
	case StateBuild:
		return map[string]interface{}{"build_name": a.buildName, "packer_run_uuid": a.runUUID,
			"template_hash": a.configHash, "store_dir": a.storeDir}
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

// plainMap is v as JSON objects, arrays, strings, numbers and booleans:
// what crosses the plugin RPC boundary.
func plainMap(v interface{}) map[string]interface{} {
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	var m map[string]interface{}
	if json.Unmarshal(b, &m) != nil {
		return nil
	}
	return m
}

func (a *Artifact) Destroy() error {
	var errs []string
	for _, f := range append(slices.Clone(a.files), a.dirs...) {
		if err := os.RemoveAll(f); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("destroying artifact: %s", strings.Join(errs, "; "))
	}
	return nil
}
