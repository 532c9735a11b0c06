package export

import (
	"bytes"
	"fmt"
	"net/url"
	"strconv"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"

	"github.com/strata-build/packer-plugin-strata/internal/dpkg"
)

// SBOMName is the software bill of materials beside the outputs.
const SBOMName = "sbom.cdx.json"

// SBOMInfo says which image a bill of materials describes.
type SBOMInfo struct {
	ImageID   string
	Name      string // the build's name
	Created   time.Time
	OSID      string // os-release ID, such as debian
	OSVersion string // os-release VERSION_ID, such as 12
}

// SBOM is the image's packages as a CycloneDX 1.5 JSON bill of materials,
// made with CycloneDX's own Go library: one library component a package,
// with its package URL (pkg:deb/...), architecture, source package and
// installed size.
func SBOM(pkgs []dpkg.Package, info SBOMInfo) ([]byte, error) {
	bom := cdx.NewBOM()
	bom.SerialNumber = "urn:uuid:" + uuidFrom(info.ImageID)
	bom.Metadata = &cdx.Metadata{
		Timestamp: info.Created.UTC().Format(time.RFC3339),
		Tools: &cdx.ToolsChoice{Components: &[]cdx.Component{{
			Type: cdx.ComponentTypeApplication, Name: "strata-chroot", Group: "strata-build",
		}}},
		Component: &cdx.Component{
			BOMRef:  info.ImageID,
			Type:    cdx.ComponentTypeContainer,
			Name:    info.Name,
			Version: info.ImageID,
		},
	}
	components := make([]cdx.Component, 0, len(pkgs))
	for _, p := range pkgs {
		purl := PackageURL(p, info.OSID, info.OSVersion)
		props := []cdx.Property{
			{Name: "strata:architecture", Value: p.Architecture},
			{Name: "strata:source", Value: p.Source},
			{Name: "strata:source-version", Value: p.SourceVersion},
			{Name: "strata:installed-size", Value: strconv.FormatInt(p.InstalledSize, 10)},
		}
		if p.Essential {
			props = append(props, cdx.Property{Name: "strata:essential", Value: "yes"})
		}
		components = append(components, cdx.Component{
			BOMRef:     purl,
			Type:       cdx.ComponentTypeLibrary,
			Name:       p.Name,
			Version:    p.Version,
			PackageURL: purl,
			Properties: &props,
		})
	}
	bom.Components = &components
	var buf bytes.Buffer
	enc := cdx.NewBOMEncoder(&buf, cdx.BOMFileFormatJSON)
	enc.SetPretty(true)
	if err := enc.EncodeVersion(bom, cdx.SpecVersion1_5); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// PackageURL is a package's purl, as the purl spec writes deb packages.
func PackageURL(p dpkg.Package, osID, osVersion string) string {
	ns := osID
	if ns == "" {
		ns = "debian"
	}
	q := url.Values{}
	q.Set("arch", p.Architecture)
	if osVersion != "" {
		q.Set("distro", ns+"-"+osVersion)
	}
	if p.Source != p.Name || p.SourceVersion != p.Version {
		src := p.Source
		if p.SourceVersion != p.Version {
			src += "@" + p.SourceVersion
		}
		q.Set("upstream", src)
	}
	return fmt.Sprintf("pkg:deb/%s/%s@%s?%s", ns, url.PathEscape(p.Name), url.PathEscape(p.Version), q.Encode())
}

// uuidFrom makes a stable UUID (version 8 layout) from a digest, so the same
// image always gets the same serial number.
func uuidFrom(digest string) string {
	h := []byte(digest + "0000000000000000000000000000000000000000")
	if len(digest) > 7 {
		h = []byte(digest[7:] + "00000000000000000000000000000000")
	}
	s := string(h[:32])
	return s[0:8] + "-" + s[8:12] + "-8" + s[13:16] + "-8" + s[17:20] + "-" + s[20:32]
}
