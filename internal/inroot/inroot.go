// Package inroot does file operations inside an image root that the builder
// does not trust. Every path is resolved at the moment it is used, by the
// kernel, with the image root as the only root (openat2 RESOLVE_IN_ROOT, no
// magic links, through filepath-securejoin's pathrs-lite): an image symlink
// such as /run -> /proc/self/root/etc can never lead an operation to the
// host. Operations then act on the resolved handle, never on a path string
// that the image could change in between.
package inroot

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

// Root is an image root directory, held open.
type Root struct {
	path string
	fd   *os.File // O_PATH directory handle
}

// Open holds the directory at hostPath open as an image root.
func Open(hostPath string) (*Root, error) {
	abs, err := filepath.Abs(hostPath)
	if err != nil {
		return nil, err
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	fd, err := os.OpenFile(abs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening image root: %w", err)
	}
	return &Root{path: abs, fd: fd}, nil
}

// Close releases the root.
func (r *Root) Close() error { return r.fd.Close() }

// Path is the root's host path.
func (r *Root) Path() string { return r.path }

// clean makes p an absolute, clean in-image path.
func clean(p string) string { return path.Clean("/" + p) }

// split is an in-image path's parent directory and last component.
func split(p string) (string, string, error) {
	p = clean(p)
	if p == "/" {
		return "", "", errors.New("the image root itself has no parent")
	}
	return path.Dir(p), path.Base(p), nil
}

// OpenPath resolves p in the image (following its symlinks inside the root,
// the last one too) to an O_PATH handle.
func (r *Root) OpenPath(p string) (*os.File, error) {
	p = clean(p)
	if p == "/" {
		return pathrs.Reopen(r.fd, unix.O_PATH|unix.O_DIRECTORY)
	}
	f, err := pathrs.OpenatInRoot(r.fd, p)
	if err != nil {
		return nil, fmt.Errorf("resolving %s in the image: %w", p, err)
	}
	return f, nil
}

// Parent resolves p's directory in the image and returns it with p's last
// component, which is not followed: operations on (dir, base) act on a link
// itself, never on what it names.
func (r *Root) Parent(p string) (*os.File, string, error) {
	dir, base, err := split(p)
	if err != nil {
		return nil, "", err
	}
	d, err := r.OpenPath(dir)
	if err != nil {
		return nil, "", err
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(d.Fd()), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
		d.Close()
		return nil, "", fmt.Errorf("%s in the image is not a directory", dir)
	}
	return d, base, nil
}

// HostPath is where a handle from this root lies on the host. It fails when
// the handle is not at or below the root.
func (r *Root) HostPath(f *os.File) (string, error) {
	p, err := os.Readlink(FdPath(f))
	if err != nil {
		return "", err
	}
	if p != r.path && !strings.HasPrefix(p, r.path+"/") {
		return "", fmt.Errorf("%s is outside the image root %s", p, r.path)
	}
	return p, nil
}

// HostPathAt is HostPath for a handle opened at p, refusing one that a
// symlink on the way moved elsewhere in the image: a mount the caller makes
// at p must land at p itself, not over whatever the image points p at.
func (r *Root) HostPathAt(f *os.File, p string) (string, error) {
	host, err := r.HostPath(f)
	if err != nil {
		return "", err
	}
	if in := r.InImage(host); in != clean(p) {
		return "", fmt.Errorf("%s in the image leads to %s (a symlink); refusing to mount there", clean(p), in)
	}
	return host, nil
}

// FdPath is the /proc/self/fd path of a handle: system calls given it act on
// the handle's file (mount targets, times), with no path to re-resolve.
func FdPath(f *os.File) string { return "/proc/self/fd/" + strconv.Itoa(int(f.Fd())) }

// InImage turns a host path below the root into its in-image path.
func (r *Root) InImage(host string) string {
	if host == r.path {
		return "/"
	}
	return strings.TrimPrefix(host, r.path)
}

// Lstat stats p without following its last component.
func (r *Root) Lstat(p string) (unix.Stat_t, error) {
	var st unix.Stat_t
	if clean(p) == "/" {
		return st, unix.Fstat(int(r.fd.Fd()), &st)
	}
	d, base, err := r.Parent(p)
	if err != nil {
		return st, err
	}
	defer d.Close()
	err = unix.Fstatat(int(d.Fd()), base, &st, unix.AT_SYMLINK_NOFOLLOW)
	return st, err
}

// Exists says whether p exists (as anything, a dangling link too).
func (r *Root) Exists(p string) bool {
	_, err := r.Lstat(p)
	return err == nil
}

// Readlink reads the symlink p itself.
func (r *Root) Readlink(p string) (string, error) {
	d, base, err := r.Parent(p)
	if err != nil {
		return "", err
	}
	defer d.Close()
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(int(d.Fd()), base, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// OpenFile opens the regular file p for reading, following symlinks inside
// the root (the last one too), checked by type before it is opened as
// OpenNoFollow does.
func (r *Root) OpenFile(p string) (*os.File, error) {
	h, err := r.OpenPath(p)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	return openRegular(h, clean(p))
}

// OpenNoFollow opens p for reading when p itself is a regular file (not a
// link) in a directory resolved inside the root. The type is checked on a
// handle that opens nothing (O_PATH) before the file is opened, through that
// same handle, without blocking: a FIFO, device node or socket the image put
// there is never opened, so it can neither stall the builder nor set off a
// device's side effects.
func (r *Root) OpenNoFollow(p string) (*os.File, error) {
	d, base, err := r.Parent(p)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	fd, err := unix.Openat(int(d.Fd()), base, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	h := os.NewFile(uintptr(fd), p)
	defer h.Close()
	return openRegular(h, clean(p))
}

// openRegular opens the file behind the O_PATH handle h for reading, without
// blocking, when it is a regular file.
func openRegular(h *os.File, p string) (*os.File, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(h.Fd()), &st); err != nil {
		return nil, &os.PathError{Op: "stat", Path: p, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, &NotRegularError{Path: p, Kind: kindOf(st.Mode)}
	}
	f, err := pathrs.Reopen(h, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	return f, nil
}

// NotRegularError is a path in the image that the builder reads as a file
// but that is something else: a link, a FIFO, a device node, a socket or a
// directory.
type NotRegularError struct {
	Path string // in the image
	Kind string
}

func (e *NotRegularError) Error() string {
	return fmt.Sprintf("%s in the image is %s, not a regular file; the builder reads only regular files from an image", e.Path, e.Kind)
}

// TooLargeError is a file in the image larger than its reader accepts.
type TooLargeError struct {
	Path  string
	Size  int64
	Limit int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("%s in the image is larger than %d bytes (%d), more than such a file ever holds; the builder does not read it", e.Path, e.Limit, e.Size)
}

func kindOf(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFLNK:
		return "a symbolic link"
	case unix.S_IFIFO:
		return "a FIFO"
	case unix.S_IFCHR:
		return "a character device node"
	case unix.S_IFBLK:
		return "a block device node"
	case unix.S_IFSOCK:
		return "a socket"
	case unix.S_IFDIR:
		return "a directory"
	}
	return fmt.Sprintf("of type %o", mode&unix.S_IFMT)
}

// ReadRegular reads the regular file p in the image, at most limit bytes:
// its directory resolved inside the root, p itself never followed, opened
// by type first (see OpenNoFollow). Anything else, or a larger file, is an
// error that says what is there; a missing file is os.ErrNotExist. Every
// reader of a file inside an image goes through it.
func (r *Root) ReadRegular(p string, limit int64) ([]byte, error) {
	f, err := r.OpenNoFollow(p)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, &NotRegularError{Path: clean(p), Kind: "a symbolic link"}
		}
		return nil, err
	}
	defer f.Close()
	return readBounded(f, clean(p), limit)
}

// readBounded reads at most limit bytes of f, failing when f holds more.
func readBounded(f *os.File, p string, limit int64) ([]byte, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, err
	}
	if st.Size > limit {
		return nil, &TooLargeError{Path: p, Size: st.Size, Limit: limit}
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s in the image: %w", p, err)
	}
	if int64(len(b)) > limit {
		return nil, &TooLargeError{Path: p, Size: int64(len(b)), Limit: limit}
	}
	return b, nil
}

// MkdirAll creates p and its missing parents inside the root with mode and
// returns a handle to it and the in-image paths it created, outermost first.
func (r *Root) MkdirAll(p string, mode os.FileMode) (*os.File, []string, error) {
	p = clean(p)
	var created []string
	// The longest existing prefix tells what MkdirAllHandle will create.
	for cur := p; cur != "/"; cur = path.Dir(cur) {
		if h, err := pathrs.OpenatInRoot(r.fd, cur); err == nil {
			h.Close()
			break
		}
		created = append([]string{cur}, created...)
	}
	h, err := pathrs.MkdirAllHandle(r.fd, p, mode)
	if err != nil {
		return nil, nil, fmt.Errorf("creating %s in the image: %w", p, err)
	}
	return h, created, nil
}

// Remove removes p itself (a file, a link or an empty directory).
func (r *Root) Remove(p string) error {
	d, base, err := r.Parent(p)
	if err != nil {
		return err
	}
	defer d.Close()
	err = unix.Unlinkat(int(d.Fd()), base, 0)
	if errors.Is(err, unix.EISDIR) {
		err = unix.Unlinkat(int(d.Fd()), base, unix.AT_REMOVEDIR)
	}
	if err != nil {
		return &os.PathError{Op: "remove", Path: p, Err: err}
	}
	return nil
}

// FileSpec is what WriteFile and Symlink give the entry they create.
type FileSpec struct {
	Mode     os.FileMode // permission and setuid/setgid/sticky bits
	UID, GID int
	// Mtime, when set, is the entry's modification (and access) time.
	Mtime time.Time
}

// WriteFile puts a regular file with r's content at p. p's directory is
// resolved inside the root; p itself is replaced, never written through: the
// content goes into a new file created exclusively beside it, which is then
// renamed over p. Nothing another user of the image left at p (a file it
// keeps open, a link) can see or change the new content.
func (r *Root) WriteFile(p string, content io.Reader, spec FileSpec) error {
	d, base, err := r.Parent(p)
	if err != nil {
		return err
	}
	defer d.Close()
	return writeAt(d, base, content, spec)
}

// WriteFileAt is WriteFile in a directory handle from this root.
func WriteFileAt(dir *os.File, base string, content io.Reader, spec FileSpec) error {
	return writeAt(dir, base, content, spec)
}

func writeAt(d *os.File, base string, content io.Reader, spec FileSpec) error {
	tmp, f, err := createTemp(d, base, spec.Mode)
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			unix.Unlinkat(int(d.Fd()), tmp, 0)
		}
	}()
	if _, err := io.Copy(f, content); err != nil {
		return fmt.Errorf("writing %s: %w", base, err)
	}
	if err := applySpec(int(f.Fd()), spec); err != nil {
		return err
	}
	if !spec.Mtime.IsZero() {
		ts := []unix.Timespec{unix.NsecToTimespec(spec.Mtime.UnixNano()), unix.NsecToTimespec(spec.Mtime.UnixNano())}
		if err := unix.UtimesNanoAt(int(d.Fd()), tmp, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := unix.Renameat(int(d.Fd()), tmp, int(d.Fd()), base); err != nil {
		return fmt.Errorf("replacing %s: %w", base, err)
	}
	ok = true
	return nil
}

// createTemp makes a new, exclusive, never-followed file beside base.
func createTemp(d *os.File, base string, mode os.FileMode) (string, *os.File, error) {
	for i := 0; i < 100; i++ {
		tmp := fmt.Sprintf(".%s.strata-%d-%d", truncate(base, 100), os.Getpid(), time.Now().UnixNano()%1e9+int64(i))
		fd, err := unix.Openat(int(d.Fd()), tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(mode.Perm()))
		if errors.Is(err, unix.EEXIST) {
			continue
		}
		if err != nil {
			return "", nil, fmt.Errorf("creating a file beside %s: %w", base, err)
		}
		return tmp, os.NewFile(uintptr(fd), tmp), nil
	}
	return "", nil, fmt.Errorf("creating a file beside %s: no free name", base)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// applySpec sets owner, then mode (chown clears setuid bits, so mode last).
func applySpec(fd int, spec FileSpec) error {
	if err := unix.Fchown(fd, spec.UID, spec.GID); err != nil {
		return err
	}
	return unix.Fchmod(fd, unixMode(spec.Mode))
}

func unixMode(m os.FileMode) uint32 {
	out := uint32(m.Perm())
	if m&os.ModeSetuid != 0 {
		out |= unix.S_ISUID
	}
	if m&os.ModeSetgid != 0 {
		out |= unix.S_ISGID
	}
	if m&os.ModeSticky != 0 {
		out |= unix.S_ISVTX
	}
	return out
}

// ModeOf turns a stat mode into an os.FileMode with the special bits.
func ModeOf(st unix.Stat_t) os.FileMode {
	m := os.FileMode(st.Mode & 0o777)
	if st.Mode&unix.S_ISUID != 0 {
		m |= os.ModeSetuid
	}
	if st.Mode&unix.S_ISGID != 0 {
		m |= os.ModeSetgid
	}
	if st.Mode&unix.S_ISVTX != 0 {
		m |= os.ModeSticky
	}
	return m
}

// Symlink puts a symlink to target at p, replacing whatever is there by a
// rename, with owner and time from spec.
func (r *Root) Symlink(target, p string, spec FileSpec) error {
	d, base, err := r.Parent(p)
	if err != nil {
		return err
	}
	defer d.Close()
	return SymlinkAt(d, base, target, spec)
}

// SymlinkAt is Symlink in a directory handle from this root.
func SymlinkAt(d *os.File, base, target string, spec FileSpec) error {
	var tmp string
	for i := 0; ; i++ {
		tmp = fmt.Sprintf(".%s.strata-%d-%d", truncate(base, 100), os.Getpid(), time.Now().UnixNano()%1e9+int64(i))
		err := unix.Symlinkat(target, int(d.Fd()), tmp)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EEXIST) || i > 100 {
			return fmt.Errorf("creating link %s: %w", base, err)
		}
	}
	fail := func(err error) error {
		unix.Unlinkat(int(d.Fd()), tmp, 0)
		return err
	}
	if err := unix.Fchownat(int(d.Fd()), tmp, spec.UID, spec.GID, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fail(err)
	}
	if !spec.Mtime.IsZero() {
		ts := []unix.Timespec{unix.NsecToTimespec(spec.Mtime.UnixNano()), unix.NsecToTimespec(spec.Mtime.UnixNano())}
		if err := unix.UtimesNanoAt(int(d.Fd()), tmp, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fail(err)
		}
	}
	if err := unix.Renameat(int(d.Fd()), tmp, int(d.Fd()), base); err != nil {
		return fail(fmt.Errorf("replacing %s: %w", base, err))
	}
	return nil
}

// DirTimes remembers a directory's access and modification times so that a
// step which adds and removes entries in it can put them back exactly.
type DirTimes struct {
	InImage      string
	atime, mtime unix.Timespec
}

// SaveDirTimes records the times of the directory p (following links in root).
func (r *Root) SaveDirTimes(p string) (*DirTimes, error) {
	h, err := r.OpenPath(p)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(h.Fd()), &st); err != nil {
		return nil, err
	}
	return &DirTimes{InImage: clean(p), atime: st.Atim, mtime: st.Mtim}, nil
}

