package packages

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/strata-build/packer-plugin-strata/internal/dpkg"
)

func TestPrepareDefaultsAndErrors(t *testing.T) {
	var c Config
	if err := c.Prepare(map[string]interface{}{"install": []string{"jq", "curl=7.88.1-10+deb12u5", "nginx/bookworm-backports", "libc6:i386"}}); err != nil {
		t.Fatal(err)
	}
	if !*c.NoInstallRecommends || c.Update != "auto" || c.updateMaxAge != time.Hour || c.ExecuteCommand != "{{.Command}}" {
		t.Errorf("defaults: recommends %v update %v (max age %s) execute %q", *c.NoInstallRecommends, c.Update, c.updateMaxAge, c.ExecuteCommand)
	}
	reqs := c.requests()
	if reqs[1].Version != "7.88.1-10+deb12u5" || reqs[2].Release != "bookworm-backports" || reqs[3].Name != "libc6:i386" {
		t.Errorf("requests %+v", reqs)
	}

	var bad Config
	err := bad.Prepare(map[string]interface{}{
		"install":         []string{"Bad Name", "jq=", "jq", "jq", "x=1.0;rm -rf /", "curl=$(id)"},
		"remove":          []string{"jq", "curl=1.0"},
		"hold":            []string{"jq"},
		"execute_command": "sudo -n",
	})
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{
		`install[0]: "Bad Name" is not a Debian package name`,
		`install[1]: "jq=" is not name=version`,
		"install: jq is listed twice",
		`install[4]: "x=1.0;rm -rf /" is not name=version`,
		`install[5]: "curl=$(id)" is not name=version`,
		`remove[1]: "curl=1.0" is not a Debian package name`,
		"install and remove both list jq",
		"remove and hold both list jq",
		"execute_command",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	for _, raw := range []map[string]interface{}{
		{},
		{"update": true},
	} {
		var c Config
		if err := c.Prepare(raw); err == nil || !strings.Contains(err.Error(), "nothing to do") {
			t.Errorf("%v: %v", raw, err)
		}
	}
	// update: the three values, the booleans of old templates, and bad values.
	for _, tc := range []struct {
		update interface{}
		age    string
		want   string
		err    string
	}{
		{"auto", "30m", "auto", ""},
		{"always", "", "always", ""},
		{"never", "", "never", ""},
		{true, "", "always", ""},
		{false, "", "never", ""},
		{"sometimes", "", "", `update: "sometimes" is none of "auto", "always" or "never"`},
		{"auto", "an hour", "", `update_max_age: "an hour" is not a duration`},
		{"auto", "-1h", "", `update_max_age: "-1h" is not a duration`},
	} {
		var c Config
		raw := map[string]interface{}{"install": []string{"jq"}, "update": tc.update}
		if tc.age != "" {
			raw["update_max_age"] = tc.age
		}
		err := c.Prepare(raw)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("update %v, max age %q: error %v, want %q", tc.update, tc.age, err, tc.err)
		case tc.err == "" && err != nil:
			t.Errorf("update %v: %v", tc.update, err)
		case tc.err == "" && c.Update != tc.want:
			t.Errorf("update %v: got %q, want %q", tc.update, c.Update, tc.want)
		}
	}
	var c2 Config
	if err := c2.Prepare(map[string]interface{}{"remove": []string{"jq"}, "update_lock": true}); err == nil || !strings.Contains(err.Error(), "update_lock: rewrites lock_file") {
		t.Errorf("update_lock without lock_file: %v", err)
	}
	var c3 Config
	if err := c3.Prepare(map[string]interface{}{"remove": []string{"jq"}, "lock_file": filepath.Join(t.TempDir(), "l")}); err == nil || !strings.Contains(err.Error(), "set install") {
		t.Errorf("lock_file without install: %v", err)
	}
}

