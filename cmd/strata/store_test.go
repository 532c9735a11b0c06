package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// asNobody runs a command as the unprivileged user nobody.
func asNobody(t *testing.T, name string, args ...string) {
	t.Helper()
	argv := append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", name}, args...)
	if out, err := exec.Command("setpriv", argv...).CombinedOutput(); err != nil {
		t.Fatalf("as nobody: %s %v: %v\n%s", name, args, err, out)
	}
}

// TestCLICachePruneRefusesForeignCache: root's `strata cache prune --dir`
// on a cache another user owns, or whose blobs/sha256 that user made a
// link to a directory of root's, deletes nothing and says why.
func TestCLICachePruneRefusesForeignCache(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to act as another user")
	}
	c := cli{t, "sqlite://" + filepath.Join(t.TempDir(), "catalog.db")}
	base := t.TempDir()
	os.Chmod(base, 0o755)
	os.Chmod(filepath.Dir(base), 0o755) // nobody must reach it
	canary := filepath.Join(base, "canary")
	os.Mkdir(canary, 0o700)
	old := time.Now().Add(-100 * 24 * time.Hour)
	precious := filepath.Join(canary, "precious")
	os.WriteFile(precious, []byte("root's"), 0o600)
	os.Chtimes(precious, old, old)

	// nobody's own cache, its blob directory a link to root's canary.
	linked := filepath.Join(base, "linked")
	os.Mkdir(linked, 0o755)
	os.Chown(linked, 65534, 65534)
	asNobody(t, "mkdir", filepath.Join(linked, "blobs"))
	asNobody(t, "ln", "-s", canary, filepath.Join(linked, "blobs", "sha256"))
	c.fails(1, "owned by uid 65534", "cache", "prune", "--dir", linked, "--unused-for", "24h")

	// A cache of root's whose blobs/sha256 is a link.
	rootLinked := filepath.Join(base, "root-linked")
	os.MkdirAll(filepath.Join(rootLinked, "blobs"), 0o700)
	os.Chmod(rootLinked, 0o700)
	os.Symlink(canary, filepath.Join(rootLinked, "blobs", "sha256"))
	c.fails(1, "blobs/sha256 is not a directory (a symlink", "cache", "prune", "--dir", rootLinked, "--unused-for", "24h")

	// A cache another user owns, with real directories.
	foreign := filepath.Join(base, "foreign")
	os.MkdirAll(filepath.Join(foreign, "blobs", "sha256"), 0o700)
	stale := filepath.Join(foreign, "blobs", "sha256", "stale")
	os.WriteFile(stale, []byte("x"), 0o600)
	os.Chtimes(stale, old, old)
	for _, p := range []string{foreign, filepath.Join(foreign, "blobs"), filepath.Join(foreign, "blobs", "sha256"), stale} {
		os.Chown(p, 65534, 65534)
	}
	c.fails(1, "owned by uid 65534", "cache", "prune", "--dir", foreign, "--unused-for", "24h")

	for _, p := range []string{precious, stale} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s was deleted: %v", p, err)
		}
	}
	// A link to the cache is followed to where it leads, and checked there.
	mine := filepath.Join(base, "mine")
	os.MkdirAll(filepath.Join(mine, "blobs", "sha256"), 0o700)
	os.Chmod(mine, 0o700)
	os.Symlink(mine, filepath.Join(base, "mine-link"))
	c.ok("cache", "prune", "--dir", filepath.Join(base, "mine-link"), "--unused-for", "24h")
}

// TestCLIStoreOfAnotherUser: gc, layers and export refuse a store another
// user owns or can write, before they read or delete anything in it.
func TestCLIStoreOfAnotherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to act as another user")
	}
	c := cli{t, "sqlite://" + filepath.Join(t.TempDir(), "catalog.db")}
	for name, setup := range map[string]func(store string){
		"owned by nobody": func(store string) { os.Chown(store, 65534, 65534) },
		"layers of nobody": func(store string) {
			os.Chown(filepath.Join(store, "layers"), 65534, 65534)
		},
		"layers a link": func(store string) {
			elsewhere := filepath.Join(filepath.Dir(store), "elsewhere")
			os.Mkdir(elsewhere, 0o700)
			os.RemoveAll(filepath.Join(store, "layers"))
			os.Symlink(elsewhere, filepath.Join(store, "layers"))
		},
	} {
		t.Run(name, func(t *testing.T) {
			c.t = t
			store := filepath.Join(t.TempDir(), "store")
			os.MkdirAll(filepath.Join(store, "layers"), 0o700)
			setup(store)
			for _, args := range [][]string{
				{"layers"},
				{"gc", "--apply"},
				{"export", "sha256:" + "ab12ab12ab12ab12", "--output", filepath.Join(t.TempDir(), "out")},
			} {
				c.fails(1, "--store: ", append([]string{"--store", store}, args...)...)
			}
		})
	}
}

// TestCLIExportOutputIntoTheStore: --output is taken where it leads; one
// that leads into the store through a link is refused before anything is
// read or removed, --force or not.
func TestCLIExportOutputIntoTheStore(t *testing.T) {
	c := cli{t, "sqlite://" + filepath.Join(t.TempDir(), "catalog.db")}
	store := filepath.Join(t.TempDir(), "store")
	canary := filepath.Join(store, "layers", "canary")
	os.MkdirAll(filepath.Dir(canary), 0o700)
	os.WriteFile(canary, []byte("layers"), 0o600)
	link := filepath.Join(t.TempDir(), "to-store")
	os.Symlink(store, link)
	c.fails(2, "overlaps the store", "--store", store, "export", "sha256:ab12ab12ab12ab12", "--output", filepath.Join(link, "layers"), "--force")
	if _, err := os.Stat(canary); err != nil {
		t.Fatal("the store's layers were touched")
	}
}
