// Package exporttest has what tests of the packages that read a build's
// output need from export.
package exporttest

import (
	"testing"

	"github.com/strata-build/packer-plugin-strata/export"
)

// ManifestOf is the artifact.json of an output dir.
func ManifestOf(t testing.TB, dir string) *export.Manifest {
	t.Helper()
	m, err := export.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
