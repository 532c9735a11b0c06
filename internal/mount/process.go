package mount

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// procDir is a variable so tests can point it at a fake /proc.
var procDir = "/proc"

// RootedUnder lists the processes whose root directory is dir or below it:
// everything running inside a chroot there.
func RootedUnder(dir string) ([]int, error) {
	dir, err := canonical(dir)
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(procDir)
	if err != nil {
		return nil, err
	}
	self := os.Getpid()
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		root, err := os.Readlink(filepath.Join(procDir, e.Name(), "root"))
		if err != nil {
			continue // gone, or a kernel thread
		}
		if isWithin(dir, filepath.Clean(root)) {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// KillRootedUnder stops every process whose root is at or below dir: SIGTERM
// first, then SIGKILL for whatever is still alive after grace. It returns how
// many processes it found.
func KillRootedUnder(dir string, grace time.Duration) (int, error) {
	pids, err := RootedUnder(dir)
	if err != nil || len(pids) == 0 {
		return 0, err
	}
	for _, p := range pids {
		_ = syscall.Kill(p, syscall.SIGTERM)
	}
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		left, _ := RootedUnder(dir)
		if len(left) == 0 {
			return len(pids), nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	left, _ := RootedUnder(dir)
	for _, p := range left {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	// SIGKILL is final, but the process is only gone once reaped by its parent.
	for i := 0; i < 100; i++ {
		left, _ = RootedUnder(dir)
		if len(left) == 0 {
			return len(pids), nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return len(pids), errors.New("processes still running in the chroot after SIGKILL: " + pidList(left))
}

func pidList(pids []int) string {
	s := ""
	for i, p := range pids {
		if i > 0 {
			s += ", "
		}
		s += strconv.Itoa(p)
	}
	return s
}
