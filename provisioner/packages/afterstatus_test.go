package packages

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/strata-build/packer-plugin-strata/internal/dpkg"
)

// hostShell is a communicator that runs each command in a shell on the
// host, as the chroot communicator does inside the image.
type hostShell struct{ fakeApt }

func (*hostShell) Start(ctx context.Context, rc *packersdk.RemoteCmd) error {
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", rc.Command)
	cmd.Stdout, cmd.Stderr = rc.Stdout, rc.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() {
		cmd.Wait()
		rc.SetExited(cmd.ProcessState.ExitCode())
	}()
	return nil
}

// lineUi records what is said and what is shown as an error.
type lineUi struct {
	packersdk.Ui
	mu          sync.Mutex
	said, error []string
}

func (u *lineUi) Say(s string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.said = append(u.said, s)
}

func (u *lineUi) Error(s string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.error = append(u.error, s)
}

// TestAptThenInstalled runs a command and reads dpkg's database in one
// round trip through a real shell: the command's lines are shown (stdout
// said, stderr as errors, a last line without a newline too, progress
// overwritten by a carriage return as Packer shows it), the database is
// not shown but read (the host's), and a failing command's exit status and
// E: line make the error.
func TestAptThenInstalled(t *testing.T) {
	ui := &lineUi{}
	sh := &shell{comm: &hostShell{}, ui: ui, config: &Config{ExecuteCommand: "{{.Command}}"}}
	got, err := sh.aptThenInstalled(context.Background(), "install", `echo "one two"; echo "to stderr" >&2; printf '50%%\r100%%\n'; echo; printf 'last'`)
	if err != nil {
		t.Fatal(err)
	}
	host, err := dpkg.ReadStatus(mustOpen(t, dpkg.StatusPath))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(host) || got["dpkg:amd64"] == "" {
		t.Errorf("read %d installed packages, the host has %d", len(got), len(host))
	}
	if strings.Join(ui.said, "|") != "one two|100%|last" || strings.Join(ui.error, "|") != "to stderr" {
		t.Errorf("shown %q, errors %q", ui.said, ui.error)
	}

	// apt's E: line on stderr, its last without a newline.
	ui = &lineUi{}
	sh.ui = ui
	_, err = sh.aptThenInstalled(context.Background(), "install", `echo "Reading package lists..."; printf 'E: Unable to locate package nosuch' >&2; exit 100`)
	if err == nil || !strings.Contains(err.Error(), "nosuch") || strings.Join(ui.error, "|") != "E: Unable to locate package nosuch" {
		t.Errorf("a failing command: %v (errors shown %q)", err, ui.error)
	}
	for _, l := range ui.said {
		if strings.Contains(l, "strata-") || strings.HasPrefix(l, "Package:") {
			t.Errorf("shown: %q", l)
		}
	}
}

// TestExtendedStatesOverTheBound: an extended_states cut short by the
// bound is an error, not a file that lacks the entries past the cut.
func TestExtendedStatesOverTheBound(t *testing.T) {
	defer func(n int) { maxExtendedStates = n }(maxExtendedStates)
	maxExtendedStates = 10
	m := newMarker()
	out := "amd64\n\n" + m + " arch 0\nPackage: a\nArchitecture: amd64\nVersion: 1\nStatus: install ok installed\n\n" + m + " status 0\n" +
		"Package: libfoo\nArchitecture: amd64\nAuto-Installed: 1\n\n" + m + " extended_states 0\n"
	if _, err := parseState(out, m, false); err == nil || !strings.Contains(err.Error(), "larger than 10 bytes") {
		t.Errorf("error %v", err)
	}
	maxExtendedStates = 1 << 20
	if st, err := parseState(out, m, false); err != nil || !st.auto["libfoo:amd64"] || st.installed["a:amd64"] != "1" {
		t.Errorf("state %+v, %v", st, err)
	}
}

// TestReadSections: a body may end with or without a newline; a malformed
// or repeated end is an error.
func TestReadSections(t *testing.T) {
	m := newMarker()
	secs, err := readSections("amd64\n\n"+m+" arch 0\nno newline\n"+m+" status 2\n\n"+m+" empty 0\n", m)
	if err != nil {
		t.Fatal(err)
	}
	if secs["arch"] != (section{"amd64\n", 0}) || secs["status"] != (section{"no newline", 2}) || secs["empty"] != (section{"", 0}) {
		t.Errorf("sections %+v", secs)
	}
	for _, bad := range []string{"x\n" + m + " arch\n", "x\n" + m + " arch zero\n", "\n" + m + " a 0\n\n" + m + " a 0\n"} {
		if _, err := readSections(bad, m); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// TestBoundedReadEnds: what the state command reads from the image ends
// whatever the image put there: a link (to an endless device) is not
// followed, a FIFO with no writer gives nothing at once, a file larger
// than the bound gives one block more than the bound at most.
func TestBoundedReadEnds(t *testing.T) {
	dir := t.TempDir()
	link, fifo, big := dir+"/link", dir+"/fifo", dir+"/big"
	if err := os.Symlink("/dev/zero", link); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(big, make([]byte, 5<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]int{link: 0, fifo: 0, big: 2 << 20} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		out, _ := exec.CommandContext(ctx, "/bin/sh", "-c", boundedRead(path, 1<<20)).Output()
		timedOut := ctx.Err() != nil
		cancel()
		if timedOut || len(out) != want {
			t.Errorf("%s: read %d bytes (timed out: %v), want %d", path, len(out), timedOut, want)
		}
	}
	// Every file the state command reads is read so (extended_states and
	// the indexes' description were read with cat until this).
	cmd := unquoteSh(stateCommand(newMarker(), true))
	for _, p := range []string{dpkg.StatusPath, extendedStatesPath, sharedIndexesInfo} {
		if !strings.Contains(cmd, "dd if="+p+" iflag=nonblock,nofollow ") {
			t.Errorf("the state command reads %s otherwise:\n%s", p, cmd)
		}
	}
	if strings.Contains(cmd, "cat ") {
		t.Errorf("the state command reads with cat:\n%s", cmd)
	}
}
