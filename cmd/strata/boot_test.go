package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeBootQEMU plays a console: FAKE_BOOT=ok reaches multi-user.target,
// anything else panics.
const fakeBootQEMU = `#!/bin/bash
echo '[    0.000000] Linux version 6.1.0-28-cloud-amd64'
if [ "$FAKE_BOOT" = ok ]; then
  echo '[  OK  ] Reached target multi-user.target - Multi-User System.'
  echo 'systemd[1]: Startup finished in 2s (kernel) + 3.5s (initrd) + 10s (userspace) = 15.5s.'
else
  echo 'Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100'
fi
exec sleep 1000
`

func TestCLIBoot(t *testing.T) {
	dir := t.TempDir()
	qemu := filepath.Join(dir, "qemu")
	disk := filepath.Join(dir, "disk.raw")
	os.WriteFile(qemu, []byte(fakeBootQEMU), 0o755)
	os.WriteFile(disk, []byte("disk"), 0o644)
	fw := filepath.Join(dir, "OVMF_CODE.fd")
	os.WriteFile(fw, nil, 0o644)
	c := cli{t: t, url: "sqlite://" + filepath.Join(dir, "catalog.db")}

	t.Setenv("FAKE_BOOT", "ok")
	out, errs, code := c.run("--json", "boot", "--qemu", qemu, "--firmware", fw, "--accel", "tcg", disk)
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, out, errs)
	}
	var r bootResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err, out)
	}
	if !r.Passed || r.Accel != "tcg" || r.BootTimeMS != 15500 || r.BootTimeSource != "systemd" || !strings.Contains(r.Matched, "multi-user.target") {
		t.Errorf("result %+v", r)
	}
	out, _, code = c.run("boot", "--qemu", qemu, "--firmware", fw, "--accel", "tcg", disk)
	if code != 0 || !strings.Contains(out, "accel") || !strings.Contains(out, "tcg") || !strings.Contains(out, "15.5s") {
		t.Errorf("exit %d, table:\n%s", code, out)
	}

	t.Setenv("FAKE_BOOT", "panic")
	out, errs, code = c.run("boot", "--qemu", qemu, "--firmware", fw, "--accel", "tcg", disk)
	if code != 1 || !strings.Contains(errs, "kernel panic") || !strings.Contains(errs, "  Kernel panic - not syncing: Attempted to kill init!") ||
		!strings.Contains(errs, "hint: strata boot --console "+disk) {
		t.Errorf("exit %d, stdout %q, stderr:\n%s", code, out, errs)
	}
	out, _, code = c.run("--json", "boot", "--qemu", qemu, "--firmware", fw, "--accel", "tcg", disk)
	var e jsonError
	if err := json.Unmarshal([]byte(out), &e); err != nil || code != 1 || e.Code != 1 || !strings.Contains(e.Message, "Attempted to kill init") {
		t.Errorf("exit %d, json error %q (%v)", code, out, err)
	}

	for _, bad := range [][]string{
		{"boot", "--accel", "hvf", disk},
		{"boot", "--timeout", "0s", disk},
		{"boot", filepath.Join(dir, "missing.raw")},
		{"boot"},
	} {
		if _, _, code := c.run(bad...); code != 2 {
			t.Errorf("strata %s: exit %d, want 2", strings.Join(bad, " "), code)
		}
	}
}
