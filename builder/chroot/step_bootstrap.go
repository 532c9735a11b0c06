package chroot

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/strata-build/packer-plugin-strata/export"
	"github.com/strata-build/packer-plugin-strata/pkgcache"
)

// mergedUsrHooks is mmdebstrap's hook directory that sets up merged /usr
// itself. Without it, minbase of bookworm pulls in usrmerge and with it perl
// (132 MB instead of 82 MB for the same 88 packages debootstrap installs).
var mergedUsrHooks = "/usr/share/mmdebstrap/hooks/merged-usr"

// stepBootstrap builds the root file system with mmdebstrap, serving .debs
// from the package cache and putting newly downloaded ones back into it. The
// cache is copied in and out by hooks, so it is never part of the image.
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
	cfg := state.Get("config").(*Config)
	ui := state.Get("ui").(packersdk.Ui)
	root := state.Get("mount_path").(string)
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
	cmd := exec.CommandContext(ctx, "mmdebstrap", mmdebstrapArgs(b, root, cache.ArchivesDir())...)
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8")
	if err := runStreaming(cmd, ui); err != nil {
		return halt(state, fmt.Errorf("mmdebstrap failed: %w", err))
	}
	for _, f := range dropHostCopies(root) {
		ui.Message("removed " + f + ": mmdebstrap copied it from the build host")
	}
	after, afterBytes := cache.Stats()
	size, _, entries, _ := export.TreeSize(root)
	ui.Message(fmt.Sprintf("Bootstrapped %s in %s: %s in %d entries", b.Suite, time.Since(start).Round(100*time.Millisecond), export.HumanBytes(size), entries))
	ui.Message(fmt.Sprintf("package cache: %d .debs were cached, %d new (%s downloaded)", before, after-before, export.HumanBytes(afterBytes-beforeBytes)))
	return multistep.ActionContinue
}

func (s *stepBootstrap) Cleanup(multistep.StateBag) {}

// runStreaming runs cmd, passing each line it prints to the UI as it comes,
// and keeps the last lines for the error.
func runStreaming(cmd *exec.Cmd, ui packersdk.Ui) error {
	pr, pw := io.Pipe()
	cmd.Stdout = pw
	cmd.Stderr = pw
	var tail []string
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			line := sc.Text()
			ui.Message(line)
			tail = append(tail, line)
			if len(tail) > 20 {
				tail = tail[1:]
			}
		}
		io.Copy(io.Discard, pr)
	}()
	err := cmd.Start()
	if err == nil {
		err = cmd.Wait()
	}
	pw.Close()
	wg.Wait()
	if err != nil {
		return fmt.Errorf("%s: %w\n%s", cmd.Path, err, strings.Join(tail, "\n"))
	}
	return nil
}

// dropHostCopies removes the image's /etc/resolv.conf and /etc/hostname when
// they are byte-for-byte the build host's: mmdebstrap copies both in for the
// bootstrap and leaves them, and an image must not carry the build host's
// resolver or name. A symlink or a file of the image's own stays.
func dropHostCopies(root string) []string {
	var removed []string
	for _, f := range []string{"/etc/resolv.conf", "/etc/hostname"} {
		saved, err := savePath(root, f)
		if err != nil || !saved.existed || saved.isLink {
			continue
		}
		host, err := os.ReadFile(f)
		if err != nil || string(host) != string(saved.data) {
			continue
		}
		if os.Remove(saved.path) == nil {
			removed = append(removed, f)
		}
	}
	return removed
}
