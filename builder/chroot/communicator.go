package chroot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"golang.org/x/sys/unix"

	"github.com/strata-build/packer-plugin-strata/internal/inroot"
)

// Communicator runs Packer's provisioners inside the chroot. A command runs
// as `chroot ROOT /bin/sh -c 'export ENV...; CMD'` through command_wrapper,
// by a host shell with a clean host environment: the environment option
// (PATH, LD_PRELOAD, anything) is set inside the chroot's shell and never
// reaches a host program, while variables a wrapper sets (`env X=1
// {{ .Command }}`) still reach the chroot. Files move in and out with
// every path resolved inside the image root when it is used: no symlink in
// the image leads a copy out to the host, and what the builder writes into
// the image is created exclusively and renamed into place, never written
// through a file someone else prepared.
type Communicator struct {
	Root *inroot.Root
	// Wrap renders command_wrapper around a host command.
	Wrap func(cmd string) (string, error)
	// Env is the environment inside the chroot.
	Env []string
	// ChrootProg is the host's chroot(8).
	ChrootProg string
}

// hostEnv is the environment of the host shell that runs the wrapper and
// chroot(8): nothing of the plugin's or the user's.
var hostEnv = []string{
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"HOME=/root",
	"LANG=C.UTF-8",
	"TERM=dumb",
}

var _ packersdk.Communicator = (*Communicator)(nil)

// chrootEnv is the environment of commands in the chroot: a sane base,
// SOURCE_DATE_EPOCH when the build is reproducible (so Python compiles
// byte code by hash, and tools stamp that time), then environment on top.
func (c *Config) chrootEnv() []string {
	user := map[string]string{}
	if c.SourceDateEpoch != nil {
		user["SOURCE_DATE_EPOCH"] = strconv.FormatInt(*c.SourceDateEpoch, 10)
	}
	maps.Copy(user, c.Environment)
	return chrootEnv(user)
}

// chrootEnv is the base environment with user on top.
func chrootEnv(user map[string]string) []string {
	env := []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=/root",
		"LANG=C.UTF-8",
		"DEBIAN_FRONTEND=noninteractive",
		"TERM=dumb",
	}
	for _, k := range slices.Sorted(maps.Keys(user)) {
		env = append(env, k+"="+user[k])
	}
	return env
}

// shellQuote quotes s for /bin/sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'"
}

// commandLine is the host shell command that runs cmd in the chroot.
func (c *Communicator) commandLine(cmd string) string {
	inner := cmd
	if len(c.Env) > 0 {
		quoted := make([]string, len(c.Env))
		for i, e := range c.Env {
			quoted[i] = shellQuote(e)
		}
		inner = "export " + strings.Join(quoted, " ") + "; " + cmd
	}
	return strings.Join([]string{shellQuote(c.ChrootProg), shellQuote(c.Root.Path()), "/bin/sh", "-c", shellQuote(inner)}, " ")
}

func (c *Communicator) Start(ctx context.Context, rc *packersdk.RemoteCmd) error {
	wrapped, err := c.Wrap(c.commandLine(rc.Command))
	if err != nil {
		return fmt.Errorf("command_wrapper: %w", err)
	}
	log.Printf("[strata] chroot command: %s", wrapped)
	cmd := exec.Command("/bin/sh", "-c", wrapped)
	cmd.Env = hostEnv
	cmd.Stdout = rc.Stdout
	cmd.Stderr = rc.Stderr
	// The command's end is its process's exit. A stdin that is not a file
	// (Packer's SSH proxy for the ansible provisioner hands one that never
	// ends) is copied by a goroutine of ours into a pipe, which is closed
	// when the process exits; exec's own copier would keep Wait waiting.
	var stdinW *os.File
	switch in := rc.Stdin.(type) {
	case nil:
	case *os.File:
		cmd.Stdin = in
	default:
		r, w, err := os.Pipe()
		if err != nil {
			return err
		}
		cmd.Stdin = r
		stdinW = w
		go func() {
			io.Copy(w, in)
			w.Close()
		}()
		defer r.Close() // the child has its own copy once started
	}
	// Its own process group, so cancelling kills the whole command; and a
	// bound on waiting for output once it exited, because a daemon it left
	// behind (`sleep 1000 &`) may hold the pipes open forever. Teardown stops
	// such daemons.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		if stdinW != nil {
			stdinW.Close()
		}
		return err
	}
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(3 * time.Second):
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			}
		case <-done:
		}
	}()
	go func() {
		err := cmd.Wait()
		if stdinW != nil {
			stdinW.Close()
		}
		close(done)
		rc.SetExited(exitStatus(cmd, err))
	}()
	return nil
}

func exitStatus(cmd *exec.Cmd, err error) int {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	case errors.Is(err, exec.ErrWaitDelay):
		return cmd.ProcessState.ExitCode()
	}
	log.Printf("[strata] waiting for chroot command: %v", err)
	return 1
}

// Upload writes r to dst in the image like cp (and scp): a dst that is an
// existing directory receives the file under its source name; a dst that
// is a symlink has its target (inside the image) replaced. Missing parent
// directories are created.
func (c *Communicator) Upload(dst string, r io.Reader, fi *os.FileInfo) error {
	mode, name := os.FileMode(0o644), ""
	if fi != nil && *fi != nil {
		mode, name = (*fi).Mode().Perm(), (*fi).Name()
	}
	target, err := c.fileTarget(dst, name)
	if err != nil {
		return fmt.Errorf("upload to %s: %w", dst, err)
	}
	if err := c.writeFile(target, r, mode); err != nil {
		return fmt.Errorf("upload to %s: %w", dst, err)
	}
	return nil
}

