package packages

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/strata-build/packer-plugin-strata/internal/apt"
	"github.com/strata-build/packer-plugin-strata/internal/dpkg"
)

// afterStatusCommand runs command and then, in the same round trip, reads
// dpkg's database: after a line "<marker> begin" that ends what the UI
// shows, in a status section. It exits with command's status.
func afterStatusCommand(marker, command string) string {
	return shQuote(strings.Join([]string{
		command,
		`r=$?`,
		fmt.Sprintf(`printf '\n%%s begin\n' %s`, marker),
		boundedRead(dpkg.StatusPath, dpkg.MaxStatusSize), endSection(marker, secStatus),
		`exit $r`,
	}, "\n"))
}

// aptThenInstalled runs an apt command with its output shown, as apt does,
// and returns dpkg's database as it is after the command (nil when the
// command failed).
func (s *shell) aptThenInstalled(ctx context.Context, op, command string) (installedSet, error) {
	marker := newMarker()
	wrapped, err := s.wrap(afterStatusCommand(marker, command))
	if err != nil {
		return nil, err
	}
	// What apt said, for the error: the streams apart, as apt.Error
	// reads them (a stderr line may arrive in the middle of a list on
	// stdout, which apt buffers).
	var stdout, stderr apt.Output
	var mu sync.Mutex // one line at a time on the UI
	shown := &uiLines{ui: s.ui, begin: marker + " begin", copy: &stdout, mu: &mu}
	errs := &uiLines{ui: s.ui, stderr: true, copy: &stderr, mu: &mu}
	rc := &packersdk.RemoteCmd{Command: wrapped, Stdout: shown, Stderr: errs}
	if err := s.comm.Start(ctx, rc); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	done := make(chan int, 1)
	go func() { done <- rc.Wait() }()
	var status int
	select {
	case status = <-done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	shown.flush()
	errs.flush()
	if status != 0 {
		return nil, apt.Error(op, status, stdout.String()+"\n"+stderr.String())
	}
	secs, err := readSections(shown.rest.String(), marker)
	if err != nil {
		return nil, fmt.Errorf("%s: reading dpkg's database after it: %w", op, err)
	}
	sec, ok := secs[secStatus]
	if !ok {
		return nil, fmt.Errorf("%s: reading dpkg's database after it: no answer (the command was cut short?)", op)
	}
	return parseInstalled(sec.body, sec.status)
}

// uiLines shows what a command writes, line by line, as Packer's
// RunWithUi does (stdout with Say, stderr with Error, a line's text after
// its last carriage return), keeps a copy, and from the line begin on
// shows nothing and keeps the rest apart.
type uiLines struct {
	ui     packersdk.Ui
	stderr bool
	begin  string
	copy   *apt.Output
	// mu is shared by a command's two streams.
	mu *sync.Mutex

	partial []byte
	ended   bool
	rest    bytes.Buffer
}

func (u *uiLines) lock() func() {
	u.mu.Lock()
	return u.mu.Unlock
}

func (u *uiLines) Write(p []byte) (int, error) {
	defer u.lock()()
	if u.ended {
		return u.rest.Write(p)
	}
	u.partial = append(u.partial, p...)
	for !u.ended {
		i := bytes.IndexByte(u.partial, '\n')
		if i < 0 {
			break
		}
		line := string(u.partial[:i])
		u.partial = u.partial[i+1:]
		if u.begin != "" && line == u.begin {
			u.ended = true
			u.rest.Write(u.partial)
			u.partial = nil
			break
		}
		u.copy.Write([]byte(line + "\n"))
		u.show(line)
	}
	return len(p), nil
}

// show shows one line but no empty one (such as the one printed before
// begin).
func (u *uiLines) show(line string) {
	line = strings.TrimRight(line, " \t\r")
	if i := strings.LastIndex(line, "\r"); i >= 0 {
		line = line[i+1:]
	}
	if line == "" {
		return
	}
	if u.stderr {
		u.ui.Error(line)
	} else {
		u.ui.Say(line)
	}
}

// flush shows a last line that had no newline.
func (u *uiLines) flush() {
	defer u.lock()()
	if !u.ended && len(u.partial) > 0 {
		u.copy.Write(u.partial)
		u.show(string(u.partial))
		u.partial = nil
	}
}
