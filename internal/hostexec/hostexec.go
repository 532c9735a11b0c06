// Package hostexec runs the host programs a build needs (mmdebstrap,
// mksquashfs, mke2fs, tar, hook commands) so that none outlives the build:
// each runs in a process group of its own with a parent-death signal, the
// whole group is killed when the build is cancelled, and a Tracker learns of
// every group so a later run can stop what a killed one left.
package hostexec

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/strata-build/packer-plugin-strata/internal/mount"
)

// Tracker records the process groups a build starts.
type Tracker interface {
	GroupStarted(pgid int, start uint64)
	GroupEnded(pgid int)
}

// Command prepares name with args to run on the host. Its environment is the
// plugin's with LC_ALL=C, so output that is parsed is in English.
func Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	Own(cmd)
	return cmd
}

// Own gives cmd its own process group and a parent-death signal, and makes
// cancelling kill the whole group rather than just its leader.
func Own(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	cmd.Cancel = func() error {
		if cmd.Process == nil {
			return nil
		}
		// The group first, gently; its leader last, for certain.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		go func(pid int) {
			time.Sleep(3 * time.Second)
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		}(cmd.Process.Pid)
		return nil
	}
	cmd.WaitDelay = 10 * time.Second
}

// Run starts cmd, tells t about its group, waits for it and kills whatever
// of the group is left once its leader has exited.
func Run(cmd *exec.Cmd, t Tracker) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	pgid := cmd.Process.Pid
	if t != nil {
		start, _ := mount.StartTime(pgid)
		t.GroupStarted(pgid, start)
	}
	err := cmd.Wait()
	// A member that outlived its leader (a daemon a hook started) goes too.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	if t != nil {
		t.GroupEnded(pgid)
	}
	return err
}

// Output runs cmd like Run and returns its standard output; the error
// carries standard error.
func Output(cmd *exec.Cmd, t Tracker) ([]byte, error) {
	var stdout, stderr strings.Builder
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := Run(cmd, t)
	if err != nil {
		return []byte(stdout.String()), fmt.Errorf("%s: %w\n%s", describe(cmd), err, strings.TrimSpace(stderr.String()))
	}
	return []byte(stdout.String()), nil
}

// Lines runs cmd like Run, passing each line it prints (both streams) to
// each as it comes, and keeps the last lines for the error.
func Lines(cmd *exec.Cmd, t Tracker, each func(string)) error {
	pr, pw := io.Pipe()
	cmd.Stdout = pw
	cmd.Stderr = pw
	var tail []string
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			line := sc.Text()
			each(line)
			tail = append(tail, line)
			if len(tail) > 20 {
				tail = tail[1:]
			}
		}
		io.Copy(io.Discard, pr)
	}()
	err := Run(cmd, t)
	pw.Close()
	wg.Wait()
	if err != nil {
		return fmt.Errorf("%s: %w\n%s", describe(cmd), err, strings.Join(tail, "\n"))
	}
	return nil
}

func describe(cmd *exec.Cmd) string {
	s := strings.Join(cmd.Args, " ")
	if len(s) > 200 {
		s = s[:200] + " ..."
	}
	return s
}
