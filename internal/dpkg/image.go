package dpkg

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	"github.com/strata-build/packer-plugin-strata/internal/inroot"
)

// StatusPath is the dpkg database inside an image.
const StatusPath = "/var/lib/dpkg/status"

// MaxStatusSize bounds the dpkg database read from an image: a system with
// every package of Debian installed records about 60 MB.
const MaxStatusSize = 256 << 20

// ReadImage reads the installed packages from the image's own dpkg
// database, as inroot.ReadRegular reads a file from an image: a FIFO,
// device, socket, link or oversized file there is an error, never a stalled
// or misled read. An image without a dpkg database has no packages (nil,
// nil).
func ReadImage(root *inroot.Root) ([]Package, error) {
	b, err := root.ReadRegular(StatusPath, MaxStatusSize)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the image's dpkg database: %w", err)
	}
	pkgs, err := ReadStatus(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("reading the image's dpkg database: %w", err)
	}
	return pkgs, nil
}
