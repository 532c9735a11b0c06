package boot

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/strata-build/packer-plugin-strata/internal/hostexec"
	"github.com/strata-build/packer-plugin-strata/internal/mount"
)

// qemuArgs are the machine's arguments but the disk: q35 (virt for
// arm64), UEFI with a private copy of the variables in tmp, serial console
// on stdout, no display, no network, no reboot (a panic or a reboot ends
// the run).
func qemuArgs(m machine, code, vars, tmp, accel string, mem int) ([]string, error) {
	args := []string{
		"-machine", m.board + ",accel=" + accel,
		"-m", strconv.Itoa(mem),
		"-smp", "1",
		"-nodefaults", "-display", "none", "-monitor", "none",
		"-serial", "stdio",
		"-nic", "none",
		"-no-reboot",
	}
	if code != "" {
		args = append(args, "-drive", "if=pflash,format=raw,unit=0,readonly=on,file="+qemuPath(code))
	}
	if accel == AccelKVM {
		args = append(args, "-cpu", "host")
	} else if m.cpu != "" {
		args = append(args, "-cpu", m.cpu)
	}
	if vars != "" && code != "" {
		data, err := os.ReadFile(vars)
		if err != nil {
			return nil, fmt.Errorf("boot: firmware variables: %w", err)
		}
		own := filepath.Join(tmp, "OVMF_VARS.fd")
		if err := os.WriteFile(own, data, 0o600); err != nil {
			return nil, err
		}
		args = append(args, "-drive", "if=pflash,format=raw,unit=1,file="+qemuPath(own))
	}
	return args, nil
}

// qemuPath escapes a path for a -drive option (a comma is doubled).
func qemuPath(p string) string { return strings.ReplaceAll(p, ",", ",,") }

// vm is one running QEMU.
type vm struct {
	cmd     *exec.Cmd
	lines   chan string
	tracker hostexec.Tracker
	done    chan struct{} // closed once QEMU has exited and been reaped
	stopped chan struct{} // closed when Check no longer reads the console
	waitErr error
	mu      sync.Mutex
	stderr  []string
	once    sync.Once
}

func startVM(qemu string, args []string, tmp string, t hostexec.Tracker) (*vm, error) {
	cmd := exec.Command(qemu, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C", "TMPDIR="+tmp)
	cmd.Dir = tmp
	// A group of its own (killed whole by stop) that dies with us.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// Our own pipes, not StdoutPipe: Wait must not close them while the
	// console is still being read.
	stdout, stdoutW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	stderr, stderrW, err := os.Pipe()
	if err != nil {
		stdout.Close()
		stdoutW.Close()
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = stdoutW, stderrW
	err = cmd.Start()
	stdoutW.Close()
	stderrW.Close()
	if err != nil {
		stdout.Close()
		stderr.Close()
		return nil, fmt.Errorf("boot: starting %s: %w", qemu, err)
	}
	v := &vm{cmd: cmd, lines: make(chan string, 256), tracker: t, done: make(chan struct{}), stopped: make(chan struct{})}
	go func() {
		v.waitErr = cmd.Wait()
		// Whatever of the group outlived QEMU goes too, so the console
		// pipes close.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		close(v.done)
	}()
	if t != nil {
		st, _ := mount.StartTime(cmd.Process.Pid)
		t.GroupStarted(cmd.Process.Pid, st)
	}
	var readers sync.WaitGroup
	readers.Add(2)
	go func() {
		defer readers.Done()
		defer stdout.Close()
		scanLines(stdout, func(l string) {
			select {
			case v.lines <- l:
			case <-v.stopped:
			}
		})
	}()
	go func() {
		defer readers.Done()
		defer stderr.Close()
		scanLines(stderr, func(l string) {
			v.mu.Lock()
			v.stderr = append(v.stderr, l)
			if len(v.stderr) > 10 {
				v.stderr = v.stderr[1:]
			}
			v.mu.Unlock()
			// QEMU reports a KVM failure on stderr; show it to the
			// watcher like a console line.
			if strings.Contains(l, "KVM internal error") {
				select {
				case v.lines <- l:
				case <-v.stopped:
				}
			}
		})
	}()
	go func() {
		readers.Wait()
		close(v.lines)
	}()
	return v, nil
}

// scanLines splits r at newlines (and carriage returns: OVMF redraws
// lines), removes terminal escapes and passes each non-empty line on.
func scanLines(r io.Reader, each func(string)) {
	br := bufio.NewReaderSize(r, 64*1024)
	var cur []byte
	flush := func() {
		l := strings.TrimRight(ansi.ReplaceAllString(string(cur), ""), " \t")
		cur = cur[:0]
		if strings.TrimSpace(l) != "" {
			each(l)
		}
	}
	for {
		b, err := br.ReadByte()
		if err != nil {
			flush()
			return
		}
		switch {
		case b == '\n' || b == '\r':
			flush()
		case len(cur) < 4096:
			cur = append(cur, b)
		}
	}
}

// wait waits for QEMU to exit.
func (v *vm) wait() { <-v.done }

// stop kills QEMU's whole group and waits for it: nothing of the VM
// outlives Check.
func (v *vm) stop() {
	pgid := v.cmd.Process.Pid
	v.once.Do(func() { close(v.stopped) })
	select {
	case <-v.done:
		// Reaped, and its group killed then: the number may be another's now.
	default:
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
	v.wait()
	if v.tracker != nil {
		v.tracker.GroupEnded(pgid)
	}
}

func (v *vm) exitStatus() string {
	if v.waitErr == nil {
		return "exit status 0"
	}
	return v.waitErr.Error()
}

func (v *vm) stderrTail() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]string(nil), v.stderr...)
}
