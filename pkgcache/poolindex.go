package pkgcache

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// poolIndex returns the pool files a Packages index blob lists. It reads
// the index once per host (decompressing .xz with the host's xz, which is
// several times faster than Go's) and keeps what it found beside the
// blobs as pool-index/<hex>: every later build loads that in a blink
// instead of parsing tens of megabytes again.
func (s *Store) poolIndex(hex, name string) (map[string]expected, error) {
	p := filepath.Join(s.dir, "pool-index", hex)
	if files, err := readPoolIndex(p); err == nil {
		return files, nil
	}
	if err := CheckDigest(hex); err != nil {
		return nil, err
	}
	unlock, err := s.Lock(urlKey("pool-index " + hex))
	if err != nil {
		return nil, err
	}
	defer unlock()
	if files, err := readPoolIndex(p); err == nil {
		return files, nil
	}
	files, err := s.parsePackages(hex, name)
	if err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(filepath.Join(s.dir, "tmp"), "pool-index-*")
	if err != nil {
		return nil, err
	}
	w := bufio.NewWriter(tmp)
	for f, e := range files {
		fmt.Fprintf(w, "%s\t%d\t%s\n", e.SHA256, e.Size, f)
	}
	if err := w.Flush(); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, err
	}
	tmp.Close()
	return files, os.Rename(tmp.Name(), p)
}

func (s *Store) parsePackages(hex, name string) (map[string]expected, error) {
	p, err := s.BlobPath(hex)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if path.Ext(name) == ".xz" {
		if xzPath, err := exec.LookPath("xz"); err == nil {
			cmd := exec.Command(xzPath, "-dc")
			cmd.Stdin = f
			out, err := cmd.StdoutPipe()
			if err != nil {
				return nil, err
			}
			if err := cmd.Start(); err != nil {
				return nil, err
			}
			files, perr := packagesFiles(out)
			io.Copy(io.Discard, out)
			if err := cmd.Wait(); err != nil && perr == nil {
				perr = fmt.Errorf("xz -dc: %w", err)
			}
			return files, perr
		}
	}
	r, err := decompressor(name, f)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, fmt.Errorf("%s: a compression the cache does not read", name)
	}
	return packagesFiles(r)
}

func readPoolIndex(p string) (map[string]expected, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]expected{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), "\t", 3)
		if len(parts) != 3 {
			return nil, fmt.Errorf("%s: a malformed line", p)
		}
		size, err := strconv.ParseInt(parts[1], 10, 64)
		if err != nil {
			return nil, err
		}
		if CheckDigest(parts[0]) != nil || size < 0 || !cleanRelative(parts[2]) {
			return nil, fmt.Errorf("%s: a malformed line", p)
		}
		out[parts[2]] = expected{SHA256: parts[0], Size: size}
	}
	return out, sc.Err()
}
