package chroot

// End-to-end tests of the shared package indexes: children of a parent
// whose only apt source is a local test repository install with
// strata-packages; the second child starts from the first one's lists; a
// changed InRelease makes a new copy; offline and snapshot builds use the
// copy they are pinned to; nothing of it enters a layer.

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/strata-build/packer-plugin-strata/export/exporttest"
	"github.com/strata-build/packer-plugin-strata/internal/acctest"
)

var (
	hitRe       = regexp.MustCompile(`package indexes: shared copy ([0-9a-f]{12}) \(hit`)
	publishedRe = regexp.MustCompile(`package indexes: published shared copy ([0-9a-f]{12})`)
	stepTimesRe = regexp.MustCompile(`strata: step times \(total [^)]+\): .*provision [0-9.]+[mµ]?s`)
)

// indexesParent builds, from the base archive, a parent whose only apt
// source is repo (its key in /etc/apt/keyrings), and returns its image ID.
func indexesParent(t *testing.T, e *acctest.Env, store string, repo *aptRepo) string {
	t.Helper()
	key, err := os.ReadFile(repo.key)
	if err != nil {
		t.Fatal(err)
	}
	out := layeredBuild(t, e, store, map[string]string{"archive": baseArchive(t)}, []string{
		"set -e",
		"mkdir -p /etc/apt/keyrings",
		"echo " + base64.StdEncoding.EncodeToString(key) + " | base64 -d > /etc/apt/keyrings/strata-test.gpg",
		"rm -f /etc/apt/sources.list /etc/apt/sources.list.d/*",
		"echo 'deb [signed-by=/etc/apt/keyrings/strata-test.gpg] " + repo.url + " stable main' > /etc/apt/sources.list.d/strata-test.list",
	})
	return exporttest.ManifestOf(t, out).ImageID
}

type indexesChild struct {
	log, out string
	code     int
}

// indexesBuild builds a child of parent that installs install.
func indexesBuild(t *testing.T, e *acctest.Env, store, cache, parent string, repo *aptRepo, vars map[string]string, install ...string) indexesChild {
	t.Helper()
	v := map[string]string{"store_dir": store, "cache_dir": cache, "key_file": repo.key, "parent": parent, "install": hclList(install)}
	for k, x := range vars {
		v[k] = x
	}
	dir := t.TempDir()
	r := e.Build(t, dir, acctest.Fixture("indexes.pkr.hcl"), v)
	acctest.AssertClean(t, store)
	return indexesChild{log: r.Output(), out: filepath.Join(dir, "output-idx"), code: r.Code}
}

func (c indexesChild) must(t *testing.T, what string) indexesChild {
	t.Helper()
	if c.code != 0 {
		t.Fatalf("%s: exit %d\n%s", what, c.code, c.log)
	}
	return c
}

func match(re *regexp.Regexp, log string) string {
	if m := re.FindStringSubmatch(log); m != nil {
		return m[1]
	}
	return ""
}

// noIndexesInLayer: the child's own layer holds none of apt's lists or
// binary caches, and the image has none either.
func noIndexesInLayer(t *testing.T, c indexesChild, pkg string) {
	t.Helper()
	entries := layerEntries(t, filepath.Join(c.out, "oci"), 1)
	if !entries["./usr/share/"+pkg+"/version"] {
		t.Errorf("the child's layer lacks what it installed (%d entries)", len(entries))
	}
	for e := range entries {
		if (strings.HasPrefix(e, "./var/lib/apt/lists/") && e != "./var/lib/apt/lists/" && e != "./var/lib/apt/lists/partial/") ||
			strings.HasSuffix(e, ".bin") || strings.HasPrefix(e, "./var/cache/apt/archives/") && strings.HasSuffix(e, ".deb") ||
			strings.Contains(e, "apt-indexes") {
			t.Errorf("the child's layer carries %s", e)
		}
	}
	for _, d := range []string{"var/lib/apt/lists", "var/cache/apt"} {
		filepath.WalkDir(filepath.Join(c.out, "rootfs", d), func(p string, de os.DirEntry, err error) error {
			if err == nil && !de.IsDir() && de.Name() != "lock" {
				t.Errorf("the image has %s", p)
			}
			return nil
		})
	}
}

