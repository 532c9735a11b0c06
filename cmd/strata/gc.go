package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/strata-build/packer-plugin-strata/catalog"
	"github.com/strata-build/packer-plugin-strata/internal/bytesize"
	"github.com/strata-build/packer-plugin-strata/internal/storeroot"
	"github.com/strata-build/packer-plugin-strata/layer"
)

func gcCmd(g *globals) *cobra.Command {
	var opt catalog.GCOptions
	var apply, deleteFiles, force bool
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Delete versions nothing needs (a dry run unless --apply); --delete-files removes their artifacts too",
		Args:  args(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := g.checkStore(); err != nil {
				return err
			}
			opt.DryRun = !apply
			// A dry run may look at what zero windows would collect.
			if err := safetyWindow("keep", opt.KeepRollbacks, force || !apply); err != nil {
				return err
			}
			if err := safetyWindow("min-age", opt.MinAge, force || !apply); err != nil {
				return err
			}
			return g.withCatalog(func(c *catalog.Catalog) error {
				res, err := c.GC(cmd.Context(), opt)
				if err != nil {
					return err
				}
				// Files go only after the catalog no longer names them.
				fr := fileRemoval{Removed: []string{}, Left: map[string]string{}}
				if apply && deleteFiles {
					fr = removeCollectedFiles(res, g.store)
				}
				// Then the store: images no remaining version names, and
				// the layers only they used (never one a running build holds).
				store, err := collectStore(cmd.Context(), c, g, res, opt)
				if err != nil {
					return err
				}
				out := struct {
					*catalog.GCResult
					RemovedFiles []string          `json:"removed_files"`
					LeftFiles    map[string]string `json:"left_files"`
					Store        *layer.GCResult   `json:"store"`
				}{res, fr.Removed, fr.Left, store}
				return g.emit(out, func(w *tabwriter.Writer) {
					verb := "would delete"
					if apply {
						verb = "deleted"
					}
					for _, v := range res.Deleted {
						printEsc(w, "%s\t%s\n", verb, v.Ref())
					}
					for _, k := range slices.Sorted(maps.Keys(res.Kept)) {
						printEsc(w, "keep\t%s\t%s\n", k, res.Kept[k])
					}
					if apply && deleteFiles {
						for _, f := range fr.Removed {
							printEsc(w, "removed file\t%s\n", f)
						}
						for _, f := range slices.Sorted(maps.Keys(fr.Left)) {
							printEsc(w, "left in place\t%s\t%s\n", f, fr.Left[f])
						}
					} else {
						for _, f := range res.Files {
							printEsc(w, "unneeded file\t%s\n", f)
						}
					}
					for _, id := range store.Images {
						printEsc(w, "%s image\t%s\n", verb, id)
					}
					for _, d := range store.Layers {
						printEsc(w, "%s layer\t%s\n", verb, d)
					}
					for _, d := range store.InUse {
						printEsc(w, "keep layer\t%s\theld by a running build\n", d)
					}
					for _, b := range store.Blobs {
						printEsc(w, "%s blob\t%s\tits layer is gone\n", verb, b)
					}
					if len(store.Layers) > 0 {
						printEsc(w, "layers: %s of %d layer(s) %s\n", bytesize.Human(store.Bytes), len(store.Layers), verb)
					}
					if !apply {
						printEsc(w, "dry run: %d to delete; run again with --apply\n", len(res.Deleted))
					}
				})
			})
		},
	}
	cmd.Flags().IntVar(&opt.KeepRollbacks, "keep", catalog.DefaultKeepRollbacks, "versions below each channel head a rollback must still reach (0 takes --force)")
	cmd.Flags().DurationVar(&opt.MinAge, "min-age", catalog.DefaultMinAge, "keep every version (and store image and layer) younger than this (0 takes --force)")
	cmd.Flags().BoolVar(&force, "force", false, "with --apply, allow --keep 0 or --min-age 0 (no safety window)")
	cmd.Flags().StringVar(&opt.Image, "image", "", "only this image")
	cmd.Flags().BoolVar(&apply, "apply", false, "delete for real")
	cmd.Flags().BoolVar(&deleteFiles, "delete-files", false, "with --apply, also remove the deleted versions' artifact files (and their .sha256), evidence reports and in-toto statements that no kept version names: only regular files inside the store or inside the output directory the builder recorded")
	return cmd
}

