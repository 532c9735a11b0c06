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
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// Communicator runs Packer's provisioners inside the chroot. Commands run as
// `chroot ROOT /bin/sh -c CMD` through command_wrapper with a clean
// environment; files move in and out with every path resolved inside ROOT,
// so no symlink in the image can lead a copy out to the host.
type Communicator struct {
	Root    string
	Wrapper string
	Env     []string
}

var _ packersdk.Communicator = (*Communicator)(nil)

// chrootEnv is the environment of commands in the chroot: a sane base, then
// the user's environment option on top.
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

func (c *Communicator) Start(ctx context.Context, rc *packersdk.RemoteCmd) error {
	inner := fmt.Sprintf("chroot %s /bin/sh -c %s", shellQuote(c.Root), shellQuote(rc.Command))
	wrapped, err := wrapCommand(c.Wrapper, inner, c.Root)
	if err != nil {
		return fmt.Errorf("command_wrapper: %w", err)
	}
	log.Printf("[strata] chroot command: %s", wrapped)
	cmd := exec.Command("/bin/sh", "-c", wrapped)
	cmd.Env = c.Env
	cmd.Stdin = rc.Stdin
	cmd.Stdout = rc.Stdout
	cmd.Stderr = rc.Stderr
	// Its own process group, so cancelling kills the whole command; and a
	// bound on waiting for output once it exited, because a daemon it left
	// behind (`sleep 1000 &`) may hold the pipes open forever. Teardown stops
	// such daemons.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
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
		close(done)
		status := 0
		var ee *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &ee):
			status = ee.ExitCode()
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				status = 128 + int(ws.Signal())
			}
		case errors.Is(err, exec.ErrWaitDelay):
			status = cmd.ProcessState.ExitCode()
		default:
			log.Printf("[strata] waiting for chroot command: %v", err)
			status = 1
		}
		rc.SetExited(status)
	}()
	return nil
}

// inRoot resolves an image path on the host, inside the root.
func (c *Communicator) inRoot(p string) (string, error) {
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	return securejoin.SecureJoin(c.Root, p)
}

func (c *Communicator) Upload(dst string, r io.Reader, fi *os.FileInfo) error {
	mode := os.FileMode(0o644)
	if fi != nil && *fi != nil {
		mode = (*fi).Mode().Perm()
	}
	return c.writeFile(dst, r, mode)
}

func (c *Communicator) writeFile(dst string, r io.Reader, mode os.FileMode) error {
	p, err := c.inRoot(dst)
	if err != nil {
		return fmt.Errorf("upload to %s: %w", dst, err)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("upload to %s: %w", dst, err)
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_TRUNC|os.O_WRONLY|syscall.O_NOFOLLOW, mode)
	if err != nil {
		return fmt.Errorf("upload to %s: %w", dst, err)
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return fmt.Errorf("upload to %s: %w", dst, err)
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// UploadDir copies the host directory src to dst like `cp -R`: "src/" copies
// its contents into dst, "src" copies the directory itself into dst.
func (c *Communicator) UploadDir(dst, src string, exclude []string) error {
	target := dirTarget(src, dst)
	return copyTree(src, exclude, func(rel string) (string, error) {
		// The parent resolves inside the image; the last component is never
		// followed (copyTree creates it with O_NOFOLLOW or replaces it).
		p := filepath.Join(target, rel)
		parent, err := c.inRoot(filepath.Dir(p))
		if err != nil {
			return "", err
		}
		if rel == "." {
			return c.inRoot(p)
		}
		return filepath.Join(parent, filepath.Base(p)), nil
	})
}

// dirTarget applies cp's trailing-slash rule.
func dirTarget(src, dst string) string {
	if strings.HasSuffix(src, "/") {
		return dst
	}
	return filepath.Join(dst, filepath.Base(src))
}

// copyTree copies the tree at src entry by entry to the paths to() names:
// directories, symlinks (as links) and regular files with their modes.
func copyTree(src string, exclude []string, to func(rel string) (string, error)) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if excluded(rel, exclude) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target, err := to(rel)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(target, info.Mode().Perm())
		case info.Mode()&os.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			_ = os.Remove(target)
			return os.Symlink(link, target)
		case info.Mode().IsRegular():
			return copyFile(p, target, info.Mode().Perm())
		}
		return nil
	})
}

// copyFile copies a regular file without following a symlink at either end.
func copyFile(from, to string, mode os.FileMode) error {
	in, err := os.OpenFile(from, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_TRUNC|os.O_WRONLY|syscall.O_NOFOLLOW, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Chmod(mode); err != nil {
		out.Close()
		return err
	}
	return out.Close()
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

func (c *Communicator) Download(src string, w io.Writer) error {
	p, err := c.inRoot(src)
	if err != nil {
		return fmt.Errorf("download of %s: %w", src, err)
	}
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return fmt.Errorf("download of %s: %w", src, err)
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}

// DownloadDir copies the image directory src to the host directory dst, with
// the same trailing-slash rule as UploadDir.
func (c *Communicator) DownloadDir(src, dst string, exclude []string) error {
	from, err := c.inRoot(src)
	if err != nil {
		return err
	}
	target := dirTarget(src, dst)
	return copyTree(from, exclude, func(rel string) (string, error) { return filepath.Join(target, rel), nil })
}
