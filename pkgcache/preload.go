package pkgcache

import (
	"context"
	"fmt"
	"maps"
	"path"
	"strings"
)

// Preload readies the server for a build that starts with shared lists
// and may not run apt-get update: the InRelease files those lists were
// made from (URL to sha256) count as used by the build (its snapshot
// records them), and the pool files their Packages indexes list are
// served and cached as if the indexes had been fetched. Each InRelease is
// checked as release checks a cached one: a copy the build's keyrings do
// not vouch for is an error. An apt-get update later in the build still
// revalidates each InRelease once.
func (s *Server) Preload(ctx context.Context, releases map[string]string) error {
	for u, h := range releases {
		data, err := s.store.readBlob(h)
		if err != nil {
			return fmt.Errorf("%s (sha256 %s): %w", u, h, err)
		}
		_, pinned := s.opt.Snapshot[u]
		if rec, have := s.store.lastOf(u); !pinned && (!have || rec.SHA256 != h || s.keyringsID == "" || rec.Keyrings != s.keyringsID) {
			if err := s.trust(ctx, u, data); err != nil {
				return err
			}
		}
		files := s.useRelease(u, h, data, s.preloaded)
		dir := strings.TrimSuffix(u, path.Base(u))
		for p, e := range files {
			if isPackagesIndex(p) && s.store.Has(e.SHA256) {
				s.parsePackages(dir+p, e, e.SHA256)
			}
		}
	}
	return nil
}

// Fetched are the InRelease files apt asked this build's server for
// (revalidated once each): URL to sha256. Releases adds the preloaded ones
// apt did not ask for.
func (s *Server) Fetched() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.releases)
}
