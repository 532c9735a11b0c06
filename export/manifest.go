package export

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/strata-build/packer-plugin-strata/layer"
)

// ManifestName is the file in an output directory that describes it.
const ManifestName = "artifact.json"

// ManifestSchemaVersion is the version of artifact.json's schema. Version 2
// added files: the sha256 of every other file artifact.json names.
const ManifestSchemaVersion = 2

// Manifest describes an output directory: what a catalog registers. Its
// schema is documented in docs/strata-cli.md.
type Manifest struct {
	SchemaVersion int `json:"schema_version"`
	// ImageID is the image's ID: the digest of its OCI config.
	ImageID string `json:"image_id"`
	// ParentImageID is the image it was built on, "" for a base.
	ParentImageID string `json:"parent_image_id,omitempty"`
	// Layers are the image's layers, base first.
	Layers []layer.LayerRef `json:"layers"`
	// RootfsDigest is "sha256:<hex>" of the canonical uncompressed tar of
	// the whole tree, when a flattened format was written.
	RootfsDigest string `json:"rootfs_digest,omitempty"`
	BuildName    string `json:"build_name,omitempty"`
	// Architecture is the image's Debian architecture (`arm64`); an
	// optional field: older readers ignore it, and a manifest without it
	// is of the build host's.
	Architecture string   `json:"architecture,omitempty"`
	Source       string   `json:"source,omitempty"`
	Outputs      []Output `json:"outputs"` // paths are file names in the directory
	// Packages is the package manifest's file name in the directory.
	Packages string `json:"packages,omitempty"`
	// SBOM is the CycloneDX bill of materials' file name in the directory.
	SBOM string `json:"sbom,omitempty"`
	// PackageSnapshot is what the package cache served the build: a later
	// build given this file as package_cache.snapshot sees the same indexes.
	PackageSnapshot *PackageSnapshot `json:"package_snapshot,omitempty"`
	// Files are the directory's other files that artifact.json names or
	// implies (the package manifest, the SBOM, each output's checksum file,
	// the dir output's tree digest file), each with its size and sha256, so
	// that nothing a catalog reads from the directory goes unchecked.
	Files []File `json:"files,omitempty"`
	// BootCheck is the boot check's result, when the build booted its
	// disk output (an optional field: older readers ignore it).
	BootCheck *BootCheck `json:"boot_check,omitempty"`
	// Evidence are test results on the image (strata-test appends them;
	// an optional field: older readers ignore it). Each report and
	// statement file is also in Files.
	Evidence []Evidence `json:"evidence,omitempty"`
}

// BootCheck is what booting the disk output under QEMU showed.
type BootCheck struct {
	Passed bool `json:"passed"`
	// Disk is the output file that was booted (a name in the directory).
	Disk string `json:"disk"`
	// Accel is the accelerator the VM ran under: "kvm" or "tcg".
	Accel string `json:"accel"`
	// BootTimeMS runs from the kernel's start to the expected console
	// line; BootTimeSource says how it was measured ("systemd": its
	// "Startup finished" line; "console": the host's clock between console
	// lines).
	BootTimeMS     int64  `json:"boot_time_ms"`
	BootTimeSource string `json:"boot_time_source,omitempty"`
	// TotalMS runs from starting QEMU (firmware included) to the line.
	TotalMS int64 `json:"total_ms"`
	// Expect is the regular expression the console matched.
	Expect string `json:"expect"`
}

// File is one of Manifest.Files.
type File struct {
	Name   string `json:"name"` // a file name in the directory
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"` // hex
}

// describedFiles are the file names m names (required: they must exist)
// and implies (written beside outputs, hashed when present).
func describedFiles(m *Manifest) (named, implied []string) {
	for _, n := range []string{m.Packages, m.SBOM} {
		if n != "" {
			named = append(named, n)
		}
	}
	for _, e := range m.Evidence {
		for _, n := range append([]string{e.Report, e.Statement}, e.ExtraFiles...) {
			if n != "" && !slices.Contains(named, n) {
				named = append(named, n)
			}
		}
	}
	for _, o := range m.Outputs {
		switch o.Format {
		case "oci":
		case "dir":
			implied = append(implied, TreeDigestName)
		default:
			implied = append(implied, filepath.Base(o.Path)+".sha256")
		}
	}
	return named, implied
}

// PackageSnapshot names the package indexes a build saw.
type PackageSnapshot struct {
	ID       string            `json:"id"`
	Releases map[string]string `json:"releases"` // InRelease URL -> sha256:<hex>
}

// WriteManifest writes artifact.json into dir atomically, with output paths
// relative to dir so the directory can move. It fills m's schema version and
// Files (hashing the files m names, which must exist, and those it implies
// that do), so the caller holds what was written.
func WriteManifest(dir string, m *Manifest) error {
	m.SchemaVersion = ManifestSchemaVersion
	m.Files = nil
	named, implied := describedFiles(m)
	for i, name := range append(named, implied...) {
		sum, n, err := FileSHA256(filepath.Join(dir, name))
		if errors.Is(err, os.ErrNotExist) && i >= len(named) {
			continue
		}
		if err != nil {
			return fmt.Errorf("hashing %s for %s: %w", name, ManifestName, err)
		}
		m.Files = append(m.Files, File{Name: name, Size: n, SHA256: sum})
	}
	for i, e := range m.Evidence {
		if f, ok := m.recorded(e.Report); ok && e.Report != "" {
			m.Evidence[i].ReportSHA256 = f.SHA256
		}
	}
	rel := *m
	rel.Outputs = make([]Output, len(m.Outputs))
	for i, o := range m.Outputs {
		o.Path = filepath.Base(o.Path)
		rel.Outputs[i] = o
	}
	b, err := json.MarshalIndent(rel, "", "  ")
	if err != nil {
		return err
	}
	return WriteFileAtomic(filepath.Join(dir, ManifestName), append(b, '\n'), 0o644)
}

