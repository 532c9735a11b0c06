package pkgcache

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const testMirror = "http://mirror.test/debian"

// testIndexes is a suite's Release (unsigned: PublishIndexes trusts the
// digests the server verified, and reads the SHA256 list) and its lists,
// named as apt names them.
type testIndexes struct {
	release []byte
	lists   map[string][]byte // apt's list name -> content
	set     IndexSet
}

func newTestIndexes(t *testing.T, s *Store, main, contrib string) testIndexes {
	t.Helper()
	pk := map[string][]byte{
		"main/binary-amd64/Packages":    []byte(main),
		"contrib/binary-amd64/Packages": []byte(contrib),
	}
	var rel bytes.Buffer
	rel.WriteString("Origin: Test\nSuite: bookworm\nDate: Sat, 01 Jun 2024 00:00:00 UTC\nSHA256:\n")
	for _, p := range []string{"contrib/binary-amd64/Packages", "main/binary-amd64/Packages"} {
		fmt.Fprintf(&rel, " %s %d %s\n", sum(pk[p]), len(pk[p]), p)
	}
	h, _, err := s.Put(bytes.NewReader(rel.Bytes()), "", -1)
	if err != nil {
		t.Fatal(err)
	}
	u := testMirror + "/dists/bookworm/InRelease"
	ti := testIndexes{release: rel.Bytes(), lists: map[string][]byte{AptListName(u): rel.Bytes()}}
	for p, b := range pk {
		ti.lists[AptListName(testMirror+"/dists/bookworm/"+p)] = b
	}
	ti.set = IndexSet{
		Arch:     "amd64",
		Sources:  []Source{{URI: testMirror, Suites: []string{"bookworm"}, Components: []string{"main", "contrib"}}},
		Releases: map[string]string{u: h},
	}
	return ti
}

