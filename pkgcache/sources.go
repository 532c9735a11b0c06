package pkgcache

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/strata-build/packer-plugin-strata/internal/inroot"
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
	return readSources(hostFiles(root))
}

// ImageSources are the URIs of the apt sources an image names now, read
// inside its root (a link or a file that is not regular is skipped, and a
// file is read up to 1 MiB): the archives apt in the chroot may ask the
// package cache for.
func ImageSources(root *inroot.Root) []string {
	srcs, _ := readSources(imageFiles{root})
	out := make([]string, 0, len(srcs))
	for _, s := range srcs {
		out = append(out, s.URI)
	}
	return out
}

// sourceFiles reads apt's source files: the host's, or an image's.
type sourceFiles interface {
	ReadFile(name string) ([]byte, error)
	ReadDir(name string) ([]os.DirEntry, error)
}

type hostFiles string

func (h hostFiles) ReadFile(name string) ([]byte, error) {
	return os.ReadFile(filepath.Join(string(h), name))
}

func (h hostFiles) ReadDir(name string) ([]os.DirEntry, error) {
	return os.ReadDir(filepath.Join(string(h), name))
}

type imageFiles struct{ root *inroot.Root }

func (i imageFiles) ReadFile(name string) ([]byte, error) {
	f, err := i.root.OpenNoFollow(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 1<<20))
}

func (i imageFiles) ReadDir(name string) ([]os.DirEntry, error) { return i.root.ReadDir(name) }

func readSources(fsys sourceFiles) ([]Source, error) {
	var out []Source
	if data, err := fsys.ReadFile("etc/apt/sources.list"); err == nil {
		out = append(out, readOneLine(data, "etc/apt/sources.list")...)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	entries, err := fsys.ReadDir("etc/apt/sources.list.d")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	for _, n := range names {
		p := "etc/apt/sources.list.d/" + n
		if !strings.HasSuffix(n, ".list") && !strings.HasSuffix(n, ".sources") {
			continue
		}
		data, err := fsys.ReadFile(p)
		if err != nil {
			return nil, err
		}
		if strings.HasSuffix(n, ".list") {
			out = append(out, readOneLine(data, p)...)
		} else {
			out = append(out, readDeb822(data, p)...)
		}
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

func readOneLine(data []byte, path string) []Source {
	var out []Source
	sc := bufio.NewScanner(bytes.NewReader(data))
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
	return out
}

func readDeb822(data []byte, path string) []Source {
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
	return out
}

// ImageSourceEntries are the apt source entries an image names now, read
// inside its root as ImageSources reads them.
func ImageSourceEntries(root *inroot.Root) []Source {
	srcs, _ := readSources(imageFiles{root})
	return srcs
}
