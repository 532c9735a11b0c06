package chroot

// End-to-end tests of what goes into an image: minimize, the SBOM, the
// strata-packages provisioner and its lock file, and the content rules.

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/strata-build/packer-plugin-strata/export/exporttest"
	"github.com/strata-build/packer-plugin-strata/internal/acctest"
)

// unpack extracts a rootfs tar (any compression) into a new directory,
// owners, modes and xattrs as they are.
func unpack(t *testing.T, archive string) string {
	t.Helper()
	tree := filepath.Join(t.TempDir(), "tree")
	os.Mkdir(tree, 0o755)
	acctest.RunIn(t, tree, "tar", "-xpf", archive, "--numeric-owner", "--xattrs", "--xattrs-include=*")
	return tree
}

// TestAccMinimizedBase: the example-like base (bookworm minbase) comes out
// minimized: no docs but copyrights, no man or info pages, no translations,
// no gconv modules; dpkg's path-exclude rules in place; at most 70 MB
// (du --apparent-size, debian:bookworm-slim is 74.8 MB); apt works. Its
// SBOM parses back with CycloneDX's library and lists exactly what
// dpkg-query lists in the image, as packages.tsv does.
func TestAccMinimizedBase(t *testing.T) {
	r, _ := baseBuild(t)
	out := filepath.Join(r.Dir, "output-base")
	log := r.Output()
	for _, want := range []string{"Minimizing the image", "Minimized in", "removed: ", "docs", "man pages", "gconv modules", "Contents checked"} {
		if !strings.Contains(log, want) {
			t.Errorf("the build log lacks %q", want)
		}
	}
	t.Logf("minimize:\n%s", grepLines(log, "Minimiz", "removed: "))
	tree := unpack(t, filepath.Join(out, "rootfs.tar.zst"))

	du := strings.Fields(acctest.RunIn(t, tree, "du", "-s", "--apparent-size", "-B1", "."))[0]
	size, _ := strconv.ParseInt(du, 10, 64)
	t.Logf("minimized bookworm minbase: %.1f MB apparent (du -s --apparent-size)", float64(size)/1e6)
	if size > 70e6 {
		t.Errorf("minimized base is %.1f MB, the goal is at most 70 MB", float64(size)/1e6)
	}
	var docs, copyrights int
	filepath.WalkDir(filepath.Join(tree, "usr/share/doc"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if d.Name() == "copyright" {
				copyrights++
			} else {
				docs++
				if docs < 5 {
					t.Errorf("documentation left: %s", p)
				}
			}
		}
		return nil
	})
	if docs > 0 || copyrights < 80 {
		t.Errorf("usr/share/doc holds %d docs and %d copyright files; want none and one a package", docs, copyrights)
	}
	for _, dir := range []string{"usr/share/man", "usr/share/info"} {
		if ents, _ := os.ReadDir(filepath.Join(tree, dir)); len(ents) > 0 {
			t.Errorf("%s is not empty: %d entries", dir, len(ents))
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(tree, "usr/share/locale")); len(ents) > 1 {
		t.Errorf("usr/share/locale holds %d entries, want locale.alias only", len(ents))
	}
	if so, _ := filepath.Glob(filepath.Join(tree, "usr/lib/*/gconv/*.so")); len(so) > 0 {
		t.Errorf("%d gconv modules left", len(so))
	}
	rules, err := os.ReadFile(filepath.Join(tree, dpkgExcludesFile))
	if err != nil || !bytes.Contains(rules, []byte("path-exclude=/usr/share/doc/*")) {
		t.Errorf("dpkg exclude rules: %v\n%s", err, rules)
	}
	if v := acctest.RunIn(t, out, "chroot", tree, "apt-get", "--version"); !strings.HasPrefix(v, "apt ") {
		t.Errorf("apt-get in the minimized image: %q", v)
	}

	// The SBOM against dpkg-query in the image.
	m := exporttest.ManifestOf(t, out)
	if m.SBOM != "sbom.cdx.json" {
		t.Fatalf("artifact.json names no SBOM: %+v", m)
	}
	f, err := os.Open(filepath.Join(out, m.SBOM))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(f, cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		t.Fatalf("CycloneDX cannot read the SBOM: %v", err)
	}
	if bom.SpecVersion != cdx.SpecVersion1_5 || bom.Metadata == nil || bom.Metadata.Component == nil || bom.Metadata.Component.Version != m.ImageID {
		t.Errorf("SBOM spec %v metadata %+v, want 1.5 about image %s", bom.SpecVersion, bom.Metadata, m.ImageID)
	}
	var fromBOM []string
	for _, c := range *bom.Components {
		arch := ""
		for _, p := range *c.Properties {
			if p.Name == "strata:architecture" {
				arch = p.Value
			}
		}
		if !strings.HasPrefix(c.PackageURL, "pkg:deb/debian/"+c.Name+"@") || !strings.Contains(c.PackageURL, "distro=debian-12") {
			t.Errorf("purl %q for %s", c.PackageURL, c.Name)
		}
		fromBOM = append(fromBOM, c.Name+" "+c.Version+" "+arch)
	}
	query := acctest.RunIn(t, out, "chroot", tree, "dpkg-query", "-W", "-f", "${db:Status-Status} ${Package} ${Version} ${Architecture}\n")
	var fromDpkg []string
	for _, line := range strings.Split(strings.TrimSpace(query), "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[0] == "installed" {
			fromDpkg = append(fromDpkg, strings.Join(f[1:], " "))
		}
	}
	sort.Strings(fromBOM)
	sort.Strings(fromDpkg)
	if strings.Join(fromBOM, "\n") != strings.Join(fromDpkg, "\n") || len(fromDpkg) < 80 {
		t.Errorf("SBOM lists %d packages, dpkg-query %d:\nSBOM: %v\ndpkg: %v", len(fromBOM), len(fromDpkg), fromBOM, fromDpkg)
	}
	tsv, _ := os.ReadFile(filepath.Join(out, "packages.tsv"))
	for _, line := range strings.Split(strings.TrimSpace(string(tsv)), "\n") {
		if cols := strings.Split(line, "\t"); len(cols) != 6 {
			t.Errorf("packages.tsv line %q has %d columns, want 6", line, len(cols))
			break
		}
	}
	if !bytes.Contains(tsv, []byte("libc6\t")) || !bytes.Contains(tsv, []byte("\tglibc\t")) {
		t.Errorf("packages.tsv lacks libc6 from source glibc")
	}
}

