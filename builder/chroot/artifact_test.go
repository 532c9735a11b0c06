package chroot

import (
	"strings"
	"testing"

	registryimage "github.com/hashicorp/packer-plugin-sdk/packer/registry/image"

	"github.com/strata-build/packer-plugin-strata/export"
)

func TestArtifactState(t *testing.T) {
	a := &Artifact{
		ImageID:       "sha256:abc",
		Digest:        "sha256:def",
		OutputDir:     "/out",
		Outputs:       []export.Output{{Format: "tar.zst", Path: "/out/rootfs.tar.zst", Size: 3, SHA256: "def"}},
		files:         []string{"/out/rootfs.tar.zst"},
		buildName:     "base",
		source:        "bootstrap:bookworm/minbase",
		manifest:      export.Manifest{ImageID: "sha256:abc", Outputs: []export.Output{{Format: "tar.zst", Path: "/out/rootfs.tar.zst", Size: 3, SHA256: "def"}}},
		generatedData: map[string]interface{}{"ImageID": "sha256:abc", "OutputDir": "/out"},
		runUUID:       "run-1",
		configHash:    "sha256:123",
	}
	if a.Id() != "sha256:abc" || a.BuilderId() != BuilderID || len(a.Files()) != 1 {
		t.Fatalf("artifact %+v", a)
	}
	img, ok := a.State(registryimage.ArtifactStateURI).(*registryimage.Image)
	if !ok {
		t.Fatalf("registry metadata is %T", a.State(registryimage.ArtifactStateURI))
	}
	if err := img.Validate(); err != nil {
		t.Fatal(err)
	}
	if img.ImageID != "sha256:abc" || img.ProviderName != "strata" || img.ProviderRegion != "/out" ||
		img.Labels["sha256_tar.zst"] != "def" || img.Labels["source"] != "bootstrap:bookworm/minbase" {
		t.Fatalf("registry image %+v", img)
	}
	if outs := a.State("outputs").(map[string]string); outs["tar.zst"] != "/out/rootfs.tar.zst" {
		t.Fatalf("outputs state %v", outs)
	}
	if gd, ok := a.State("generated_data").(map[string]interface{}); !ok || gd["ImageID"] != "sha256:abc" {
		t.Fatalf("generated_data %v", a.State("generated_data"))
	}
	m, ok := a.State(StateManifest).(map[string]interface{})
	if !ok || m["image_id"] != "sha256:abc" {
		t.Fatalf("manifest state %v", a.State(StateManifest))
	}
	if outs, ok := m["outputs"].([]interface{}); !ok || outs[0].(map[string]interface{})["sha256"] != "def" {
		t.Fatalf("manifest outputs %v: only plain types cross RPC", m["outputs"])
	}
	if b := a.State(StateBuild).(map[string]interface{}); b["packer_run_uuid"] != "run-1" || b["template_hash"] != "sha256:123" || b["build_name"] != "base" {
		t.Fatalf("build state %v", b)
	}
	if a.State("nope") != nil {
		t.Fatal("unknown state keys answer nil")
	}
}

// Files() holds regular files only; String() names the directories.
func TestArtifactFilesAreRegular(t *testing.T) {
	a := &Artifact{ImageID: "sha256:abc", files: []string{"/out/rootfs.tree-sha256", "/out/artifact.json"}, dirs: []string{"/out/rootfs", "/out/oci"}}
	if len(a.Files()) != 2 || a.Files()[0] != "/out/rootfs.tree-sha256" {
		t.Errorf("files %v", a.Files())
	}
	if s := a.String(); !strings.Contains(s, "not among the files post-processors get: /out/rootfs, /out/oci") {
		t.Errorf("String() %q does not name the directories", s)
	}
}
