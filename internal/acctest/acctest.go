// Package acctest runs end-to-end tests through the real bin/packer with
// this plugin installed by `packer plugins install --path`, as `make test`
// sets them up (STRATA_ACC=1, STRATA_PACKER, STRATA_PLUGIN, STRATA_CLI),
// with the helpers those tests share: builds started and waited for, the
// package's fixtures, and checks that nothing (mount, chroot process, VM,
// loop device) is left. An output's artifact.json and a store's layers are
// read with export/exporttest and layer/layertest: this package stays below
// every other, as internal/ is in DESIGN.md's layout.
package acctest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/strata-build/packer-plugin-strata/internal/apt"
	"github.com/strata-build/packer-plugin-strata/internal/mount"
)

// Env is Packer with the plugin installed, and the strata CLI.
type Env struct {
	Packer    string
	PluginDir string
	CLI       string
	// CacheDir is the package cache every test shares, so repeated
	// bootstraps are fast; it never enters an image.
	CacheDir string
	// TmpDir is TMPDIR for every packer the tests start: what a killed
	// packer leaves there (its panic log, the shell provisioner's script)
	// goes when Main ends, not into the host's /tmp.
	TmpDir string
}

var (
	once   sync.Once
	env    *Env
	envErr error
)

// Slow skips a test unless the slow end-to-end checks are on
// (STRATA_SLOW=1: `make test-slow`): those that boot more VMs under TCG
// than `make test`'s budget holds.
func Slow(t *testing.T) {
	t.Helper()
	if os.Getenv("STRATA_SLOW") == "" {
		t.Skip("slow end-to-end check: set STRATA_SLOW=1 (make test-slow does)")
	}
}

// Setup skips the test unless end-to-end tests are on, and installs the
// plugin (and packer-plugin-ansible when STRATA_ANSIBLE_PLUGIN names it)
// once per test binary.
func Setup(t *testing.T) *Env {
	t.Helper()
	if os.Getenv("STRATA_ACC") == "" {
		t.Skip("end-to-end test: set STRATA_ACC=1 (make test does)")
	}
	once.Do(func() {
		packer, plugin, cli := os.Getenv("STRATA_PACKER"), os.Getenv("STRATA_PLUGIN"), os.Getenv("STRATA_CLI")
		if packer == "" || plugin == "" || cli == "" {
			envErr = fmt.Errorf("STRATA_PACKER, STRATA_PLUGIN and STRATA_CLI must name bin/packer, bin/packer-plugin-strata and bin/strata (run make test)")
			return
		}
		dir, err := os.MkdirTemp("", "strata-acc-plugins-")
		if err != nil {
			envErr = err
			return
		}
		install := map[string]string{"github.com/strata-build/strata": plugin}
		if a := os.Getenv("STRATA_ANSIBLE_PLUGIN"); a != "" {
			install["github.com/hashicorp/ansible"] = a
		}
		for source, bin := range install {
			cmd := exec.Command(packer, "plugins", "install", "--path", bin, source)
			cmd.Env = append(os.Environ(), "PACKER_PLUGIN_PATH="+dir, "CHECKPOINT_DISABLE=1")
			if out, err := cmd.CombinedOutput(); err != nil {
				envErr = fmt.Errorf("packer plugins install %s: %v\n%s", source, err, out)
				return
			}
		}
		tmp, err := os.MkdirTemp("", "strata-acc-tmp-")
		if err != nil {
			envErr = err
			return
		}
		cache := os.Getenv("STRATA_TEST_CACHE")
		if cache == "" {
			cache = "/var/cache/strata-test/apt"
		}
		env = &Env{Packer: packer, PluginDir: dir, CLI: cli, CacheDir: cache, TmpDir: tmp}
	})
	if envErr != nil {
		t.Fatal(envErr)
	}
	return env
}

// Scratch is a temporary directory for a store. Its clean-up unmounts and
// stops whatever is left below it first, so removing it never reaches
// through a mount into the host.
func Scratch(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Cleanup(func() {
		if _, err := mount.CleanUnder(dir); err != nil {
			t.Errorf("cleaning %s: %v", dir, err)
		}
	})
	return dir
}

var (
	removeMu    sync.Mutex
	removeAfter []string
)

// RemoveAfter has Main remove dir (a build several of the package's tests
// share) once all tests have run.
func RemoveAfter(dir string) {
	removeMu.Lock()
	defer removeMu.Unlock()
	removeAfter = append(removeAfter, dir)
}

// Main runs the package's tests (call it from TestMain), then removes the
// plugin directory Setup made and the directories given to RemoveAfter,
// each of those only when nothing is left mounted below it.
func Main(m *testing.M) {
	code := m.Run()
	if env != nil {
		os.RemoveAll(env.PluginDir)
		if _, err := mount.CleanUnder(env.TmpDir); err == nil {
			os.RemoveAll(env.TmpDir)
		}
	}
	removeMu.Lock()
	for _, dir := range removeAfter {
		if _, err := mount.CleanUnder(dir); err == nil {
			os.RemoveAll(dir)
		}
	}
	removeMu.Unlock()
	os.Exit(code)
}

// Run is a finished command.
type Run struct {
	Out  string
	Code int
}

// Proc is a command started in its own process group, as a terminal would
// run it; the test's clean-up kills the group if it still runs. Its Run
// (Out and Code) is there once Done is closed.
type Proc struct {
	Run
	Cmd  *exec.Cmd
	Dir  string
	out  apt.Output // readable while it runs
	done chan struct{}
}

