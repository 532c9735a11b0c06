package chroot

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/strata-build/packer-plugin-strata/internal/hostexec"
	"github.com/strata-build/packer-plugin-strata/internal/inroot"
	"github.com/strata-build/packer-plugin-strata/internal/mount"
	"github.com/strata-build/packer-plugin-strata/layer"
	"github.com/strata-build/packer-plugin-strata/pkgcache"
)

// Where apt keeps its lists and binary caches in the chroot, and where the
// builder tells strata-packages about the shared indexes it mounted (on
// the build's own /run, never in a layer).
const (
	aptListsDir     = "/var/lib/apt/lists"
	aptCacheDirPath = "/var/cache/apt"
	aptIndexesInfo  = aptCacheDir + "/apt-indexes.json"
)

// aptIndexesInfoFile is what aptIndexesInfo holds; strata-packages reads it
// (update = "auto").
type aptIndexesInfoFile struct {
	Key     string    `json:"key,omitempty"`
	Shared  bool      `json:"shared"`
	Checked time.Time `json:"checked,omitempty"`
	// Pinned: offline or snapshot builds, whose indexes cannot change.
	Pinned bool `json:"pinned"`
}

// stepAptIndexes gives the build a private copy-on-write view of the
// package indexes every build on the host shares (pkgcache's shared
// indexes): overlays at /var/lib/apt/lists and /var/cache/apt whose lower
// dir is the shared copy for the image's sources, architecture and
// InRelease digests (an empty dir when there is none yet) and whose upper
// dir is in the work dir. Nothing apt writes there enters a layer. Its
// undo takes the verified lists the build left into a new shared copy
// when the InRelease files changed, then unmounts.
//
// Uses cfg, cache, root, ledger, host; pushes an undo.
type stepAptIndexes struct {
	undo *undo
}

