package chroot

// End-to-end tests of the strata-packages provisioner: installs through the
// package cache, its lock file, and failed builds that leave nothing.

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-build/packer-plugin-strata/internal/acctest"
	"github.com/strata-build/packer-plugin-strata/layer/layertest"
)

// greetRepo is a test repository with greet, which depends on libgreet
// (docs, a man page and a translation in it), and broken, which depends on
// a package nobody has.
func greetRepo(t *testing.T, version string) *aptRepo {
	repo := newAptRepo(t)
	addGreet(repo, version)
	repo.addDeb(deb{name: "broken", version: "1.0", control: "Depends: nosuchdep\n"})
	repo.index()
	return repo
}

func addGreet(repo *aptRepo, version string) {
	repo.addDeb(deb{name: "libgreet", version: version, files: map[string]string{
		"usr/share/doc/libgreet/copyright":         "public domain\n",
		"usr/share/doc/libgreet/README":            "read me\n",
		"usr/share/man/man1/greet.1":               ".TH GREET 1\n",
		"usr/share/locale/de/LC_MESSAGES/greet.mo": "hallo\n",
	}})
	repo.addDeb(deb{name: "greet", version: version, control: "Depends: libgreet (>= " + version + ")\n"})
}

func packagesVars(t *testing.T, repo *aptRepo, cache string, install ...string) map[string]string {
	return map[string]string{
		"store_dir": filepath.Join(acctest.Scratch(t), "store"),
		"archive":   baseArchive(t),
		"cache_dir": cache,
		"repo_url":  repo.url,
		"key_file":  repo.key,
		"install":   hclList(install),
	}
}

func packagesBuild(t *testing.T, e *acctest.Env, vars map[string]string) (*acctest.Proc, string) {
	t.Helper()
	dir := t.TempDir()
	r := e.Build(t, dir, acctest.Fixture("packages.pkr.hcl"), vars)
	acctest.AssertClean(t, vars["store_dir"])
	return r, filepath.Join(dir, "output-pkgs")
}

func readLockFile(t *testing.T, p string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var l struct {
		Install  []string `json:"install"`
		Packages []struct {
			Name      string `json:"name"`
			Version   string `json:"version"`
			Requested bool   `json:"requested"`
		} `json:"packages"`
	}
	if err := json.Unmarshal(b, &l); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, p := range l.Packages {
		out[p.Name] = p.Version + map[bool]string{true: " requested", false: ""}[p.Requested]
	}
	return out
}

// failedBuildLeftNothing: no output dir, no layer, no image, no mount.
func failedBuildLeftNothing(t *testing.T, r *acctest.Proc, out, store string) {
	t.Helper()
	if r.Code == 0 {
		t.Fatalf("the build succeeded:\n%s", r.Output())
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("a failed build left %s", out)
	}
	if _, err := os.Stat(filepath.Join(store, "layers")); err == nil {
		if ls, is := counts(t, layertest.StoreOf(t, store)); ls != 0 || is != 0 {
			t.Errorf("a failed build left %d layers and %d images in the store", ls, is)
		}
	}
	acctest.AssertClean(t, store)
}