// writeLists writes the lists into a new directory, as a chroot would
// leave them, and opens it.
func (ti testIndexes) writeLists(t *testing.T) (string, *os.File) {
	t.Helper()
	d := t.TempDir()
	for n, b := range ti.lists {
		if err := os.WriteFile(filepath.Join(d, n), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(d)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return d, f
}

func TestAptListName(t *testing.T) {
	for in, want := range map[string]string{
		"http://deb.example/debian/dists/bookworm/InRelease":                   "deb.example_debian_dists_bookworm_InRelease",
		"https://user:pw@deb.example:8080/debian/dists/bookworm/main/x":        "deb.example:8080_debian_dists_bookworm_main_x",
		"http://deb.example/debian-security/dists/bookworm-security/InRelease": "deb.example_debian-security_dists_bookworm-security_InRelease",
		"http://deb.example/a_b~c/dists/s/InRelease":                           "deb.example_a%5fb%7ec_dists_s_InRelease",
	} {
		if got := AptListName(in); got != want {
			t.Errorf("AptListName(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestIndexSetKey(t *testing.T) {
	s, _ := OpenStore(t.TempDir())
	base := newTestIndexes(t, s, "Package: a\n", "Package: b\n").set
	k := base.Key()
	if CheckDigest(k) != nil {
		t.Fatalf("key %q is no digest", k)
	}
	same := base
	same.Sources = []Source{{URI: testMirror + "/", Suites: []string{"bookworm"}, Components: []string{"main", "contrib"}, File: "etc/apt/sources.list.d/x.list"}}
	if same.Key() != k {
		t.Error("the key changed with a trailing slash or the sources file's name")
	}
	other := newTestIndexes(t, s, "Package: a2\n", "Package: b\n").set
	arch := base
	arch.Arch = "arm64"
	comps := base
	comps.Sources = []Source{{URI: testMirror, Suites: []string{"bookworm"}, Components: []string{"main"}}}
	for name, set := range map[string]IndexSet{"a changed InRelease": other, "another architecture": arch, "other components": comps} {
		if set.Key() == k {
			t.Errorf("%s: same key", name)
		}
	}
	missing := base
	missing.Releases = map[string]string{}
	if missing.Key() != "" {
		t.Error("a key without the InRelease digest")
	}
	if (IndexSet{Arch: "amd64"}).Key() != "" {
		t.Error("a key for an image without sources")
	}
	if got := ReleaseURLs(base.Sources); len(got) != 1 || got[0] != testMirror+"/dists/bookworm/InRelease" {
		t.Errorf("ReleaseURLs %q", got)
	}
}

func TestPublishIndexes(t *testing.T) {
	s, _ := OpenStore(t.TempDir())
	ti := newTestIndexes(t, s, "Package: a\n", "Package: b\n")
	dir, f := ti.writeLists(t)
	old := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
	main := AptListName(testMirror + "/dists/bookworm/main/binary-amd64/Packages")
	os.Chtimes(filepath.Join(dir, main), old, old)
	// What a hostile image might leave besides: a binary cache, a list no
	// InRelease names, and a list for another architecture with content
	// nobody signed.
	os.WriteFile(filepath.Join(dir, "pkgcache.bin"), []byte("poison"), 0o644)
	os.WriteFile(filepath.Join(dir, "lock"), nil, 0o640)
	os.WriteFile(filepath.Join(dir, AptListName(testMirror+"/dists/bookworm/main/binary-i386/Packages")), []byte("poison"), 0o644)

	if _, ok := s.SharedIndexes(ti.set.Key()); ok {
		t.Fatal("a shared copy before publishing")
	}
	res, err := s.PublishIndexes(ti.set, f)
	if err != nil || !res.Published || res.Files != 3 {
		t.Fatalf("publish: %+v, %v", res, err)
	}
	si, ok := s.SharedIndexes(ti.set.Key())
	if !ok || time.Since(si.Checked) > time.Minute {
		t.Fatalf("shared copy %+v %v", si, ok)
	}
	ents, _ := os.ReadDir(si.Lists)
	if len(ents) != 3 {
		t.Errorf("the copy holds %d files, want the InRelease and 2 Packages", len(ents))
	}
	for n, want := range ti.lists {
		if got, err := os.ReadFile(filepath.Join(si.Lists, n)); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s in the copy: %q, %v", n, got, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(si.Lists, main)); err != nil || !fi.ModTime().Equal(old) {
		t.Errorf("the copy does not keep the list's time (apt compares it): %v %v", fi.ModTime(), err)
	}
	// Binary caches: only the host's apt's srcpkgcache.bin, if any.
	if ents, _ := os.ReadDir(si.Cache); len(ents) > 1 || len(ents) == 1 && ents[0].Name() != SourceCacheName {
		t.Errorf("the copy shares binary caches: %v", ents)
	}
	// Publishing again changes nothing.
	if res, err := s.PublishIndexes(ti.set, f); err != nil || res.Published {
		t.Errorf("second publish: %+v %v", res, err)
	}
	// Checked moves when a build confirms the InRelease files.
	past := time.Now().Add(-3 * time.Hour)
	os.Chtimes(filepath.Join(s.Dir(), "indexes", "checked", ti.set.Key()), past, past)
	if si, _ := s.SharedIndexes(ti.set.Key()); time.Since(si.Checked) < 2*time.Hour {
		t.Fatal("checked time not read")
	}
	if err := s.MarkIndexesChecked(ti.set.Key()); err != nil {
		t.Fatal(err)
	}
	if si, _ := s.SharedIndexes(ti.set.Key()); time.Since(si.Checked) > time.Minute {
		t.Error("MarkIndexesChecked did not move the time")
	}
	if ents, _ := os.ReadDir(filepath.Join(s.Dir(), "tmp")); len(ents) != 0 {
		t.Errorf("left in tmp: %v", ents)
	}
}

// TestPublishIndexesRefusesWhatIsNotSigned: a list whose content is not
// what the InRelease says, or a link, never enters a copy; when apt needs
// that list, nothing is published.
func TestPublishIndexesRefusesWhatIsNotSigned(t *testing.T) {
	s, _ := OpenStore(t.TempDir())
	main := AptListName(testMirror + "/dists/bookworm/main/binary-amd64/Packages")
	contrib := AptListName(testMirror + "/dists/bookworm/contrib/binary-amd64/Packages")

	// Changed content, same size.
	ti := newTestIndexes(t, s, "Package: a\n", "Package: b\n")
	ti.lists[main] = []byte("Package: X\n")
	_, f := ti.writeLists(t)
	res, err := s.PublishIndexes(ti.set, f)
	if err != nil || res.Published || !strings.Contains(res.Skipped, main) || len(res.Refused) != 1 {
		t.Errorf("tampered list: %+v %v", res, err)
	}

	// A link to a good copy outside the lists.
	ti = newTestIndexes(t, s, "Package: c\n", "Package: d\n")
	dir, f := ti.writeLists(t)
	outside := filepath.Join(t.TempDir(), "good")
	os.WriteFile(outside, ti.lists[main], 0o644)
	os.Remove(filepath.Join(dir, main))
	if err := os.Symlink(outside, filepath.Join(dir, main)); err != nil {
		t.Fatal(err)
	}
	res, err = s.PublishIndexes(ti.set, f)
	if err != nil || res.Published || !strings.Contains(strings.Join(res.Refused, " "), "symbolic link") {
		t.Errorf("linked list: %+v %v", res, err)
	}

	// A list apt does not need (a component no source names) that is not
	// as signed is left out; the copy is still made.
	ti = newTestIndexes(t, s, "Package: e\n", "Package: f\n")
	ti.set.Sources[0].Components = []string{"main"}
	ti.lists[contrib] = []byte("Package: Y\n")
	_, f = ti.writeLists(t)
	res, err = s.PublishIndexes(ti.set, f)
	if err != nil || !res.Published || res.Files != 2 || len(res.Refused) != 1 {
		t.Errorf("unneeded bad list: %+v %v", res, err)
	}
	si, _ := s.SharedIndexes(ti.set.Key())
	if _, err := os.Stat(filepath.Join(si.Lists, contrib)); err == nil {
		t.Error("the copy holds a list that is not as signed")
	}

	// No lists at all (update never ran): nothing to publish.
	ti = newTestIndexes(t, s, "Package: g\n", "Package: h\n")
	ti.lists = map[string][]byte{}
	_, f = ti.writeLists(t)
	if res, err := s.PublishIndexes(ti.set, f); err != nil || res.Published || res.Skipped == "" {
		t.Errorf("empty lists: %+v %v", res, err)
	}
}

// TestPublishIndexesRace: builds racing to publish one key make one copy.
func TestPublishIndexesRace(t *testing.T) {
	s, _ := OpenStore(t.TempDir())
	ti := newTestIndexes(t, s, strings.Repeat("Package: a\n", 50000), "Package: b\n")
	const builds = 8
	var wg sync.WaitGroup
	results := make([]PublishResult, builds)
	errs := make([]error, builds)
	for i := 0; i < builds; i++ {
		_, f := ti.writeLists(t)
		wg.Add(1)
		go func(i int, f *os.File) {
			defer wg.Done()
			// Each build has its own Store handle, as each build process does.
			st, _ := OpenStore(s.Dir())
			results[i], errs[i] = st.PublishIndexes(ti.set, f)
		}(i, f)
	}
	wg.Wait()
	published := 0
	for i := range results {
		if errs[i] != nil {
			t.Errorf("build %d: %v", i, errs[i])
		}
		if results[i].Published {
			published++
		}
	}
	if published != 1 {
		t.Errorf("%d builds published a copy, want 1", published)
	}
	ents, _ := os.ReadDir(filepath.Join(s.Dir(), "indexes"))
	var copies []string
	for _, e := range ents {
		if e.Name() != "checked" {
			copies = append(copies, e.Name())
		}
	}
	if len(copies) != 1 || copies[0] != ti.set.Key() {
		t.Errorf("indexes/ holds %v", copies)
	}
	if ents, _ := os.ReadDir(filepath.Join(s.Dir(), "tmp")); len(ents) != 0 {
		t.Errorf("left in tmp: %v", ents)
	}
}

// TestPublishIndexesMakesSourceCache: the copy carries a srcpkgcache.bin
// the host's apt made from the verified lists (never one from the chroot).
func TestPublishIndexesMakesSourceCache(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: apt-cache runs in a private mount namespace")
	}
	s, _ := OpenStore(t.TempDir())
	ti := newTestIndexes(t, s, "Package: a\nVersion: 1.0\nArchitecture: amd64\nFilename: pool/a.deb\n\n", "Package: b\nVersion: 2.0\nArchitecture: all\n\n")
	dir, f := ti.writeLists(t)
	os.WriteFile(filepath.Join(dir, SourceCacheName), []byte("from the chroot"), 0o644)
	res, err := s.PublishIndexes(ti.set, f)
	if err != nil || !res.Published {
		t.Fatalf("publish: %+v %v", res, err)
	}
	if res.SourceCache != "" {
		t.Fatalf("no source cache: %s", res.SourceCache)
	}
	si, _ := s.SharedIndexes(ti.set.Key())
	b, err := os.ReadFile(filepath.Join(si.Cache, SourceCacheName))
	if err != nil || len(b) < 1000 || bytes.Contains(b, []byte("from the chroot")) {
		t.Fatalf("srcpkgcache.bin: %d bytes, %v", len(b), err)
	}
	if _, err := os.Stat(filepath.Join(si.Lists, SourceCacheName)); err == nil {
		t.Error("the chroot's binary cache entered the copy")
	}
	if ents, _ := os.ReadDir(si.Cache); len(ents) != 1 {
		t.Errorf("cache/ holds %v, want srcpkgcache.bin alone", ents)
	}
	// The host's own lists were not touched (the namespace was private).
	if ents, _ := os.ReadDir(si.Lists); len(ents) != 3 {
		t.Errorf("lists/ holds %d files", len(ents))
	}
}

// TestPublishImageCache: a parent image's binary caches are kept per
// shared copy and parent image, only when both are regular files (never
// through a link), once; another parent has none.
func TestPublishImageCache(t *testing.T) {
	s, _ := OpenStore(t.TempDir())
	ti := newTestIndexes(t, s, "Package: a\n", "Package: b\n")
	_, f := ti.writeLists(t)
	if _, err := s.PublishIndexes(ti.set, f); err != nil {
		t.Fatal(err)
	}
	key := ti.set.Key()
	parent, other := "sha256:"+strings.Repeat("a", 64), "sha256:"+strings.Repeat("b", 64)
	upper := t.TempDir()
	open := func() *os.File {
		d, err := os.Open(upper)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		return d
	}
	os.WriteFile(filepath.Join(upper, SourceCacheName), []byte("src"), 0o644)
	os.Symlink("/etc/shadow", filepath.Join(upper, "pkgcache.bin"))
	if ok, err := s.PublishImageCache(key, parent, open()); ok || err == nil {
		t.Fatalf("a link published: %v %v", ok, err)
	}
	os.Remove(filepath.Join(upper, "pkgcache.bin"))
	if ok, err := s.PublishImageCache(key, parent, open()); ok || err == nil {
		t.Fatalf("a missing file published: %v %v", ok, err)
	}
	os.WriteFile(filepath.Join(upper, "pkgcache.bin"), []byte("pkg"), 0o644)
	if ok, err := s.PublishImageCache(key, parent, open()); !ok || err != nil {
		t.Fatalf("publish: %v %v", ok, err)
	}
	d, ok := s.ImageCache(key, parent)
	if b, _ := os.ReadFile(filepath.Join(d, "pkgcache.bin")); !ok || string(b) != "pkg" {
		t.Fatalf("image cache %q %v %q", d, ok, b)
	}
	if ok, err := s.PublishImageCache(key, parent, open()); ok || err != nil {
		t.Fatalf("published twice: %v %v", ok, err)
	}
	if _, ok := s.ImageCache(key, other); ok {
		t.Fatal("another parent sees the caches")
	}
	if _, err := s.PublishImageCache(key, "not-an-id", open()); err == nil {
		t.Fatal("a bad image ID accepted")
	}
}
