package chroot

import (
	"fmt"
	"os"
	"strings"

	registryimage "github.com/hashicorp/packer-plugin-sdk/packer/registry/image"

	"github.com/strata-build/packer-plugin-strata/export"
)

// BuilderID identifies artifacts of this builder.
const BuilderID = "strata.chroot"

// Artifact is a built root file system in one or more formats.
type Artifact struct {
	// Digest is "sha256:<hex>" of the canonical uncompressed rootfs tar.
	Digest    string
	OutputDir string
	Outputs   []export.Output
	files     []string
	buildName string
	source    string
}

func (a *Artifact) BuilderId() string { return BuilderID }

func (a *Artifact) Files() []string { return a.files }

func (a *Artifact) Id() string { return a.Digest }

func (a *Artifact) String() string {
	var parts []string
	for _, o := range a.Outputs {
		parts = append(parts, fmt.Sprintf("%s (%s)", o.Path, export.HumanBytes(o.Size)))
	}
	return fmt.Sprintf("Root file system %s: %s", a.Digest, strings.Join(parts, ", "))
}

// State answers Packer's registry metadata query and the strata-specific keys
// that later post-processors read.
func (a *Artifact) State(name string) interface{} {
	switch name {
	case registryimage.ArtifactStateURI:
		labels := map[string]interface{}{"source": a.source, "build_name": a.buildName}
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