func contentsBuild(t *testing.T, e *acctest.Env, vars map[string]string) (*acctest.Proc, string) {
	t.Helper()
	dir := t.TempDir()
	if vars["store_dir"] == "" {
		vars["store_dir"] = filepath.Join(acctest.Scratch(t), "store")
	}
	vars["archive"] = baseArchive(t)
	r := e.Build(t, dir, acctest.Fixture("contents.pkr.hcl"), vars)
	acctest.AssertClean(t, vars["store_dir"])
	return r, filepath.Join(dir, "output-contents")
}

// TestAccContentRules: allowed_packages, denied_packages and a setuid file
// nobody allowed fail one build listing every offender, leaving nothing;
// strip_setuid clears the bit instead; remove_files removes inside the
// image and never through a symlink out of it; remove_packages refuses an
// Essential or Protected package without force, and with force purges it
// with the dependencies nothing else needs.
func TestAccContentRules(t *testing.T) {
	e := acctest.Setup(t)
	setuid := []string{
		"set -e",
		"cp /usr/bin/true /usr/local/bin/evil && chmod 4755 /usr/local/bin/evil",
		"cp /usr/bin/true /usr/local/bin/evil-group && chmod 2755 /usr/local/bin/evil-group",
	}
	vars := map[string]string{
		"inline":           hclList(setuid),
		"allowed_packages": hclList([]string{"lib*", "apt", "base-*", "bash", "coreutils", "dpkg", "debian*", "*utils", "*-bin", "*-base", "gpgv", "grep", "gzip", "hostname", "login", "mawk", "mount", "ncurses*", "passwd", "sed", "sensible-utils", "sysvinit-utils", "tar", "tzdata", "usr-is-merged", "zlib1g", "gcc-12-base", "adduser", "diffutils", "findutils"}),
		"denied_packages":  hclList([]string{"apt", "e2fs*"}),
	}
	r, out := contentsBuild(t, e, vars)
	failedBuildLeftNothing(t, r, out, vars["store_dir"])
	log := r.Output()
	for _, want := range []string{
		"the image breaks its content rules",
		"denied_packages: ", "apt 2.6",
		"allowed_setuid: 2 setuid/setgid file(s) not allowed",
		"/usr/local/bin/evil (setuid, in no package: a provisioner made it)", "/usr/local/bin/evil-group (setgid, in no package",
		`allowed_setuid_extra = ["/usr/local/bin/evil", "/usr/local/bin/evil-group"]`,
		"strip_setuid = true",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("the content rules' error lacks %q", want)
		}
	}
	t.Logf("content rules error:\n%s", grepLines(log, "content rules", "allowed_", "denied_"))

	// strip_setuid, and remove_files with a symlink out of the image.
	canary := filepath.Join(t.TempDir(), "canary")
	os.WriteFile(canary, []byte("host file"), 0o644)
	vars = map[string]string{
		"inline": hclList(append(setuid,
			"mkdir -p /opt/junk/keep && touch /opt/junk/a.log /opt/junk/b.log /opt/junk/keep/c.log /opt/junk/keep.txt",
			"ln -s "+filepath.Dir(canary)+" /opt/out",
		)),
		"strip_setuid": "true",
		"remove_files": hclList([]string{"/opt/junk/*.log", "/opt/out/*", "/opt/junk/keep"}),
	}
	r, out = contentsBuild(t, e, vars)
	if r.Code != 0 {
		t.Fatalf("strip_setuid build:\n%s", r.Output())
	}
	if !strings.Contains(r.Output(), "strip_setuid: cleared the setuid/setgid bit of 2 file(s)") {
		t.Errorf("no strip_setuid message")
	}
	if _, err := os.Stat(canary); err != nil {
		t.Errorf("remove_files followed /opt/out out of the image: %v", err)
	}
	listing := acctest.RunIn(t, out, "tar", "-tvf", "rootfs.tar")
	for _, line := range strings.Split(listing, "\n") {
		if strings.HasSuffix(line, "./usr/local/bin/evil") && !strings.HasPrefix(line, "-rwxr-xr-x") {
			t.Errorf("evil kept its setuid bit: %s", line)
		}
		if strings.HasSuffix(line, "./usr/bin/su") && !strings.HasPrefix(line, "-rwsr-xr-x") {
			t.Errorf("su lost its allowed setuid bit: %s", line)
		}
	}
	for name, want := range map[string]bool{"./opt/junk/a.log": false, "./opt/junk/b.log": false, "./opt/junk/keep/": false, "./opt/junk/keep.txt": true, "./opt/out": true} {
		if got := strings.Contains(listing, " "+name+"\n") || strings.Contains(listing, " "+name+" -> "); got != want {
			t.Errorf("%s in the image: %v, want %v", name, got, want)
		}
	}

	// remove_packages: Essential needs force; others go with their
	// now-unused dependencies.
	for pkg, want := range map[string]string{"bash": "bash is Essential", "e2fsprogs": "e2fsprogs is Essential or Protected"} {
		vars = map[string]string{"inline": hclList([]string{"true"}), "remove_packages": hclList([]string{pkg})}
		r, out = contentsBuild(t, e, vars)
		failedBuildLeftNothing(t, r, out, vars["store_dir"])
		if !strings.Contains(r.Output(), "minimize.remove_packages: "+want) || !strings.Contains(r.Output(), "minimize.force = true") {
			t.Errorf("removing %s: %s", pkg, grepLines(r.Output(), "remove_packages"))
		}
	}
	// apt is Protected, and takes adduser, gpgv and more with it: force.
	vars = map[string]string{"inline": hclList([]string{"true"}), "remove_packages": hclList([]string{"apt"}), "force": "true"}
	r, out = contentsBuild(t, e, vars)
	if r.Code != 0 {
		t.Fatalf("removing apt with force:\n%s", r.Output())
	}
	tsv, _ := os.ReadFile(filepath.Join(out, "packages.tsv"))
	for _, gone := range []string{"apt\t", "libapt-pkg6.0\t", "adduser\t"} {
		if bytes.HasPrefix(tsv, []byte(gone)) || bytes.Contains(tsv, []byte("\n"+gone)) {
			t.Errorf("%s still installed after remove_packages = [apt]", strings.TrimSpace(gone))
		}
	}
	if err := exec.Command("tar", "-xOf", filepath.Join(out, "rootfs.tar"), "./usr/bin/apt-get").Run(); err == nil {
		t.Error("apt-get is still in the image")
	}
}

