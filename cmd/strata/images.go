package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/strata-build/packer-plugin-strata/catalog"
	"github.com/strata-build/packer-plugin-strata/internal/hint"
	"github.com/strata-build/packer-plugin-strata/layer"
)

func imagesCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "images",
		Short: "List images",
		Args:  args(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withCatalog(func(c *catalog.Catalog) error {
				imgs, err := c.Images(cmd.Context())
				if err != nil {
					return err
				}
				return g.emit(imgs, func(w *tabwriter.Writer) {
					fmt.Fprintln(w, "IMAGE\tVERSIONS\tLATEST\tCREATED")
					for _, i := range imgs {
						printEsc(w, "%s\t%d\t%s\t%s\n", i.Name, i.Versions, i.Latest, ts(i.Created))
					}
				})
			})
		},
	}
}

func versionsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "versions NAME",
		Short: "List an image's versions, oldest first, with the channels that hold them",
		Args:  args(1, "an image name"),
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := checkNames("image", a[0]); err != nil {
				return err
			}
			return g.withImage(cmd.Context(), a[0], "", func(c *catalog.Catalog) error {
				vs, err := c.Versions(cmd.Context(), a[0])
				if err != nil {
					return err
				}
				chs, err := c.Channels(cmd.Context(), a[0])
				if err != nil {
					return err
				}
				held := map[string][]string{}
				for _, ch := range chs {
					held[ch.Version] = append(held[ch.Version], ch.Name)
				}
				type row struct {
					*catalog.Version
					Channels []string `json:"channels,omitempty"`
				}
				rows := make([]row, len(vs))
				for i, v := range vs {
					rows[i] = row{v, held[v.Version]}
				}
				return g.emit(rows, func(w *tabwriter.Writer) {
					fmt.Fprintln(w, "VERSION\tARCH\tIMAGE ID\tPARENT\tCREATED\tCHANNELS\tSTATE")
					for _, r := range rows {
						state := ""
						if r.Revoked {
							state = "revoked: " + r.RevokedReason
						}
						arch := r.Architecture
						if arch == "" {
							arch = "-"
						}
						printEsc(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Version.Version, arch, layer.ShortDigest(r.ImageID), layer.ShortDigest(r.ParentID), ts(r.Created), strings.Join(r.Channels, ","), state)
					}
				})
			})
		},
	}
}

func showCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "show NAME@VERSION",
		Short: "Show one version: content, artifacts, packages, build, channels, evidence",
		Args:  args(1, "NAME@VERSION"),
		RunE: g.onVersion(func(ctx context.Context, c *catalog.Catalog, name, version string) error {
			v, err := c.Get(ctx, name, version)
			if err != nil {
				return err
			}
			chs, err := c.Channels(ctx, name)
			if err != nil {
				return err
			}
			on := []string{}
			for _, ch := range chs {
				if ch.Version == version {
					on = append(on, ch.Name)
				}
			}
			return g.emit(struct {
				*catalog.Version
				Channels []string `json:"channels"`
			}{v, on}, func(w *tabwriter.Writer) {
				printEsc(w, "Image:\t%s\nVersion:\t%s\nImage ID:\t%s\nParent:\t%s\nCreated:\t%s\nChannels:\t%s\n",
					v.Image, v.Version, v.ImageID, v.ParentID, ts(v.Created), strings.Join(on, ", "))
				if v.Description != "" {
					printEsc(w, "Description:\t%s\n", v.Description)
				}
				if v.Revoked && v.RevokedAt != nil {
					printEsc(w, "Revoked:\t%s (%s)\n", v.RevokedReason, ts(*v.RevokedAt))
				}
				for i, l := range v.Layers {
					printEsc(w, "Layer %d:\t%s\n", i, l)
				}
				if v.Build.BuildName != "" || v.Build.PackerRunUUID != "" {
					printEsc(w, "Build:\t%s run %s template %s\n", v.Build.BuildName, v.Build.PackerRunUUID, v.Build.TemplateHash)
				}
				if v.Build.OutputDir != "" {
					printEsc(w, "Output dir:\t%s\n", v.Build.OutputDir)
				}
				for _, k := range slices.Sorted(maps.Keys(v.Labels)) {
					printEsc(w, "Label:\t%s=%s\n", k, v.Labels[k])
				}
				if len(v.Tags) > 0 {
					printEsc(w, "Tags:\t%s\n", strings.Join(v.Tags, ", "))
				}
				for _, art := range v.Artifacts {
					printEsc(w, "Artifact:\t%s\t%s\t%d bytes\tsha256 %s\n", art.Format, art.Path, art.Size, layer.ShortDigest(art.SHA256))
				}
				printEsc(w, "Packages:\t%d\n", len(v.Packages))
				for _, e := range v.Evidence {
					boot := ""
					if e.BootTimeMS > 0 {
						boot = fmt.Sprintf(", boot %dms", e.BootTimeMS)
					}
					printEsc(w, "Evidence:\t%s %s\t%s\t%d passed, %d failed, %d skipped%s\t%s\t%s\n", e.Kind, passFail(e.Passed), ts(e.Time),
						e.Counts.Passed, e.Counts.Failed, e.Counts.Skipped, boot, e.Source, e.Report)
				}
			})
		}),
	}
}

func channelsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "channels NAME",
		Short: "List an image's channels and the versions they hold",
		Args:  args(1, "an image name"),
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := checkNames("image", a[0]); err != nil {
				return err
			}
			return g.withImage(cmd.Context(), a[0], "", func(c *catalog.Catalog) error {
				chs, err := c.Channels(cmd.Context(), a[0])
				if err != nil {
					return err
				}
				return g.emit(chs, func(w *tabwriter.Writer) {
					fmt.Fprintln(w, "CHANNEL\tVERSION\tSINCE\tSTATE")
					for _, ch := range chs {
						state := ""
						if ch.Revoked {
							state = "REVOKED: run " + hint.Rollback(ch.Image, ch.Name)
						}
						printEsc(w, "%s\t%s\t%s\t%s\n", ch.Name, ch.Version, ts(ch.Since), state)
					}
				})
			})
		},
	}
}

// onVersion is the RunE of a command on one NAME@VERSION: it parses the
// reference and runs run with the catalog open for that image.
func (g *globals) onVersion(run func(ctx context.Context, c *catalog.Catalog, name, version string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, a []string) error {
		name, version, err := splitRef(a[0])
		if err != nil {
			return err
		}
		return g.withImage(cmd.Context(), name, "", func(c *catalog.Catalog) error {
			return run(cmd.Context(), c, name, version)
		})
	}
}
