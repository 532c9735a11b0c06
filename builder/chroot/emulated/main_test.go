package emulated

import (
	"os"
	"testing"

	"github.com/strata-build/packer-plugin-strata/internal/acctest"
)

// TestMain removes the plugin directory and the shared disk base's
// directory at the end (the latter only when nothing is mounted below it).
func TestMain(m *testing.M) {
	code := m.Run()
	acctest.Cleanup()
	cleanupDiskBase()
	os.Exit(code)
}
