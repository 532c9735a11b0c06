package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/strata-build/packer-plugin-strata/catalog"
	"github.com/strata-build/packer-plugin-strata/export"
	"github.com/strata-build/packer-plugin-strata/internal/bytesize"
	"github.com/strata-build/packer-plugin-strata/internal/dpkg"
	"github.com/strata-build/packer-plugin-strata/internal/inroot"
	"github.com/strata-build/packer-plugin-strata/internal/mount"
	"github.com/strata-build/packer-plugin-strata/internal/storeroot"
	"github.com/strata-build/packer-plugin-strata/layer"
)

func exportCmd(g *globals) *cobra.Command {
	var formats []string
	var outDir, compression string
	var force bool
	cmd := &cobra.Command{
		Use:   "export NAME@VERSION|IMAGE_ID --format FORMAT... --output DIR",
		Short: "Write an image from the store in other formats after its build (oci, tar.zst, squashfs, ext4, ...)",
		Args:  args(1, "NAME@VERSION or an image ID"),
		RunE: func(cmd *cobra.Command, a []string) error {
			if outDir == "" {
				return usageError{errors.New("--output DIR is required")}
			}
			for _, f := range formats {
				if !export.IsFormat(f) {
					return usageError{fmt.Errorf("--format %q: use any of %s", f, strings.Join(export.Formats, ", "))}
				}
			}
			id := a[0]
			// A multi-architecture version's other images, for the oci
			// format's image index.
			var platforms []string
			ref := ""
			if strings.Contains(id, "@") {
				name, version, err := splitRef(id)
				if err != nil {
					return err
				}
				ref = version
				if err := g.withCatalog(func(c *catalog.Catalog) error {
					v, err := c.Get(cmd.Context(), name, version)
					if err == nil {
						id = v.ImageID
						for _, p := range v.Platforms {
							platforms = append(platforms, p.ImageID)
						}
					}
					return err
				}); err != nil {
					return err
				}
			}
			store, err := g.layerStore()
			if err != nil {
				return err
			}
			// The builder's rules: --output where it leads, never in the
			// store, and --force replaces only an earlier export's or
			// build's outputs.
			abs, err := storeroot.Real(outDir)
			if err != nil {
				return fmt.Errorf("--output: %w", err)
			}
			if abs == g.store || strings.HasPrefix(abs, g.store+"/") || strings.HasPrefix(g.store, abs+"/") {
				return usageError{fmt.Errorf("--output %s overlaps the store %s; choose a directory of its own", abs, g.store)}
			}
			img, err := store.Image(id)
			if err != nil {
				if errors.Is(err, layer.ErrNotFound) {
					return fmt.Errorf("%w: %v (the store %s)", catalog.ErrNotFound, err, g.store)
				}
				return usageError{err}
			}
			if err := store.Complete(img); err != nil {
				return err
			}
			existed := false
			if _, err := os.Lstat(abs); err == nil {
				if !force {
					return fmt.Errorf("%w: %s exists; remove it or pass --force", catalog.ErrConflict, abs)
				}
				if _, err := export.RemoveEarlier(abs); err != nil {
					return fmt.Errorf("--force: %w", err)
				}
				existed = true
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			res, pkgs, err := exportImage(ctx, store, img, g.store, abs, formats, compression)
			if err != nil {
				if existed {
					export.RemoveWritten(abs, formats)
				} else if mount.Verify(abs) == nil {
					export.RemoveTree(abs)
				}
				return err
			}
			if len(platforms) > 0 && slices.Contains(formats, "oci") {
				if err := ociIndex(ctx, store, img, platforms, abs, ref, compression, res); err != nil {
					return err
				}
			}
			m := export.Manifest{ImageID: img.ID, ParentImageID: img.Parent, Layers: img.Layers, RootfsDigest: res.RootfsDigest,
				Source: "strata export", Outputs: res.Outputs}
			if pkgs != nil {
				if err := export.WriteFileAtomic(filepath.Join(abs, export.PackagesName), dpkg.TSV(pkgs), 0o644); err != nil {
					return err
				}
				m.Packages = export.PackagesName
			}
			if err := export.WriteManifest(abs, &m); err != nil {
				return err
			}
			return g.emit(res.Outputs, func(w *tabwriter.Writer) {
				for _, o := range res.Outputs {
					fmt.Fprintf(w, "%s\t%s\t%s\tsha256 %s\n", o.Format, o.Path, bytesize.Human(o.Size), layer.ShortDigest(o.SHA256))
				}
			})
		},
	}
	cmd.Flags().StringArrayVar(&formats, "format", []string{"oci"}, "an output format (repeatable): "+strings.Join(export.Formats, ", "))
	cmd.Flags().StringVar(&outDir, "output", "", "the output directory (must not exist unless --force)")
	cmd.Flags().StringVar(&compression, "oci-compression", layer.Gzip, "the oci format's layer compression: gzip or zstd")
	cmd.Flags().BoolVar(&force, "force", false, "replace an existing output directory")
	return cmd
}

// ociIndex replaces the oci output of img in outDir by an image index of
// img and the images of platforms (a multi-architecture version).
func ociIndex(ctx context.Context, store *layer.Store, img *layer.Image, platforms []string, outDir, ref, compression string, res *export.Result) error {
	imgs := []*layer.Image{img}
	for _, id := range platforms {
		p, err := store.Image(id)
		if err != nil {
			return fmt.Errorf("the version's image %s: %w", layer.ShortDigest(id), err)
		}
		if err := store.Complete(p); err != nil {
			return err
		}
		release, err := store.Hold(p)
		if err != nil {
			return err
		}
		defer release()
		imgs = append(imgs, p)
	}
	final := filepath.Join(outDir, export.FileName("oci"))
	if err := os.RemoveAll(final); err != nil {
		return err
	}
	out, err := export.WriteOCIIndex(ctx, store, imgs, final, export.OCIOptions{Compression: compression, Version: ref})
	if err != nil {
		return err
	}
	for i := range res.Outputs {
		if res.Outputs[i].Format == "oci" {
			out.Path = res.Outputs[i].Path
			res.Outputs[i] = out
		}
	}
	return nil
}

// exportImage mounts a read-only view of img in a private directory of the
// store, writes the formats from it and the layer store, and unmounts.
func exportImage(ctx context.Context, store *layer.Store, img *layer.Image, storeRoot, outDir string, formats []string, compression string) (*export.Result, []dpkg.Package, error) {
	work := storeroot.Layout{Root: storeRoot}.Work()
	if err := storeroot.Ensure(work); err != nil {
		return nil, nil, err
	}
	view, err := os.MkdirTemp(work, ".export-")
	if err != nil {
		return nil, nil, err
	}
	defer os.Remove(view)
	release, err := store.Hold(img) // no gc deletes what the export reads
	if err != nil {
		return nil, nil, err
	}
	defer release()
	v, err := store.MountView(img, view, nil)
	if err != nil {
		return nil, nil, err
	}
	defer v.Unmount()
	root, err := inroot.Open(view)
	if err != nil {
		return nil, nil, err
	}
	pkgs, err := dpkg.ReadImage(root)
	root.Close()
	if err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, nil, err
	}
	res, err := export.Export(ctx, export.Source{Root: view, Store: store, Image: img}, outDir, export.Options{
		Formats: formats,
		OCI:     export.OCIOptions{Compression: compression},
	})
	return res, pkgs, err
}
