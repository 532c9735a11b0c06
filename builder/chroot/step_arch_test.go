package chroot

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
)

const qemuAarch64Conf = `:qemu-aarch64:M::\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:/usr/libexec/qemu-binfmt/aarch64-binfmt-P:FPC` + "\n"

func archTest(t *testing.T, arch string) *stepTest {
	return newStepTest(t, func(raw map[string]interface{}) { raw["architecture"] = arch })
}

// TestStepArchNativeDoesNothing: the host's own architecture needs no
// emulator and touches nothing.
func TestStepArchNativeDoesNothing(t *testing.T) {
	s := archTest(t, "amd64")
	if s.runAll(&stepArch{}) {
		t.Fatal(s.err())
	}
	s.wantCalls()
}

// TestStepArchMountsRegistersAndUndoes: binfmt_misc not mounted and no
// handler, qemu-user-static installed: the step mounts it and registers
// the handler from the binfmt.d file; Cleanup undoes both.
func TestStepArchMountsRegistersAndUndoes(t *testing.T) {
	s := archTest(t, "arm64")
	os.WriteFile(filepath.Join(s.host.Binfmt().ConfDirs[0], "qemu-aarch64.conf"), []byte(qemuAarch64Conf), 0o644)
	step := &stepArch{}
	if s.run(step) != multistep.ActionContinue {
		t.Fatal(s.err())
	}
	s.wantCalls("binfmt mount", "binfmt register qemu-aarch64")
	if !step.lease.Handler.Fixed() {
		t.Fatalf("%+v", step.lease.Handler)
	}
	step.Cleanup(s.state)
	s.wantCalls("binfmt unregister qemu-aarch64", "binfmt unmount")
	if n := entries(t, s.host.Binfmt().Dir); len(n) != 0 {
		t.Fatalf("left in binfmt_misc: %v", n)
	}
}

// TestStepArchUsesTheHostsHandler: a registered F handler is used and left.
func TestStepArchUsesTheHostsHandler(t *testing.T) {
	s := archTest(t, "arm64")
	b := s.host.Binfmt()
	b.Mount(b.Dir)
	os.WriteFile(filepath.Join(b.Dir, "qemu-aarch64"), []byte("enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: POCF\n"), 0o644)
	s.wantCalls("binfmt mount")
	if s.runAll(&stepArch{}) {
		t.Fatal(s.err())
	}
	s.wantCalls()
}

// TestStepArchRefuses: a handler without F, and a host without
// qemu-user-static, halt with errors that say what to do, leaving the
// host as it was.
func TestStepArchRefuses(t *testing.T) {
	s := archTest(t, "arm64")
	b := s.host.Binfmt()
	b.Mount(b.Dir)
	os.WriteFile(filepath.Join(b.Dir, "qemu-aarch64"), []byte("enabled\ninterpreter /usr/bin/qemu-aarch64\nflags: OC\n"), 0o644)
	if !s.runAll(&stepArch{}) || !strings.Contains(s.err(), "no F flag") {
		t.Fatalf("want a halt about the F flag, have %q", s.err())
	}

	s = archTest(t, "riscv64")
	if !s.runAll(&stepArch{}) || !strings.Contains(s.err(), "install qemu-user-static") {
		t.Fatalf("want a halt naming qemu-user-static, have %q", s.err())
	}
	s.wantCalls("binfmt mount", "binfmt unmount")
}

// TestConfigArchitecture: the host's by default; a name Debian does not
// have is refused at Prepare, naming the option.
func TestConfigArchitecture(t *testing.T) {
	s := newStepTest(t, nil)
	if s.b.cfg.Architecture != "amd64" {
		t.Fatal(s.b.cfg.Architecture)
	}
	c := Config{host: newFakeHost(t.TempDir())}
	_, err := c.Prepare(map[string]interface{}{"bootstrap": map[string]interface{}{"suite": "bookworm"}, "architecture": "aarch64", "store_dir": t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), `architecture: "aarch64" is not a Debian architecture`) {
		t.Fatal(err)
	}
	_, err = c.Prepare(map[string]interface{}{"bootstrap": map[string]interface{}{"suite": "bookworm"}, "architecture": "riscv64", "formats": []string{"disk"}, "store_dir": t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "the disk output boots amd64 and arm64 images only") {
		t.Fatal(err)
	}
}
