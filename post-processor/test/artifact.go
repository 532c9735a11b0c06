package test

import (
	"encoding/json"
	"path/filepath"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/strata-build/packer-plugin-strata/export"
)

// Artifact is the tested strata-chroot artifact: the same builder ID and
// state (strata-catalog after it registers it), with artifact.json's new
// content (its evidence) and the reports among its files.
type Artifact struct {
	in       packersdk.Artifact
	manifest map[string]interface{}
	files    []string
}

func newArtifact(in packersdk.Artifact, m *export.Manifest, dir string, extra []string) (*Artifact, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	var plain map[string]interface{}
	if err := json.Unmarshal(b, &plain); err != nil {
		return nil, err
	}
	a := &Artifact{in: in, manifest: plain, files: append([]string(nil), in.Files()...)}
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
func (a *Artifact) Id() string        { return a.in.Id() }
func (a *Artifact) String() string    { return a.in.String() + " (tested by strata-test)" }

func (a *Artifact) State(name string) interface{} {
	if name == stateManifest {
		return a.manifest
	}
	return a.in.State(name)
}

func (a *Artifact) Destroy() error { return a.in.Destroy() }
