package chroot

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/strata-build/packer-plugin-strata/internal/bytesize"
	"github.com/strata-build/packer-plugin-strata/internal/hostexec"
	"github.com/strata-build/packer-plugin-strata/internal/inroot"
	"github.com/strata-build/packer-plugin-strata/internal/treesize"
)

// mergedUsrHooks is mmdebstrap's hook directory that sets up merged /usr
// itself. Without it, minbase of bookworm pulls in usrmerge and with it perl
// (132 MB instead of 82 MB for the same 88 packages debootstrap installs).
const mergedUsrHooks = "/usr/share/mmdebstrap/hooks/merged-usr"

// stepBootstrap builds the root file system with mmdebstrap into the
// mounted image root, through the package cache when it is on (apt on the
// host uses it as its proxy; the option file mmdebstrap leaves in the image
// is removed).
//
// Uses cfg, ledger, root, cache.
type stepBootstrap struct{}

// mmdebstrapArgs builds the mmdebstrap command line for b into root, with
// extra apt options (option strings, or files whose content mmdebstrap
// copies: the package cache's, so its credentials stay off the command
// line), and mmdebstrap's merged-/usr hooks when h has them.
func mmdebstrapArgs(h host, b *BootstrapConfig, arch, root string, aptopts []string) []string {
	args := []string{
		"--mode=root",
		"--format=directory",
		"--architectures=" + arch,
		"--variant=" + b.Variant,
		"--components=" + strings.Join(b.Components, ","),
		`--aptopt=Acquire::Retries "3"`,
	}
	for _, o := range aptopts {
		args = append(args, "--aptopt="+o)
	}
	if len(b.Include) > 0 {
		args = append(args, "--include="+strings.Join(b.Include, ","))
	}
	if b.Keyring != "" {
		args = append(args, "--keyring="+b.Keyring)
	}
	hooks := hostPath(h, mergedUsrHooks)
	if fi, err := os.Stat(hooks); err == nil && fi.IsDir() {
		args = append(args, "--hook-dir="+hooks)
	}
	// mmdebstrap writes its --aptopt lines into the image; they are the
	// build's, not the image's.
	args = append(args, `--customize-hook=rm -f "$1/etc/apt/apt.conf.d/99mmdebstrap"`)
	return append(args, b.Suite, root, b.Mirror)
}

func (s *stepBootstrap) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	build := buildOf(state)
	cfg := build.cfg
	ui := uiOf(state)
	b := cfg.Bootstrap
	var aptopts []string
	if build.cache != nil {
		aptopts = []string{cacheAptConfPath(cfg)}
	}
	ui.Say(fmt.Sprintf("Bootstrapping %s (%s, %s) from %s with mmdebstrap ...", b.Suite, b.Variant, cfg.Architecture, b.Mirror))
	start := time.Now()
	cmd := hostexec.Command(ctx, "mmdebstrap", mmdebstrapArgs(build.host, b, cfg.Architecture, cfg.MountPath, aptopts)...)
	if cfg.SourceDateEpoch != nil {
		// mmdebstrap then clamps times and empties machine-id itself.
		cmd.Env = append(cmd.Env, "SOURCE_DATE_EPOCH="+strconv.FormatInt(*cfg.SourceDateEpoch, 10))
	}
	if err := build.host.Run(cmd, build.ledger, ui.Message); err != nil {
		return halt(state, fmt.Errorf("mmdebstrap failed: %w", err))
	}
	// The customize hook removed mmdebstrap's copy of the apt options (the
	// cache's credentials); a build whose image still has it stops here.
	if build.root.Exists("/etc/apt/apt.conf.d/99mmdebstrap") && len(aptopts) > 0 {
		return halt(state, fmt.Errorf("mmdebstrap left /etc/apt/apt.conf.d/99mmdebstrap in the image; it holds the package cache's credentials"))
	}
	for _, f := range dropHostCopies(build.host, build.root) {
		ui.Message("removed " + f + ": mmdebstrap copied it from the build host")
	}
	t, _ := treesize.Measure(cfg.MountPath)
	ui.Message(fmt.Sprintf("Bootstrapped %s in %s: %s in %d entries", b.Suite, time.Since(start).Round(100*time.Millisecond), bytesize.Human(t.Allocated), t.Entries))
	return multistep.ActionContinue
}

func (s *stepBootstrap) Cleanup(multistep.StateBag) {}

// dropHostCopies removes the image's /etc/resolv.conf and /etc/hostname when
// they are byte-for-byte the build host's: mmdebstrap copies both in for the
// bootstrap and leaves them, and an image must not carry the build host's
// resolver or name. A symlink or a file of the image's own stays.
func dropHostCopies(h host, root *inroot.Root) []string {
	var removed []string
	for _, f := range []string{"/etc/resolv.conf", "/etc/hostname"} {
		data, err := root.ReadRegular(f, maxSavedFileSize)
		host, herr := os.ReadFile(hostPath(h, f))
		if err != nil || herr != nil || !bytes.Equal(host, data) {
			continue
		}
		if root.Remove(f) == nil {
			removed = append(removed, f)
		}
	}
	return removed
}
