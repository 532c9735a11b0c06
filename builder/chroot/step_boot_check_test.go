package chroot

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/strata-build/packer-plugin-strata/boot"
	"github.com/strata-build/packer-plugin-strata/export"
)

// fakeBootQEMU plays a console: the kernel's first line, then systemd
// reaching multi-user.target and its startup summary (then it stays until
// killed), or, with a file "panic" beside it, a kernel panic (then it ends,
// as QEMU does with -no-reboot). It records its arguments.
const fakeBootQEMU = `#!/bin/sh
dir=$(dirname "$0")
echo "$@" > "$dir/args"
echo '[    0.000000] Linux version 6.1.0-28-cloud-amd64'
if [ -e "$dir/panic" ]; then
  echo '[    2.000000] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100'
  exit 0 # -no-reboot: QEMU ends
fi
echo '[  OK  ] Reached target multi-user.target - Multi-User System.'
echo '[    9.000000] systemd[1]: Startup finished in 2.5s (kernel) + 3s (initrd) + 4s (userspace) = 9.5s.'
exec sleep 1000
`

// bootCheckTest is a build whose export wrote a disk, with the boot check on
// and QEMU and the firmware of the fake host being fakes.
func bootCheckTest(t *testing.T) (*stepTest, string) {
	s := newStepTest(t, nil).withLedger() // the ledger learns of QEMU's process group
	s.b.cfg.Bootcheck = &BootcheckConfig{Enabled: true, Accel: boot.AccelTCG, Expect: boot.DefaultExpect, Memory: 256, timeout: 20 * time.Second}
	bin := t.TempDir()
	qemu := filepath.Join(bin, "qemu")
	if err := os.WriteFile(qemu, []byte(fakeBootQEMU), 0o755); err != nil {
		t.Fatal(err)
	}
	s.host.paths = map[string]string{boot.DefaultQEMU: qemu}
	ovmf := filepath.Join(s.host.Root(), "usr/share/OVMF")
	os.MkdirAll(ovmf, 0o755)
	for _, f := range []string{"OVMF_CODE_4M.fd", "OVMF_VARS_4M.fd"} {
		os.WriteFile(filepath.Join(ovmf, f), []byte(f), 0o644)
	}
	out := s.b.cfg.OutputDir
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	disk := filepath.Join(out, export.FileName("disk"))
	os.WriteFile(disk, []byte("a disk"), 0o644)
	s.b.artifact = &Artifact{OutputDir: out, Outputs: []export.Output{{Format: "disk", Path: disk}}}
	s.b.artifact.manifest.ImageID = "sha256:" + strings.Repeat("a", 64)
	if err := export.WriteManifest(out, &s.b.artifact.manifest); err != nil {
		t.Fatal(err)
	}
	return s, bin
}

// TestStepBootCheckRecordsTheBoot: the disk output boots with the host's
// QEMU and firmware (through the host seam), read-only (snapshot), and
// artifact.json records the result.
func TestStepBootCheckRecordsTheBoot(t *testing.T) {
	s, bin := bootCheckTest(t)
	step := &stepBootCheck{}
	if s.run(step) != multistep.ActionContinue {
		t.Fatal(s.err())
	}
	args, _ := os.ReadFile(filepath.Join(bin, "args"))
	for _, want := range []string{"disk.raw", "snapshot=on", "OVMF_CODE_4M.fd", "accel=tcg"} {
		if !strings.Contains(string(args), want) {
			t.Errorf("QEMU ran without %q: %s", want, args)
		}
	}
	m, err := export.ReadManifest(s.b.cfg.OutputDir)
	if err != nil {
		t.Fatal(err)
	}
	if bc := m.BootCheck; bc == nil || !bc.Passed || bc.Disk != "disk.raw" || bc.Accel != "tcg" || bc.Expect != boot.DefaultExpect {
		t.Fatalf("artifact.json boot_check %+v", m.BootCheck)
	}
	step.Cleanup(s.state)
	s.wantCalls() // nothing mounted, nothing to undo
}

// TestStepBootCheckArm64: an arm64 build's disk boots with the host's
// qemu-system-aarch64 and AAVMF (through the host seam) on the virt
// machine, never with amd64's QEMU or OVMF.
func TestStepBootCheckArm64(t *testing.T) {
	s, bin := bootCheckTest(t)
	s.b.cfg.Architecture = "arm64"
	s.host.paths = map[string]string{"qemu-system-aarch64": filepath.Join(bin, "qemu")}
	aavmf := filepath.Join(s.host.Root(), "usr/share/AAVMF")
	os.MkdirAll(aavmf, 0o755)
	for _, f := range []string{"AAVMF_CODE.fd", "AAVMF_VARS.fd"} {
		os.WriteFile(filepath.Join(aavmf, f), []byte(f), 0o644)
	}
	if s.run(&stepBootCheck{}) != multistep.ActionContinue {
		t.Fatal(s.err())
	}
	args, _ := os.ReadFile(filepath.Join(bin, "args"))
	for _, want := range []string{"-machine virt,accel=tcg", "AAVMF_CODE.fd", "disk.raw", "snapshot=on"} {
		if !strings.Contains(string(args), want) {
			t.Errorf("QEMU ran without %q: %s", want, args)
		}
	}
	if strings.Contains(string(args), "OVMF_CODE") || strings.Contains(string(args), "q35") {
		t.Errorf("an arm64 disk booted with amd64's machine or firmware: %s", args)
	}
	// Without qemu-system-aarch64 the step halts naming it.
	s, _ = bootCheckTest(t)
	s.b.cfg.Architecture = "arm64"
	s.host.missing["qemu-system-aarch64"] = true
	if s.run(&stepBootCheck{}) != multistep.ActionHalt || !strings.Contains(s.err(), "qemu-system-aarch64") {
		t.Errorf("no qemu-system-aarch64: %s", s.err())
	}
}

// TestStepBootCheckPanicHalts: a kernel that panics halts the build with
// the console's tail; artifact.json records no passed boot.
func TestStepBootCheckPanicHalts(t *testing.T) {
	s, bin := bootCheckTest(t)
	os.WriteFile(filepath.Join(bin, "panic"), nil, 0o644)
	if s.run(&stepBootCheck{}) != multistep.ActionHalt {
		t.Fatal("a kernel panic passed the boot check")
	}
	for _, want := range []string{"kernel panic", "Attempted to kill init", "console lines"} {
		if !strings.Contains(s.err(), want) {
			t.Errorf("the error lacks %q: %s", want, s.err())
		}
	}
	if m, err := export.ReadManifest(s.b.cfg.OutputDir); err != nil || m.BootCheck != nil {
		t.Fatalf("artifact.json after a failed boot: %+v, %v", m, err)
	}
}

// TestStepBootCheckOff: with the boot check off the step does nothing.
func TestStepBootCheckOff(t *testing.T) {
	s := newStepTest(t, nil)
	if s.run(&stepBootCheck{}) != multistep.ActionContinue {
		t.Fatal(s.err())
	}
	s.wantCalls()
}