func TestClosureAndUnlocked(t *testing.T) {
	before := installedSet{"libc6:amd64": "2.36-9", "jq:amd64": "1.6-2", "base-files:amd64": "12.4"}
	after := installedSet{"libc6:amd64": "2.36-9+deb12u4", "jq:amd64": "1.6-2", "base-files:amd64": "12.4",
		"hello:all": "2.0", "libhello:amd64": "1.1"}
	got := closure(before, after, []request{{Name: "hello"}, {Name: "jq"}}, "amd64")
	var keys []string
	for _, p := range got {
		keys = append(keys, fmt.Sprintf("%s=%s/%v", p.key(), p.Version, p.Requested))
	}
	want := "hello:all=2.0/true jq:amd64=1.6-2/true libc6:amd64=2.36-9+deb12u4/false libhello:amd64=1.1/false"
	if strings.Join(keys, " ") != want {
		t.Errorf("closure %v\nwant %s", keys, want)
	}
	l := &Lock{Packages: got[:2]}
	if extra := unlocked(before, after, l); strings.Join(extra, ",") != "libc6 (amd64) 2.36-9+deb12u4,libhello (amd64) 1.1" {
		t.Errorf("unlocked %v", extra)
	}
	if s := (LockedPackage{Name: "libc6", Architecture: "i386", Version: "2.36"}).spec("amd64"); s != "libc6:i386=2.36" {
		t.Errorf("foreign spec %s", s)
	}
	if s := (LockedPackage{Name: "hello", Architecture: "all", Version: "2.0"}).spec("amd64"); s != "hello=2.0" {
		t.Errorf("arch all spec %s", s)
	}
}

func TestLockFileRoundTripAndRefusals(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "packages.lock")
	if l, err := ReadLock(p); l != nil || err != nil {
		t.Fatalf("missing lock: %v %v", l, err)
	}
	in := &Lock{LockVersion: LockVersion, Install: []string{"hello"}, Packages: []LockedPackage{
		{Name: "libhello", Architecture: "amd64", Version: "1.1"}, {Name: "hello", Architecture: "all", Version: "2.0", Requested: true}}}
	if err := WriteLock(p, in); err != nil {
		t.Fatal(err)
	}
	out, err := ReadLock(p)
	if err != nil || len(out.Packages) != 2 || out.Packages[0].Name != "hello" || !out.Packages[0].Requested {
		t.Fatalf("read back %+v %v", out, err)
	}
	for name, body := range map[string]string{
		"injection": `{"lock_version":1,"install":["x"],"packages":[{"name":"x","architecture":"amd64","version":"1.0;reboot"}]}`,
		"version":   `{"lock_version":2,"install":[],"packages":[]}`,
		"garbage":   `not json`,
		"unknown":   `{"lock_version":1,"install":[],"packages":[],"extra":1}`,
	} {
		os.WriteFile(p, []byte(body), 0o644)
		if _, err := ReadLock(p); err == nil || !strings.Contains(err.Error(), "update_lock") {
			t.Errorf("%s lock accepted or unclear: %v", name, err)
		}
	}
}

// fakeApt is a communicator to a pretend Debian system: dpkg's status and
// apt's extended_states as files, apt-get and apt-mark acting on them, and
// a mirror that offers some versions.
type fakeApt struct {
	mu        sync.Mutex
	installed map[string]string // name -> version, all amd64
	auto      map[string]bool
	held      []string
	mirror    map[string][]string // name -> versions, newest last
	deps      map[string][]string // name -> dependencies
	commands  []string
	// missingLists are the package lists apt-get indextargets names and
	// the pretend system lacks; indexesInfo what strata-chroot's
	// description of its shared indexes holds ("": none).
	missingLists []string
	indexesInfo  string
	// fast counts the lock's direct installs; gone are name=version
	// whose .deb the cache no longer has.
	fast int
	gone map[string]bool
}

var fakeURIRe = regexp.MustCompile(`http://mirror\.example/pool/([a-z0-9.+-]+)_([^_]+)_amd64\.deb`)

var aptArgsRe = regexp.MustCompile(`apt-get -y -q .*--force-confold (.*)$`)

var markerRe = regexp.MustCompile(`strata-[0-9a-f]{32}`)

func (f *fakeApt) Start(ctx context.Context, rc *packersdk.RemoteCmd) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	rc.SetExited(f.run(strings.TrimPrefix(rc.Command, "sudo -n "), rc.Stdout))
	return nil
}

