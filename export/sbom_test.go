package export

import (
	"bytes"
	"testing"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"

	"github.com/strata-build/packer-plugin-strata/internal/dpkg"
)

func TestSBOMParsesBack(t *testing.T) {
	pkgs := []dpkg.Package{
		{Name: "bash", Version: "5.2.15-2+b2", Architecture: "amd64", Source: "bash", SourceVersion: "5.2.15-2", InstalledSize: 7164 * 1024, Essential: true},
		{Name: "libc6", Version: "2.36-9+deb12u4", Architecture: "amd64", Source: "glibc", SourceVersion: "2.36-9+deb12u4", InstalledSize: 1024},
		{Name: "tzdata", Version: "2024a-0+deb12u1", Architecture: "all", Source: "tzdata", SourceVersion: "2024a-0+deb12u1"},
	}
	id := "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	created := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	b, err := SBOM(pkgs, SBOMInfo{ImageID: id, Name: "base", Created: created, OSID: "debian", OSVersion: "12"})
	if err != nil {
		t.Fatal(err)
	}
	again, _ := SBOM(pkgs, SBOMInfo{ImageID: id, Name: "base", Created: created, OSID: "debian", OSVersion: "12"})
	if !bytes.Equal(b, again) {
		t.Error("the same image gave two different SBOMs")
	}
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(b), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		t.Fatalf("CycloneDX cannot read it back: %v", err)
	}
	if bom.SpecVersion != cdx.SpecVersion1_5 || bom.BOMFormat != "CycloneDX" {
		t.Errorf("spec %v format %q", bom.SpecVersion, bom.BOMFormat)
	}
	if bom.Metadata.Component.Name != "base" || bom.Metadata.Component.Type != cdx.ComponentTypeContainer {
		t.Errorf("metadata component %+v", bom.Metadata.Component)
	}
	if bom.Metadata.Timestamp != "2026-11-26T10:00:00Z" {
		t.Errorf("timestamp %q", bom.Metadata.Timestamp)
	}
	if len(bom.SerialNumber) != len("urn:uuid:")+36 {
		t.Errorf("serial %q is not a UUID URN", bom.SerialNumber)
	}
	if bom.Components == nil || len(*bom.Components) != 3 {
		t.Fatalf("components: %+v", bom.Components)
	}
	c := (*bom.Components)[0]
	if c.Name != "bash" || c.Version != "5.2.15-2+b2" || c.Type != cdx.ComponentTypeLibrary {
		t.Errorf("bash component %+v", c)
	}
	props := map[string]string{}
	for _, p := range *c.Properties {
		props[p.Name] = p.Value
	}
	if props["strata:source"] != "bash" || props["strata:source-version"] != "5.2.15-2" || props["strata:installed-size"] != "7335936" || props["strata:architecture"] != "amd64" {
		t.Errorf("bash properties %v", props)
	}
	if want := "pkg:deb/debian/bash@5.2.15-2+b2?arch=amd64&distro=debian-12&upstream=bash%405.2.15-2"; c.PackageURL != want {
		t.Errorf("purl %q, want %q", c.PackageURL, want)
	}
	if want := "pkg:deb/debian/libc6@2.36-9+deb12u4?arch=amd64&distro=debian-12&upstream=glibc"; (*bom.Components)[1].PackageURL != want {
		t.Errorf("purl %q, want %q", (*bom.Components)[1].PackageURL, want)
	}
	if want := "pkg:deb/debian/tzdata@2024a-0+deb12u1?arch=all&distro=debian-12"; (*bom.Components)[2].PackageURL != want {
		t.Errorf("purl %q, want %q", (*bom.Components)[2].PackageURL, want)
	}
}
