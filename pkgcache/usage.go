package pkgcache

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Usage is what one build took from the cache: its snapshot (the
// InRelease files it saw) and every file it was served.
type Usage struct {
	// Snapshot identifies the InRelease set: the sha256 of its sorted
	// "URL sha256" lines.
	Snapshot string            `json:"snapshot"`
	Created  time.Time         `json:"created"`
	Build    string            `json:"build,omitempty"`
	Releases map[string]string `json:"releases"` // InRelease URL -> sha256
	Files    []string          `json:"files"`    // sha256 of every blob used
	Stats    Stats             `json:"stats"`
}

// SnapshotID names an InRelease set.
func SnapshotID(releases map[string]string) string {
	lines := make([]string, 0, len(releases))
	for u, h := range releases {
		lines = append(lines, u+" "+h)
	}
	sort.Strings(lines)
	sum := sha256.Sum256([]byte(strings.Join(lines, "\n")))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Record writes what this build used into the cache's usage records.
func (s *Server) Record(build string) (*Usage, error) {
	s.parses.Wait()
	s.mu.Lock()
	u := &Usage{Created: time.Now().UTC(), Build: build, Releases: map[string]string{}, Stats: s.stats, Files: []string{}}
	for k, v := range s.preloaded {
		u.Releases[k] = v
	}
	for k, v := range s.releases {
		u.Releases[k] = v
	}
	for h := range s.used {
		u.Files = append(u.Files, h)
	}
	s.mu.Unlock()
	sort.Strings(u.Files)
	u.Snapshot = SnapshotID(u.Releases)
	b, err := json.Marshal(u)
	if err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(filepath.Join(s.store.dir, "tmp"), "usage-*")
	if err != nil {
		return nil, err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return nil, err
	}
	tmp.Close()
	name := fmt.Sprintf("%s-%d.json", u.Created.Format("20060102T150405.000000000Z"), os.Getpid())
	return u, os.Rename(tmp.Name(), filepath.Join(s.store.dir, "usage", name))
}

// Usages lists the usage records, oldest first.
func (s *Store) Usages() ([]Usage, error) {
	ents, err := os.ReadDir(filepath.Join(s.dir, "usage"))
	if err != nil {
		return nil, err
	}
	var out []Usage
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(s.dir, "usage", e.Name()))
		if err != nil {
			continue
		}
		var u Usage
		if json.Unmarshal(b, &u) == nil {
			out = append(out, u)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, nil
}

// Keep marks a snapshot kept: prune never removes a file it needs.
func (s *Store) Keep(snapshot string) error {
	us, err := s.Usages()
	if err != nil {
		return err
	}
	for _, u := range us {
		if u.Snapshot == snapshot {
			return os.WriteFile(filepath.Join(s.dir, "usage", "keep-"+strings.TrimPrefix(snapshot, "sha256:")), nil, 0o600)
		}
	}
	return fmt.Errorf("no build in this cache used snapshot %s", snapshot)
}

// Kept are the kept snapshots.
func (s *Store) Kept() map[string]bool {
	out := map[string]bool{}
	m, _ := filepath.Glob(filepath.Join(s.dir, "usage", "keep-*"))
	for _, p := range m {
		out["sha256:"+strings.TrimPrefix(filepath.Base(p), "keep-")] = true
	}
	return out
}

// PruneResult says what prune removed (or would).
type PruneResult struct {
	Files  int   `json:"files"`
	Bytes  int64 `json:"bytes"`
	Usages int   `json:"usage_records"`
	Kept   int   `json:"kept_files"` // needed by kept snapshots only
	// IndexSets and ImageCaches are the shared package index sets and
	// the image binary caches beside them no build used (their bytes
	// are in Bytes).
	IndexSets   int `json:"index_sets"`
	ImageCaches int `json:"image_caches"`
}

// Prune removes the files no build used for unusedFor and no kept
// snapshot needs, and the usage records older than that (but a kept
// snapshot's).
func (s *Store) Prune(unusedFor time.Duration, dryRun bool) (*PruneResult, error) {
	us, err := s.Usages()
	if err != nil {
		return nil, err
	}
	cutoff := time.Now().Add(-unusedFor)
	kept := s.Kept()
	recent, needed := map[string]bool{}, map[string]bool{}
	res := &PruneResult{}
	for _, u := range us {
		for _, f := range u.Files {
			if u.Created.After(cutoff) {
				recent[f] = true
			}
			if kept[u.Snapshot] {
				needed[f] = true
			}
		}
	}
	ents, err := os.ReadDir(filepath.Join(s.dir, "blobs", "sha256"))
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		h := e.Name()
		if CheckDigest(h) != nil {
			continue
		}
		if recent[h] {
			continue
		}
		if needed[h] {
			res.Kept++
			continue
		}
		fi, err := e.Info()
		if err != nil || fi.ModTime().After(cutoff) {
			continue // fetched recently by a build still running
		}
		res.Files++
		res.Bytes += fi.Size()
		if !dryRun {
			p, _ := s.BlobPath(h)
			if err := os.Remove(p); err != nil {
				return res, err
			}
		}
	}
	if err := s.pruneIndexes(cutoff, dryRun, res); err != nil {
		return res, err
	}
	files, _ := filepath.Glob(filepath.Join(s.dir, "usage", "*.json"))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		var u Usage
		if json.Unmarshal(b, &u) != nil || u.Created.After(cutoff) || kept[u.Snapshot] {
			continue
		}
		res.Usages++
		if !dryRun {
			os.Remove(p)
		}
	}
	return res, nil
}
