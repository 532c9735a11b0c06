package chroot

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/strata-build/packer-plugin-strata/export"
	"github.com/strata-build/packer-plugin-strata/pkgcache"
)

// stepPackageCache runs the package cache for the build: a caching apt
// mirror on a loopback port, with the authority apt trusts for https mirrors
// through it written into the work dir (for mmdebstrap's apt on the host).
// At the end it records what the build used and prints the cache's line.
//
// Reads stateConfig; writes statePackageCache.
type stepPackageCache struct {
	server *pkgcache.Server
}

func (s *stepPackageCache) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	cfg := configOf(state)
	ui := uiOf(state)
	pc := cfg.PackageCache
	if !*pc.Enabled {
		return multistep.ActionContinue
	}
	keyrings := pkgcache.HostKeyrings("/")
	if cfg.Bootstrap != nil && cfg.Bootstrap.Keyring != "" {
		if fi, err := os.Stat(cfg.Bootstrap.Keyring); err == nil && fi.Mode().IsRegular() {
			keyrings = append(keyrings, cfg.Bootstrap.Keyring)
		}
	}
	keyrings = append(keyrings, pc.Keyrings...)
	server, err := pkgcache.Start(pc.Dir, pkgcache.Options{
		UpstreamProxy: pc.UpstreamProxy,
		Offline:       pc.Offline,
		Snapshot:      cfg.snapshot,
		Keyrings:      keyrings,
		Warn:          func(m string) { ui.Error("Warning: " + m) },
	})
	if err != nil {
		return halt(state, fmt.Errorf("package_cache: %w", err))
	}
	s.server = server
	if err := os.WriteFile(cacheCAPath(cfg), server.CAPEM(), 0o600); err != nil {
		return halt(state, err)
	}
	mode := "online"
	switch {
	case pc.Offline:
		mode = "offline: served from the cache only"
	case cfg.snapshot != nil:
		mode = fmt.Sprintf("pinned to the snapshot of %d InRelease file(s)", len(cfg.snapshot))
	case pc.UpstreamProxy != "":
		mode = "fetching through " + pc.UpstreamProxy
	}
	files, bytes, _ := server.Store().Size()
	ui.Say(fmt.Sprintf("Package cache on %s (%s): %d files, %s in %s", server.Addr(), mode, files, export.HumanBytes(bytes), pc.Dir))
	state.Put(statePackageCache, server)
	return multistep.ActionContinue
}

func (s *stepPackageCache) Cleanup(state multistep.StateBag) {
	if s.server == nil {
		return
	}
	ui := uiOf(state)
	cfg := configOf(state)
	if _, err := s.server.Record(cfg.PackerBuildName); err != nil {
		ui.Error(fmt.Sprintf("package cache: recording this build's use: %v", err))
	}
	s.server.Close()
	os.Remove(cacheCAPath(cfg))
	st := s.server.Stats()
	ui.Say(fmt.Sprintf("package cache: %d hits, %d misses, %s from upstream (%d InRelease revalidated), %s served",
		st.Hits, st.Misses, export.HumanBytes(st.Upstream), st.Revalidated, export.HumanBytes(st.Served)))
}

func cacheCAPath(cfg *Config) string { return filepath.Join(cfg.WorkDir, "cache-ca.pem") }

// aptProxyOptions are the apt options that send apt through the cache.
func aptProxyOptions(server *pkgcache.Server, caFile string) []string {
	return []string{
		`Acquire::http::Proxy "` + server.URL() + `"`,
		`Acquire::https::Proxy "` + server.URL() + `"`,
		`Acquire::https::CaInfo "` + caFile + `"`,
	}
}