// unquoteSh is the script of sh -c '...' as shQuote wrote it.
func unquoteSh(cmd string) string {
	return strings.ReplaceAll(strings.TrimSuffix(strings.TrimPrefix(cmd, "sh -c '"), "'"), `'\''`, `'`)
}

func (f *fakeApt) writeStatus(w io.Writer) {
	for n, v := range f.installed {
		fmt.Fprintf(w, "Package: %s\nStatus: install ok installed\nArchitecture: amd64\nVersion: %s\n\n", n, v)
	}
}

// run answers one command, and the commands a sectioned script runs.
func (f *fakeApt) run(cmd string, w io.Writer) int {
	f.commands = append(f.commands, cmd)
	status := 0
	write := func(s string) { io.WriteString(w, s) }
	if m := markerRe.FindString(cmd); m != "" && strings.HasPrefix(cmd, "sh -c '") {
		script := unquoteSh(cmd)
		switch {
		case strings.Contains(script, "dpkg --print-architecture"):
			fmt.Fprintf(w, "amd64\n%s arch 0\n", m)
			f.writeStatus(w)
			fmt.Fprintf(w, "\n%s status 0\n", m)
			for n := range f.auto {
				fmt.Fprintf(w, "Package: %s\nArchitecture: amd64\nAuto-Installed: 1\n\n", n)
			}
			fmt.Fprintf(w, "\n%s extended_states 0\n", m)
			if strings.Contains(script, "indextargets") {
				for _, l := range f.missingLists {
					write(l + "\n")
				}
				fmt.Fprintf(w, "\n%s missing_lists 0\n", m)
				st := 0
				if f.indexesInfo == "" {
					st = 1
				}
				fmt.Fprintf(w, "%s\n%s indexes_info %d\n", f.indexesInfo, m, st)
			}
			return 0
		case strings.Contains(script, "\nr=$?\n"):
			inner, _, _ := strings.Cut(script, "\nr=$?")
			status = f.run(inner, w)
			fmt.Fprintf(w, "\n%s begin\n", m)
			f.writeStatus(w)
			fmt.Fprintf(w, "\n%s status 0\n", m)
			return status
		}
	}
	switch {
	case cmd == boundedRead(dpkg.StatusPath, dpkg.MaxStatusSize):
		f.writeStatus(w)
	case strings.Contains(cmd, "apt-helper -q download-file "):
		f.fast++
		for _, m := range fakeURIRe.FindAllStringSubmatch(cmd, -1) {
			name, version := m[1], m[2]
			if f.gone[name+"="+version] || !containsStr(f.mirror[name], version) {
				write("E: Failed to fetch " + m[0] + "\n")
				return 100
			}
			f.installed[name] = version
		}
		// The marks that follow the install in the same command.
		if _, marks, ok := strings.Cut(cmd, "' && sh -c '"); ok {
			status = f.run("sh -c '"+marks, w)
		}
	case strings.Contains(cmd, ">> /var/lib/apt/extended_states"):
		for _, m := range regexp.MustCompile(`Package: ([a-z0-9.+-]+)`).FindAllStringSubmatch(cmd, -1) {
			f.auto[m[1]] = true
		}
	case strings.Contains(cmd, "download --print-uris"):
		for _, a := range strings.Fields(cmd[strings.Index(cmd, "--print-uris")+len("--print-uris"):]) {
			name, version, _ := strings.Cut(a, "=")
			fmt.Fprintf(w, "'http://mirror.example/pool/%s_%s_amd64.deb' %s_%s_amd64.deb 100 SHA512:%0128x\n", name, version, name, version, len(name))
		}
	case strings.HasPrefix(cmd, "apt-cache show "):
		for _, a := range strings.Fields(strings.TrimPrefix(cmd, "apt-cache show ")) {
			name, version, _ := strings.Cut(a, "=")
			fmt.Fprintf(w, "Package: %s\nVersion: %s\nArchitecture: amd64\nDescription: a\n multi-line: field\nSHA256: %064x\n\n", name, version, len(name))
		}
	case strings.HasPrefix(cmd, "apt-mark auto "):
		for _, n := range strings.Fields(strings.TrimPrefix(cmd, "apt-mark auto ")) {
			name, _, _ := strings.Cut(n, ":")
			f.auto[name] = true
		}
	case strings.HasPrefix(cmd, "apt-mark hold "):
		f.held = append(f.held, strings.Fields(strings.TrimPrefix(cmd, "apt-mark hold "))...)
	case aptArgsRe.MatchString(cmd):
		args := strings.Fields(aptArgsRe.FindStringSubmatch(cmd)[1])
		if args[0] == "install" {
			status = f.install(args[1:], w)
		}
	default:
		status = 127
	}
	return status
}

