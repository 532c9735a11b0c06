package test

import (
	"encoding/json"
	"path/filepath"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	registryimage "github.com/hashicorp/packer-plugin-sdk/packer/registry/image"

	"github.com/strata-build/packer-plugin-strata/export"
)

// Artifact is the tested strata-chroot artifact: the same builder ID and
// state (strata-catalog after it registers it), with artifact.json's new
// content (its evidence) and the reports among its files.
type Artifact struct {
	in       packersdk.Artifact
	manifest map[string]interface{}
	files    []string
	// state is the input's, read while it is reachable: the input artifact
	// is a connection to another plugin that ends with PostProcess.
	state    map[string]interface{}
	id, desc string
}

// stateKeys are the keys of strata-chroot's artifact state passed on.
var stateKeys = []string{"output_dir", stateBuild, "generated_data", "image_id", "parent_image_id", "rootfs_digest", "outputs", registryimage.ArtifactStateURI}

func newArtifact(in packersdk.Artifact, m *export.Manifest, dir string, extra []string) (*Artifact, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	var plain map[string]interface{}
	if err := json.Unmarshal(b, &plain); err != nil {
		return nil, err
	}
	a := &Artifact{in: in, manifest: plain, files: append([]string(nil), in.Files()...), state: map[string]interface{}{}, id: in.Id(), desc: in.String()}
	for _, k := range stateKeys {
		if v := in.State(k); v != nil {
			a.state[k] = v
		}
	}
	for _, f := range extra {
		if f != "" {
			a.files = append(a.files, filepath.Join(dir, f))
		}
	}
	return a, nil
}

// BuilderId is strata-chroot's: the artifact is its, tested.
func (a *Artifact) BuilderId() string { return chrootBuilderID }
func (a *Artifact) Files() []string   { return a.files }
func (a *Artifact) Id() string        { return a.id }
func (a *Artifact) String() string    { return a.desc + " (tested by strata-test)" }

func (a *Artifact) State(name string) interface{} {
	if name == stateManifest {
		return a.manifest
	}
	return a.state[name]
}

// Destroy removes nothing: the files are the input artifact's, which
// Packer destroys (or keeps) itself.
func (a *Artifact) Destroy() error { return nil }