// RestoreDirTimes puts the recorded times back.
func (r *Root) RestoreDirTimes(t *DirTimes) error {
	if t == nil {
		return nil
	}
	h, err := r.OpenPath(t.InImage)
	if err != nil {
		return err
	}
	defer h.Close()
	// An O_PATH handle takes no futimens; its /proc/self/fd link does.
	return unix.UtimesNanoAt(unix.AT_FDCWD, FdPath(h), []unix.Timespec{t.atime, t.mtime}, 0)
}

// ReadDir lists the directory p (following links inside the root), sorted.
func (r *Root) ReadDir(p string) ([]os.DirEntry, error) {
	h, err := r.OpenPath(p)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	d, err := pathrs.Reopen(h, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	ents, err := d.ReadDir(-1)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(ents, func(a, b os.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return ents, nil
}

// ResolveFinal follows p's symlinks inside the root, the last component's
// too even when its target does not exist yet, and returns the in-image path
// they lead to: where cp would write when given p.
func (r *Root) ResolveFinal(p string) (string, error) {
	p = clean(p)
	for i := 0; i < 40; i++ {
		if p == "/" {
			return p, nil
		}
		d, base, err := r.Parent(p)
		if errors.Is(err, os.ErrNotExist) {
			return p, nil // its directories are yet to be made
		}
		if err != nil {
			return "", err
		}
		host, err := r.HostPath(d)
		d.Close()
		if err != nil {
			return "", err
		}
		p = path.Join(r.InImage(host), base)
		st, err := r.Lstat(p)
		if err != nil || st.Mode&unix.S_IFMT != unix.S_IFLNK {
			return p, nil
		}
		link, err := r.Readlink(p)
		if err != nil {
			return "", err
		}
		if path.IsAbs(link) {
			p = clean(link)
		} else {
			p = clean(path.Join(path.Dir(p), link))
		}
	}
	return "", fmt.Errorf("%s: too many levels of symbolic links in the image", p)
}