// TestAccPackagesProvisioner: strata-packages installs through the cache
// with dependencies marked automatic and a hold; dpkg's path-exclude rules
// from the minimized base keep the new package's docs, man page and
// translation out; the lock file records the whole closure; a later build
// installs the locked versions although the repository has newer ones;
// update_lock moves to the newer ones; remove purges a package with the
// dependencies only it needed, upgrade upgrades, and update = false leaves
// the image's package indexes alone; a locked version
// the repository dropped, an unknown package and a dependency nobody has
// each fail naming the package, leaving nothing behind.
func TestAccPackagesProvisioner(t *testing.T) {
	e := acctest.Setup(t)
	cache := filepath.Join(acctest.Scratch(t), "cache")
	repo := greetRepo(t, "1.0")
	lock := filepath.Join(t.TempDir(), "packages.lock")

	vars := packagesVars(t, repo, cache, "greet")
	vars["lock_file"] = lock
	vars["hold"] = hclList([]string{"greet"})
	vars["inline"] = hclList([]string{
		"set -ex",
		"test -f /usr/share/greet/version && test -f /usr/share/libgreet/version",
		"test -f /usr/share/doc/libgreet/copyright",
		"test ! -e /usr/share/doc/libgreet/README",
		"test ! -e /usr/share/man/man1/greet.1",
		"test ! -e /usr/share/locale/de/LC_MESSAGES/greet.mo",
		"apt-mark showauto | grep -qx libgreet",
		"apt-mark showmanual | grep -qx greet",
		"apt-mark showhold | grep -qx greet",
	})
	r, out := packagesBuild(t, e, vars)
	if r.Code != 0 {
		t.Fatalf("install with a new lock file:\n%s", r.Output())
	}
	if got := readLockFile(t, lock); len(got) != 2 || got["greet"] != "1.0 requested" || got["libgreet"] != "1.0" {
		t.Errorf("lock file %v, want greet 1.0 (requested) and libgreet 1.0\n%s", got, r.Output())
	}
	for _, want := range []string{"Wrote " + lock + ": 2 package version(s)", "strata-packages done in", "2 installed (greet 1.0, libgreet 1.0)"} {
		if !strings.Contains(r.Output(), want) {
			t.Errorf("log lacks %q", want)
		}
	}
	if v := tarHas(t, out, "./usr/share/greet/version"); v != "1.0\n" {
		t.Errorf("greet version in the image %q", v)
	}
	lockV1, _ := os.ReadFile(lock)

	// The repository moves on; the lock holds.
	addGreet(repo, "2.0")
	repo.index()
	delete(vars, "hold")
	vars["inline"] = hclList([]string{"apt-mark showauto | grep -qx libgreet"})
	vars["store_dir"] = filepath.Join(acctest.Scratch(t), "store")
	r, out = packagesBuild(t, e, vars)
	if r.Code != 0 {
		t.Fatalf("install from the lock file:\n%s", r.Output())
	}
	if v := tarHas(t, out, "./usr/share/greet/version") + tarHas(t, out, "./usr/share/libgreet/version"); v != "1.0\n1.0\n" {
		t.Errorf("with the lock, the image has greet and libgreet %q, want 1.0 and 1.0", v)
	}
	if b, _ := os.ReadFile(lock); !bytes.Equal(b, lockV1) {
		t.Errorf("installing from the lock rewrote it:\n%s", b)
	}
	if !strings.Contains(r.Output(), "Installing the 2 package version(s) locked in "+lock) {
		t.Error("log does not say the lock was used")
	}
	// The lock records each .deb: the fast path, without package indexes
	// or apt's resolver (libgreet automatic again: the inline checks it).
	if !strings.Contains(r.Output(), "Installing the locked .debs directly") || strings.Contains(r.Output(), "Updating the package indexes") {
		t.Errorf("the lock's fast path was not taken:\n%s", r.Output())
	}

	// update_lock resolves again.
	vars["update_lock"] = "true"
	vars["store_dir"] = filepath.Join(acctest.Scratch(t), "store")
	r, out = packagesBuild(t, e, vars)
	if r.Code != 0 {
		t.Fatalf("update_lock:\n%s", r.Output())
	}
	if got := readLockFile(t, lock); got["greet"] != "2.0 requested" || got["libgreet"] != "2.0" {
		t.Errorf("updated lock %v", got)
	}
	if v := tarHas(t, out, "./usr/share/greet/version"); v != "2.0\n" {
		t.Errorf("update_lock installed greet %q", v)
	}

	// remove, upgrade and update = false in one build. The image already
	// has greet 1.0 and farewell (with libfarewell, automatic), from
	// indexes that know greet 2.0, and a marker file among those indexes,
	// which apt-get update would delete (it removes what no source lists).
	// strata-packages purges farewell with libfarewell, upgrades greet to
	// 2.0, and leaves the indexes alone.
	repo.addDeb(deb{name: "libfarewell", version: "1.0"})
	repo.addDeb(deb{name: "farewell", version: "1.0", control: "Depends: libfarewell\n"})
	repo.index()
	uv := packagesVars(t, repo, cache)
	uv["upgrade"], uv["update"] = "true", "false"
	uv["remove"] = hclList([]string{"farewell"})
	uv["prepare"] = hclList([]string{
		"set -e",
		"apt-get update -qq",
		"apt-get install -y -qq greet=1.0 libgreet=1.0 farewell",
		// $${ is HCL's escape for a literal ${ in a -var value.
		"dpkg-query -W -f '$${Version}' greet | grep -qx 1.0",
		"apt-mark showauto | grep -qx libfarewell",
		"touch /var/lib/apt/lists/strata-test-not-updated",
	})
	uv["inline"] = hclList([]string{
		"set -ex",
		"! dpkg -s farewell", "! dpkg -s libfarewell",
		"test \"$(dpkg-query -W -f '$${Version}' greet libgreet)\" = 2.02.0",
		"test -e /var/lib/apt/lists/strata-test-not-updated",
	})
	ur, uout := packagesBuild(t, e, uv)
	if ur.Code != 0 {
		t.Fatalf("remove, upgrade, update = false:\n%s", ur.Output())
	}
	if v := tarHas(t, uout, "./usr/share/greet/version"); v != "2.0\n" {
		t.Errorf("after upgrade the image has greet %q", v)
	}
	for _, want := range []string{"Removing farewell", "Upgrading the installed packages"} {
		if !strings.Contains(ur.Output(), want) {
			t.Errorf("log lacks %q", want)
		}
	}
	if strings.Contains(ur.Output(), "Updating the package indexes") {
		t.Error("update = false updated the package indexes")
	}

	// The repository drops greet 1.0: the old lock fails, naming it.
	os.WriteFile(lock, lockV1, 0o644)
	os.Remove(filepath.Join(repo.dir, "pool/main/greet_1.0_all.deb"))
	repo.index()
	delete(vars, "update_lock")
	vars["store_dir"] = filepath.Join(acctest.Scratch(t), "store")
	r, out = packagesBuild(t, e, vars)
	failedBuildLeftNothing(t, r, out, vars["store_dir"])
	for _, want := range []string{"greet version 1.0 is not available", "lock_file " + lock, "update_lock = true"} {
		if !strings.Contains(r.Output(), want) {
			t.Errorf("a locked version gone: the error lacks %q:\n%s", want, r.Output())
		}
	}

	for pkg, want := range map[string]string{
		"nosuch": "package nosuch is unknown",
		"broken": "dependency conflict: broken Depends: nosuchdep",
	} {
		vars := packagesVars(t, repo, cache, pkg)
		r, out := packagesBuild(t, e, vars)
		failedBuildLeftNothing(t, r, out, vars["store_dir"])
		if !strings.Contains(r.Output(), want) {
			t.Errorf("install %s: the error lacks %q:\n%s", pkg, want, r.Output())
		}
	}
}