// fileRemoval says what --delete-files did.
type fileRemoval struct {
	Removed []string
	Left    map[string]string // path -> why it stays
}

// removeCollectedFiles removes the artifact files of collected versions
// that no kept version names, each with its .sha256, when removeArtifact
// allows it.
func removeCollectedFiles(res *catalog.GCResult, store string) fileRemoval {
	fr := fileRemoval{Removed: []string{}, Left: map[string]string{}}
	outputDir := map[string]string{}
	for _, v := range res.Deleted {
		for _, a := range v.Artifacts {
			outputDir[a.Path] = v.Build.OutputDir
		}
		for _, e := range v.Evidence {
			for _, f := range e.Files() {
				outputDir[f] = v.Build.OutputDir
			}
		}
	}
	for _, f := range res.Files {
		allowed := []string{store}
		if d := outputDir[f]; d != "" {
			allowed = append(allowed, d)
		}
		for _, p := range []string{f, f + ".sha256"} {
			err := removeArtifact(p, allowed)
			switch {
			case err == nil:
				fr.Removed = append(fr.Removed, p)
			case errors.Is(err, os.ErrNotExist) && p != f:
			default:
				fr.Left[p] = err.Error()
			}
		}
	}
	return fr
}

// removeArtifact removes path when it is a regular file (never a directory
// tree, never a link) that lies inside one of the allowed directories, with
// no symlink anywhere on the way: a path a version names (even
// "../../etc/passwd" or one typed by hand) can do no harm.
func removeArtifact(path string, allowed []string) error {
	if !filepath.IsAbs(path) || filepath.Clean(path) != path {
		return errors.New("not a clean absolute path")
	}
	dir, base := filepath.Dir(path), filepath.Base(path)
	inside := false
	for _, a := range allowed {
		if a != "" && strings.HasPrefix(dir+"/", filepath.Clean(a)+"/") {
			inside = true
		}
	}
	if !inside {
		return fmt.Errorf("outside the store and the output directory the builder recorded")
	}
	fd, err := unix.Openat2(unix.AT_FDCWD, dir, &unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: unix.RESOLVE_NO_SYMLINKS})
	if err != nil {
		return fmt.Errorf("its directory: %w", err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstatat(fd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return errors.New("not a regular file (a directory output or a link is left for you to remove)")
	}
	if err := unix.Unlinkat(fd, base, 0); err != nil {
		return &os.PathError{Op: "remove", Path: path, Err: err}
	}
	return nil
}

// collectStore garbage-collects the layer store: it keeps the images of
// every version the catalog still has after res (and anything younger than
// the catalog's min age), and the layers they use.
func collectStore(ctx context.Context, c *catalog.Catalog, g *globals, res *catalog.GCResult, opt catalog.GCOptions) (*layer.GCResult, error) {
	empty := layer.NoGC()
	if _, err := os.Stat(storeroot.Layout{Root: g.store}.Layers()); err != nil {
		return empty, nil
	}
	store, err := g.layerStore()
	if err != nil {
		return nil, err
	}
	deleted := map[string]bool{}
	for _, v := range res.Deleted {
		deleted[v.Ref()] = true
	}
	keep := map[string]bool{}
	imgs, err := c.Images(ctx)
	if err != nil {
		return nil, err
	}
	for _, i := range imgs {
		vs, err := c.Versions(ctx, i.Name)
		if err != nil {
			return nil, err
		}
		for _, v := range vs {
			if !deleted[v.Ref()] {
				keep[v.ImageID] = true
				// A multi-architecture version's other images.
				if v.Architecture != "" {
					full, err := c.Get(ctx, v.Image, v.Version)
					if err != nil {
						return nil, err
					}
					for _, p := range full.Platforms {
						keep[p.ImageID] = true
					}
				}
			}
		}
	}
	return store.GC(layer.GCOptions{Keep: keep, MinAge: opt.MinAge, DryRun: opt.DryRun})
}