// grepLines returns the lines of s that hold any of the words.
func grepLines(s string, words ...string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		for _, w := range words {
			if strings.Contains(l, w) {
				out = append(out, l)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}

// TestAccSetuidFromPackages: installing sudo and openssh-client brings
// setuid files minbase lacks. The error names the package of each and
// prints the allowed_setuid_extra line that allows them; with that line
// the same build passes, and the defaults still hold (su keeps its bit).
func TestAccSetuidFromPackages(t *testing.T) {
	e := acctest.Setup(t)
	install := []string{"set -e", "apt-get update -qq", "apt-get install -y -qq --no-install-recommends sudo openssh-client"}
	vars := map[string]string{"inline": hclList(install), "cache_dir": e.CacheDir}
	r, out := contentsBuild(t, e, vars)
	failedBuildLeftNothing(t, r, out, vars["store_dir"])
	log := r.Output()
	for _, want := range []string{
		"/usr/bin/sudo (setuid, from package sudo)",
		"/usr/lib/openssh/ssh-keysign (setuid, from package openssh-client)",
		"add this line to the source block",
		"strip_setuid = true",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("the setuid error lacks %q:\n%s", want, grepLines(log, "allowed_setuid", "setuid"))
		}
	}
	t.Logf("the setuid error:\n%s", grepLines(log, "setuid"))
	_, line, found := strings.Cut(log, "allowed_setuid_extra = ")
	if !found {
		t.Fatalf("no allowed_setuid_extra line in the error:\n%s", log)
	}
	line, _, _ = strings.Cut(line, "\n")
	if !strings.HasPrefix(line, `["`) || !strings.HasSuffix(line, `"]`) || strings.Contains(line, "/usr/bin/su\"") {
		t.Fatalf("the printed line's value %s is not the offenders' list", line)
	}

	// The printed line, as printed, makes the build pass.
	vars = map[string]string{"inline": hclList(install), "cache_dir": e.CacheDir, "allowed_setuid_extra": line}
	r, out = contentsBuild(t, e, vars)
	if r.Code != 0 {
		t.Fatalf("with allowed_setuid_extra = %s:\n%s", line, r.Output())
	}
	listing := acctest.RunIn(t, out, "tar", "-tvf", "rootfs.tar", "./usr/bin/sudo", "./usr/bin/su")
	if strings.Count(listing, "-rws") != 2 {
		t.Errorf("sudo and su should both keep their setuid bits:\n%s", listing)
	}
}