func (f *fakeApt) install(args []string, out io.Writer) int {
	for _, a := range args {
		if strings.HasPrefix(a, "--") {
			continue
		}
		name, version, pinned := strings.Cut(a, "=")
		versions := f.mirror[name]
		if len(versions) == 0 {
			fmt.Fprintf(out, "E: Unable to locate package %s\n", name)
			return 100
		}
		if !pinned {
			version = versions[len(versions)-1]
		} else if !containsStr(versions, version) {
			fmt.Fprintf(out, "E: Version '%s' for '%s' was not found\n", version, name)
			return 100
		}
		f.installed[name] = version
		delete(f.auto, name) // named: manual
		for _, d := range f.deps[name] {
			if _, ok := f.installed[d]; !ok {
				f.installed[d] = f.mirror[d][len(f.mirror[d])-1]
				f.auto[d] = true
			}
		}
	}
	return 0
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (f *fakeApt) Upload(string, io.Reader, *os.FileInfo) error { return nil }
func (f *fakeApt) UploadDir(string, string, []string) error     { return nil }
func (f *fakeApt) Download(string, io.Writer) error             { return nil }
func (f *fakeApt) DownloadDir(string, string, []string) error   { return nil }

func newFake() *fakeApt {
	return &fakeApt{
		installed: map[string]string{"libc6": "2.36-9"},
		auto:      map[string]bool{},
		mirror:    map[string][]string{"hello": {"1.0", "2.0"}, "libhello": {"1.0", "1.1"}, "libc6": {"2.36-9"}},
		deps:      map[string][]string{"hello": {"libhello"}},
		gone:      map[string]bool{},
	}
}

func provision(t *testing.T, f *fakeApt, raw map[string]interface{}) error {
	t.Helper()
	var p Provisioner
	if err := p.Prepare(raw); err != nil {
		t.Fatal(err)
	}
	return p.Provision(context.Background(), packersdk.TestUi(t), f, nil)
}

// The lock round trip on a pretend system: the first run writes the whole
// closure; on a fresh system whose mirror moved on, the second installs the
// locked versions, dependencies marked automatic again; when the mirror
// drops a locked version, the error names it.
func TestProvisionLockRoundTrip(t *testing.T) {
	lock := filepath.Join(t.TempDir(), "packages.lock")
	raw := map[string]interface{}{"install": []string{"hello"}, "lock_file": lock, "hold": []string{"hello"}, "execute_command": "sudo -n {{.Command}}"}

	first := newFake()
	if err := provision(t, first, raw); err != nil {
		t.Fatal(err)
	}
	l, err := ReadLock(lock)
	if err != nil || l == nil {
		t.Fatalf("no lock written: %v", err)
	}
	var got []string
	for _, p := range l.Packages {
		got = append(got, fmt.Sprintf("%s=%s/%v", p.Name, p.Version, p.Requested))
	}
	if strings.Join(got, " ") != "hello=2.0/true libhello=1.1/false" {
		t.Errorf("lock %v", got)
	}
	if !strings.Contains(strings.Join(first.commands, "\n"), "apt-get -y -q") || !containsStr(first.held, "hello") {
		t.Errorf("commands %v held %v", first.commands, first.held)
	}

	second := newFake()
	second.mirror["hello"] = append(second.mirror["hello"], "3.0")
	second.mirror["libhello"] = append(second.mirror["libhello"], "1.2")
	if err := provision(t, second, raw); err != nil {
		t.Fatal(err)
	}
	if second.installed["hello"] != "2.0" || second.installed["libhello"] != "1.1" {
		t.Errorf("locked install gave %v", second.installed)
	}
	if !second.auto["libhello"] || second.auto["hello"] {
		t.Errorf("automatic marks %v: libhello should be automatic, hello manual", second.auto)
	}
	// The lock records each .deb: the second run fetched them directly,
	// with no package indexes and no resolver.
	if l.Packages[0].URI != "http://mirror.example/pool/hello_2.0_amd64.deb" || len(l.Packages[1].SHA256) != 64 {
		t.Errorf("lock without the .debs: %+v", l.Packages)
	}
	cmds := strings.Join(second.commands, "\n")
	if second.fast != 1 || strings.Contains(cmds, "indextargets") || strings.Contains(cmds, " install ") || strings.Contains(cmds, "apt-mark auto") {
		t.Errorf("the lock's fast path was not taken (%d):\n%s", second.fast, cmds)
	}
	if !strings.Contains(cmds, "SHA256:"+l.Packages[1].SHA256) || !strings.Contains(cmds, "dpkg --force-confdef --force-confold -i") {
		t.Errorf("fast path command:\n%s", cmds)
	}

	// A .deb the cache lacks: the fast path falls back to apt.
	fallback := newFake()
	fallback.gone["libhello=1.1"] = true
	if err := provision(t, fallback, raw); err != nil {
		t.Fatal(err)
	}
	cmds = strings.Join(fallback.commands, "\n")
	if fallback.fast != 1 || !strings.Contains(cmds, "install --no-install-recommends --allow-downgrades hello=2.0 libhello=1.1") ||
		fallback.installed["libhello"] != "1.1" || !fallback.auto["libhello"] || fallback.auto["hello"] {
		t.Errorf("fallback: installed %v auto %v\n%s", fallback.installed, fallback.auto, cmds)
	}

	// A lock without the .debs (an older one) installs through apt.
	for i := range l.Packages {
		l.Packages[i].URI, l.Packages[i].SHA256 = "", ""
	}
	if err := WriteLock(lock, l); err != nil {
		t.Fatal(err)
	}
	old := newFake()
	if err := provision(t, old, raw); err != nil {
		t.Fatal(err)
	}
	if cmds := strings.Join(old.commands, "\n"); old.fast != 0 || !strings.Contains(cmds, "install --no-install-recommends --allow-downgrades hello=2.0 libhello=1.1") {
		t.Errorf("old lock:\n%s", cmds)
	}

	third := newFake()
	third.mirror["libhello"] = []string{"1.2"}
	err = provision(t, third, raw)
	if err == nil || !strings.Contains(err.Error(), "libhello version 1.1 is not available") || !strings.Contains(err.Error(), "update_lock = true") {
		t.Errorf("a locked version gone: %v", err)
	}

	// The template asks for more than the lock was made for.
	raw2 := map[string]interface{}{"install": []string{"hello", "libc6"}, "lock_file": lock}
	if err := provision(t, newFake(), raw2); err == nil || !strings.Contains(err.Error(), "was resolved for install = [hello]") {
		t.Errorf("stale lock: %v", err)
	}
	// update_lock resolves again and rewrites it.
	raw2["update_lock"] = true
	fourth := newFake()
	fourth.mirror["hello"] = append(fourth.mirror["hello"], "3.0")
	if err := provision(t, fourth, raw2); err != nil {
		t.Fatal(err)
	}
	if l, _ := ReadLock(lock); len(l.Packages) != 3 || l.Packages[0].Version != "3.0" {
		t.Errorf("updated lock %+v", l)
	}
}

func TestProvisionUnknownPackageNamed(t *testing.T) {
	err := provision(t, newFake(), map[string]interface{}{"install": []string{"nosuch"}})
	if err == nil || !strings.Contains(err.Error(), "package nosuch is unknown") {
		t.Errorf("unknown package: %v", err)
	}
}

func TestProvisionNotDebian(t *testing.T) {
	var p Provisioner
	p.Prepare(map[string]interface{}{"install": []string{"hello"}})
	err := p.Provision(context.Background(), packersdk.TestUi(t), &notDebian{}, nil)
	if err == nil || !strings.Contains(err.Error(), "needs a Debian-family system") {
		t.Errorf("non-Debian system: %v", err)
	}
}

type notDebian struct{ fakeApt }

func (*notDebian) Start(_ context.Context, rc *packersdk.RemoteCmd) error {
	rc.SetExited(1)
	return nil
}

// TestStateCommandInAShell runs the state command in a real shell with a
// PATH of pretend programs (dd the host's, reading the host's dpkg
// database): a missing program is named; with every one, the sections
// hold the architecture, the database and the lists apt lacks.
func TestStateCommandInAShell(t *testing.T) {
	bin := t.TempDir()
	for name, body := range map[string]string{
		"apt-get":    `[ "$1" = indextargets ] && echo /var/lib/apt/lists/nowhere_Packages`,
		"dpkg-query": "", "dpkg": "echo arm64",
	} {
		os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755)
	}
	for _, p := range []string{"sh", "dd"} {
		os.Symlink("/bin/"+p, filepath.Join(bin, p))
	}
	marker := newMarker()
	run := func(lists bool) (string, int) {
		cmd := exec.Command("/bin/sh", "-c", stateCommand(marker, lists))
		cmd.Env = []string{"PATH=" + bin}
		out, err := cmd.Output()
		code := 0
		if e, ok := err.(*exec.ExitError); ok {
			code = e.ExitCode()
		}
		return string(out), code
	}
	if out, code := run(false); code != probeMissing || strings.TrimSpace(out) != "apt-mark" {
		t.Errorf("without apt-mark: %q, exit %d; want \"apt-mark\", exit %d", out, code, probeMissing)
	}
	os.WriteFile(filepath.Join(bin, "apt-mark"), []byte("#!/bin/sh\n"), 0o755)
	for _, lists := range []bool{false, true} {
		out, code := run(lists)
		st, err := parseState(out, marker, lists)
		if code != 0 || err != nil {
			t.Fatalf("lists %v: exit %d, %v:\n%.400s", lists, code, err, out)
		}
		host, err := dpkg.ReadStatus(mustOpen(t, dpkg.StatusPath))
		if err != nil {
			t.Fatal(err)
		}
		if st.native != "arm64" || len(st.installed) != len(host) || st.installed["dpkg:amd64"] == "" {
			t.Errorf("lists %v: native %q, %d packages installed (the host has %d)", lists, st.native, len(st.installed), len(host))
		}
		if lists && (strings.Join(st.missingLists, " ") != "/var/lib/apt/lists/nowhere_Packages" || st.listsErr != "") {
			t.Errorf("missing lists %q (%s)", st.missingLists, st.listsErr)
		}
		if _, err := os.Stat(sharedIndexesInfo); os.IsNotExist(err) && st.indexesInfo != "" {
			t.Errorf("indexes info %q from nowhere", st.indexesInfo)
		}
	}
}

