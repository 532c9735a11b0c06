package chroot

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/strata-build/packer-plugin-strata/export"
	"github.com/strata-build/packer-plugin-strata/internal/hostexec"
	"github.com/strata-build/packer-plugin-strata/internal/inroot"
	"github.com/strata-build/packer-plugin-strata/pkgcache"
)

// mergedUsrHooks is mmdebstrap's hook directory that sets up merged /usr
// itself. Without it, minbase of bookworm pulls in usrmerge and with it perl
// (132 MB instead of 82 MB for the same 88 packages debootstrap installs).
var mergedUsrHooks = "/usr/share/mmdebstrap/hooks/merged-usr"

// stepBootstrap builds the root file system with mmdebstrap into the
// mounted image root, serving .debs from the package cache and putting newly
// downloaded ones back into it. The cache is copied in and out by hooks, so
// it is never part of the image.
//
// Reads stateConfig, stateLedger, stateRoot.
type stepBootstrap struct{}

// mmdebstrapArgs builds the mmdebstrap command line for b into root.
func mmdebstrapArgs(b *BootstrapConfig, root, cacheDir string) []string {
	args := []string{
		"--mode=root",
		"--format=directory",
		"--variant=" + b.Variant,
		"--components=" + strings.Join(b.Components, ","),
		`--aptopt=Acquire::Retries "3"`,
	}
	if len(b.Include) > 0 {
		args = append(args, "--include="+strings.Join(b.Include, ","))
	}
	if b.Keyring != "" {
		args = append(args, "--keyring="+b.Keyring)
	}
	if fi, err := os.Stat(mergedUsrHooks); err == nil && fi.IsDir() {
		args = append(args, "--hook-dir="+mergedUsrHooks)
	}
	if cacheDir != "" {
		args = append(args,
			// Keep the essential packages' .debs until the customize hook has
			// copied them out; mmdebstrap's own cleanup empties the directory.
			"--skip=essential/unlink",
			`--setup-hook=mkdir -p "$1"/var/cache/apt/archives/`,
			"--setup-hook=sync-in "+cacheDir+" /var/cache/apt/archives/",
			"--customize-hook=sync-out /var/cache/apt/archives "+cacheDir,
		)
	}
	return append(args, b.Suite, root, b.Mirror)
}

func (s *stepBootstrap) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	cfg := configOf(state)
	ui := uiOf(state)
	b := cfg.Bootstrap

	cache, err := pkgcache.Open(cfg.PackageCacheDir)
	if err != nil {
		return halt(state, fmt.Errorf("package_cache_dir: %w", err))
	}
	release, err := cache.Lock()
	if err != nil {
		return halt(state, err)
	}
	defer release()
	before, beforeBytes := cache.Stats()

	ui.Say(fmt.Sprintf("Bootstrapping %s (%s) from %s with mmdebstrap ...", b.Suite, b.Variant, b.Mirror))
	ui.Message(fmt.Sprintf("package cache %s: %d .debs (%s)", cache.Dir(), before, export.HumanBytes(beforeBytes)))
	start := time.Now()
	cmd := hostexec.Command(ctx, "mmdebstrap", mmdebstrapArgs(b, cfg.MountPath, cache.ArchivesDir())...)
	if cfg.SourceDateEpoch != nil {
		// mmdebstrap then clamps times and empties machine-id itself.
		cmd.Env = append(cmd.Env, "SOURCE_DATE_EPOCH="+strconv.FormatInt(*cfg.SourceDateEpoch, 10))
	}
	if err := hostexec.Lines(cmd, ledgerOf(state), ui.Message); err != nil {
		return halt(state, fmt.Errorf("mmdebstrap failed: %w", err))
	}
	for _, f := range dropHostCopies(rootOf(state)) {
		ui.Message("removed " + f + ": mmdebstrap copied it from the build host")
	}
	after, afterBytes := cache.Stats()
	t, _ := export.MeasureTree(cfg.MountPath)
	ui.Message(fmt.Sprintf("Bootstrapped %s in %s: %s in %d entries", b.Suite, time.Since(start).Round(100*time.Millisecond), export.HumanBytes(t.Allocated), t.Entries))
	ui.Message(fmt.Sprintf("package cache: %d .debs were cached, %d new (%s downloaded)", before, after-before, export.HumanBytes(afterBytes-beforeBytes)))
	return multistep.ActionContinue
}

func (s *stepBootstrap) Cleanup(multistep.StateBag) {}

// dropHostCopies removes the image's /etc/resolv.conf and /etc/hostname when
// they are byte-for-byte the build host's: mmdebstrap copies both in for the
// bootstrap and leaves them, and an image must not carry the build host's
// resolver or name. A symlink or a file of the image's own stays.
func dropHostCopies(root *inroot.Root) []string {
	var removed []string
	for _, f := range []string{"/etc/resolv.conf", "/etc/hostname"} {
		in, err := root.OpenNoFollow(f)
		if err != nil {
			continue
		}
		data, err := io.ReadAll(in)
		in.Close()
		host, herr := os.ReadFile(f)
		if err != nil || herr != nil || !bytes.Equal(host, data) {
			continue
		}
		if root.Remove(f) == nil {
			removed = append(removed, f)
		}
	}
	return removed
}
