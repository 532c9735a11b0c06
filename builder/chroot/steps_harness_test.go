package chroot

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/strata-build/packer-plugin-strata/internal/mount"
)

// stepTest is one build over temp dirs on a fakeHost: the step tests run
// steps on it without root, as the builder's runner does.
type stepTest struct {
	t     *testing.T
	b     *buildState
	host  *fakeHost
	state *multistep.BasicStateBag
	mp    string // mount_path
}

// newStepTest prepares a bootstrap build (changed by change) in temp dirs,
// with the package cache off unless change turns it on.
func newStepTest(t *testing.T, change func(raw map[string]interface{})) *stepTest {
	t.Helper()
	hostRoot := t.TempDir()
	if err := os.MkdirAll(filepath.Join(hostRoot, "etc/apt"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(hostRoot, "etc/apt/sources.list"), []byte("deb http://mirror.test/debian bookworm main\n"), 0o644)
	os.WriteFile(filepath.Join(hostRoot, "etc/resolv.conf"), []byte("nameserver 192.0.2.53\n"), 0o644)
	h := newFakeHost(hostRoot)
	dir := t.TempDir()
	raw := map[string]interface{}{
		"packer_build_name": "test",
		"store_dir":         filepath.Join(dir, "store"),
		"work_dir":          filepath.Join(dir, "work"),
		"output_dir":        filepath.Join(dir, "out"),
		"bootstrap":         map[string]interface{}{"suite": "bookworm"},
		"package_cache":     map[string]interface{}{"enabled": false},
	}
	if change != nil {
		change(raw)
	}
	c := Config{host: h}
	if _, err := c.Prepare(raw); err != nil {
		t.Fatal(err)
	}
	state := new(multistep.BasicStateBag)
	state.Put(stateUI, packersdk.TestUi(t))
	b := &buildState{cfg: &c, host: h}
	state.Put(stateBuild, b)
	return &stepTest{t: t, b: b, host: h, state: state, mp: c.MountPath}
}

// withLedger makes the work dir and the build's ledger, as stepWorkDir does
// (without its checks of the dirs above: in asImageRoot's namespace, the
// host's root owns them as nobody).
func (s *stepTest) withLedger() *stepTest {
	s.t.Helper()
	if err := os.MkdirAll(s.b.cfg.WorkDir, 0o700); err != nil {
		s.t.Fatal(err)
	}
	l, err := mount.NewLedger(s.b.cfg.WorkDir)
	if err != nil {
		s.t.Fatal(err)
	}
	s.b.ledger = l
	return s
}

// mounted runs stepRootfs (on the fake host, mount_path is its own
// directory: what the steps write into the image lands there) and gives
// the image an /etc.
func (s *stepTest) mounted() *stepRootfs {
	s.t.Helper()
	if s.b.ledger == nil {
		s.withLedger()
	}
	step := &stepRootfs{}
	if a := step.Run(context.Background(), s.state); a != multistep.ActionContinue {
		s.t.Fatalf("stepRootfs: %v", s.state.Get(stateError))
	}
	if err := os.MkdirAll(filepath.Join(s.mp, "etc"), 0o755); err != nil {
		s.t.Fatal(err)
	}
	s.host.calls = nil
	return step
}

// run runs one step's Run.
func (s *stepTest) run(step multistep.Step) multistep.StepAction {
	s.t.Helper()
	return step.Run(context.Background(), s.state)
}

// runAll runs steps with the SDK's runner (a halt stops the build, then
// every step that ran is cleaned up, latest first), and says whether the
// build halted.
func (s *stepTest) runAll(steps ...multistep.Step) bool {
	(&multistep.BasicRunner{Steps: steps}).Run(context.Background(), s.state)
	_, halted := s.state.GetOk(multistep.StateHalted)
	return halted
}

// err is the error the build halted with, "" when none.
func (s *stepTest) err() string {
	if e, ok := s.state.GetOk(stateError); ok {
		return e.(error).Error()
	}
	return ""
}

// wantCalls checks the host's calls since the last check, in order.
func (s *stepTest) wantCalls(want ...string) {
	s.t.Helper()
	if !slices.Equal(s.host.calls, want) {
		s.t.Fatalf("host calls:\n  %s\nwant:\n  %s", strings.Join(s.host.calls, "\n  "), strings.Join(want, "\n  "))
	}
	s.host.calls = nil
}

// entries lists dir's names.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// haltStep stops a build where it stands.
type haltStep struct{}

func (haltStep) Run(_ context.Context, state multistep.StateBag) multistep.StepAction {
	return halt(state, errInjected)
}
func (haltStep) Cleanup(multistep.StateBag) {}

func mountSpec(fstype, target string) mount.Spec {
	return mount.Spec{FSType: fstype, Source: fstype, Target: target}
}

// asImageRoot runs the calling test again, when the tests do not run as
// root, in a user namespace of its own where their user is root (which
// gives no privilege on the host): the builder makes the files it writes
// into an image root's, and only root may give a file to root. It says
// whether the test ran there; the caller then returns.
func asImageRoot(t *testing.T) bool {
	t.Helper()
	if os.Geteuid() == 0 {
		return false
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^"+regexp.QuoteMeta(t.Name())+"$", "-test.count=1", "-test.v")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}},
	}
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("--- PASS: "+t.Name())) {
		t.Fatalf("%s as root of a user namespace: %v\n%s", t.Name(), err, out)
	}
	return true
}