// fileTarget is where cp would put a file copied to dst: into dst when it is
// a directory, else at what dst's symlinks lead to.
func (c *Communicator) fileTarget(dst, name string) (string, error) {
	target, err := c.Root.ResolveFinal(dst)
	if err != nil {
		return "", err
	}
	if st, err := c.Root.Lstat(target); err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
		if name == "" {
			return "", fmt.Errorf("%s is a directory", dst)
		}
		return c.Root.ResolveFinal(path.Join(target, name))
	}
	return target, nil
}

func (c *Communicator) writeFile(target string, r io.Reader, mode os.FileMode) error {
	d, _, err := c.Root.MkdirAll(path.Dir(target), 0o755)
	if err != nil {
		return err
	}
	defer d.Close()
	return inroot.WriteFileAt(d, path.Base(target), r, inroot.FileSpec{Mode: mode})
}

// UploadDir copies the host directory src into the image like `cp -R`: with
// a trailing slash, src's contents go into dst; without one, src itself is
// copied: to dst/<name of src> when dst is an existing directory, else to
// dst, which it becomes.
func (c *Communicator) UploadDir(dst, src string, exclude []string) error {
	base, err := c.dirTarget(dst, src)
	if err != nil {
		return fmt.Errorf("upload to %s: %w", dst, err)
	}
	root := strings.TrimSuffix(src, "/")
	if root == "" {
		root = "/"
	}
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel != "." && excluded(rel, exclude) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := path.Join(base, filepath.ToSlash(rel))
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			h, _, err := c.Root.MkdirAll(target, info.Mode().Perm())
			if err != nil {
				return err
			}
			return h.Close()
		case info.Mode()&os.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return c.Root.Symlink(link, target, inroot.FileSpec{})
		case info.Mode().IsRegular():
			f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			t, err := c.Root.ResolveFinal(target)
			if err != nil {
				return err
			}
			return c.writeFile(t, f, info.Mode().Perm())
		}
		return nil // sockets, devices: not copied
	})
}

// dirTarget applies cp -R's rule for a directory copied to dst.
func (c *Communicator) dirTarget(dst, src string) (string, error) {
	target, err := c.Root.ResolveFinal(dst)
	if err != nil {
		return "", err
	}
	if strings.HasSuffix(src, "/") {
		return target, nil
	}
	if st, err := c.Root.Lstat(target); err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return path.Join(target, filepath.Base(src)), nil
	}
	return target, nil
}

func excluded(rel string, patterns []string) bool {
	for _, pat := range patterns {
		if ok, _ := filepath.Match(pat, rel); ok {
			return true
		}
		if ok, _ := filepath.Match(pat, filepath.Base(rel)); ok {
			return true
		}
	}
	return false
}

// Download copies the image file src (its symlinks followed inside the
// image only) to w.
func (c *Communicator) Download(src string, w io.Writer) error {
	f, err := c.Root.OpenFile(src)
	if err != nil {
		return fmt.Errorf("download of %s: %w", src, err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return fmt.Errorf("download of %s: not a regular file", src)
	}
	_, err = io.Copy(w, f)
	return err
}

// DownloadDir copies from the image to the host directory dst: the
// contents of src when it ends in a slash, the matches when it is a glob
// pattern (/var/log/*.log), else src itself into dst.
func (c *Communicator) DownloadDir(src, dst string, exclude []string) error {
	if strings.ContainsAny(path.Base(src), "*?[") {
		dir, pattern := path.Dir(src), path.Base(src)
		ents, err := c.Root.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("download of %s: %w", src, err)
		}
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return err
		}
		for _, e := range ents {
			if ok, _ := path.Match(pattern, e.Name()); ok && !excluded(e.Name(), exclude) {
				if err := c.downloadEntry(path.Join(dir, e.Name()), filepath.Join(dst, e.Name()), exclude); err != nil {
					return err
				}
			}
		}
		return nil
	}
	target := dst
	if !strings.HasSuffix(src, "/") {
		if fi, err := os.Stat(dst); err == nil && fi.IsDir() {
			target = filepath.Join(dst, path.Base(src))
		}
	}
	return c.downloadEntry(path.Clean("/"+src), target, exclude)
}

// downloadEntry copies one image entry (recursively for a directory, never
// following a link inside the tree) to the host path to.
func (c *Communicator) downloadEntry(from, to string, exclude []string) error {
	st, err := c.Root.Lstat(from)
	if err != nil {
		return fmt.Errorf("download of %s: %w", from, err)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if err := os.MkdirAll(to, os.FileMode(st.Mode&0o777)); err != nil {
			return err
		}
		ents, err := c.Root.ReadDir(from)
		if err != nil {
			return err
		}
		for _, e := range ents {
			if excluded(e.Name(), exclude) {
				continue
			}
			if err := c.downloadEntry(path.Join(from, e.Name()), filepath.Join(to, e.Name()), exclude); err != nil {
				return err
			}
		}
		return nil
	case unix.S_IFLNK:
		link, err := c.Root.Readlink(from)
		if err != nil {
			return err
		}
		_ = os.Remove(to)
		return os.Symlink(link, to)
	case unix.S_IFREG:
		in, err := c.Root.OpenNoFollow(from)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(to, os.O_CREATE|os.O_TRUNC|os.O_WRONLY|unix.O_NOFOLLOW, os.FileMode(st.Mode&0o777))
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	}
	return nil // devices, fifos, sockets stay in the image
}
