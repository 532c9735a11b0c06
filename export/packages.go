package export

import (
	"bufio"
	"bytes"
	"os"
	"strings"
)

// PackagesName is the package manifest beside the outputs: one line per
// installed package, "name, version, architecture, source package, source
// version, installed size", tab separated. Readers take the columns they
// know.
const PackagesName = "packages.tsv"

// ReadPackages reads a packages.tsv.
func ReadPackages(path string) ([][3]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParsePackages(b)
}

// ParsePackages parses a packages.tsv's content.
func ParsePackages(b []byte) ([][3]string, error) {
	var out [][3]string
	sc := bufio.NewScanner(bytes.NewReader(b))
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
