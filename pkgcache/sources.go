package pkgcache

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// Source is one apt source entry of the build host.
type Source struct {
	URI        string
	Suites     []string
	Components []string
	File       string
}

// HostSources reads the apt sources under root (normally "/"): the one-line
// format of sources.list and sources.list.d/*.list, and the deb822 format of
// sources.list.d/*.sources. Only binary ("deb") entries that are enabled count.
func HostSources(root string) ([]Source, error) {
	dir := filepath.Join(root, "etc/apt")
	var out []Source
	if s, err := readOneLine(filepath.Join(dir, "sources.list")); err == nil {
		out = append(out, s...)
	} else if !os.IsNotExist(err) {
		return nil, err
	}
	entries, err := os.ReadDir(filepath.Join(dir, "sources.list.d"))
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	for _, n := range names {
		p := filepath.Join(dir, "sources.list.d", n)
		var s []Source
		switch {
		case strings.HasSuffix(n, ".list"):
			s, err = readOneLine(p)
		case strings.HasSuffix(n, ".sources"):
			s, err = readDeb822(p)
		default:
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, s...)
	}
	return out, nil
}

// HostMirror picks the build host's Debian mirror: the first enabled binary
// source that carries the main component of a regular suite (not -security,
// -updates or -backports). It returns "" when the host has none.
func HostMirror(root string) (string, error) {
	srcs, err := HostSources(root)
	if err != nil {
		return "", err
	}
	for _, s := range srcs {
		if !slices.Contains(s.Components, "main") {
			continue
		}
		for _, suite := range s.Suites {
			if strings.Contains(suite, "-") || strings.Contains(suite, "/") {
				continue
			}
			return strings.TrimRight(s.URI, "/"), nil
		}
	}
	return "", nil
}

func readOneLine(path string) ([]Source, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Source
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		fields := strings.Fields(line)
		if len(fields) < 3 || fields[0] != "deb" {
			continue
		}
		fields = fields[1:]
		// Options: "[arch=amd64 signed-by=...]", possibly split over fields.
		if strings.HasPrefix(fields[0], "[") {
			for len(fields) > 0 && !strings.HasSuffix(fields[0], "]") {
				fields = fields[1:]
			}
			if len(fields) == 0 {
				continue
			}
			fields = fields[1:]
		}
		if len(fields) < 2 {
			continue
		}
		out = append(out, Source{URI: fields[0], Suites: []string{fields[1]}, Components: fields[2:], File: path})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return out, nil
}

func readDeb822(path string) ([]Source, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []Source
	for _, stanza := range strings.Split(string(data), "\n\n") {
		fields := map[string]string{}
		var key string
		for _, line := range strings.Split(stanza, "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "#") || strings.TrimSpace(line) == "" {
				continue
			}
			if line[0] == ' ' || line[0] == '\t' {
				if key != "" {
					fields[key] += " " + strings.TrimSpace(line)
				}
				continue
			}
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			key = strings.ToLower(strings.TrimSpace(k))
			fields[key] = strings.TrimSpace(v)
		}
		if !slices.Contains(strings.Fields(fields["types"]), "deb") {
			continue
		}
		if e := strings.ToLower(fields["enabled"]); e == "no" || e == "false" {
			continue
		}
		for _, uri := range strings.Fields(fields["uris"]) {
			out = append(out, Source{
				URI:        uri,
				Suites:     strings.Fields(fields["suites"]),
				Components: strings.Fields(fields["components"]),
				File:       path,
			})
		}
	}
	return out, nil
}