func version(t *testing.T, c indexesChild, pkg string) string {
	b, _ := os.ReadFile(filepath.Join(c.out, "rootfs/usr/share", pkg, "version"))
	return strings.TrimSpace(string(b))
}

// TestAccSharedIndexes: the first child runs apt-get update and publishes
// a shared copy; the second starts from it (hit), skips apt-get update
// (update = "auto") and asks the repository for nothing but the .deb it
// lacks; neither layer carries lists or caches. update = "never" with no
// shared copy fails clearly. A stale copy is revalidated (no new copy); a
// changed InRelease makes one new copy, which the next child uses; an
// offline build pinned to the first child's snapshot uses the first copy
// and installs the old version. The second child has the parent's own apt
// make the binary caches, which later children of it start from.
func TestAccSharedIndexes(t *testing.T) {
	e := acctest.Setup(t)
	repo := newAptRepo(t)
	repo.add("strata-hello", "1.0", 20000)
	repo.add("strata-other", "1.0", 1000)
	repo.index()
	store := filepath.Join(acctest.Scratch(t), "store")
	cache := t.TempDir()
	parent := indexesParent(t, e, store, repo)
	inRelease := "/dists/stable/InRelease"

	// 1: no shared copy yet: apt-get update runs, a copy is published.
	c1 := indexesBuild(t, e, store, cache, parent, repo, nil, "strata-hello").must(t, "child 1")
	key1 := match(publishedRe, c1.log)
	if key1 == "" || match(hitRe, c1.log) != "" || !strings.Contains(c1.log, "(miss)") || !strings.Contains(c1.log, "Updating the package indexes") {
		t.Fatalf("child 1 did not start empty and publish a copy:\n%s", c1.log)
	}
	if !stepTimesRe.MatchString(c1.log) {
		t.Errorf("no step times line:\n%s", c1.log)
	}
	if v := version(t, c1, "strata-hello"); v != "1.0" {
		t.Fatalf("child 1 installed %q", v)
	}
	noIndexesInLayer(t, c1, "strata-hello")
	copies, _ := filepath.Glob(filepath.Join(cache, "indexes", key1+"*", "lists", "*"))
	if len(copies) != 2 {
		t.Errorf("the shared copy holds %v, want the InRelease and main's Packages", copies)
	}
	// The only binary cache shared is the one the host's apt made.
	if bins, _ := filepath.Glob(filepath.Join(cache, "indexes", "*", "cache", "*")); len(bins) != 1 || filepath.Base(bins[0]) != "srcpkgcache.bin" ||
		!strings.Contains(c1.log, "srcpkgcache.bin made by the host's apt") {
		t.Errorf("binary caches shared: %v", bins)
	}

	// 2: the same again: the shared copy, no apt-get update, no InRelease
	// asked upstream.
	asked := repo.count(inRelease)
	c2 := indexesBuild(t, e, store, cache, parent, repo, nil, "strata-other").must(t, "child 2")
	if k := match(hitRe, c2.log); k != key1 || strings.Contains(c2.log, "Updating the package indexes") || !strings.Contains(c2.log, "Not updating the package indexes: the shared copy "+key1) {
		t.Fatalf("child 2 did not reuse the shared copy %s without apt-get update:\n%s", key1, c2.log)
	}
	if n := repo.count(inRelease); n != asked {
		t.Errorf("child 2 asked for the InRelease %d times", n-asked)
	}
	if match(publishedRe, c2.log) != "" {
		t.Error("child 2 published another copy")
	}
	if v := version(t, c2, "strata-other"); v != "1.0" {
		t.Fatalf("child 2 installed %q", v)
	}
	noIndexesInLayer(t, c2, "strata-other")
	// Child 2 had the parent's own apt make the binary caches, kept for
	// the parent's children (and for no other image).
	if bins, _ := filepath.Glob(filepath.Join(cache, "indexes", key1+"*", "image", strings.TrimPrefix(parent, "sha256:"), "*.bin")); len(bins) != 2 ||
		!strings.Contains(c2.log, "the parent image's apt made its binary caches") {
		t.Errorf("the parent's binary caches: %v\n%s", bins, c2.log)
	}

	// update = "never" with a new, empty cache: a clear error.
	never := indexesBuild(t, e, store, t.TempDir(), parent, repo, map[string]string{"update": "never"}, "strata-hello")
	if never.code == 0 || !strings.Contains(never.log, `update = "never", but apt has no package list for`) {
		t.Fatalf("update = never without shared lists: exit %d\n%s", never.code, never.log)
	}

	// Stale (update_max_age 0s): apt-get update revalidates; same copy.
	asked = repo.count(inRelease)
	stale := indexesBuild(t, e, store, cache, parent, repo, map[string]string{"update_max_age": "0s"}, "strata-hello").must(t, "stale")
	if match(hitRe, stale.log) != key1 || !strings.Contains(stale.log, "Updating the package indexes") || match(publishedRe, stale.log) != "" {
		t.Fatalf("a stale copy was not revalidated in place:\n%s", stale.log)
	}
	if n := repo.count(inRelease); n != asked+1 {
		t.Errorf("the stale child asked for the InRelease %d times, want once", n-asked)
	}
	if !strings.Contains(stale.log, "the parent image's binary caches)") {
		t.Errorf("the stale child did not start from the parent's binary caches:\n%s", stale.log)
	}

	// A new version: the InRelease changed; the next child that updates
	// makes a new copy, once, and installs 2.0; the one after uses it.
	repo.add("strata-hello", "2.0", 20000)
	repo.index()
	c3 := indexesBuild(t, e, store, cache, parent, repo, map[string]string{"update": "always"}, "strata-hello").must(t, "child 3")
	key2 := match(publishedRe, c3.log)
	if match(hitRe, c3.log) != key1 || key2 == "" || key2 == key1 || version(t, c3, "strata-hello") != "2.0" {
		t.Fatalf("a changed InRelease did not make a new copy (key1 %s, new %q, version %q):\n%s", key1, key2, version(t, c3, "strata-hello"), c3.log)
	}
	c4 := indexesBuild(t, e, store, cache, parent, repo, nil, "strata-hello").must(t, "child 4")
	if match(hitRe, c4.log) != key2 || match(publishedRe, c4.log) != "" || strings.Contains(c4.log, "Updating the package indexes") || version(t, c4, "strata-hello") != "2.0" {
		t.Fatalf("child 4 did not use the new copy %s:\n%s", key2, c4.log)
	}
	noIndexesInLayer(t, c4, "strata-hello")

	// Offline, pinned to child 1's snapshot: exactly its indexes (the
	// first copy, no update: pinned) and so version 1.0.
	pinned := indexesBuild(t, e, store, cache, parent, repo, map[string]string{"offline": "true", "snapshot": filepath.Join(c1.out, "artifact.json")}, "strata-hello").must(t, "pinned")
	if match(hitRe, pinned.log) != key1 || !strings.Contains(pinned.log, "is pinned") || version(t, pinned, "strata-hello") != "1.0" {
		t.Fatalf("the offline snapshot build did not use its pinned copy %s (version %q):\n%s", key1, version(t, pinned, "strata-hello"), pinned.log)
	}
	// Offline without a snapshot: what the cache holds now, the new copy.
	offline := indexesBuild(t, e, store, cache, parent, repo, map[string]string{"offline": "true"}, "strata-hello").must(t, "offline")
	if match(hitRe, offline.log) != key2 || version(t, offline, "strata-hello") != "2.0" {
		t.Fatalf("the offline build did not use the cache's current copy %s:\n%s", key2, offline.log)
	}
	if dirs, _ := filepath.Glob(filepath.Join(cache, "indexes", strings.Repeat("[0-9a-f]", 64))); len(dirs) != 2 {
		t.Errorf("shared copies %v, want 2", dirs)
	}
}
