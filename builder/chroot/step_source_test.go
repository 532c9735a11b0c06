package chroot

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
)

// TestStepBootstrapRunsMmdebstrap: mmdebstrap runs on the host into the
// image root with the merged-/usr hooks the host has, and what it copied of
// the host (resolv.conf) is dropped while the image's own files stay.
func TestStepBootstrapRunsMmdebstrap(t *testing.T) {
	s := newStepTest(t, nil)
	s.mounted()
	hooks := filepath.Join(s.host.root, mergedUsrHooks)
	os.MkdirAll(hooks, 0o755)
	os.WriteFile(filepath.Join(s.host.root, "etc/hostname"), []byte("buildhost\n"), 0o644)
	s.host.run = func(cmd *exec.Cmd) error {
		// What mmdebstrap leaves: the host's resolv.conf, a hostname of the
		// image's own.
		hostResolv, _ := os.ReadFile(filepath.Join(s.host.root, "etc/resolv.conf"))
		os.WriteFile(filepath.Join(s.mp, "etc/resolv.conf"), hostResolv, 0o644)
		return os.WriteFile(filepath.Join(s.mp, "etc/hostname"), []byte("image\n"), 0o644)
	}
	if a := s.run(&stepBootstrap{}); a != multistep.ActionContinue {
		t.Fatal(s.err())
	}
	if len(s.host.calls) != 1 {
		t.Fatalf("calls %v: want one mmdebstrap", s.host.calls)
	}
	args := strings.Fields(s.host.calls[0])
	if args[1] != "mmdebstrap" || !slices.Contains(args, "--hook-dir="+hooks) || !slices.Contains(args, "--variant=minbase") ||
		!slices.Equal(args[len(args)-3:], []string{"bookworm", s.mp, "http://mirror.test/debian"}) {
		t.Fatalf("mmdebstrap command line: %v", args)
	}
	if got := entries(t, filepath.Join(s.mp, "etc")); !slices.Equal(got, []string{"hostname"}) {
		t.Fatalf("the image's /etc has %v: want the host's resolv.conf dropped, its own hostname kept", got)
	}
}

// TestStepBootstrapFails: a failed mmdebstrap halts the build.
func TestStepBootstrapFails(t *testing.T) {
	s := newStepTest(t, nil)
	s.mounted()
	s.host.run = func(*exec.Cmd) error { return errInjected }
	if s.run(&stepBootstrap{}) != multistep.ActionHalt || !strings.Contains(s.err(), "mmdebstrap failed") {
		t.Fatalf("want a halt naming mmdebstrap, have %q", s.err())
	}
}

// TestStepExtractArchive: tar unpacks source_archive into the image root on
// the host; its failure halts the build, naming the option.
func TestStepExtractArchive(t *testing.T) {
	archive := filepath.Join(t.TempDir(), "rootfs.tar")
	os.WriteFile(archive, []byte("not read: tar is the fake host's"), 0o644)
	for _, fail := range []bool{false, true} {
		s := newStepTest(t, func(raw map[string]interface{}) {
			delete(raw, "bootstrap")
			raw["source_archive"] = archive
		})
		s.mounted()
		s.host.run = func(cmd *exec.Cmd) error {
			if fail {
				return errInjected
			}
			return os.WriteFile(filepath.Join(s.mp, "etc/os-release"), []byte("ID=test\n"), 0o644)
		}
		a := s.run(&stepExtractArchive{})
		want := "run tar --extract --file " + archive + " --directory " + s.mp
		if len(s.host.calls) != 1 || !strings.HasPrefix(s.host.calls[0], want) {
			t.Fatalf("calls %v: want %q", s.host.calls, want)
		}
		if fail != (a == multistep.ActionHalt) || fail && !strings.Contains(s.err(), "source_archive: extracting") {
			t.Fatalf("fail %v: action %v, error %q", fail, a, s.err())
		}
	}
}

// TestStepHostCommands: each command is rendered, wrapped and run on the
// host with MOUNT_PATH in its environment, in order; the first that fails
// halts the build and the rest do not run.
func TestStepHostCommands(t *testing.T) {
	s := newStepTest(t, func(raw map[string]interface{}) {
		raw["pre_mount_commands"] = []string{"echo {{ .MountPath }}", "false", "echo never"}
		raw["command_wrapper"] = "sudo {{ .Command }}"
	})
	s.withLedger()
	var env []string
	s.host.run = func(cmd *exec.Cmd) error {
		env = cmd.Env
		if cmd.Args[len(cmd.Args)-1] == "sudo false" {
			return errInjected
		}
		return nil
	}
	step := &stepHostCommands{option: "pre_mount_commands", commands: func(c *Config) []string { return c.PreMountCommands }}
	if s.run(step) != multistep.ActionHalt || !strings.Contains(s.err(), "pre_mount_commands[1] failed") {
		t.Fatalf("want a halt at pre_mount_commands[1], have %q", s.err())
	}
	s.wantCalls("run /bin/sh -c sudo echo "+s.mp, "run /bin/sh -c sudo false")
	if !slices.Contains(env, "MOUNT_PATH="+s.mp) {
		t.Fatalf("environment %v lacks MOUNT_PATH", env)
	}
	none := &stepHostCommands{option: "post_mount_commands", commands: func(c *Config) []string { return c.PostMountCommands }}
	if s.run(none) != multistep.ActionContinue {
		t.Fatal("no commands halted")
	}
	s.wantCalls()
}
