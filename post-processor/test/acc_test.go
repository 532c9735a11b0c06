package test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	catalogdb "github.com/strata-build/packer-plugin-strata/catalog"
	_ "github.com/strata-build/packer-plugin-strata/catalog/sqlite"
	"github.com/strata-build/packer-plugin-strata/export"
	"github.com/strata-build/packer-plugin-strata/internal/acctest"
	"github.com/strata-build/packer-plugin-strata/internal/mount"
)

func TestMain(m *testing.M) { acctest.Main(m) }

func checksVar(t *testing.T, cs ...map[string]string) string {
	b, err := json.Marshal(cs)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// assertNoTestMounts: no strata-test overlay or tmpfs is left anywhere.
func assertNoTestMounts(t *testing.T) {
	t.Helper()
	all, err := mount.Table()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range all {
		// Under the host's /tmp or the TMPDIR acctest gives packer.
		if strings.Contains(m.MountPoint, "/strata-test-") {
			t.Errorf("a strata-test mount is left: %+v", m)
		}
	}
}

// TestAccContainer: one bookworm minbase (with bats) built and tested in
// container mode (a command, a bats file, an executable, a check that
// writes), registered with its evidence; its tarball then rebuilt twice in
// parallel with a failing check: on_failure = "fail" registers nothing and
// prints the check's output, "register" registers a version that a policy
// requiring tests refuses to promote (exit 4).
func TestAccContainer(t *testing.T) {
	e := acctest.Setup(t)
	t.Parallel() // beside TestAccVM's boot
	store := acctest.Scratch(t)
	url := "sqlite://" + filepath.Join(store, "catalog.db")
	fixture, _ := filepath.Abs("test-fixtures/test.pkr.hcl")
	tests, _ := filepath.Abs("test-fixtures/tests")
	dir := t.TempDir()
	vars := map[string]string{"store_dir": store, "cache_dir": e.CacheDir, "catalog": url, "name": "tested"}
	r := e.Build(t, dir, fixture, vars,
		"-var", `include=["bats"]`,
		"-var", `inline=["echo inside > /etc/strata-test-marker"]`,
		"-var", "checks="+checksVar(t,
			map[string]string{"name": "os-release", "command": "cat /etc/os-release", "output_matches": "bookworm"},
			map[string]string{"name": "bats", "scripts": tests + "/*.bats"},
			map[string]string{"name": "exe", "scripts": tests + "/hostname.sh"},
			map[string]string{"name": "exit-code", "command": "exit 3", "exit_code": "3"},
			// A daemon that leaves the check's process group: killed
			// before the overlay is taken down.
			map[string]string{"name": "daemon", "command": "setsid sleep 600.4242 </dev/null >/dev/null 2>&1 & echo started"},
			// The checks share one throwaway overlay: this one goes last.
			map[string]string{"name": "writes-vanish", "command": "touch /usr/strata-test-wrote && rm /etc/strata-test-marker && echo wrote"},
		))
	assertNoTestMounts(t)
	if r.Code != 0 {
		t.Fatalf("a passing container-mode run: exit %d\n%s", r.Code, r.Out)
	}
	for _, want := range []string{"PASSED: 6 passed, 0 failed", "Evidence tests: passed (6 passed, 0 failed, 0 skipped)", "Registered tested@1.0.0"} {
		if !strings.Contains(r.Out, want) {
			t.Errorf("the build does not say %q:\n%s", want, r.Out)
		}
	}
	out := filepath.Join(dir, "output-t")
	m, err := export.ReadManifest(out)
	if err != nil {
		t.Fatal(err)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), "600.4242") {
			t.Errorf("a check's daemon outlived the run: %s %q", p, b)
		}
	}
	// Testing changed nothing: the outputs still match their sha256, and
	// the check's writes are in no layer.
	if err := export.VerifyOutputs(context.Background(), out, m); err != nil {
		t.Errorf("the outputs after testing: %v", err)
	}
	sum := exec.Command("sha256sum", "-c", "rootfs.tar.zst.sha256")
	sum.Dir = out
	if b, err := sum.CombinedOutput(); err != nil {
		t.Errorf("sha256sum -c: %v\n%s", err, b)
	}
	if hits, _ := filepath.Glob(filepath.Join(store, "layers", "*", "*", "usr", "strata-test-wrote")); len(hits) > 0 {
		t.Errorf("a check's write reached the store: %v", hits)
	}
	if b, err := exec.Command("sh", "-c", "tar -I zstd -xOf "+filepath.Join(out, "rootfs.tar.zst")+" ./etc/strata-test-marker").CombinedOutput(); err != nil || string(b) != "inside\n" {
		t.Errorf("the image's marker after testing: %q %v", b, err)
	}
	var junit, report []byte
	if junit, err = os.ReadFile(filepath.Join(out, "tests.junit.xml")); err != nil || !strings.Contains(string(junit), `<testcase name="bats/image.bats"`) {
		t.Errorf("tests.junit.xml: %v\n%s", err, junit)
	}
	if report, err = os.ReadFile(filepath.Join(out, "tests.json")); err != nil || !strings.Contains(string(report), "ok 2 the root file system is not the host") {
		t.Errorf("tests.json (bats's TAP output): %v\n%s", err, report)
	}
	c, err := catalogdb.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	v, err := c.Get(context.Background(), "tested", "1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Evidence) != 1 || v.Evidence[0].Kind != "tests" || !v.Evidence[0].Passed || v.Evidence[0].Counts.Passed != 6 || v.Evidence[0].ReportSHA256 == "" {
		t.Errorf("the registered evidence: %+v", v.Evidence)
	}

	archive := filepath.Join(out, "rootfs.tar.zst")
	failing := checksVar(t, map[string]string{"name": "nginx-config", "command": "echo 'nginx: [emerg] unknown directive \"sevrer\"' >&2; exit 1"},
		map[string]string{"name": "fine", "command": "true"})
	t.Run("fail", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		v := map[string]string{"store_dir": store, "cache_dir": e.CacheDir, "catalog": url, "name": "failing", "archive": archive, "work_dir": filepath.Join(dir, "work")}
		r := e.Build(t, dir, fixture, v, "-var", "checks="+failing)
		if r.Code == 0 {
			t.Fatalf("a failing check passed the build:\n%s", r.Out)
		}
		for _, want := range []string{"1 of 2 check(s) failed", "check nginx-config (command): exit code 1, want 0", `unknown directive "sevrer"`} {
			if !strings.Contains(r.Out, want) {
				t.Errorf("the failure does not say %q:\n%s", want, r.Out)
			}
		}
		if strings.Contains(r.Out, "Registered failing") {
			t.Errorf("strata-catalog ran after a failed test:\n%s", r.Out)
		}
	})
	t.Run("register", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		v := map[string]string{"store_dir": store, "cache_dir": e.CacheDir, "catalog": url, "name": "inspect", "archive": archive, "on_failure": "register", "work_dir": filepath.Join(dir, "work")}
		r := e.Build(t, dir, fixture, v, "-var", "checks="+failing)
		if !strings.Contains(r.Out, "Registered inspect@1.0.0") || !strings.Contains(r.Out, "Evidence tests: FAILED") {
			t.Fatalf("on_failure = register: exit %d\n%s", r.Code, r.Out)
		}
		env := []string{"STRATA_CATALOG=" + url, "STRATA_HOME=" + store}
		if r := e.Strata(t, env, "policy", "set", "inspect", "production", "--require", "tests"); r.Code != 0 {
			t.Fatalf("policy set: %s", r.Out)
		}
		promote := e.Strata(t, env, "promote", "inspect@1.0.0", "production")
		if promote.Code != 4 || !strings.Contains(promote.Out, "tests") {
			t.Errorf("promoting a version with failed tests: exit %d\n%s", promote.Code, promote.Out)
		}
	})
	t.Cleanup(func() { assertNoTestMounts(t) })
}

