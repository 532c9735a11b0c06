package test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/strata-build/packer-plugin-strata/export"
)

func configure(t *testing.T, raw map[string]interface{}) (*PostProcessor, error) {
	t.Helper()
	var p PostProcessor
	return &p, p.Configure(raw)
}

func checks(cs ...map[string]interface{}) []map[string]interface{} { return cs }

func TestConfigCollectsEveryError(t *testing.T) {
	_, err := configure(t, map[string]interface{}{
		"mode": "docker", "on_failure": "ignore", "timeout": "soon", "kind": "Bad Kind", "memory": 3, "accel": "hvf",
		"check": checks(
			map[string]interface{}{"command": "true"},
			map[string]interface{}{"name": "two", "command": "true", "service": "nginx"},
			map[string]interface{}{"name": "two", "output_matches": "(", "command": "x"},
			map[string]interface{}{"name": "l", "listening": "sctp:80"},
			map[string]interface{}{"name": "h", "http": "ftp://x/", "status": 42},
			map[string]interface{}{"name": "s", "scripts": []string{"no-such-dir/*.bats"}},
			map[string]interface{}{"name": "e", "service": "x", "exit_code": 3, "timeout": "-1s"},
		),
	})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{`mode: "docker"`, `on_failure: "ignore"`, `timeout: "soon"`, `kind: "Bad Kind"`, "memory: 3", `accel: "hvf"`,
		"check[0]: name is required", "give exactly one of", "another check has that name", "output_matches: error parsing",
		`listening "sctp:80"`, `http "ftp://x/"`, "status 42", "matches no file", "exit_code goes with command", `check "e": timeout: "-1s"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the errors do not say %q:\n%v", want, err)
		}
	}
}

func TestConfigDefaultsAndContainerLimits(t *testing.T) {
	p, err := configure(t, map[string]interface{}{"check": checks(map[string]interface{}{"name": "a", "command": "true"})})
	if err != nil {
		t.Fatal(err)
	}
	c := p.config
	if c.Mode != ModeContainer || c.OnFailure != OnFailureFail || c.Kind != "tests" || c.ReportName != "tests" || c.timeout != DefaultTimeout || c.Checks[0].timeout != DefaultCheckTimeout {
		t.Errorf("defaults: %+v", c)
	}
	_, err = configure(t, map[string]interface{}{"check": checks(
		map[string]interface{}{"name": "l", "listening": "tcp:80"},
		map[string]interface{}{"name": "h", "http": "http://127.0.0.1/"})})
	if err == nil || strings.Count(err.Error(), `needs mode = "vm"`) != 2 {
		t.Errorf("listening and http in container mode: %v", err)
	}
	if _, err := configure(t, map[string]interface{}{"mode": "vm", "check": checks(
		map[string]interface{}{"name": "l", "listening": "tcp:80"},
		map[string]interface{}{"name": "h", "http": "http://127.0.0.1:8080/x", "status": 404, "output_matches": "gone"})}); err != nil {
		t.Errorf("vm mode: %v", err)
	}
}

// runHost runs the generated runner with the host's /bin/sh (command
// checks only: the runner is the same in every mode).
func runHost(t *testing.T, cases []testCase) []string {
	t.Helper()
	dir := t.TempDir()
	if err := writeJob(dir, cases); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/bin/sh", filepath.Join(dir, "run.sh"), "container")
	cmd.Env = append(os.Environ(), "STRATA_TEST_DIR="+dir)
	before, _ := filepath.Glob("/tmp/strata-test.*")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("runner: %v\n%s", err, out)
	}
	// The runner's scratch dir goes with it (on the host here; in the
	// image's /tmp otherwise).
	if after, _ := filepath.Glob("/tmp/strata-test.*"); len(after) > len(before) {
		t.Errorf("the runner left its scratch dir behind: %v", after)
	}
	return strings.Split(string(out), "\n")
}

func TestRunnerAndJudging(t *testing.T) {
	p, err := configure(t, map[string]interface{}{"check_timeout": "5s", "check": checks(
		map[string]interface{}{"name": "ok", "command": "echo hello; echo err >&2", "output_matches": "hello\\s+err"},
		map[string]interface{}{"name": "exit3", "command": "exit 3", "exit_code": 3},
		map[string]interface{}{"name": "wrong", "command": "printf 'line one\\n\\001binary'; exit 1"},
		map[string]interface{}{"name": "nomatch", "command": "echo bye", "output_matches": "^hello"},
		map[string]interface{}{"name": "slow", "command": "sleep 30", "timeout": "1s"},
	)})
	if err != nil {
		t.Fatal(err)
	}
	cases := plan(&p.config)
	lines := runHost(t, cases)
	// Noise between the marked lines (a console's) changes nothing.
	lines = append([]string{"[    1.0] random kernel line", "STRATA-TEST:garbage"}, lines...)
	rs := evaluate(cases, parseLines(lines), "")
	want := []struct {
		passed bool
		msg    string
	}{{true, ""}, {true, ""}, {false, "exit code 1, want 0"}, {false, "does not match"}, {false, "timed out after 1s"}}
	for i, w := range want {
		if rs[i].Passed != w.passed || !strings.Contains(rs[i].Message, w.msg) {
			t.Errorf("%s: passed %v %q, want %v %q (output %q)", rs[i].Name, rs[i].Passed, rs[i].Message, w.passed, w.msg, rs[i].Output)
		}
	}
	if rs[0].Output != "hello\nerr\n" || rs[2].Output != "line one\n\x01binary" {
		t.Errorf("outputs: %q %q", rs[0].Output, rs[2].Output)
	}
	c := counts(rs)
	if c.Passed != 2 || c.Failed != 3 {
		t.Errorf("counts %+v", c)
	}
}

func TestParseLinesCutShort(t *testing.T) {
	p, _ := configure(t, map[string]interface{}{"check": checks(
		map[string]interface{}{"name": "a", "command": "true"},
		map[string]interface{}{"name": "b", "command": "true"})})
	cases := plan(&p.config)
	lines := []string{"STRATA-TEST:READY 0", "STRATA-TEST:RESULT 0 0 12", "STRATA-TEST:OUT 0 aGk=", "STRATA-TEST:DONE 0"}
	rs := evaluate(cases, parseLines(lines), "the VM stopped")
	if !rs[0].Passed || rs[0].Output != "hi" || rs[0].DurationMS != 12 {
		t.Errorf("first: %+v", rs[0])
	}
	if !rs[1].Skipped || rs[1].Message != "did not run: the VM stopped" {
		t.Errorf("second: %+v", rs[1])
	}
}

func TestHTTPJudging(t *testing.T) {
	p, _ := configure(t, map[string]interface{}{"mode": "vm", "check": checks(
		map[string]interface{}{"name": "h", "http": "http://127.0.0.1/", "output_matches": "welcome"})})
	tc := plan(&p.config)[0]
	if ok, msg := judge(tc, 0, "HTTP-STATUS: 200\n<h1>welcome</h1>"); !ok {
		t.Error(msg)
	}
	if ok, msg := judge(tc, 0, "HTTP-STATUS: 500\nwelcome"); ok || !strings.Contains(msg, "status 500, want 200") {
		t.Error(msg)
	}
	if ok, msg := judge(tc, 0, "HTTP-STATUS: 200\nnope"); ok || !strings.Contains(msg, "body does not match") {
		t.Error(msg)
	}
}

func TestReports(t *testing.T) {
	rep := &Report{Kind: "tests", Mode: "vm", Image: "sha256:" + strings.Repeat("1", 64), Accel: "tcg", BootMS: 30000, ChecksMS: 900, DurationMS: 31000,
		Results: []Result{
			{Name: "ok", Check: "ok", Type: "command", Passed: true, DurationMS: 100, Output: "fine"},
			{Name: "bad", Check: "bad", Type: "command", ExitCode: 1, Message: "exit code 1, want 0", Output: "boom <&>\x00"},
			{Name: "late", Check: "late", Type: "service", Skipped: true, Message: "did not run"},
		}}
	rep.Counts = counts(rep.Results)
	x, err := rep.JUnit()
	if err != nil {
		t.Fatal(err)
	}
	var got junitSuites
	if err := xml.Unmarshal(x, &got); err != nil {
		t.Fatalf("JUnit XML does not parse: %v\n%s", err, x)
	}
	s := got.Suites[0]
	if got.Tests != 3 || got.Failures != 1 || got.Skipped != 1 || len(s.Cases) != 3 || s.Cases[1].Failure == nil ||
		!strings.Contains(s.Cases[1].Failure.Text, "boom <&>") || s.Cases[2].Skipped == nil || s.Cases[0].Time != "0.100" {
		t.Errorf("JUnit: %+v\n%s", got, x)
	}
	j, _ := rep.JSON()
	var back Report
	if err := json.Unmarshal(j, &back); err != nil || len(back.Results) != 3 || back.Counts.Failed != 1 {
		t.Errorf("JSON: %v %+v", err, back)
	}
	sum := rep.Summary()
	for _, w := range []string{"FAILED: 1 passed, 1 failed, 1 skipped", "tcg, boot 30s", "FAIL   bad", "skip   late"} {
		if !strings.Contains(sum, w) {
			t.Errorf("summary lacks %q:\n%s", w, sum)
		}
	}
}

// fakeRunner answers with canned lines.
type fakeRunner struct {
	lines []string
	err   error
	got   job
}

func (f *fakeRunner) run(_ context.Context, j job) (*outcome, error) {
	f.got = j
	return &outcome{Lines: f.lines}, f.err
}

type fakeArtifact struct {
	state map[string]interface{}
	files []string
}

func (a *fakeArtifact) BuilderId() string             { return chrootBuilderID }
func (a *fakeArtifact) Files() []string               { return a.files }
func (a *fakeArtifact) Id() string                    { return "x" }
func (a *fakeArtifact) String() string                { return "x" }
func (a *fakeArtifact) State(name string) interface{} { return a.state[name] }
func (a *fakeArtifact) Destroy() error                { return nil }

// chrootArtifact writes an output dir with a dir output and a disk.
func chrootArtifact(t *testing.T) (*fakeArtifact, string) {
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "rootfs")
	os.MkdirAll(filepath.Join(rootfs, "etc"), 0o755)
	os.WriteFile(filepath.Join(rootfs, "etc", "hostname"), []byte("x\n"), 0o644)
	disk := filepath.Join(dir, "disk.raw")
	os.WriteFile(disk, []byte("a disk"), 0o644)
	sum, size, _ := export.FileSHA256(disk)
	os.WriteFile(disk+".sha256", []byte(sum+"  disk.raw\n"), 0o644)
	m := &export.Manifest{ImageID: "sha256:" + strings.Repeat("1", 64), BuildName: "web",
		Outputs: []export.Output{{Format: "disk", Path: disk, Size: size, SHA256: sum}, {Format: "dir", Path: rootfs}}}
	if err := export.WriteManifest(dir, m); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(m)
	var plain map[string]interface{}
	json.Unmarshal(b, &plain)
	return &fakeArtifact{state: map[string]interface{}{"output_dir": dir, stateManifest: plain,
		stateBuild: map[string]interface{}{"store_dir": t.TempDir()}}, files: []string{disk}}, dir
}

func sums(t *testing.T, dir string, names ...string) string {
	var b strings.Builder
	for _, n := range names {
		s, _, err := export.FileSHA256(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(s)
	}
	return b.String()
}

func TestPostProcessPassing(t *testing.T) {
	p, err := configure(t, map[string]interface{}{"check": checks(map[string]interface{}{"name": "hostname", "command": "cat /etc/hostname"})})
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeRunner{lines: []string{"STRATA-TEST:RESULT 0 0 5", "STRATA-TEST:OUT 0 eAo=", "STRATA-TEST:DONE 0", "STRATA-TEST:END"}}
	p.runner = f
	in, dir := chrootArtifact(t)
	before := sums(t, dir, "disk.raw")
	ui := &packersdk.BasicUi{Writer: new(bytes.Buffer), ErrorWriter: new(bytes.Buffer)}
	out, keep, force, err := p.PostProcess(context.Background(), ui, in)
	if err != nil {
		t.Fatal(err)
	}
	if !keep || !force || out.BuilderId() != chrootBuilderID {
		t.Errorf("keep %v force %v builder %s", keep, force, out.BuilderId())
	}
	if f.got.Mode != ModeContainer || len(f.got.Lowers) != 1 || f.got.Lowers[0] != filepath.Join(dir, "rootfs") {
		t.Errorf("job: %+v", f.got)
	}
	if sums(t, dir, "disk.raw") != before {
		t.Error("the disk changed")
	}
	m, err := export.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range m.Files {
		if _, err := export.ReadRecorded(dir, m, f.Name); err != nil {
			t.Errorf("artifact.json after strata-test: %v", err)
		}
	}
	if len(m.Evidence) != 1 || !m.Evidence[0].Passed || m.Evidence[0].Kind != "tests" || m.Evidence[0].Report != "tests.json" ||
		m.Evidence[0].Statement != "tests.json.intoto.json" || m.Evidence[0].ReportSHA256 == "" || m.Evidence[0].Counts.Passed != 1 {
		t.Errorf("evidence: %+v", m.Evidence)
	}
	names := map[string]bool{}
	for _, f := range m.Files {
		names[f.Name] = true
	}
	for _, n := range []string{"tests.json", "tests.junit.xml", "tests.json.intoto.json"} {
		if !names[n] {
			t.Errorf("artifact.json does not hash %s: %+v", n, m.Files)
		}
	}
	// The evidence travels in the artifact's state to strata-catalog.
	st, _ := json.Marshal(out.State(stateManifest))
	if !strings.Contains(string(st), `"kind":"tests"`) {
		t.Errorf("state: %s", st)
	}
	if !strings.Contains(ui.Writer.(*bytes.Buffer).String(), "PASSED: 1 passed") {
		t.Errorf("UI: %s", ui.Writer)
	}
}

func TestPostProcessFailing(t *testing.T) {
	lines := []string{"STRATA-TEST:RESULT 0 1 5", "STRATA-TEST:OUT 0 bmdpbng6IGNvbmZpZyB0ZXN0IGZhaWxlZA==", "STRATA-TEST:DONE 0", "STRATA-TEST:END"}
	for _, onFailure := range []string{"fail", "register"} {
		t.Run(onFailure, func(t *testing.T) {
			p, err := configure(t, map[string]interface{}{"mode": "vm", "on_failure": onFailure,
				"check": checks(map[string]interface{}{"name": "nginx-config", "command": "nginx -t"})})
			if err != nil {
				t.Fatal(err)
			}
			p.runner = &fakeRunner{lines: lines}
			in, dir := chrootArtifact(t)
			ui := &packersdk.BasicUi{Writer: new(bytes.Buffer), ErrorWriter: new(bytes.Buffer)}
			out, _, _, err := p.PostProcess(context.Background(), ui, in)
			m, rerr := export.ReadManifest(dir)
			if rerr != nil || len(m.Evidence) != 1 || m.Evidence[0].Passed || m.Evidence[0].Counts.Failed != 1 {
				t.Errorf("failed evidence in artifact.json: %v %+v", rerr, m)
			}
			if onFailure == "fail" {
				if err == nil || out != nil || !strings.Contains(err.Error(), "nginx: config test failed") || !strings.Contains(err.Error(), "check nginx-config") {
					t.Errorf("a failure: %v", err)
				}
				return
			}
			if err != nil || out == nil {
				t.Fatalf("on_failure = register: %v", err)
			}
			if !strings.Contains(ui.ErrorWriter.(*bytes.Buffer).String(), "nginx: config test failed") {
				t.Errorf("the failed check's output is not shown: %s", ui.ErrorWriter)
			}
		})
	}
}

func TestPostProcessRunError(t *testing.T) {
	p, _ := configure(t, map[string]interface{}{"mode": "vm", "check": checks(map[string]interface{}{"name": "a", "command": "true"})})
	p.runner = &fakeRunner{err: errors.New("vm: kernel panic\nlast console lines: ...")}
	in, dir := chrootArtifact(t)
	ui := &packersdk.BasicUi{Writer: new(bytes.Buffer), ErrorWriter: new(bytes.Buffer)}
	_, _, _, err := p.PostProcess(context.Background(), ui, in)
	if err == nil || !strings.Contains(err.Error(), "kernel panic") {
		t.Errorf("a failed boot: %v", err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "tests.json"))
	if !strings.Contains(string(b), `"skipped": true`) || !strings.Contains(string(b), "did not run: the run ended before it") {
		t.Errorf("report: %s", b)
	}
}

func TestParseEntry(t *testing.T) {
	e, err := parseEntry("title x\nversion 6.1\nlinux /abc/6.1/linux\ninitrd /abc/6.1/initrd\noptions root=PARTUUID=1 ro console=ttyS0 quiet\n")
	if err != nil || e.kernel != "/abc/6.1/linux" || e.initrd != "/abc/6.1/initrd" || e.cmdline != "root=PARTUUID=1 ro console=ttyS0 quiet" {
		t.Errorf("systemd-boot entry: %+v %v", e, err)
	}
	g := grubConfig([]byte("\x00\x01binary\nset timeout=0\nlinux /t/6.1/linux root=PARTUUID=2 ro console=ttyS0\ninitrd /t/6.1/initrd\nboot\n\x00"))
	e, err = parseEntry(g)
	if err != nil || e.kernel != "/t/6.1/linux" || e.cmdline != "root=PARTUUID=2 ro console=ttyS0" {
		t.Errorf("grub: %+v %v", e, err)
	}
	if _, err := parseEntry("linux ../../etc/passwd"); err == nil {
		t.Error("a kernel path out of the ESP was taken")
	}
}

func TestListeningScript(t *testing.T) {
	dir := t.TempDir()
	tcp := "  sl  local_address rem_address   st\n   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000\n"
	tcp6 := "  sl  local_address rem_address   st\n   0: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A 0\n"
	for _, c := range []struct {
		spec string
		ok   bool
	}{{"tcp:8080", true}, {"tcp:80", true}, {"tcp6:8080", false}, {"tcp:81", false}} {
		s := listeningScript(c.spec)
		s = strings.ReplaceAll(s, "/proc/net/", dir+"/")
		os.WriteFile(filepath.Join(dir, "tcp"), []byte(tcp), 0o644)
		os.WriteFile(filepath.Join(dir, "tcp6"), []byte(tcp6), 0o644)
		err := exec.Command("/bin/sh", "-c", s).Run()
		if (err == nil) != c.ok {
			t.Errorf("%s: %v, want ok=%v", c.spec, err, c.ok)
		}
	}
}
