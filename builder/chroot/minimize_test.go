package chroot

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/strata-build/packer-plugin-strata/internal/inroot"
)

// writeTree makes files (contents = their path) and symlinks ("->target")
// under root.
func writeTree(t *testing.T, root string, entries ...string) {
	t.Helper()
	for _, e := range entries {
		name, target, isLink := strings.Cut(e, "->")
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		if isLink {
			err = os.Symlink(target, p)
		} else if strings.HasSuffix(name, "/") {
			err = os.MkdirAll(p, 0o755)
		} else {
			err = os.WriteFile(p, []byte(name), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func exists(root, p string) bool {
	_, err := os.Lstat(filepath.Join(root, p))
	return err == nil
}

func TestMinimizeTree(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	writeTree(t, outside, "victim/doc/readme", "victim/keep.so")
	writeTree(t, root,
		"usr/share/doc/bash/copyright",
		"usr/share/doc/bash/README.gz",
		"usr/share/doc/bash/examples/copyright",       // not the package's licence record
		"usr/share/doc/libc6->"+outside+"/victim/doc", // a symlink: removed, never followed
		"usr/share/man/man1/ls.1.gz",
		"usr/share/man/de/man1/ls.1.gz",
		"usr/share/info/coreutils.info.gz",
		"usr/share/lintian/overrides/bash",
		"usr/share/locale/locale.alias",
		"usr/share/locale/de/LC_MESSAGES/coreutils.mo",
		"usr/share/locale/en_GB/LC_MESSAGES/coreutils.mo",
		"usr/share/locale/en/LC_MESSAGES/coreutils.mo",
		"usr/share/locale/fr/LC_MESSAGES/coreutils.mo",
		"usr/lib/locale/C.utf8/LC_CTYPE",
		"usr/lib/locale/en_GB.utf8/LC_CTYPE",
		"usr/lib/locale/de_DE.utf8/LC_CTYPE",
		"usr/lib/x86_64-linux-gnu/gconv/ISO8859-1.so",
		"usr/lib/x86_64-linux-gnu/gconv/gconv-modules",
		"usr/lib/x86_64-linux-gnu/gconv/gconv-modules.d/gconv-modules-extra.conf",
		"usr/lib/x86_64-linux-gnu/libc.so.6",
		"var/log/apt/history.log",
		"var/log/dpkg.log",
		"usr/share/zoneinfo/right/UTC",
		"usr/share/zoneinfo/UTC",
		"etc/evil->"+outside,
	)
	m := &MinimizeConfig{Locales: []string{"C.UTF-8", "en_GB.UTF-8"},
		RemoveFiles: []string{"/usr/share/zoneinfo/right", "/etc/evil/*", "/etc/evil/victim/keep.so"}}
	before, err := measureImage(root)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := minimizeTree(root, m)
	if err != nil {
		t.Fatal(err)
	}
	// The step measures the tree once, after: what the report says was
	// removed must be exactly the difference.
	after, err := measureImage(root)
	if err != nil {
		t.Fatal(err)
	}
	if bytes, entries := rep.removed(); after.apparent+bytes != before.apparent || after.entries+entries != before.entries {
		t.Errorf("before %+v, after %+v, removed %d bytes in %d entries", before, after, bytes, entries)
	}
	gone := []string{
		"usr/share/doc/bash/README.gz", "usr/share/doc/bash/examples", "usr/share/doc/libc6",
		"usr/share/man/man1", "usr/share/man/de", "usr/share/info/coreutils.info.gz", "usr/share/lintian/overrides",
		"usr/share/locale/de", "usr/share/locale/fr", "usr/lib/locale/de_DE.utf8",
		"usr/lib/x86_64-linux-gnu/gconv/ISO8859-1.so", "usr/share/zoneinfo/right",
	}
	kept := []string{
		"usr/share/doc/bash/copyright", "usr/share/man", "usr/share/info", "usr/share/locale/locale.alias",
		"usr/share/locale/en_GB/LC_MESSAGES/coreutils.mo", "usr/share/locale/en/LC_MESSAGES/coreutils.mo",
		"usr/lib/locale/C.utf8/LC_CTYPE", "usr/lib/locale/en_GB.utf8/LC_CTYPE",
		"usr/lib/x86_64-linux-gnu/gconv/gconv-modules", "usr/lib/x86_64-linux-gnu/gconv/gconv-modules.d/gconv-modules-extra.conf",
		"usr/lib/x86_64-linux-gnu/libc.so.6", "usr/share/zoneinfo/UTC", "var/log/apt/history.log", "var/log/dpkg.log",
		"etc/evil",
	}
	for _, p := range gone {
		if exists(root, p) {
			t.Errorf("%s is still there", p)
		}
	}
	for _, p := range kept {
		if !exists(root, p) {
			t.Errorf("%s was removed", p)
		}
	}
	for _, p := range []string{"victim/doc/readme", "victim/keep.so"} {
		if !exists(outside, p) {
			t.Errorf("minimize followed a symlink out of the image and removed %s", p)
		}
	}
	if fi, _ := os.Stat(filepath.Join(root, "var/log/dpkg.log")); fi.Size() != 0 {
		t.Errorf("dpkg.log not truncated: %d bytes", fi.Size())
	}
	for _, cat := range []string{"docs", "man pages", "info pages", "translations", "locales", "gconv modules", "logs", "remove_files"} {
		if rep.Bytes[cat] == 0 {
			t.Errorf("report has no bytes for %s: %s", cat, rep)
		}
	}
}

func TestMinimizeKeepGconv(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, "usr/lib/x86_64-linux-gnu/gconv/ISO8859-1.so")
	if _, err := minimizeTree(root, &MinimizeConfig{Locales: []string{"C.UTF-8"}, KeepGconv: true}); err != nil {
		t.Fatal(err)
	}
	if !exists(root, "usr/lib/x86_64-linux-gnu/gconv/ISO8859-1.so") {
		t.Error("keep_gconv = true removed a gconv module")
	}
	if strings.Contains(dpkgExcludes(&MinimizeConfig{KeepGconv: true}), "gconv") {
		t.Error("keep_gconv = true still excludes gconv modules from later installs")
	}
}

// A directory that minimize empties may itself be a symlink in a hostile
// image: it is left alone rather than followed.
func TestMinimizeSymlinkedDirs(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	writeTree(t, outside, "share/doc/x/README", "share/man/man1/x.1", "log/important")
	writeTree(t, root, "usr/share->"+outside+"/share", "var/log->"+outside+"/log")
	if _, err := minimizeTree(root, &MinimizeConfig{Locales: []string{"C.UTF-8"}}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"share/doc/x/README", "share/man/man1/x.1", "log/important"} {
		if !exists(outside, p) {
			t.Errorf("minimize reached %s outside the image", p)
		}
	}
	if fi, _ := os.Stat(filepath.Join(outside, "log/important")); fi.Size() == 0 {
		t.Error("minimize truncated a log outside the image")
	}
}

func TestGlobInTree(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, "a/b/one", "a/b/two", "a/c/one", "a/link->b", "a/b/sub/")
	got, err := globInTree(root, "/a/*/one")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/a/b/one", "/a/c/one"}; !slices.Equal(got, want) {
		t.Errorf("glob /a/*/one = %v, want %v (never through a/link)", got, want)
	}
	got, _ = globInTree(root, "/a/link")
	if !slices.Equal(got, []string{"/a/link"}) {
		t.Errorf("the last component may be a symlink (removed itself): %v", got)
	}
	got, _ = globInTree(root, "/a/link/*")
	if len(got) != 0 {
		t.Errorf("a symlink on the way was followed: %v", got)
	}
}

func TestDpkgExcludes(t *testing.T) {
	got := dpkgExcludes(&MinimizeConfig{Locales: []string{"C.UTF-8", "pt_BR.UTF-8", "de_DE@euro"}})
	for _, want := range []string{
		"path-exclude=/usr/share/doc/*\n", "path-include=/usr/share/doc/*/copyright\n",
		"path-exclude=/usr/share/man/*\n", "path-exclude=/usr/share/info/*\n",
		"path-exclude=/usr/share/locale/*\n", "path-include=/usr/share/locale/pt_BR/*\n",
		"path-include=/usr/share/locale/pt/*\n", "path-include=/usr/share/locale/de_DE/*\n",
		"path-exclude=/usr/lib/*/gconv/*.so\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("dpkg excludes lack %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "locale/C/") {
		t.Errorf("C has no translations to keep:\n%s", got)
	}
	// dpkg applies the last matching rule: every include follows its exclude.
	if strings.Index(got, "path-include=/usr/share/doc/*/copyright") < strings.Index(got, "path-exclude=/usr/share/doc/*") {
		t.Error("the copyright include comes before the doc exclude")
	}
}

func TestSetuidFilesAndGlobs(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, "usr/bin/su", "usr/bin/ls", "usr/bin/wall", "usr/bin/link->su")
	unix.Chmod(filepath.Join(root, "usr/bin/su"), 0o4755)
	unix.Chmod(filepath.Join(root, "usr/bin/wall"), 0o2755)
	got, err := setuidFiles(root)
	if err != nil {
		t.Fatal(err)
	}
	// The owners, as dpkg -S names them: a merged-/usr alias in a list
	// counts; a list that is a link or a FIFO is never read.
	hostList := filepath.Join(t.TempDir(), "host.list")
	os.WriteFile(hostList, []byte("/usr/bin/wall\n"), 0o644)
	writeTree(t, root, "var/lib/dpkg/info/util-linux:amd64.list", "var/lib/dpkg/info/evil.list->"+hostList)
	os.WriteFile(filepath.Join(root, "var/lib/dpkg/info/util-linux:amd64.list"), []byte("/.\n/bin\n/bin/su\n"), 0o644)
	if err := unix.Mkfifo(filepath.Join(root, "var/lib/dpkg/info/fifo.list"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := inroot.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	owners := setuidOwners(r, got)
	var names []string
	for _, f := range got {
		names = append(names, f.describe(owners[f.path]))
	}
	if want := []string{"/usr/bin/su (setuid, from package util-linux)", "/usr/bin/wall (setgid, in no package: a provisioner made it)"}; !slices.Equal(names, want) {
		t.Errorf("setuid files %v, want %v", names, want)
	}
	c := &Config{AllowedSetuidExtra: []string{"/usr/bin/sudo"}}
	if line := c.setuidFixLine(got); line != `allowed_setuid_extra = ["/usr/bin/sudo", "/usr/bin/su", "/usr/bin/wall"]` {
		t.Errorf("fix line %s", line)
	}
	if !matchesAny([]string{"lib*", "apt"}, "libc6") || matchesAny([]string{"lib*", "apt"}, "apt-utils") {
		t.Error("package globs match whole names")
	}
}

func TestMeasureImageSeparatesBuildState(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, "usr/bin/x", "var/lib/apt/lists/deb_Packages", "var/lib/apt/lists/partial/", "tmp/a/b", "etc/l->usr/bin/x")
	s, err := measureImage(root)
	if err != nil {
		t.Fatal(err)
	}
	want := int64(len("usr/bin/x") + len("var/lib/apt/lists/deb_Packages") + len("tmp/a/b") + len("usr/bin/x"))
	if s.apparent != want {
		t.Errorf("apparent %d, want %d", s.apparent, want)
	}
	if s.stateBytes != int64(len("var/lib/apt/lists/deb_Packages")+len("tmp/a/b")) || s.stateEntries != 3 {
		t.Errorf("build state %d bytes in %d entries (want the lists file, tmp/a and tmp/a/b; never partial/)", s.stateBytes, s.stateEntries)
	}
}
