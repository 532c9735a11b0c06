package mount

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
	return killRooted(dir, grace, func(p []int) []int { return p })
}

func killRooted(dir string, grace time.Duration, filter func([]int) []int) (int, error) {
	rooted := func() []int {
		pids, _ := RootedUnder(dir)
		return filter(pids)
	}
	pids, err := RootedUnder(dir)
	pids = filter(pids)
	if err != nil || len(pids) == 0 {
		return 0, err
	}
	for _, p := range pids {
		_ = syscall.Kill(p, syscall.SIGTERM)
	}
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if left := rooted(); len(left) == 0 {
			return len(pids), nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	left := rooted()
	for _, p := range left {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	// SIGKILL is final, but the process is only gone once reaped by its parent.
	for i := 0; i < 100; i++ {
		if left = rooted(); len(left) == 0 {
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

// StartTime is when a process started, in clock ticks since boot (field 22
// of /proc/PID/stat): with the PID it names one process for good, since a
// PID can be reused but not with an earlier start time.
func StartTime(pid int) (uint64, error) {
	f, err := statFields(pid)
	if err != nil {
		return 0, err
	}
	if len(f) < 20 {
		return 0, errors.New("short /proc stat line")
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// statFields are the fields of /proc/PID/stat after the command name, so
// field N of proc(5) is statFields[N-3].
func statFields(pid int) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(procDir, strconv.Itoa(pid), "stat"))
	if err != nil {
		return nil, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil, errors.New("malformed /proc stat line")
	}
	return strings.Fields(s[i+1:]), nil
}

// Alive says whether the process pid that started at start still runs. A
// zombie (killed, not yet reaped) does not.
func Alive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	f, err := statFields(pid)
	if err != nil || len(f) < 20 || f[0] == "Z" || f[0] == "X" {
		return false
	}
	got, err := strconv.ParseUint(f[19], 10, 64)
	return err == nil && got == start
}

// KillGroup SIGKILLs the members of process group pgid that started at or
// after since: a group a killed build left, never a later process that
// happens to reuse the number.
func KillGroup(pgid int, since uint64) int {
	ents, err := os.ReadDir(procDir)
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		f, err := statFields(pid)
		if err != nil || len(f) < 20 {
			continue
		}
		if f[2] != strconv.Itoa(pgid) {
			continue
		}
		if st, _ := strconv.ParseUint(f[19], 10, 64); st < since {
			continue
		}
		if syscall.Kill(pid, syscall.SIGKILL) == nil {
			n++
		}
	}
	return n
}

// KillRootedUnderSince is KillRootedUnder limited to processes that started
// at or after since.
func KillRootedUnderSince(dir string, since uint64, grace time.Duration) (int, error) {
	filter := func(pids []int) []int {
		var out []int
		for _, p := range pids {
			if st, err := StartTime(p); err == nil && st >= since {
				out = append(out, p)
			}
		}
		return out
	}
	return killRooted(dir, grace, filter)
}