// ReadManifest reads dir's artifact.json, with output paths made absolute.
// A path that would lead out of dir is refused.
func ReadManifest(dir string) (*Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		return nil, fmt.Errorf("%s is not a strata output directory: %w", dir, err)
	}
	return ParseManifest(dir, b)
}

// ParseManifest parses an artifact.json of the output directory dir (read
// from the file, or handed over by a builder), with output paths made
// absolute. A path that would lead out of dir is refused.
func ParseManifest(dir string, b []byte) (*Manifest, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	name := filepath.Join(dir, ManifestName)
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if m.SchemaVersion > ManifestSchemaVersion {
		return nil, fmt.Errorf("%s: schema_version %d is newer than this strata understands (%d); upgrade strata", name, m.SchemaVersion, ManifestSchemaVersion)
	}
	for i, o := range m.Outputs {
		if !plainName(filepath.Base(o.Path)) || (o.Path != filepath.Base(o.Path) && filepath.Dir(o.Path) != abs) {
			return nil, fmt.Errorf("%s: output path %q is not a file name inside the directory", name, o.Path)
		}
		m.Outputs[i].Path = filepath.Join(abs, filepath.Base(o.Path))
	}
	if m.SBOM != "" && !plainName(m.SBOM) {
		return nil, fmt.Errorf("%s: sbom %q is not a file name inside the directory", name, m.SBOM)
	}
	if m.Packages != "" && !plainName(m.Packages) {
		return nil, fmt.Errorf("%s: packages %q is not a file name inside the directory", name, m.Packages)
	}
	for _, f := range m.Files {
		if !plainName(f.Name) {
			return nil, fmt.Errorf("%s: file %q is not a file name inside the directory", name, f.Name)
		}
	}
	for _, e := range m.Evidence {
		for _, n := range append([]string{e.Report, e.Statement}, e.ExtraFiles...) {
			if n != "" && !plainName(n) {
				return nil, fmt.Errorf("%s: evidence %s: %q is not a file name inside the directory", name, e.Kind, n)
			}
		}
		if e.Report != "" {
			if f, ok := m.recorded(e.Report); ok && e.ReportSHA256 != "" && f.SHA256 != e.ReportSHA256 {
				return nil, fmt.Errorf("%s: evidence %s: report %s has sha256 %s, but files records %s", name, e.Kind, e.Report, e.ReportSHA256, f.SHA256)
			}
		}
	}
	return &m, nil
}

// plainName is a single path component that is not . or ..
func plainName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/\x00")
}

// VerifyOutputs checks every output of m against its recorded size and
// sha256 (a dir output against its tree digest), and every other file m
// records (Files), as they are on disk now. A file m names (the package
// manifest, the SBOM) without a recorded sha256 is refused: what it says
// could not be trusted.
func VerifyOutputs(ctx context.Context, dir string, m *Manifest) error {
	named, _ := describedFiles(m)
	for _, name := range named {
		if _, ok := m.recorded(name); !ok {
			return fmt.Errorf("%s names %s but records no sha256 for it (schema_version %d): it cannot be checked; export the image again (strata export) or rebuild it", ManifestName, name, m.SchemaVersion)
		}
	}
	for _, f := range m.Files {
		if _, err := ReadRecorded(dir, m, f.Name); err != nil {
			return err
		}
	}
	for _, o := range m.Outputs {
		if o.Format == "oci" {
			if err := VerifyOCI(o.Path, o.SHA256); err != nil {
				return err
			}
			continue
		}
		if o.Format == "dir" {
			got, err := VerifyTree(ctx, dir)
			if err != nil {
				return err
			}
			if got != "sha256:"+o.SHA256 {
				return fmt.Errorf("%s: the tree digest %s differs from the one artifact.json records (sha256:%s)", o.Path, got, o.SHA256)
			}
			continue
		}
		fi, err := os.Lstat(o.Path)
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("%s is not a regular file", o.Path)
		}
		if fi.Size() != o.Size {
			return fmt.Errorf("%s is %d bytes, but artifact.json records %d: it changed since the build", o.Path, fi.Size(), o.Size)
		}
		sum, _, err := FileSHA256(o.Path)
		if err != nil {
			return err
		}
		if sum != o.SHA256 {
			return fmt.Errorf("%s has sha256 %s, but artifact.json records %s: it changed since the build", o.Path, sum, o.SHA256)
		}
	}
	return nil
}

// recorded is the Files entry of the file name.
func (m *Manifest) recorded(name string) (File, bool) {
	for _, f := range m.Files {
		if f.Name == name {
			return f, true
		}
	}
	return File{}, false
}

// ReadRecorded reads the file name of the output directory dir and checks
// it against the size and sha256 m records for it: what a reader parses is
// exactly what was checked.
func ReadRecorded(dir string, m *Manifest, name string) ([]byte, error) {
	f, ok := m.recorded(name)
	if !ok {
		return nil, fmt.Errorf("%s records no sha256 for %s", ManifestName, name)
	}
	p := filepath.Join(dir, name)
	fi, err := os.Lstat(p)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", p)
	}
	if fi.Size() != f.Size {
		return nil, fmt.Errorf("%s is %d bytes, but %s records %d: it changed since the build", p, fi.Size(), ManifestName, f.Size)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b)
	if got := hex.EncodeToString(sum[:]); got != f.SHA256 {
		return nil, fmt.Errorf("%s has sha256 %s, but %s records %s: it changed since the build", p, got, ManifestName, f.SHA256)
	}
	return b, nil
}
