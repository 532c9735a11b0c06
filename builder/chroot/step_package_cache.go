package chroot

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/strata-build/packer-plugin-strata/internal/bytesize"
	"github.com/strata-build/packer-plugin-strata/pkgcache"
)

// stepPackageCache runs the package cache for the build: a caching apt
// proxy on a loopback port that serves this build only (its secret is in
// the proxy credentials), with the authority apt trusts for https mirrors
// through it and mmdebstrap's apt options (the credentials, mode 0600)
// written into the work dir. At the end it records what the build used and
// prints the cache's line.
//
// Uses cfg, root (once mounted); sets cache.
type stepPackageCache struct {
	server *pkgcache.Server
}

func (s *stepPackageCache) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	b := buildOf(state)
	cfg := b.cfg
	ui := uiOf(state)
	pc := cfg.PackageCache
	if !*pc.Enabled {
		return multistep.ActionContinue
	}
	keyrings := pkgcache.HostKeyrings(b.host.Root())
	if cfg.Bootstrap != nil && cfg.Bootstrap.Keyring != "" {
		if fi, err := os.Stat(cfg.Bootstrap.Keyring); err == nil && fi.Mode().IsRegular() {
			keyrings = append(keyrings, cfg.Bootstrap.Keyring)
		}
	}
	keyrings = append(keyrings, pc.Keyrings...)
	server, err := pkgcache.Start(pc.Dir, pkgcache.Options{
		Sources: cacheSources(cfg),
		// apt in the chroot may add sources (a provisioner writing
		// sources.list.d): the image's own, read inside its root when a
		// request names an archive the list lacks.
		SourcesMore: func() []string {
			if root := b.root; root != nil {
				return pkgcache.ImageSources(root)
			}
			return nil
		},
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
	// mmdebstrap takes the options as a file (--aptopt=FILE), so the
	// credentials never appear on a command line another user can read.
	conf := strings.Join(aptProxyOptions(server, cacheCAPath(cfg)), ";\n") + ";\n"
	if err := writePrivate(cacheAptConfPath(cfg), []byte(conf)); err != nil {
		return halt(state, fmt.Errorf("package cache: %w", err))
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
	ui.Say(fmt.Sprintf("Package cache on %s (%s): %d files, %s in %s", server.Addr(), mode, files, bytesize.Human(bytes), pc.Dir))
	b.cache = server
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
	os.Remove(cacheAptConfPath(cfg))
	st := s.server.Stats()
	ui.Say(fmt.Sprintf("package cache: %d hits, %d misses, %s from upstream (%d InRelease revalidated), %s served",
		st.Hits, st.Misses, bytesize.Human(st.Upstream), st.Revalidated, bytesize.Human(st.Served)))
}

func cacheCAPath(cfg *Config) string { return filepath.Join(cfg.WorkDir, "cache-ca.pem") }

// cacheAptConfPath holds mmdebstrap's apt options (with the build's proxy
// credentials): root's, mode 0600, in the build's own work dir.
func cacheAptConfPath(cfg *Config) string { return filepath.Join(cfg.WorkDir, "cache-apt.conf") }

// writePrivate writes a new file only root may read, replacing any.
func writePrivate(p string, data []byte) error {
	os.Remove(p)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// cacheSources are the archives the build's cache may fetch from, known
// before the image exists: the bootstrap mirror and the build host's apt
// sources. (The image's own are read when a request asks for them.)
func cacheSources(cfg *Config) []string {
	var out []string
	if cfg.Bootstrap != nil && cfg.Bootstrap.Mirror != "" {
		out = append(out, cfg.Bootstrap.Mirror)
	}
	if srcs, err := pkgcache.HostSources(cfg.host.Root()); err == nil {
		for _, s := range srcs {
			out = append(out, s.URI)
		}
	}
	return out
}

// aptProxyOptions are the apt options that send apt through the cache,
// with the build's proxy credentials: they go into files only root reads
// (never onto a command line or into a log line).
func aptProxyOptions(server *pkgcache.Server, caFile string) []string {
	return []string{
		`Acquire::http::Proxy "` + server.ProxyURL() + `"`,
		`Acquire::https::Proxy "` + server.ProxyURL() + `"`,
		`Acquire::https::CaInfo "` + caFile + `"`,
	}
}
