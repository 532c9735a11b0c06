package export

import (
	"fmt"
	"io/fs"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// TreeStats measures a tree.
type TreeStats struct {
	// Apparent is the sum of the regular files' sizes; Allocated what the
	// tree takes on disk (blocks allocated: holes in sparse files count for
	// nothing), the figure file systems are sized by.
	Apparent, Allocated int64
	Entries             int64
}

// MeasureTree measures the tree at root without following links.
func MeasureTree(root string) (TreeStats, error) {
	var t TreeStats
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		t.Entries++
		if st.Mode&unix.S_IFMT == unix.S_IFREG {
			t.Apparent += st.Size
		}
		t.Allocated += st.Blocks * 512
		return nil
	})
	return t, err
}

// HumanBytes formats n in binary units.
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