func (s *stepAptIndexes) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	b := buildOf(state)
	server := b.cache
	if server == nil {
		return multistep.ActionContinue // without the cache, nothing vouches for shared lists
	}
	cfg := b.cfg
	ui := uiOf(state)
	root := b.root
	ledger := b.ledger
	store := server.Store()

	set := imageIndexSet(root, cfg.Architecture)
	pinned := cfg.PackageCache.Offline || cfg.snapshot != nil
	urls := pkgcache.ReleaseURLs(set.Sources)
	if cfg.snapshot != nil {
		set.Releases = map[string]string{}
		for _, u := range urls {
			if h, ok := cfg.snapshot[u]; ok {
				set.Releases[u] = h
			}
		}
	} else {
		set.Releases, _ = store.LatestReleases(urls)
	}
	key := set.Key()
	shared, hit := store.SharedIndexes(key)
	if hit {
		if err := server.Preload(ctx, set.Releases); err != nil {
			ui.Error(fmt.Sprintf("Warning: package indexes: not using the shared copy %s: %v", layer.ShortDigest(key), err))
			hit = false
		}
	}

	base := filepath.Join(cfg.WorkDir, "apt-indexes")
	if err := os.RemoveAll(base); err != nil {
		return halt(state, fmt.Errorf("package indexes: %w", err))
	}
	for _, d := range []string{"empty", "lists/upper", "lists/work", "cache/upper", "cache/work"} {
		if err := os.MkdirAll(filepath.Join(base, d), 0o755); err != nil {
			return halt(state, fmt.Errorf("package indexes: %w", err))
		}
	}
	lowers := map[string][]string{aptListsDir: {filepath.Join(base, "empty")}, aptCacheDirPath: {filepath.Join(base, "empty")}}
	// A child's apt finds binary caches its parent's apt made (see
	// pkgcache's ImageCache), or this build has the parent's apt make them.
	parentID, imageCache := "", ""
	if b.rootfs != nil && b.rootfs.parent != nil {
		parentID = b.rootfs.parent.ID
	}
	if hit {
		lowers[aptListsDir], lowers[aptCacheDirPath] = []string{shared.Lists}, []string{shared.Cache}
		if parentID != "" {
			if d, ok := store.ImageCache(key, parentID); ok {
				imageCache = d
				lowers[aptCacheDirPath] = []string{d, shared.Cache}
			}
		}
	}
	var done []*madeMount
	s.undo = b.pushUndo("package indexes", func(ui packersdk.Ui) error {
		harvestIndexes(ui, server, root, cfg.Architecture, pinned)
		var recs []mount.MountRecord
		for _, m := range done {
			if m.ID != 0 {
				recs = append(recs, m.MountRecord)
			}
		}
		if err := unmountRecords(ui, b.host, ledger, recs); err != nil {
			return err
		}
		for i := len(done) - 1; i >= 0; i-- {
			if err := removeCreated(root, done[i]); err != nil {
				return fmt.Errorf("removing the mount point %s the build created: %w", done[i].InImage, err)
			}
		}
		done = nil
		return os.RemoveAll(base)
	})
	b.aptIndexes = s.undo
	for _, target := range []string{aptListsDir, aptCacheDirPath} {
		name := filepath.Base(target)
		if target == aptCacheDirPath {
			name = "cache"
		}
		// Volatile: build-time state, thrown away after.
		opts := layer.VolatileOverlayOptions(lowers[target], filepath.Join(base, name, "upper"), filepath.Join(base, name, "work"))
		made, err := mountInImage(b.host, root, ledger, plannedMount{
			Spec: mount.Spec{FSType: "overlay", Source: "strata-apt-indexes", Target: target, Options: "nosuid,nodev," + opts},
			Own:  true,
		})
		if made != nil && (made.ID != 0 || len(made.created) > 0) {
			done = append(done, made)
		}
		if err != nil {
			return halt(state, fmt.Errorf("package indexes: mounting %s: %w", target, err))
		}
	}

	info := aptIndexesInfoFile{Pinned: pinned}
	if hit {
		info.Key, info.Shared, info.Checked = key, true, shared.Checked.UTC()
		age := "never checked"
		if !shared.Checked.IsZero() {
			age = "checked " + time.Since(shared.Checked).Round(time.Second).String() + " ago"
		}
		bin := "the parent image's binary caches"
		if imageCache == "" {
			bin = "no binary caches of the image's apt yet"
		}
		ui.Message(fmt.Sprintf("package indexes: shared copy %s (hit, %s; %s)", layer.ShortDigest(key), age, bin))
	} else {
		ui.Message("package indexes: no shared copy for these sources and InRelease files yet (miss); apt-get update makes one")
	}
	data, _ := json.Marshal(info)
	if err := root.WriteFile(aptIndexesInfo, bytes.NewReader(data), inroot.FileSpec{Mode: 0o644}); err != nil {
		return halt(state, fmt.Errorf("package indexes: %w", err))
	}
	if hit && parentID != "" && imageCache == "" {
		if why := treeChangedBeforeIndexes(b.cfg); why != "" {
			ui.Message("package indexes: not making the parent image's binary caches for its children: " + why)
		} else {
			makeImageCache(ctx, b, ui, key, parentID, filepath.Join(base, "cache", "upper"))
		}
	}
	return multistep.ActionContinue
}

// treeChangedBeforeIndexes says why the chroot may no longer be the parent's
// tree when this step runs, or "": host commands and the template's own
// mounts run before it and can change /etc/apt, the dpkg status or apt
// itself, and binary caches made from such a tree must not be kept for
// every other child of the parent.
func treeChangedBeforeIndexes(c *Config) string {
	switch {
	case len(c.PreMountCommands) > 0:
		return "pre_mount_commands ran before"
	case len(c.PostMountCommands) > 0:
		return "post_mount_commands ran before"
	case len(c.ChrootMounts) > 0:
		return "chroot_mounts are mounted in the tree"
	}
	return ""
}

