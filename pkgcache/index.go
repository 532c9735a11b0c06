package pkgcache

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"io"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/ulikunitz/xz"
)

// expected is what the signed index chain says a file must be.
type expected struct {
	SHA256 string
	Size   int64 // -1: unknown
	// Index is the path the entry names in its Release (for by-hash
	// files: the index they stand for).
	Index string
}

// releaseFiles reads the SHA256 section of a Release or InRelease file:
// index path (relative to the suite's dists directory) to what it must be.
func releaseFiles(data []byte) map[string]expected {
	out := map[string]expected{}
	sc := bufio.NewScanner(bytes.NewReader(releaseBody(data)))
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	in := false
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, " ") {
			in = strings.TrimSpace(strings.TrimSuffix(line, ":")) == "SHA256"
			continue
		}
		if !in {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 || CheckDigest(f[0]) != nil || !cleanRelative(f[2]) {
			continue
		}
		size, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil || size < 0 {
			continue
		}
		out[f[2]] = expected{SHA256: f[0], Size: size, Index: f[2]}
	}
	return out
}

// releaseBody is the signed text of an InRelease (the clearsigned message
// without its armor), or a Release as it is.
func releaseBody(data []byte) []byte {
	const begin = "-----BEGIN PGP SIGNED MESSAGE-----"
	if !bytes.HasPrefix(bytes.TrimSpace(data), []byte(begin)) {
		return data
	}
	rest := data[bytes.Index(data, []byte(begin))+len(begin):]
	// Armor headers end at the first empty line.
	if i := bytes.Index(rest, []byte("\n\n")); i >= 0 {
		rest = rest[i+2:]
	}
	if i := bytes.Index(rest, []byte("\n-----BEGIN PGP SIGNATURE-----")); i >= 0 {
		rest = rest[:i+1]
	}
	// Dash-escaped lines ("- -----...") lose their escape.
	return bytes.ReplaceAll(rest, []byte("\n- "), []byte("\n"))
}

// isPackagesIndex says whether an index path is a Packages file.
func isPackagesIndex(p string) bool {
	base := path.Base(p)
	return base == "Packages" || strings.HasPrefix(base, "Packages.")
}

// decompressor reads an index file by its name's extension.
func decompressor(name string, r io.Reader) (io.Reader, error) {
	switch path.Ext(name) {
	case ".xz":
		return xz.NewReader(r)
	case ".gz":
		return gzip.NewReader(r)
	case "":
		return r, nil
	}
	return nil, nil // .zst, .bz2, .lzma: not read; apt's own checks stand
}

// packagesFiles reads a Packages index: each package's Filename (relative
// to the archive root) to what it must be.
func packagesFiles(r io.Reader) (map[string]expected, error) {
	out := map[string]expected{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	var file, sum string
	size := int64(-1)
	flush := func() {
		if cleanRelative(file) && CheckDigest(sum) == nil && size >= 0 {
			out[file] = expected{SHA256: sum, Size: size}
		}
		file, sum, size = "", "", -1
	}
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			flush()
			continue
		}
		switch {
		case bytes.HasPrefix(line, []byte("Filename: ")):
			file = string(line[len("Filename: "):])
		case bytes.HasPrefix(line, []byte("SHA256: ")):
			sum = string(line[len("SHA256: "):])
		case bytes.HasPrefix(line, []byte("Size: ")):
			if n, err := strconv.ParseInt(string(line[len("Size: "):]), 10, 64); err == nil {
				size = n
			}
		}
	}
	flush()
	return out, sc.Err()
}

// cleanRelative says whether p is a plain relative path inside an archive
// or a suite (no "..", ".", empty or absolute parts), as a name an index
// gives may be.
func cleanRelative(p string) bool {
	if p == "" || strings.HasPrefix(p, "/") {
		return false
	}
	for _, part := range strings.Split(p, "/") {
		if part == "" || part == "." || part == ".." {
			return false
		}
	}
	return true
}

// releaseDate is the Date field of a Release or InRelease ("" or
// unreadable: the zero time).
func releaseDate(data []byte) time.Time {
	sc := bufio.NewScanner(bytes.NewReader(releaseBody(data)))
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), "Date:")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		for _, layout := range []string{time.RFC1123, time.RFC1123Z, "Mon, 2 Jan 2006 15:04:05 MST", "Mon, 2 Jan 2006 15:04:05 -0700"} {
			if t, err := time.Parse(layout, v); err == nil {
				return t.UTC()
			}
		}
		return time.Time{}
	}
	return time.Time{}
}
