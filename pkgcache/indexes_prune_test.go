package pkgcache

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Shared index sets and image caches no build used since the cutoff go;
// what a build used since stays; a dry run only counts.
func TestPruneIndexes(t *testing.T) {
	s, _ := OpenStore(t.TempDir())
	ti := newTestIndexes(t, s, "Package: a\n", "Package: b\n")
	_, f := ti.writeLists(t)
	if _, err := s.PublishIndexes(ti.set, f); err != nil {
		t.Fatal(err)
	}
	key := ti.set.Key()
	upper := t.TempDir()
	os.WriteFile(filepath.Join(upper, SourceCacheName), []byte("src"), 0o644)
	os.WriteFile(filepath.Join(upper, "pkgcache.bin"), []byte("pkg"), 0o644)
	old, recent := "sha256:"+strings.Repeat("a", 64), "sha256:"+strings.Repeat("b", 64)
	for _, im := range []string{old, recent} {
		d, _ := os.Open(upper)
		if ok, err := s.PublishImageCache(key, im, d); !ok || err != nil {
			t.Fatal(ok, err)
		}
		d.Close()
	}
	long := time.Now().Add(-48 * time.Hour)
	age := func(p string) { os.Chtimes(p, long, long) }
	age(filepath.Join(s.Dir(), "indexes", key, "image", strings.Repeat("a", 64)))
	age(filepath.Join(s.Dir(), "indexes", key))

	// The set was used (a build found it) since: it stays, the old image
	// cache goes.
	if res, err := s.Prune(24*time.Hour, true); err != nil || res.ImageCaches != 1 || res.IndexSets != 1 {
		t.Fatalf("dry run: %+v %v", res, err)
	}
	if _, ok := s.ImageCache(key, old); !ok {
		t.Fatal("a dry run removed an image cache")
	}
	age(filepath.Join(s.Dir(), "indexes", key, "image", strings.Repeat("a", 64)))
	s.SharedIndexes(key) // a build uses the set
	res, err := s.Prune(24*time.Hour, false)
	if err != nil || res.ImageCaches != 1 || res.IndexSets != 0 || res.Bytes != 6 {
		t.Fatalf("prune: %+v %v", res, err)
	}
	if _, ok := s.ImageCache(key, old); ok {
		t.Fatal("the unused image cache stays")
	}
	if _, ok := s.ImageCache(key, recent); !ok {
		t.Fatal("the used image cache went")
	}

	// Unused since the cutoff: the set goes with its image caches and its
	// checked mark; nothing is left in tmp.
	age(filepath.Join(s.Dir(), "indexes", key, "image", strings.Repeat("b", 64)))
	age(filepath.Join(s.Dir(), "indexes", key))
	res, err = s.Prune(24*time.Hour, false)
	if err != nil || res.IndexSets != 1 || res.ImageCaches != 1 {
		t.Fatalf("prune: %+v %v", res, err)
	}
	if _, ok := s.SharedIndexes(key); ok {
		t.Fatal("the unused set stays")
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), "indexes", "checked", key)); !os.IsNotExist(err) {
		t.Fatalf("checked mark: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(s.Dir(), "tmp")); len(ents) != 0 {
		t.Fatalf("left in tmp: %v", ents)
	}
}
