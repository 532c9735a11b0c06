package export

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// ManifestName is the file in an output directory that describes it.
const ManifestName = "artifact.json"

// PackagesName is the package manifest beside the outputs: one
// "name<TAB>version<TAB>architecture" line per installed package.
const PackagesName = "packages.tsv"

// Manifest describes an output directory: what a catalog registers.
type Manifest struct {
	RootfsDigest string   `json:"rootfs_digest"`
	BuildName    string   `json:"build_name,omitempty"`
	Source       string   `json:"source,omitempty"`
	Outputs      []Output `json:"outputs"` // paths relative to the directory
}

// WriteManifest writes artifact.json into dir atomically, with output paths
// relative to dir so the directory can move.
func WriteManifest(dir string, m Manifest) error {
	rel := m
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
func ReadManifest(dir string) (*Manifest, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(abs, ManifestName))
	if err != nil {
		return nil, fmt.Errorf("%s is not a strata output directory: %w", dir, err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, ManifestName), err)
	}
	for i := range m.Outputs {
		m.Outputs[i].Path = filepath.Join(abs, m.Outputs[i].Path)
	}
	return &m, nil
}

// ReadPackages reads a packages.tsv.
func ReadPackages(path string) ([][3]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out [][3]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.Split(sc.Text(), "\t")
		if len(parts) < 2 {
			continue
		}
		var p [3]string
		copy(p[:], parts)
		out = append(out, p)
	}
	return out, sc.Err()
}

// FileSHA256 hashes a file.
func FileSHA256(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
