// Package mount mounts and unmounts the file systems a chroot build needs,
// finds mounts left under a directory, and stops processes rooted in a chroot.
package mount

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Info is one line of the kernel's mount table.
type Info struct {
	ID         int
	ParentID   int
	MountPoint string
	FSType     string
	Source     string
	Options    string
}

// mountInfoPath is a variable so tests can feed a recorded table.
var mountInfoPath = "/proc/self/mountinfo"

// Table reads the current mount table.
func Table() ([]Info, error) {
	f, err := os.Open(mountInfoPath)
	if err != nil {
		return nil, fmt.Errorf("reading mount table: %w", err)
	}
	defer f.Close()
	return parseMountInfo(bufio.NewScanner(f))
}

func parseMountInfo(sc *bufio.Scanner) ([]Info, error) {
	var out []Info
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		// Format (proc(5)): ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			return nil, fmt.Errorf("malformed mountinfo line %q", line)
		}
		f := strings.Fields(pre)
		g := strings.Fields(post)
		if len(f) < 6 || len(g) < 2 {
			return nil, fmt.Errorf("malformed mountinfo line %q", line)
		}
		var in Info
		fmt.Sscan(f[0], &in.ID)
		fmt.Sscan(f[1], &in.ParentID)
		in.MountPoint = unescapeOctal(f[4])
		in.Options = f[5]
		in.FSType = g[0]
		in.Source = unescapeOctal(g[1])
		out = append(out, in)
	}
	return out, sc.Err()
}

// unescapeOctal undoes the kernel's \040-style escaping of spaces, tabs,
// newlines and backslashes in mount table fields.
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			var v int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &v); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Under returns the mounts at or below dir, deepest (and latest) first, which
// is the order they must be unmounted in.
func Under(dir string) ([]Info, error) {
	dir, err := canonical(dir)
	if err != nil {
		return nil, err
	}
	all, err := Table()
	if err != nil {
		return nil, err
	}
	return under(all, dir), nil
}

func under(all []Info, dir string) []Info {
	var out []Info
	for _, m := range all {
		if isWithin(dir, m.MountPoint) {
			out = append(out, m)
		}
	}
	// Later mounts stack on earlier ones; deeper paths sit on shallower ones.
	// Reverse table order, then stable-sort by depth, gives a safe unmount order.
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	sort.SliceStable(out, func(i, j int) bool {
		return strings.Count(out[i].MountPoint, "/") > strings.Count(out[j].MountPoint, "/")
	})
	return out
}

// isWithin reports whether p is dir or below it, on path-component boundaries.
func isWithin(dir, p string) bool {
	if p == dir {
		return true
	}
	if dir == "/" {
		return true
	}
	return strings.HasPrefix(p, dir+"/")
}

// canonical makes dir absolute and resolves symlinks on the host side, so it
// compares equal to the kernel's view of mount points. A missing dir is fine.
func canonical(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		return r, nil
	}
	return abs, nil
}
