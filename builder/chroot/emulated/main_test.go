package emulated

import (
	"testing"

	"github.com/strata-build/packer-plugin-strata/internal/acctest"
)

func TestMain(m *testing.M) { acctest.Main(m) }