// TestAccVM: a bookworm with a kernel, systemd and a busybox web server
// as a systemd service, exported as a disk and tested in vm mode under
// TCG (the one boot make test spends here): a service active, a port
// listening, an HTTP answer (through bash's /dev/tcp: the image has no
// curl or wget), a command; registered with the evidence and its boot
// time; the disk unchanged.
func TestAccVM(t *testing.T) {
	e := acctest.Setup(t)
	t.Parallel()
	store := acctest.Scratch(t)
	url := "sqlite://" + filepath.Join(store, "catalog.db")
	fixture, _ := filepath.Abs("test-fixtures/test.pkr.hcl")
	dir := t.TempDir()
	vars := map[string]string{"store_dir": store, "cache_dir": e.CacheDir, "catalog": url, "name": "server", "mode": "vm"}
	r := e.Build(t, dir, fixture, vars,
		"-var", `include=["linux-image-cloud-amd64","systemd-sysv","busybox"]`,
		"-var", `formats=["disk","tar.zst"]`,
		"-var", `inline=["mkdir -p /srv/www && echo hello from the guest > /srv/www/index.html", "printf '[Unit]\nDescription=web\n[Service]\nExecStart=/bin/busybox httpd -f -p 8080 -h /srv/www\n[Install]\nWantedBy=multi-user.target\n' > /etc/systemd/system/web.service", "ln -s /etc/systemd/system/web.service /etc/systemd/system/multi-user.target.wants/web.service"]`,
		"-var", "checks="+checksVar(t,
			map[string]string{"name": "web-service", "service": "web"},
			map[string]string{"name": "web-port", "listening": "tcp:8080"},
			map[string]string{"name": "web-page", "http": "http://127.0.0.1:8080/", "output_matches": "hello from the guest"},
			map[string]string{"name": "kernel", "command": "uname -r", "output_matches": "cloud-amd64"},
		))
	if r.Code != 0 {
		t.Fatalf("a passing vm-mode run: exit %d\n%s", r.Code, r.Out)
	}
	for _, want := range []string{"PASSED: 4 passed, 0 failed", "vm mode, tcg, boot", "Registered server@1.0.0"} {
		if !strings.Contains(r.Out, want) {
			t.Errorf("the build does not say %q:\n%s", want, r.Out)
		}
	}
	out := filepath.Join(dir, "output-t")
	sum := exec.Command("sha256sum", "-c", "disk.raw.sha256")
	sum.Dir = out
	if b, err := sum.CombinedOutput(); err != nil {
		t.Errorf("the disk after the test boot: %v\n%s", err, b)
	}
	c, err := catalogdb.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	v, err := c.Get(context.Background(), "server", "1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Evidence) != 1 || !v.Evidence[0].Passed || v.Evidence[0].Counts.Passed != 4 || v.Evidence[0].BootTimeMS <= 0 {
		t.Errorf("the registered evidence: %+v", v.Evidence)
	}
	assertNoTestVM(t)

	// Slow: a second boot of the same tree, with a script shipped in on
	// the second disk and a failing check, on_failure = "register".
	t.Run("script-and-failure", func(t *testing.T) {
		acctest.Slow(t)
		tests, _ := filepath.Abs("test-fixtures/tests")
		dir := t.TempDir()
		v := map[string]string{"store_dir": store, "cache_dir": e.CacheDir, "catalog": url, "name": "server-inspect", "mode": "vm",
			"archive": filepath.Join(out, "rootfs.tar.zst"), "on_failure": "register"}
		r := e.Build(t, dir, fixture, v, "-var", `formats=["disk"]`, "-var", "checks="+checksVar(t,
			map[string]string{"name": "exe", "scripts": tests + "/hostname.sh"},
			map[string]string{"name": "ghost", "service": "ghost"},
		))
		assertNoTestVM(t)
		for _, want := range []string{"FAILED: 1 passed, 1 failed", "check ghost (service)", "ghost.service is not enabled", "Registered server-inspect@1.0.0", "Evidence tests: FAILED"} {
			if !strings.Contains(r.Out, want) {
				t.Errorf("vm mode with a failing check does not say %q:\n%s", want, r.Out)
			}
		}
		if b, err := os.ReadFile(filepath.Join(dir, "output-t", "tests.json")); err != nil || !strings.Contains(string(b), "ran as uid 0 in Debian GNU/Linux 12") {
			t.Errorf("the script's output from the guest: %v\n%s", err, b)
		}
	})
}

// assertNoTestVM: no QEMU of strata-test is alive.
func assertNoTestVM(t *testing.T) {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), "strata-test-vm-") {
			t.Errorf("a test VM is alive: %s", p)
		}
	}
}
