package chroot

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// TestStepResolvConfModes: copy-host gives the image the host's file for
// the build, bind-host mounts it (and its undo unmounts it), none does
// nothing; at a halt Cleanup puts the image's own file back.
func TestStepResolvConfModes(t *testing.T) {
	if asImageRoot(t) {
		return
	}
	for _, mode := range []string{"copy-host", "bind-host", "none"} {
		t.Run(mode, func(t *testing.T) {
			s := newStepTest(t, func(raw map[string]interface{}) { raw["resolv_conf"] = mode })
			s.mounted()
			p := filepath.Join(s.mp, "etc/resolv.conf")
			own := []byte("nameserver 127.0.0.53\n")
			os.WriteFile(p, own, 0o644)
			step := &stepResolvConf{}
			if s.run(step) != multistep.ActionContinue {
				t.Fatal(s.err())
			}
			got, _ := os.ReadFile(p)
			switch mode {
			case "copy-host":
				if string(got) != "nameserver 192.0.2.53\n" {
					t.Fatalf("during the build: %q, want the host's", got)
				}
				s.wantCalls()
			case "bind-host":
				s.wantCalls("mount bind " + p)
			case "none":
				if !bytes.Equal(got, own) || step.undo != nil {
					t.Fatalf("none changed the file (%q) or pushed an undo", got)
				}
				s.wantCalls()
			}
			s.state.Put(multistep.StateHalted, true)
			step.Cleanup(s.state)
			if mode == "bind-host" {
				s.wantCalls("unmount " + p)
			}
			if got, _ := os.ReadFile(p); !bytes.Equal(got, own) {
				t.Fatalf("after Cleanup: %q, want the image's own", got)
			}
		})
	}
}

// TestStepResolvConfHostWithout: a host without resolv.conf halts the
// build and pushes no undo.
func TestStepResolvConfHostWithout(t *testing.T) {
	s := newStepTest(t, nil)
	s.mounted()
	os.Remove(filepath.Join(s.host.root, "etc/resolv.conf"))
	step := &stepResolvConf{}
	if s.run(step) != multistep.ActionHalt || step.undo != nil || len(s.b.undos) != 0 {
		t.Fatalf("halted with %q, undo %v", s.err(), step.undo)
	}
}

// TestStepPolicyRcD: policy-rc.d forbids service starts for the build, and
// the image's own comes back; an image without /usr/sbin gets none.
func TestStepPolicyRcD(t *testing.T) {
	if asImageRoot(t) {
		return
	}
	s := newStepTest(t, nil)
	s.mounted()
	os.MkdirAll(filepath.Join(s.mp, "usr/sbin"), 0o755)
	p := filepath.Join(s.mp, "usr/sbin/policy-rc.d")
	step := &stepPolicyRcD{}
	if s.run(step) != multistep.ActionContinue {
		t.Fatal(s.err())
	}
	if got, _ := os.ReadFile(p); string(got) != policyRcD {
		t.Fatalf("policy-rc.d during the build: %q", got)
	}
	if len(s.b.undos) != 1 || s.b.undos[0] != step.undo {
		t.Fatalf("undos %v", s.b.undos)
	}
	step.Cleanup(s.state)
	if _, err := os.Lstat(p); !os.IsNotExist(err) || !step.undo.done {
		t.Fatalf("policy-rc.d stayed (%v) or the undo is not done", err)
	}

	bare := newStepTest(t, nil)
	bare.mounted()
	if bare.run(&stepPolicyRcD{}) != multistep.ActionContinue || len(bare.b.undos) != 0 {
		t.Fatalf("an image without /usr/sbin: %q, undos %v", bare.err(), bare.b.undos)
	}
	if got := entries(t, bare.mp); !slices.Equal(got, []string{"etc"}) {
		t.Fatalf("the image has %v", got)
	}
}

// TestStepPackageCacheAndAptCache: the cache runs for the build with its
// credentials in files only root reads; apt in the chroot is pointed at it
// through files on the build's /run; Cleanup stops it and removes the
// files. With the cache off, neither step does anything.
func TestStepPackageCacheAndAptCache(t *testing.T) {
	if asImageRoot(t) {
		return
	}
	s, cache := withPackageCache(t)
	if s.b.cache == nil {
		t.Fatal("no cache in the build state")
	}
	for _, p := range []string{cacheCAPath(s.b.cfg), cacheAptConfPath(s.b.cfg)} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v, want mode 0600", p, fi, err)
		}
	}
	s.mounted()
	if s.run(&stepAptCache{}) != multistep.ActionContinue {
		t.Fatal(s.err())
	}
	conf, err := os.ReadFile(filepath.Join(s.mp, aptCacheConfig))
	if err != nil || !strings.Contains(string(conf), s.b.cache.ProxyURL()) {
		t.Fatalf("the chroot's apt config %q (%v) does not name the cache", conf, err)
	}
	if fi, _ := os.Stat(filepath.Join(s.mp, aptCacheConfig)); fi.Mode().Perm() != 0o600 {
		t.Fatalf("apt.conf mode %v", fi.Mode())
	}
	s.wantCalls()
	cache.Cleanup(s.state)
	for _, p := range []string{cacheCAPath(s.b.cfg), cacheAptConfPath(s.b.cfg)} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Fatalf("%s stayed: %v", p, err)
		}
	}

	off := newStepTest(t, nil)
	off.mounted()
	if off.run(&stepPackageCache{}) != multistep.ActionContinue || off.run(&stepAptCache{}) != multistep.ActionContinue || off.b.cache != nil {
		t.Fatalf("the cache off: %q, cache %v", off.err(), off.b.cache)
	}
	if got := entries(t, off.mp); !slices.Equal(got, []string{"etc"}) {
		t.Fatalf("the image has %v", got)
	}
}