// Output is what the command wrote (stdout and stderr) so far.
func (p *Proc) Output() string { return p.out.String() }

// Done is closed once the command has finished.
func (p *Proc) Done() <-chan struct{} { return p.done }

// start starts cmd in its own process group.
func start(t *testing.T, cmd *exec.Cmd) *Proc {
	t.Helper()
	p := &Proc{Cmd: cmd, Dir: cmd.Dir, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = &p.out, &p.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		cmd.Wait()
		p.Out, p.Code = p.out.String(), cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	// Runs before the Scratch clean-ups registered earlier.
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	})
	return p
}

// Wait waits for the command to finish; after limit it kills its process
// group and fails the test.
func (p *Proc) Wait(t *testing.T, limit time.Duration) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(limit):
		syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		t.Fatalf("%s did not finish in %s:\n%s", strings.Join(p.Cmd.Args, " "), limit, p.Out)
	}
}

// WaitForFile waits (3 minutes at most) for a file the command makes, such
// as a provisioner's marker inside the chroot; it fails the test when the
// command ends first.
func (p *Proc) WaitForFile(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); err == nil {
			return
		}
		select {
		case <-p.done:
			t.Fatalf("the command ended before %s was there:\n%s", path, p.Out)
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatalf("%s never appeared:\n%s", path, p.Output())
}

func (e *Env) packer(dir string, env []string, args ...string) *exec.Cmd {
	cmd := exec.Command(e.Packer, args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "PACKER_PLUGIN_PATH="+e.PluginDir, "CHECKPOINT_DISABLE=1", "TMPDIR="+e.TmpDir), env...)
	return cmd
}

// PackerRun runs `packer ARGS` in dir, at most 15 minutes.
func (e *Env) PackerRun(t *testing.T, dir string, args ...string) *Run {
	t.Helper()
	return run(t, e.packer(dir, nil, args...), 15*time.Minute)
}

// Start starts `packer build -color=false` of template with vars in dir.
func (e *Env) Start(t *testing.T, dir, template string, vars map[string]string, args ...string) *Proc {
	t.Helper()
	return e.StartEnv(t, dir, template, vars, nil, args...)
}

// StartEnv is Start with env added to packer's environment (a parallel
// test can't set its own).
func (e *Env) StartEnv(t *testing.T, dir, template string, vars map[string]string, env []string, args ...string) *Proc {
	t.Helper()
	argv := append([]string{"build", "-color=false"}, args...)
	for k, v := range vars {
		argv = append(argv, "-var", k+"="+v)
	}
	return start(t, e.packer(dir, env, append(argv, template)...))
}

// Build runs `packer build -color=false` of template with vars in dir, at
// most 15 minutes.
func (e *Env) Build(t *testing.T, dir, template string, vars map[string]string, args ...string) *Proc {
	t.Helper()
	p := e.Start(t, dir, template, vars, args...)
	p.Wait(t, 15*time.Minute)
	return p
}

// Strata runs the strata CLI with extra environment entries.
func (e *Env) Strata(t *testing.T, env []string, args ...string) *Run {
	t.Helper()
	cmd := exec.Command(e.CLI, args...)
	cmd.Env = append(os.Environ(), env...)
	return run(t, cmd, 2*time.Minute)
}

func run(t *testing.T, cmd *exec.Cmd, limit time.Duration) *Run {
	t.Helper()
	p := start(t, cmd)
	p.Wait(t, limit)
	return &p.Run
}

// AssertClean: nothing mounted under dir and no process rooted in it.
func AssertClean(t *testing.T, dir string) {
	t.Helper()
	if ms, err := mount.Under(dir); err != nil || len(ms) > 0 {
		t.Errorf("mounts left under %s: %+v %v", dir, ms, err)
	}
	if pids, err := mount.RootedUnder(dir); err != nil || len(pids) > 0 {
		t.Errorf("chroot processes alive under %s: %v %v", dir, pids, err)
	}
}

// Shell runs a program (a script) with extra environment entries.
func (e *Env) Shell(t *testing.T, env []string, prog string, args ...string) *Run {
	t.Helper()
	cmd := exec.Command(prog, args...)
	cmd.Env = append(os.Environ(), env...)
	return run(t, cmd, 2*time.Minute)
}

// Fixture is the absolute path of test-fixtures/name in the test's package.
func Fixture(name string) string {
	p, _ := filepath.Abs(filepath.Join("test-fixtures", name))
	return p
}

// RunIn runs a program in dir and returns its output; it fails the test
// when the program fails.
func RunIn(t *testing.T, dir string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// AssertNoVM: no QEMU process whose command line names dir is alive.
func AssertNoVM(t *testing.T, dir string) {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		cmd := strings.ReplaceAll(string(b), "\x00", " ")
		if strings.Contains(cmd, "qemu-system") && strings.Contains(cmd, dir) {
			t.Errorf("a VM of the build is alive: %s: %s", filepath.Dir(p), cmd)
		}
	}
}

// AssertNoLoop: no loop device is backed by a file under dir.
func AssertNoLoop(t *testing.T, dir string) {
	t.Helper()
	out, _ := exec.Command("losetup", "-a", "-O", "BACK-FILE", "-n").Output()
	for _, l := range strings.Split(string(out), "\n") {
		if l = strings.TrimSpace(l); l != "" && strings.HasPrefix(l, dir) {
			t.Errorf("a loop device is left attached to %s", l)
		}
	}
}
