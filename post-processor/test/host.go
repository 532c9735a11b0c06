package test

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"time"
)

// job is one run of the runner against an image.
type job struct {
	Mode string
	// Dir holds run.sh, the cases' scripts and scripts/ (writeJob).
	Dir string
	// Lowers are the image's trees, top first (container mode).
	Lowers []string
	// Disk is the raw disk to boot (vm mode).
	Disk        string
	Timeout     time.Duration
	MemoryMiB   int
	Accel, QEMU string
	Live        func(string) // each line, as it comes (nil: none)
}

// outcome is what a run printed, and in vm mode how the boot went.
type outcome struct {
	Lines    []string
	Accel    string
	Boot     time.Duration // QEMU's start to multi-user.target (READY)
	Checks   time.Duration // the checks themselves
	Started  time.Time
	Finished time.Time
}

// runner runs a job on the host: the seam the post-processor's tests fake.
type runner interface {
	run(ctx context.Context, j job) (*outcome, error)
}

// hostRunner is the real one.
type hostRunner struct{}

func (hostRunner) run(ctx context.Context, j job) (*outcome, error) {
	if j.Mode == ModeVM {
		return runVM(ctx, j)
	}
	return runContainer(ctx, j)
}

// lineSink collects lines (a VM's console arrives through an io.Writer).
type lineSink struct {
	mu      sync.Mutex
	lines   []string
	partial []byte
	live    func(string)
	seen    func(string)
}

func (s *lineSink) add(l string) {
	s.mu.Lock()
	s.lines = append(s.lines, l)
	s.mu.Unlock()
	if s.seen != nil {
		s.seen(l)
	}
	if s.live != nil {
		s.live(l)
	}
}

func (s *lineSink) Write(p []byte) (int, error) {
	s.partial = append(s.partial, p...)
	for {
		i := bytes.IndexByte(s.partial, '\n')
		if i < 0 {
			break
		}
		s.add(strings.TrimRight(string(s.partial[:i]), "\r"))
		s.partial = s.partial[i+1:]
	}
	return len(p), nil
}