func mustOpen(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestLockFileCheckedWhereItLeads: lock_file's directory is looked at when
// the provisioner runs, not by Prepare (packer validate); the path is
// followed through links; a FIFO there is refused, not waited on.
func TestLockFileCheckedWhereItLeads(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing", "packages.lock")
	var c Config
	if err := c.Prepare(map[string]interface{}{"install": []string{"hello"}, "lock_file": missing}); err != nil {
		t.Fatalf("Prepare looked at the disk: %v", err)
	}
	err := provision(t, newFake(), map[string]interface{}{"install": []string{"hello"}, "lock_file": missing})
	if err == nil || !strings.Contains(err.Error(), "lock_file: the directory "+filepath.Join(dir, "missing")+" does not exist") {
		t.Fatalf("a lock_file in a missing directory: %v", err)
	}
	real := filepath.Join(dir, "real")
	os.Mkdir(real, 0o755)
	os.Symlink(real, filepath.Join(dir, "link"))
	if err := provision(t, newFake(), map[string]interface{}{"install": []string{"hello"}, "lock_file": filepath.Join(dir, "link", "p.lock")}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(real, "p.lock")); err != nil {
		t.Fatalf("the lock was not written where lock_file leads: %v", err)
	}
	fifo := filepath.Join(dir, "fifo.lock")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := ReadLock(fifo); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("a FIFO lock file: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("reading a FIFO lock file did not return")
	}
}
