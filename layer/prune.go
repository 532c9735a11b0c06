package layer

import (
	"bytes"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/strata-build/packer-plugin-strata/internal/treetar"
)

// PruneUnchanged removes from an overlayfs upper dir the entries that are
// identical to what the layers below (lowers, top first) already show:
// copies overlayfs made only because something was touched and put back
// (a directory whose times were restored, a file replaced by the same
// bytes). They would add nothing to the layer but bytes and noise, and would
// make the same change give different diffIDs. Whiteouts and opaque
// directories always stay. It returns how many entries it removed.
func PruneUnchanged(upper string, lowers []string) (int, error) {
	if len(lowers) == 0 {
		return 0, nil
	}
	p := pruner{upper: upper, lowers: lowers}
	_, err := p.dir(".")
	return p.removed, err
}

type pruner struct {
	upper   string
	lowers  []string
	removed int
}

// dir prunes the children of the directory rel and says whether it is empty
// afterwards.
func (p *pruner) dir(rel string) (bool, error) {
	ents, err := os.ReadDir(filepath.Join(p.upper, rel))
	if err != nil {
		return false, err
	}
	left := len(ents)
	for _, e := range ents {
		child := filepath.Join(rel, e.Name())
		gone, err := p.entry(child)
		if err != nil {
			return false, err
		}
		if gone {
			left--
		}
	}
	return left == 0, nil
}

// entry prunes one upper entry (depth first) and says whether it went.
func (p *pruner) entry(rel string) (bool, error) {
	up := filepath.Join(p.upper, rel)
	var st unix.Stat_t
	if err := unix.Lstat(up, &st); err != nil {
		return false, err
	}
	typ := st.Mode & unix.S_IFMT
	if typ == unix.S_IFCHR && st.Rdev == 0 {
		return false, nil // a whiteout
	}
	if typ == unix.S_IFDIR {
		empty, err := p.dir(rel)
		if err != nil || !empty {
			return false, err
		}
		if x, _ := treetar.ReadXattrs(up); x["trusted.overlay.opaque"] == "y" {
			return false, nil
		}
	}
	low, ok := p.lower(rel)
	if !ok {
		return false, nil
	}
	var ls unix.Stat_t
	if err := unix.Lstat(low, &ls); err != nil {
		return false, nil
	}
	if !sameMeta(st, ls) || !sameXattrs(up, low) {
		return false, nil
	}
	switch typ {
	case unix.S_IFREG:
		if st.Size != ls.Size || !sameContent(up, low) {
			return false, nil
		}
	case unix.S_IFLNK:
		a, _ := os.Readlink(up)
		b, _ := os.Readlink(low)
		if a != b {
			return false, nil
		}
	case unix.S_IFCHR, unix.S_IFBLK:
		if st.Rdev != ls.Rdev {
			return false, nil
		}
	}
	flag := 0
	if typ == unix.S_IFDIR {
		flag = unix.AT_REMOVEDIR
	}
	if err := unix.Unlinkat(unix.AT_FDCWD, up, flag); err != nil {
		return false, err
	}
	p.removed++
	return true, nil
}

// LowerEntry is where the lower layers (top first) show rel, if they do.
func LowerEntry(lowers []string, rel string) (string, bool) {
	return (&pruner{lowers: lowers}).lower(rel)
}

// lower finds what the lower layers show at rel: the topmost layer that
// has it, unless a whiteout, a non-directory or an opaque directory on the
// way hides it.
func (p *pruner) lower(rel string) (string, bool) {
	parts := strings.Split(rel, string(filepath.Separator))
	for _, l := range p.lowers {
		hidden, opaque := false, false
		cur := l
		for i, part := range parts {
			cur = filepath.Join(cur, part)
			var st unix.Stat_t
			if err := unix.Lstat(cur, &st); err != nil {
				hidden = true // not in this layer: look below
				break
			}
			if st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0 {
				return "", false // whited out here: nothing below shows
			}
			if i == len(parts)-1 {
				return cur, true
			}
			if st.Mode&unix.S_IFMT != unix.S_IFDIR {
				return "", false // a file where a directory would be
			}
			if x, _ := treetar.ReadXattrs(cur); x["trusted.overlay.opaque"] == "y" {
				opaque = true
			}
		}
		if opaque && hidden {
			return "", false // an opaque directory here hides the rest
		}
	}
	return "", false
}

func sameMeta(a, b unix.Stat_t) bool {
	return a.Mode == b.Mode && a.Uid == b.Uid && a.Gid == b.Gid && a.Mtim == b.Mtim
}

// sameXattrs compares the attributes an image carries (not overlayfs' own).
func sameXattrs(a, b string) bool {
	xa, _ := treetar.ReadXattrs(a)
	xb, _ := treetar.ReadXattrs(b)
	clean := func(m map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			if !strings.HasPrefix(k, "trusted.overlay.") {
				out[k] = v
			}
		}
		return out
	}
	return maps.Equal(clean(xa), clean(xb))
}

func sameContent(a, b string) bool {
	fa, err := os.Open(a)
	if err != nil {
		return false
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return false
	}
	defer fb.Close()
	ba, bb := make([]byte, 64<<10), make([]byte, 64<<10)
	for {
		na, ea := io.ReadFull(fa, ba)
		nb, eb := io.ReadFull(fb, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			return false
		}
		if ea != nil || eb != nil {
			return ea == eb || (ea == io.ErrUnexpectedEOF || ea == io.EOF) && (eb == io.ErrUnexpectedEOF || eb == io.EOF)
		}
	}
}
