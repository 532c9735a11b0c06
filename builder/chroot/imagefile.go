package chroot

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"
)

// savedPath remembers one path inside an image exactly as it was (missing, a
// regular file with its content, mode, owner and time, or a symlink with its
// target) so a step can replace it for the build and put it back afterwards.
// Its directory is resolved inside the image root; its last component is
// never followed, so a symlink that points out to the host is replaced, not
// written through.
type savedPath struct {
	InImage string
	path    string // host path: securely resolved parent + base name
	existed bool
	link    string // symlink target, when it was a symlink
	isLink  bool
	data    []byte
	mode    os.FileMode
	uid     int
	gid     int
	mtime   time.Time
}

func savePath(root, inImage string) (*savedPath, error) {
	dir, err := securejoin.SecureJoin(root, filepath.Dir(inImage))
	if err != nil {
		return nil, fmt.Errorf("resolving %s in the image: %w", filepath.Dir(inImage), err)
	}
	fi, err := os.Stat(dir)
	if err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("%s: the image has no directory %s", inImage, filepath.Dir(inImage))
	}
	s := &savedPath{InImage: inImage, path: filepath.Join(dir, filepath.Base(inImage))}
	var st unix.Stat_t
	if err := unix.Lstat(s.path, &st); err != nil {
		if os.IsNotExist(err) {
			return s, nil
		}
		return nil, err
	}
	s.existed = true
	s.uid, s.gid = int(st.Uid), int(st.Gid)
	s.mode = os.FileMode(st.Mode & 0o7777)
	s.mtime = time.Unix(st.Mtim.Sec, st.Mtim.Nsec)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFLNK:
		s.isLink = true
		if s.link, err = os.Readlink(s.path); err != nil {
			return nil, err
		}
	case unix.S_IFREG:
		f, err := os.OpenFile(s.path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if s.data, err = io.ReadAll(f); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%s in the image is neither a file nor a symlink, so the build cannot put it back as it was", inImage)
	}
	return s, nil
}

// replace puts a regular file with data and mode where the path was.
func (s *savedPath) replace(data []byte, mode os.FileMode) error {
	if err := os.RemoveAll(s.path); err != nil {
		return err
	}
	return writeNoFollow(s.path, data, mode)
}

func writeNoFollow(p string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY|syscall.O_NOFOLLOW, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// restore puts the path back exactly as it was saved, whatever is there now.
func (s *savedPath) restore() error {
	if err := os.RemoveAll(s.path); err != nil {
		return fmt.Errorf("restoring %s: %w", s.InImage, err)
	}
	if !s.existed {
		return nil
	}
	if s.isLink {
		if err := os.Symlink(s.link, s.path); err != nil {
			return fmt.Errorf("restoring %s: %w", s.InImage, err)
		}
		if err := os.Lchown(s.path, s.uid, s.gid); err != nil {
			return err
		}
		ts := []unix.Timespec{unix.NsecToTimespec(s.mtime.UnixNano()), unix.NsecToTimespec(s.mtime.UnixNano())}
		return unix.UtimesNanoAt(unix.AT_FDCWD, s.path, ts, unix.AT_SYMLINK_NOFOLLOW)
	}
	if err := writeNoFollow(s.path, s.data, s.mode.Perm()); err != nil {
		return fmt.Errorf("restoring %s: %w", s.InImage, err)
	}
	if err := os.Lchown(s.path, s.uid, s.gid); err != nil {
		return err
	}
	// chown clears setuid bits; set the full mode again after it.
	if err := os.Chmod(s.path, fileModeWithSpecial(s.mode)); err != nil {
		return err
	}
	return os.Chtimes(s.path, s.mtime, s.mtime)
}

func fileModeWithSpecial(m os.FileMode) os.FileMode {
	out := m.Perm()
	if m&0o4000 != 0 {
		out |= os.ModeSetuid
	}
	if m&0o2000 != 0 {
		out |= os.ModeSetgid
	}
	if m&0o1000 != 0 {
		out |= os.ModeSticky
	}
	return out
}
