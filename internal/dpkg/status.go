// Package dpkg reads an image's dpkg database (/var/lib/dpkg/status): the
// packages installed in it, from the image itself rather than through the
// build host's dpkg-query.
package dpkg

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// Package is one installed package.
type Package struct {
	Name          string
	Version       string
	Architecture  string
	Source        string // the source package; Name when dpkg records none
	SourceVersion string // the source package's version; Version when none
	InstalledSize int64  // bytes (dpkg records KiB)
	Essential     bool
	// Protected: the package says Protected or Important (apt refuses to
	// remove it without force, as an Essential one).
	Protected bool
	Priority  string
}

// ReadStatus parses a dpkg status file and returns the packages whose
// status (the Status field's last word) is "installed", whatever is
// wanted of them (install, hold, deinstall), sorted by name and
// architecture: what dpkg-query -W reports as installed.
func ReadStatus(r io.Reader) ([]Package, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	var out []Package
	fields := map[string]string{}
	var key string
	flush := func() error {
		defer func() { fields = map[string]string{}; key = "" }()
		if st := strings.Fields(fields["Status"]); len(st) != 3 || st[2] != "installed" {
			return nil
		}
		p := Package{
			Name:         fields["Package"],
			Version:      fields["Version"],
			Architecture: fields["Architecture"],
			Essential:    fields["Essential"] == "yes",
			Protected:    fields["Protected"] == "yes" || fields["Important"] == "yes",
			Priority:     fields["Priority"],
		}
		if p.Name == "" || p.Version == "" {
			return fmt.Errorf("a package stanza without Package or Version")
		}
		p.Source, p.SourceVersion = p.Name, p.Version
		if src := fields["Source"]; src != "" {
			name, ver, ok := strings.Cut(src, " ")
			p.Source = name
			if ok {
				p.SourceVersion = strings.Trim(ver, "()")
			}
		}
		if kb, err := strconv.ParseInt(fields["Installed-Size"], 10, 64); err == nil {
			p.InstalledSize = kb * 1024
		}
		out = append(out, p)
		return nil
	}
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if err := flush(); err != nil {
				return nil, err
			}
		case line[0] == ' ' || line[0] == '\t':
			if key != "" {
				fields[key] += "\n" + line
			}
		default:
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				return nil, fmt.Errorf("malformed dpkg status line %q", line)
			}
			key = k
			fields[k] = strings.TrimSpace(v)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if err := flush(); err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Architecture < out[j].Architecture
	})
	return out, nil
}

// TSV is the packages.tsv form: one line a package, "name, version,
// architecture, source package, source version, installed size (bytes)",
// tab separated.
func TSV(pkgs []Package) []byte {
	var b strings.Builder
	for _, p := range pkgs {
		// The image wrote these fields: a tab in one must not make a column.
		f := func(s string) string { return strings.ReplaceAll(s, "\t", " ") }
		fmt.Fprintf(&b, "%s\t%s\t%s\t%s\t%s\t%d\n", f(p.Name), f(p.Version), f(p.Architecture), f(p.Source), f(p.SourceVersion), p.InstalledSize)
	}
	return []byte(b.String())
}
