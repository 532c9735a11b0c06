package export

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

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

// ext4Spec is an ext4 file system mkExt4 makes of the tree.
type ext4Spec struct {
	label string
	free  int64
	// size, when not zero, is the file system's exact size: no retry.
	size       int64
	inodeRatio int64
	// For a reproducible file system: its UUID, directory hash seed and
	// the time mke2fs writes (zero: mke2fs's own, random and now).
	uuid, hashSeed string
	when           time.Time
}

// mkExt4 makes the ext4 file system of the tree at root in the file tmp
// (mke2fs -d: nothing is mounted) and returns its size. It grows the
// image and tries again when the estimate was short.
func (e *exporter) mkExt4(tmp string, s ext4Spec) (int64, error) {
	bytes, inodes := ext4Geometry(e.tree, s.free, s.inodeRatio)
	tries := 3
	if s.size > 0 {
		need, _ := ext4Geometry(e.tree, 0, s.inodeRatio)
		_, inodes = ext4Geometry(e.tree, max(s.size-need, 0), s.inodeRatio)
		bytes, tries = s.size, 1
	}
	ext := "root_owner=0:0"
	var env []string
	if s.hashSeed != "" {
		ext += ",hash_seed=" + s.hashSeed
	}
	if !s.when.IsZero() {
		// mke2fs stamps the superblock, the journal and each inode it
		// makes with this time.
		env = append(env, fmt.Sprintf("E2FSPROGS_FAKE_TIME=%d", s.when.Unix()))
	}
	var err error
	for attempt := 0; attempt < tries; attempt++ {
		os.Remove(tmp)
		if s.size == 0 {
			bytes = alignUp(bytes, 1<<20)
		}
		args := []string{"-q", "-F", "-t", "ext4", "-b", "4096", "-N", fmt.Sprint(inodes), "-L", s.label, "-E", ext}
		if s.uuid != "" {
			args = append(args, "-U", s.uuid)
		}
		args = append(args, "-d", e.root, tmp, fmt.Sprintf("%dk", bytes/1024))
		err = e.runEnv(env, "mke2fs", args...)
		if err == nil {
			return bytes, nil
		}
		// LC_ALL=C (hostexec) keeps these messages in English.
		if !strings.Contains(err.Error(), "No space") && !strings.Contains(err.Error(), "Could not allocate") {
			break
		}
		bytes += bytes / 2
	}
	os.Remove(tmp)
	return 0, err
}

func (e *exporter) ext4() (Output, error) {
	final := filepath.Join(e.outDir, FileName("ext4"))
	tmp := tmpName(e.outDir, "ext4")
	defer e.temp(tmp)()
	if _, err := e.mkExt4(tmp, ext4Spec{label: "rootfs", free: e.opt.Ext4FreeSpace, inodeRatio: e.opt.Ext4InodeRatio}); err != nil {
		return Output{}, err
	}
	return finishFile(tmp, final, "ext4")
}
