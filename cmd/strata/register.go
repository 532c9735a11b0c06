package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/strata-build/packer-plugin-strata/catalog"
	"github.com/strata-build/packer-plugin-strata/export"
)

func registerCmd(g *globals) *cobra.Command {
	var (
		v         catalog.Version
		scheme    string
		fromDir   string
		labels    []string
		artifacts []string
		pkgFile   string
		promote   string
		move      catalog.MoveOptions
	)
	cmd := &cobra.Command{
		Use:   "register NAME --from-output DIR | register NAME --image-id DIGEST [--artifact FORMAT=PATH ...]",
		Short: "Register a new version of an image (from a strata-chroot output directory, or by hand)",
		Args:  args(1, "an image name"),
		RunE: func(cmd *cobra.Command, a []string) error {
			v.Image = a[0]
			switch scheme {
			case string(catalog.SchemeSemver), string(catalog.SchemeTimestamp):
			default:
				return usageError{fmt.Errorf("--scheme %q: use semver or timestamp", scheme)}
			}
			if fromDir != "" {
				m, err := export.ReadManifest(fromDir)
				if err != nil {
					return usageError{err}
				}
				v.ImageID = m.RootfsDigest
				if v.Build.BuildName == "" {
					v.Build.BuildName = m.BuildName
				}
				for _, o := range m.Outputs {
					v.Artifacts = append(v.Artifacts, catalog.Artifact{Format: o.Format, Path: o.Path, Size: o.Size, SHA256: o.SHA256})
				}
				if pkgFile == "" {
					pkgFile = strings.TrimSuffix(fromDir, "/") + "/" + export.PackagesName
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
				art, err := artifactOf(format, path)
				if err != nil {
					return usageError{err}
				}
				v.Artifacts = append(v.Artifacts, art)
			}
			if pkgFile != "" {
				pkgs, err := export.ReadPackages(pkgFile)
				if err != nil && fromDir == "" {
					return usageError{fmt.Errorf("--packages: %w", err)}
				}
				for _, p := range pkgs {
					v.Packages = append(v.Packages, catalog.Package{Name: p[0], Version: p[1], Arch: p[2]})
				}
			}
			return g.withCatalog(func(c *catalog.Catalog) error {
				out, err := c.Register(cmd.Context(), &v, catalog.RegisterOptions{Scheme: catalog.VersionScheme(scheme)})
				if err != nil {
					return err
				}
				if promote != "" {
					if move.Reason == "" {
						move.Reason = "registered"
					}
					if _, _, err := c.Promote(cmd.Context(), out.Image, promote, out.Version, move); err != nil {
						return fmt.Errorf("registered %s, but promoting it to %s failed: %w", out.Ref(), promote, err)
					}
				}
				return g.emit(out, func(w *tabwriter.Writer) {
					fmt.Fprintf(w, "registered %s (%s, %d artifacts, %d packages)\n", out.Ref(), short(out.ImageID), len(out.Artifacts), len(out.Packages))
					if promote != "" {
						fmt.Fprintf(w, "%s -> %s\n", promote, out.Ref())
					}
				})
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&v.Version, "version", "", "the version (default: assigned by --scheme)")
	f.StringVar(&scheme, "scheme", "semver", "how to assign a version: semver (next patch) or timestamp")
	f.StringVar(&fromDir, "from-output", "", "a strata-chroot output directory (reads artifact.json and packages.tsv)")
	f.StringVar(&v.ImageID, "image-id", "", "the content digest (sha256:...) when not --from-output")
	f.StringVar(&v.ParentID, "parent", "", "the parent image's ID, for lineage")
	f.StringArrayVar(&labels, "label", nil, "KEY=VALUE (repeatable)")
	f.StringArrayVar(&v.Tags, "tag", nil, "a tag (repeatable)")
	f.StringArrayVar(&artifacts, "artifact", nil, "FORMAT=PATH of a file (repeatable); size and sha256 are computed")
	f.StringVar(&pkgFile, "packages", "", "a packages.tsv package manifest")
	f.StringVar(&v.Build.BuildName, "build-name", "", "the packer build name")
	f.StringVar(&v.Build.PackerRunUUID, "run-uuid", "", "the packer run UUID")
	f.StringVar(&v.Build.TemplateHash, "template-hash", "", "the template's hash")
	f.StringVar(&promote, "promote", "", "then promote the new version to this channel")
	moveFlags(cmd, &move)
	return cmd
}

// artifactOf describes a file on disk.
func artifactOf(format, path string) (catalog.Artifact, error) {
	sum, size, err := export.FileSHA256(path)
	if err != nil {
		return catalog.Artifact{}, fmt.Errorf("--artifact %s: %w", path, err)
	}
	return catalog.Artifact{Format: format, Path: path, Size: size, SHA256: sum}, nil
}
