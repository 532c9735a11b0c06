package mount

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Spec is one mount to make. Target is a host path, already resolved safely
// inside the chroot by the caller.
type Spec struct {
	FSType  string // "bind" for a bind mount
	Source  string
	Target  string
	Options string // comma separated, as mount(8) takes them
}

func (s Spec) String() string {
	o := s.Options
	if o != "" {
		o = " -o " + o
	}
	return fmt.Sprintf("%s %s on %s%s", s.FSType, s.Source, s.Target, o)
}

// flagOptions are the mount(8) options that are flags rather than data.
var flagOptions = map[string]uintptr{
	"ro":          unix.MS_RDONLY,
	"nosuid":      unix.MS_NOSUID,
	"nodev":       unix.MS_NODEV,
	"noexec":      unix.MS_NOEXEC,
	"noatime":     unix.MS_NOATIME,
	"nodiratime":  unix.MS_NODIRATIME,
	"relatime":    unix.MS_RELATIME,
	"strictatime": unix.MS_STRICTATIME,
	"sync":        unix.MS_SYNCHRONOUS,
	"rw":          0,
	"defaults":    0,
}

func splitOptions(opts string) (flags uintptr, data string) {
	var rest []string
	for _, o := range splitUnescaped(opts) {
		if o == "" {
			continue
		}
		if f, ok := flagOptions[o]; ok {
			flags |= f
			continue
		}
		rest = append(rest, o)
	}
	return flags, strings.Join(rest, ",")
}

// splitUnescaped splits mount options at the commas a backslash does not
// escape (overlayfs reads `\,` in a path as a comma of the path).
func splitUnescaped(opts string) []string {
	var out []string
	start := 0
	for i := 0; i < len(opts); i++ {
		switch opts[i] {
		case '\\':
			i++
		case ',':
			out = append(out, opts[start:i])
			start = i + 1
		}
	}
	return append(out, opts[start:])
}

// Mount makes the mount on the host path s.Target and marks it private, so
// that nothing mounted on or under it propagates back to the host's own mount
// (the host's /dev may be a shared mount). Targets inside an image are not
// mounted this way but with MountAt, on a handle resolved inside the root.
func Mount(s Spec) error {
	return mount(s, s.Target, func() (string, func(), error) { return s.Target, func() {}, nil })
}

// MountAt mounts s on the directory or file that the handle target names,
// never on a path the image could redirect: the kernel mounts on the handle
// itself through its /proc/self/fd link. reopen resolves the target again
// after the mount (now landing on the new mount) for the follow-up calls
// that make it private and apply read-only to a bind.
func MountAt(s Spec, target *os.File, reopen func() (*os.File, error)) error {
	return mount(s, fdPath(target), func() (string, func(), error) {
		h, err := reopen()
		if err != nil {
			return "", nil, err
		}
		return fdPath(h), func() { h.Close() }, nil
	})
}

func fdPath(f *os.File) string { return "/proc/self/fd/" + strconv.Itoa(int(f.Fd())) }

func mount(s Spec, target string, after func() (string, func(), error)) error {
	flags, data := splitOptions(s.Options)
	fstype := s.FSType
	if fstype == "bind" || fstype == "rbind" {
		flags |= unix.MS_BIND
		if fstype == "rbind" {
			flags |= unix.MS_REC
		}
		fstype = ""
	}
	if err := unix.Mount(s.Source, target, fstype, flags, data); err != nil {
		return fmt.Errorf("mount %s: %w", s, err)
	}
	top, release, err := after()
	if err != nil {
		_ = unix.Unmount(target, unix.MNT_DETACH)
		return fmt.Errorf("finding the new mount at %s: %w", s.Target, err)
	}
	defer release()
	if err := unix.Mount("", top, "", unix.MS_PRIVATE|unix.MS_REC, ""); err != nil {
		_ = unix.Unmount(top, unix.MNT_DETACH)
		return fmt.Errorf("making %s private: %w", s.Target, err)
	}
	// A bind mount ignores ro (and other flags) on the first call; it needs a remount.
	if flags&unix.MS_BIND != 0 && flags&^(unix.MS_BIND|unix.MS_REC) != 0 {
		rf := unix.MS_BIND | unix.MS_REMOUNT | (flags &^ (unix.MS_BIND | unix.MS_REC))
		if err := unix.Mount("", top, "", rf, ""); err != nil {
			_ = unix.Unmount(top, unix.MNT_DETACH)
			return fmt.Errorf("remounting %s with %q: %w", s.Target, s.Options, err)
		}
	}
	return nil
}

// UnmountResult says how an unmount went.
type UnmountResult struct {
	Lazy     bool // it took a lazy (detaching) unmount
	Attempts int
}

// Unmount unmounts target, retrying while it is busy, and falls back to a lazy
// unmount only when every retry failed. A target that is not mounted is fine.
func Unmount(target string, retries int, wait time.Duration) (UnmountResult, error) {
	var last error
	for i := 1; i <= retries; i++ {
		err := unix.Unmount(target, 0)
		if err == nil || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			return UnmountResult{Attempts: i}, nil
		}
		last = err
		if !errors.Is(err, unix.EBUSY) {
			break
		}
		time.Sleep(wait)
	}
	if err := unix.Unmount(target, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
		return UnmountResult{Attempts: retries}, fmt.Errorf("unmount %s: %v; lazy unmount: %w", target, last, err)
	}
	return UnmountResult{Lazy: true, Attempts: retries}, nil
}

// EnsureTarget creates a mount point directory, or an empty file when the
// source of a bind mount is a file.
func EnsureTarget(target string, file bool) error {
	if file {
		if _, err := os.Lstat(target); err == nil {
			return nil
		}
		f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|unix.O_NOFOLLOW, 0o644)
		if err != nil {
			return err
		}
		return f.Close()
	}
	return os.MkdirAll(target, 0o755)
}
