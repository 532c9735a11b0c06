package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// TestCacheCommandsOnAnEmptyCache: strata cache reports an empty cache in
// the store's default place, and keep and prune refuse what they cannot do,
// naming why, without touching the cache. (What keep and prune do to a
// cache real builds used is TestAccPackageCache in builder/chroot, through
// bin/strata.)
func TestCacheCommandsOnAnEmptyCache(t *testing.T) {
	c := cli{t, "sqlite://" + filepath.Join(t.TempDir(), "catalog.db")}
	store := t.TempDir()
	cache := filepath.Join(store, "cache", "apt")

	c.fails(exitFailed, "no package cache at "+cache, "--store", store, "cache")
	for _, d := range []string{"blobs/sha256", "usage"} {
		if err := os.MkdirAll(filepath.Join(cache, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	var r struct {
		Dir       string            `json:"dir"`
		Files     int               `json:"files"`
		Builds    int               `json:"builds"`
		Snapshots []json.RawMessage `json:"snapshots"`
	}
	out := c.ok("--store", store, "--json", "cache")
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if r.Dir != cache || r.Files != 0 || r.Builds != 0 || r.Snapshots == nil || len(r.Snapshots) != 0 {
		t.Errorf("an empty cache: %s", out)
	}

	c.fails(exitUsage, "--unused-for is required", "cache", "--dir", cache, "prune")
	c.fails(exitUsage, "a safety window can't be negative", "cache", "--dir", cache, "prune", "--unused-for", "-1h")
	c.fails(exitFailed, "no build in this cache used snapshot sha256:abc", "cache", "--dir", cache, "keep", "abc")
	c.fails(exitUsage, "a snapshot ID", "cache", "--dir", cache, "keep")
	if kept, _ := filepath.Glob(filepath.Join(cache, "usage", "keep-*")); len(kept) != 0 {
		t.Errorf("a refused keep marked %v", kept)
	}
	if out := c.ok("cache", "--dir", cache, "prune", "--unused-for", "1h", "--dry-run"); out != "would remove 0 files, 0 shared index sets and 0 image binary caches (0 B) and 0 usage records; 0 files stay for kept snapshots\n" {
		t.Errorf("prune --dry-run on an empty cache: %q", out)
	}
}
