package chroot

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/strata-build/packer-plugin-strata/internal/inroot"
)

// Where the chroot's apt finds the cache: files on the build's own /run
// tmpfs, named by APT_CONFIG in every command's environment, so no proxy
// setting (nor the cache's credentials in it) is ever written into the
// image. The configuration is root's alone (0600); apt's download methods
// get it from apt itself.
const (
	aptCacheDir    = "/run/strata"
	aptCacheConfig = aptCacheDir + "/apt.conf"
	aptCacheCA     = aptCacheDir + "/cache-ca.pem"
)

// stepAptCache points apt in the chroot at the package cache.
//
// Uses cache, root.
type stepAptCache struct{}

func (s *stepAptCache) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	b := buildOf(state)
	server := b.cache
	if server == nil {
		return multistep.ActionContinue
	}
	root := b.root
	d, _, err := root.MkdirAll(aptCacheDir, 0o755)
	if err != nil {
		return halt(state, fmt.Errorf("package cache: %w", err))
	}
	d.Close()
	// Translation indexes only make apt-get update slower (by half a second
	// on Debian's main): package lists never reach an image.
	opts := append(aptProxyOptions(server, aptCacheCA), `Acquire::Languages "none"`)
	conf := strings.Join(opts, ";\n") + ";\n"
	for _, f := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{{aptCacheConfig, []byte(conf), 0o600}, {aptCacheCA, server.CAPEM(), 0o644}} {
		if err := root.WriteFile(f.path, bytes.NewReader(f.data), inroot.FileSpec{Mode: f.mode}); err != nil {
			return halt(state, fmt.Errorf("package cache: %w", err))
		}
	}
	uiOf(state).Message("apt in the chroot uses the package cache (APT_CONFIG=" + aptCacheConfig + ", on the build's /run)")
	return multistep.ActionContinue
}

func (s *stepAptCache) Cleanup(multistep.StateBag) {}