// TestStepCommunicator: the provisioners get a communicator on the image
// root (with the cache's APT_CONFIG when it runs), and the build.*
// variables MountPath and WorkDir.
func TestStepCommunicator(t *testing.T) {
	s := newStepTest(t, nil)
	s.mounted()
	if s.run(&stepCommunicator{}) != multistep.ActionContinue {
		t.Fatal(s.err())
	}
	comm := s.state.Get(stateCommunicator).(*Communicator)
	if comm.Root != s.b.root || comm.ChrootProg != "/usr/bin/chroot" || slices.ContainsFunc(comm.Env, func(e string) bool { return strings.HasPrefix(e, "APT_CONFIG=") }) {
		t.Fatalf("communicator %+v", comm)
	}
	gd := s.state.Get(stateGeneratedData).(map[string]interface{})
	if gd["MountPath"] != s.mp || gd["WorkDir"] != s.b.cfg.WorkDir {
		t.Fatalf("generated data %v", gd)
	}
}

// TestStepRemovePackages: an Essential package on the list halts the build
// before apt runs; one not installed is skipped; the rest are purged
// through the communicator.
func TestStepRemovePackages(t *testing.T) {
	status := "Package: base-files\nStatus: install ok installed\nEssential: yes\nVersion: 12\n\n" +
		"Package: nano\nStatus: install ok installed\nVersion: 7.2\n\n"
	for name, c := range map[string]struct {
		remove  []string
		halt    bool
		command string
	}{
		"essential":     {[]string{"nano", "base-files"}, true, ""},
		"not installed": {[]string{"vim"}, false, ""},
		"installed":     {[]string{"nano", "vim"}, false, "purge --auto-remove nano"},
	} {
		t.Run(name, func(t *testing.T) {
			s := newStepTest(t, func(raw map[string]interface{}) {
				raw["minimize"] = map[string]interface{}{"remove_packages": c.remove}
			})
			s.mounted()
			os.MkdirAll(filepath.Join(s.mp, "var/lib/dpkg"), 0o755)
			os.WriteFile(filepath.Join(s.mp, "var/lib/dpkg/status"), []byte(status), 0o644)
			comm := new(packersdk.MockCommunicator)
			s.state.Put(stateCommunicator, comm)
			// The shared indexes' overlays: taken down before apt runs.
			var indexesDown bool
			s.b.aptIndexes = s.b.pushUndo("package indexes", func(packersdk.Ui) error {
				if comm.StartCalled {
					t.Error("apt ran before the package indexes were taken down")
				}
				indexesDown = true
				return nil
			})
			a := s.run(&stepRemovePackages{})
			if indexesDown != (c.command != "") {
				t.Fatalf("package indexes taken down: %v; apt runs: %v", indexesDown, c.command != "")
			}
			if (a == multistep.ActionHalt) != c.halt {
				t.Fatalf("action %v, error %q", a, s.err())
			}
			if c.halt && !strings.Contains(s.err(), "base-files is Essential") {
				t.Fatalf("error %q", s.err())
			}
			if (c.command != "") != comm.StartCalled || c.command != "" && !strings.Contains(comm.StartCmd.Command, c.command) {
				t.Fatalf("apt ran: %v %+v, want %q", comm.StartCalled, comm.StartCmd, c.command)
			}
		})
	}
}

// withPackageCache is a build whose package cache runs (offline: no
// upstream), as stepPackageCache starts it.
func withPackageCache(t *testing.T) (*stepTest, *stepPackageCache) {
	t.Helper()
	s := newStepTest(t, func(raw map[string]interface{}) {
		raw["package_cache"] = map[string]interface{}{"enabled": true, "offline": true}
	})
	s.withLedger()
	if err := os.MkdirAll(s.b.cfg.PackageCache.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	cache := &stepPackageCache{}
	if s.run(cache) != multistep.ActionContinue {
		t.Fatal(s.err())
	}
	return s, cache
}
