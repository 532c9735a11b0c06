package chroot

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path"
	"time"

	"golang.org/x/sys/unix"

	"github.com/strata-build/packer-plugin-strata/internal/inroot"
)

// savedPath remembers one path inside an image exactly as it was (missing, a
// regular file with its content, mode, owner and time, or a symlink with its
// target), and its directory's times, so a step can put something of its own
// there for the build and put the original back afterwards, leaving the
// image bit for bit as it was. Every operation resolves the directory inside
// the image root at the moment it runs; the last component is replaced by
// rename, never written through.
type savedPath struct {
	root    *inroot.Root
	InImage string
	existed bool
	isLink  bool
	link    string
	data    []byte
	spec    inroot.FileSpec
	dir     *inroot.DirTimes
	// What the build put there: a provisioner that replaced it wins.
	putIno  uint64
	putData []byte
}

// maxSavedFileSize bounds a file savePath keeps to put back (resolv.conf,
// policy-rc.d): such files are a few lines.
const maxSavedFileSize = 1 << 20

func savePath(root *inroot.Root, inImage string) (*savedPath, error) {
	s := &savedPath{root: root, InImage: inImage}
	dirTimes, err := root.SaveDirTimes(path.Dir(inImage))
	if err != nil {
		return nil, fmt.Errorf("%s: the image has no directory %s (%v)", inImage, path.Dir(inImage), err)
	}
	s.dir = dirTimes
	st, err := root.Lstat(inImage)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return s, nil
		}
		return nil, err
	}
	s.existed = true
	s.spec = inroot.FileSpec{Mode: inroot.ModeOf(st), UID: int(st.Uid), GID: int(st.Gid), Mtime: time.Unix(st.Mtim.Sec, st.Mtim.Nsec)}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFLNK:
		s.isLink = true
		if s.link, err = root.Readlink(inImage); err != nil {
			return nil, err
		}
	case unix.S_IFREG:
		if s.data, err = root.ReadRegular(inImage, maxSavedFileSize); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%s in the image is neither a file nor a symlink, so the build cannot put it back as it was", inImage)
	}
	return s, nil
}

// replace puts a regular file with data and mode where the path was.
func (s *savedPath) replace(data []byte, mode os.FileMode) error {
	if err := s.root.WriteFile(s.InImage, bytes.NewReader(data), inroot.FileSpec{Mode: mode}); err != nil {
		return err
	}
	st, err := s.root.Lstat(s.InImage)
	if err != nil {
		return err
	}
	s.putIno, s.putData = st.Ino, data
	return nil
}

// ours says whether what is at the path now is what replace put there.
func (s *savedPath) ours() bool {
	st, err := s.root.Lstat(s.InImage)
	if err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || st.Ino != s.putIno {
		return false
	}
	now, err := s.root.ReadRegular(s.InImage, maxSavedFileSize)
	return err == nil && bytes.Equal(now, s.putData)
}

// restore puts the path back exactly as it was saved, its directory's times
// too. When something other than what replace put is there now, a
// provisioner made it: it stays, and restore says so (kept).
func (s *savedPath) restore() (kept bool, err error) {
	if s.putIno != 0 && !s.ours() {
		return true, nil
	}
	if err := s.putBack(); err != nil {
		return false, fmt.Errorf("restoring %s: %w", s.InImage, err)
	}
	return false, s.root.RestoreDirTimes(s.dir)
}

func (s *savedPath) putBack() error {
	if !s.existed {
		if err := s.root.Remove(s.InImage); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	}
	if s.isLink {
		return s.root.Symlink(s.link, s.InImage, s.spec)
	}
	return s.root.WriteFile(s.InImage, bytes.NewReader(s.data), s.spec)
}