// makeImageCache has the parent image's own apt build its binary caches
// from the shared copy now, before anything of this build has run in the
// chroot (the tree is the parent's, unchanged), and keeps them for the
// parent's later children. A failure costs later builds time, never this
// one its result.
func makeImageCache(ctx context.Context, b *buildState, ui packersdk.Ui, key, parentID, upper string) {
	start := time.Now()
	cmd := hostexec.Command(ctx, b.cfg.chrootPath, b.root.Path(), "apt-cache", "-q", "gencaches")
	cmd.Env = append(cmd.Env, "APT_CONFIG="+aptCacheConfig, "LC_ALL=C")
	if out, err := b.host.Output(cmd, b.ledger); err != nil {
		ui.Error(fmt.Sprintf("Warning: package indexes: the image's apt-cache gencaches: %v: %s", err, strings.TrimSpace(string(out))))
		return
	}
	made := time.Since(start)
	// Kept for other builds only from a parent that is what was committed.
	if err := b.rootfs.check.wait(ctx, ui); err != nil {
		ui.Error("Warning: package indexes: not keeping the image's binary caches: " + err.Error())
		return
	}
	dir, err := os.Open(upper)
	if err != nil {
		return
	}
	defer dir.Close()
	if ok, err := b.cache.Store().PublishImageCache(key, parentID, dir); err != nil {
		ui.Error("Warning: package indexes: not keeping the image's binary caches: " + err.Error())
	} else if ok {
		ui.Message(fmt.Sprintf("package indexes: the parent image's apt made its binary caches in %s; kept for its children", made.Round(time.Millisecond)))
	}
}

func (s *stepAptIndexes) Cleanup(state multistep.StateBag) { cleanupUndo(state, s.undo) }

// harvestIndexes publishes the lists the build left as a new shared copy
// (pkgcache verifies every file against the InRelease files the cache
// served this build), or, when the build revalidated the InRelease files
// of an existing copy, records that they are still current. A failure
// here costs the next build time, never this one its result.
func harvestIndexes(ui packersdk.Ui, server *pkgcache.Server, root *inroot.Root, arch string, pinned bool) {
	set := imageIndexSet(root, arch)
	set.Releases = server.Releases()
	key := set.Key()
	if key == "" {
		return
	}
	store := server.Store()
	if _, ok := store.SharedIndexes(key); ok {
		fetched := server.Fetched()
		for _, u := range pkgcache.ReleaseURLs(set.Sources) {
			if fetched[u] != set.Releases[u] {
				return // apt did not revalidate them all: nothing learned
			}
		}
		if !pinned {
			if err := store.MarkIndexesChecked(key); err != nil {
				ui.Error("Warning: package indexes: " + err.Error())
			}
		}
		return
	}
	dir, err := root.OpenPath(aptListsDir)
	if err != nil {
		return
	}
	defer dir.Close()
	start := time.Now()
	res, err := store.PublishIndexes(set, dir)
	if len(res.Refused) > 0 {
		ui.Message(fmt.Sprintf("package indexes: left out %d list(s) the InRelease files do not vouch for: %s", len(res.Refused), strings.Join(res.Refused, "; ")))
	}
	switch {
	case err != nil:
		ui.Error("Warning: package indexes: not shared: " + err.Error())
	case res.Published:
		bin := fmt.Sprintf("srcpkgcache.bin made by the host's apt in %s", res.SourceCacheTime.Round(time.Millisecond))
		if res.SourceCache != "" {
			bin = "no srcpkgcache.bin: " + res.SourceCache
		}
		ui.Message(fmt.Sprintf("package indexes: published shared copy %s (%d verified lists, %d MiB; %s) in %s",
			layer.ShortDigest(key), res.Files, res.Bytes>>20, bin, time.Since(start).Round(time.Millisecond)))
	case res.Skipped != "":
		ui.Message("package indexes: not shared: " + res.Skipped)
	}
}

// imageIndexSet is the image's apt sources and architecture, read inside
// its root now (arch: the build's architecture option).
func imageIndexSet(root *inroot.Root, arch string) pkgcache.IndexSet {
	return pkgcache.IndexSet{Arch: imageArch(root, arch), Sources: pkgcache.ImageSourceEntries(root)}
}

// imageArch is the image's dpkg architecture: /var/lib/dpkg/arch's first
// line when the image has one, else the build's architecture (dpkg's own,
// which only a multi-arch image writes to that file), else the build
// host's.
func imageArch(root *inroot.Root, arch string) string {
	if b, err := root.ReadRegular("/var/lib/dpkg/arch", 4096); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 && len(f[0]) < 32 && strings.Trim(f[0], "abcdefghijklmnopqrstuvwxyz0123456789-") == "" {
			return f[0]
		}
	}
	if arch != "" {
		return arch
	}
	switch runtime.GOARCH {
	case "386":
		return "i386"
	case "arm":
		return "armhf"
	case "ppc64le":
		return "ppc64el"
	}
	return runtime.GOARCH
}
