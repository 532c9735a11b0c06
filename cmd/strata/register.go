package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/strata-build/packer-plugin-strata/catalog"
	"github.com/strata-build/packer-plugin-strata/export"
	"github.com/strata-build/packer-plugin-strata/internal/treesize"
	"github.com/strata-build/packer-plugin-strata/layer"
)

func registerCmd(g *globals) *cobra.Command {
	var (
		v         catalog.Version
		scheme    string
		fromDir   string
		labels    []string
		artifacts []string
		pkgFile   string
		parent    string
		opt       catalog.RegisterOptions
	)
	cmd := &cobra.Command{
		Use:   "register NAME --from-output DIR | register NAME --image-id DIGEST [--artifact FORMAT=PATH ...]",
		Short: "Register a new version of an image (from a strata-chroot output directory, or by hand)",
		Args:  args(1, "an image name"),
		RunE: func(cmd *cobra.Command, a []string) error {
			v.Image = a[0]
			if err := checkNames("image", v.Image); err != nil {
				return err
			}
			switch scheme {
			case string(catalog.SchemeSemver), string(catalog.SchemeTimestamp):
				opt.Scheme = catalog.VersionScheme(scheme)
			default:
				return usageError{fmt.Errorf("--scheme %q: use semver or timestamp", scheme)}
			}
			if fromDir != "" {
				if err := fromOutput(cmd, &v, fromDir); err != nil {
					return err
				}
				// The boot check's in-toto statement, as the post-processor writes it.
				if err := catalog.WriteStatements(v.Build.OutputDir, v.Image, &v); err != nil {
					return fmt.Errorf("--from-output %s: %w", fromDir, err)
				}
			}
			for _, l := range labels {
				k, val, ok := strings.Cut(l, "=")
				if !ok || k == "" {
					return usageError{fmt.Errorf("--label %q: use KEY=VALUE", l)}
				}
				if v.Labels == nil {
					v.Labels = map[string]string{}
				}
				v.Labels[k] = val
			}
			for _, s := range artifacts {
				format, path, ok := strings.Cut(s, "=")
				if !ok {
					return usageError{fmt.Errorf("--artifact %q: use FORMAT=PATH", s)}
				}
				art, err := artifactOf(cmd.Context(), format, path)
				if err != nil {
					return usageError{err}
				}
				v.Artifacts = append(v.Artifacts, art)
			}
			if pkgFile != "" {
				pkgs, err := export.ReadPackages(pkgFile)
				if err != nil {
					return usageError{fmt.Errorf("--packages: %w", err)}
				}
				v.Packages = nil
				for _, p := range pkgs {
					v.Packages = append(v.Packages, catalog.Package{Name: p[0], Version: p[1], Arch: p[2]})
				}
			}
			// register is what creates a catalog, and it says so.
			c, err := g.openCatalog(catalog.Open)
			if err != nil {
				return err
			}
			defer c.Close()
			if c.Created {
				printEsc(os.Stderr, "strata: note: created a new catalog at %s\n", catalog.RedactURL(g.catalogURL))
			}
			if parent != "" {
				id, external, err := c.ResolveParent(cmd.Context(), parent)
				if err != nil {
					return err
				}
				if external {
					printEsc(os.Stderr, "strata: note: no version in the catalog has the parent %s; recorded as a base from outside\n", id)
				}
				v.ParentID = id
			}
			if opt.Promote != "" && opt.Move.Reason == "" {
				opt.Move.Reason = "registered"
			}
			out, err := c.Register(cmd.Context(), &v, opt)
			if err != nil {
				return err
			}
			return g.emit(out, func(w *tabwriter.Writer) {
				printEsc(w, "registered %s (%s, %d artifacts, %d packages)\n", out.Ref(), layer.ShortDigest(out.ImageID), len(out.Artifacts), len(out.Packages))
				if opt.Promote != "" {
					printEsc(w, "%s -> %s\n", opt.Promote, out.Ref())
				}
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&v.Version, "version", "", "the version (default: assigned by --scheme)")
	f.StringVar(&scheme, "scheme", "semver", "how to assign a version: semver (next patch) or timestamp")
	f.StringVar(&fromDir, "from-output", "", "a strata-chroot output directory (reads artifact.json and packages.tsv, and checks every file against them)")
	f.StringVar(&v.ImageID, "image-id", "", "the image ID (sha256:<64 hex>) when not --from-output")
	f.StringVar(&parent, "parent", "", "the parent, for lineage: NAME@VERSION or its image ID (sha256:..., a unique prefix of 12+ digits will do)")
	f.StringArrayVar(&labels, "label", nil, "KEY=VALUE (repeatable)")
	f.StringArrayVar(&v.Tags, "tag", nil, "a tag (repeatable)")
	f.StringArrayVar(&artifacts, "artifact", nil, "FORMAT=PATH of a file (repeatable); size and sha256 are computed")
	f.StringVar(&pkgFile, "packages", "", "a packages.tsv package manifest (default with --from-output: the directory's)")
	f.StringVar(&v.Build.BuildName, "build-name", "", "the packer build name")
	f.StringVar(&v.Build.PackerRunUUID, "run-uuid", "", "the packer run UUID")
	f.StringVar(&v.Build.TemplateHash, "template-hash", "", "the template's hash")
	f.StringVar(&v.Description, "description", "", "what this version is")
	f.BoolVar(&opt.AllowDuplicate, "allow-duplicate", false, "register content this image has registered already (by image ID)")
	f.StringVar(&opt.Promote, "promote", "", "promote the new version to this channel, in the same transaction")
	moveFlags(cmd, &opt.Move)
	return cmd
}

// fromOutput fills v from a strata-chroot output directory (the same code
// the strata-catalog post-processor uses).
func fromOutput(cmd *cobra.Command, v *catalog.Version, dir string) error {
	m, err := export.ReadManifest(dir)
	if err != nil {
		return usageError{err}
	}
	if err := catalog.FromOutput(cmd.Context(), v, dir, m); err != nil {
		return usageError{fmt.Errorf("--from-output %s: %w", dir, err)}
	}
	return nil
}

// artifactOf describes a file on disk, or a directory by its tree digest.
func artifactOf(ctx context.Context, format, path string) (catalog.Artifact, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return catalog.Artifact{}, err
	}
	if fi, err := os.Lstat(abs); err == nil && fi.IsDir() {
		d, err := export.TreeDigest(ctx, abs)
		if err != nil {
			return catalog.Artifact{}, fmt.Errorf("--artifact %s: %w", path, err)
		}
		t, _ := treesize.Measure(abs)
		return catalog.Artifact{Format: format, Path: abs, Size: t.Allocated, SHA256: strings.TrimPrefix(d, "sha256:")}, nil
	}
	sum, size, err := export.FileSHA256(abs)
	if err != nil {
		return catalog.Artifact{}, fmt.Errorf("--artifact %s: %w", path, err)
	}
	return catalog.Artifact{Format: format, Path: abs, Size: size, SHA256: sum}, nil
}
