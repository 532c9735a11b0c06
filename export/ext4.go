package export

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/strata-build/packer-plugin-strata/internal/treesize"
)

// ext4Geometry sizes an ext4 image for a tree: blocks for what the tree
// takes on disk (holes count for nothing; mke2fs -d keeps them), inodes for
// its entries plus one per inodeRatio bytes of the free space asked for, and
// a margin for metadata and the journal.
func ext4Geometry(tree treesize.Stats, free, inodeRatio int64) (bytes, inodes int64) {
	if inodeRatio <= 0 {
		inodeRatio = 16384
	}
	inodes = tree.Entries + tree.Entries/20 + free/inodeRatio + 256
	bytes = tree.Allocated + tree.Entries*4096/4 + inodes*256
	bytes += bytes/10 + 32<<20 + free
	return bytes, inodes
}

func (e *exporter) ext4() (Output, error) {
	final := filepath.Join(e.outDir, FileName("ext4"))
	tmp := tmpName(e.outDir, "ext4")
	defer e.temp(tmp)()
	bytes, inodes := ext4Geometry(e.tree, e.opt.Ext4FreeSpace, e.opt.Ext4InodeRatio)
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		os.Remove(tmp)
		err = e.run("mke2fs", "-q", "-F", "-t", "ext4", "-b", "4096", "-N", fmt.Sprint(inodes),
			"-L", "rootfs", "-E", "root_owner=0:0", "-d", e.root, tmp, fmt.Sprintf("%dk", bytes/1024))
		if err == nil {
			return finishFile(tmp, final, "ext4")
		}
		// LC_ALL=C (hostexec) keeps these messages in English.
		if !strings.Contains(err.Error(), "No space") && !strings.Contains(err.Error(), "Could not allocate") {
			break
		}
		bytes += bytes / 2
	}
	os.Remove(tmp)
	return Output{}, err
}
