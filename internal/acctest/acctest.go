// Package acctest runs end-to-end tests through the real bin/packer with
// this plugin installed by `packer plugins install --path`, as `make test`
// sets them up (STRATA_ACC=1, STRATA_PACKER, STRATA_PLUGIN, STRATA_CLI).
package acctest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

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
		cache := os.Getenv("STRATA_TEST_CACHE")
		if cache == "" {
			cache = "/var/cache/strata-test/apt"
		}
		env = &Env{Packer: packer, PluginDir: dir, CLI: cli, CacheDir: cache}
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

// Cleanup removes the plugin directory Setup made; call it from TestMain.
func Cleanup() {
	if env != nil {
		os.RemoveAll(env.PluginDir)
	}
}

// Run is a finished command.
type Run struct {
	Out  string
	Code int
}

// PackerRun runs `packer ARGS` in dir (its own process group, as a terminal
// would), at most 15 minutes.
func (e *Env) PackerRun(t *testing.T, dir string, args ...string) *Run {
	t.Helper()
	cmd := exec.Command(e.Packer, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PACKER_PLUGIN_PATH="+e.PluginDir, "CHECKPOINT_DISABLE=1")
	return run(t, cmd, 15*time.Minute)
}

// Build runs `packer build -color=false` of template with vars in dir.
func (e *Env) Build(t *testing.T, dir, template string, vars map[string]string, args ...string) *Run {
	t.Helper()
	argv := append([]string{"build", "-color=false"}, args...)
	for k, v := range vars {
		argv = append(argv, "-var", k+"="+v)
	}
	return e.PackerRun(t, dir, append(argv, template)...)
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
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(limit):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		t.Fatalf("%s did not finish in %s:\n%s", strings.Join(cmd.Args, " "), limit, out.String())
	}
	return &Run{Out: out.String(), Code: cmd.ProcessState.ExitCode()}
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
