//go:generate packer-sdc struct-markdown

package chroot

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/strata-build/packer-plugin-strata/export"
)

// PackageCacheConfig is the package cache every build on the host shares:
// a caching apt mirror the builder runs on a loopback port for the length
// of the build, used by the bootstrap and by everything apt does in the
// chroot. Each .deb and each index is fetched once per host (once per fleet
// with upstream_proxy), checked against the signed index chain before it is
// cached, and served from disk after that.
type PackageCacheConfig struct {
	// Use the cache. Defaults to `true`.
	Enabled *bool `mapstructure:"enabled" required:"false"`
	// Where the cache lives. Defaults to `<store_dir>/cache/apt`. It is never
	// part of an image.
	Dir string `mapstructure:"dir" required:"false"`
	// A team's shared cache to fetch through, such as an apt-cacher-ng at
	// `http://apt-cache.internal:3142`, so a fleet of build hosts downloads
	// each package once.
	UpstreamProxy string `mapstructure:"upstream_proxy" required:"false"`
	// Serve only from the cache, never from the network: a build needing a
	// file the cache lacks fails and names the file.
	Offline bool `mapstructure:"offline" required:"false"`
	// Pin the package indexes to what an earlier build saw: the path of that
	// build's `artifact.json` (its `package_snapshot`), or of a JSON file
	// mapping InRelease URLs to their sha256. Those InRelease files are
	// served from the cache as they were, never revalidated, so the build
	// installs the same package versions even after the mirror moved on, as
	// long as the cache holds the files.
	Snapshot string `mapstructure:"snapshot" required:"false"`
	// Keyrings (binary, as gpgv reads them) that InRelease signatures are
	// checked with, on top of the build host's apt keyrings and
	// `bootstrap.keyring`. The cache uses and keeps only an InRelease with a
	// good signature from one of them: add the key of every repository
	// the image's apt uses.
	Keyrings []string `mapstructure:"keyrings" required:"false"`
}

// prepare checks the package_cache block and reads its snapshot.
func (p *PackageCacheConfig) prepare(c *Config) []error {
	var errs []error
	add := func(format string, a ...interface{}) { errs = append(errs, fmt.Errorf(format, a...)) }
	if p.UpstreamProxy != "" {
		u, err := url.Parse(p.UpstreamProxy)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("package_cache.upstream_proxy: %q is not a proxy URL; write http://HOST:PORT", p.UpstreamProxy)
		}
	}
	for _, k := range p.Keyrings {
		if fi, err := os.Stat(k); err != nil || !fi.Mode().IsRegular() {
			add("package_cache.keyrings: %q is not a keyring file", k)
		}
	}
	if !*p.Enabled && (p.Offline || p.Snapshot != "" || p.UpstreamProxy != "") {
		add("package_cache: offline, snapshot and upstream_proxy need the cache; remove enabled = false or them")
	}
	if p.Snapshot != "" {
		snap, err := readSnapshot(p.Snapshot)
		if err != nil {
			add("package_cache.snapshot: %v", err)
		} else {
			c.snapshot = snap
		}
	}
	return errs
}

// checkSnapshotCached fails when the cache lacks an InRelease file the
// snapshot pins: that snapshot cannot be rebuilt on this host.
func (p *PackageCacheConfig) checkSnapshotCached(snap map[string]string) error {
	var missing []string
	for u, h := range snap {
		if _, err := os.Stat(filepath.Join(p.Dir, "blobs", "sha256", h)); err != nil {
			missing = append(missing, u)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		return fmt.Errorf("package_cache.snapshot: the cache %s no longer holds %s as the snapshot recorded it; that snapshot cannot be rebuilt here", p.Dir, strings.Join(missing, ", "))
	}
	return nil
}

// readSnapshot reads the InRelease digests a build recorded: from its
// artifact.json (package_snapshot.releases, read by export's manifest
// reader, which owns that file), or a plain URL-to-sha256 map.
func readSnapshot(file string) (map[string]string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	m, err := export.ParseManifest(filepath.Dir(file), b)
	if err != nil {
		return nil, fmt.Errorf("%s is neither a build's %s nor a map of InRelease URLs to sha256: %w", file, export.ManifestName, err)
	}
	snap := map[string]string{}
	if m.PackageSnapshot != nil {
		snap = m.PackageSnapshot.Releases
	} else if err := json.Unmarshal(b, &snap); err != nil {
		return nil, fmt.Errorf("%s has no package_snapshot and is no map of InRelease URLs to sha256", file)
	}
	if len(snap) == 0 {
		return nil, fmt.Errorf("%s records no InRelease files (was it built with the package cache?)", file)
	}
	for u, h := range snap {
		h = strings.TrimPrefix(h, "sha256:")
		if len(h) != 64 || strings.Trim(h, "0123456789abcdef") != "" {
			return nil, fmt.Errorf("%s: %s has no sha256", file, u)
		}
		snap[u] = h
	}
	return snap, nil
}
