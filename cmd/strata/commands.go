package main

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/strata-build/packer-plugin-strata/catalog"
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
						fmt.Fprintf(w, "%s\t%d\t%s\t%s\n", i.Name, i.Versions, i.Latest, ts(i.Created))
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
			return g.withCatalog(func(c *catalog.Catalog) error {
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
					fmt.Fprintln(w, "VERSION\tIMAGE ID\tPARENT\tCREATED\tCHANNELS\tSTATE")
					for _, r := range rows {
						state := ""
						if r.Revoked {
							state = "revoked: " + r.RevokedReason
						}
						fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Version.Version, short(r.ImageID), short(r.ParentID), ts(r.Created), strings.Join(r.Channels, ","), state)
					}
				})
			})
		},
	}
}

func showCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "show NAME@VERSION",
		Short: "Show one version: content, artifacts, packages, build, channels",
		Args:  args(1, "NAME@VERSION"),
		RunE: func(cmd *cobra.Command, a []string) error {
			name, version, err := splitRef(a[0])
			if err != nil {
				return err
			}
			return g.withCatalog(func(c *catalog.Catalog) error {
				v, err := c.Get(cmd.Context(), name, version)
				if err != nil {
					return err
				}
				chs, _ := c.Channels(cmd.Context(), name)
				var on []string
				for _, ch := range chs {
					if ch.Version == version {
						on = append(on, ch.Name)
					}
				}
				return g.emit(struct {
					*catalog.Version
					Channels []string `json:"channels"`
				}{v, on}, func(w *tabwriter.Writer) {
					fmt.Fprintf(w, "Image:\t%s\nVersion:\t%s\nImage ID:\t%s\nParent:\t%s\nCreated:\t%s\nChannels:\t%s\n",
						v.Image, v.Version, v.ImageID, v.ParentID, ts(v.Created), strings.Join(on, ", "))
					if v.Revoked {
						fmt.Fprintf(w, "Revoked:\t%s (%s)\n", v.RevokedReason, ts(v.RevokedAt))
					}
					if v.Build.BuildName != "" || v.Build.PackerRunUUID != "" {
						fmt.Fprintf(w, "Build:\t%s run %s template %s\n", v.Build.BuildName, v.Build.PackerRunUUID, v.Build.TemplateHash)
					}
					for _, k := range slices.Sorted(maps.Keys(v.Labels)) {
						fmt.Fprintf(w, "Label:\t%s=%s\n", k, v.Labels[k])
					}
					if len(v.Tags) > 0 {
						fmt.Fprintf(w, "Tags:\t%s\n", strings.Join(v.Tags, ", "))
					}
					for _, art := range v.Artifacts {
						fmt.Fprintf(w, "Artifact:\t%s\t%s\t%d bytes\tsha256 %s\n", art.Format, art.Path, art.Size, short(art.SHA256))
					}
					fmt.Fprintf(w, "Packages:\t%d\n", len(v.Packages))
				})
			})
		},
	}
}

func channelsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "channels NAME",
		Short: "List an image's channels and the versions they hold",
		Args:  args(1, "an image name"),
		RunE: func(cmd *cobra.Command, a []string) error {
			return g.withCatalog(func(c *catalog.Catalog) error {
				chs, err := c.Channels(cmd.Context(), a[0])
				if err != nil {
					return err
				}
				return g.emit(chs, func(w *tabwriter.Writer) {
					fmt.Fprintln(w, "CHANNEL\tVERSION\tSINCE\tSTATE")
					for _, ch := range chs {
						state := ""
						if ch.Revoked {
							state = "REVOKED: roll this channel back"
						}
						fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", ch.Name, ch.Version, ts(ch.Since), state)
					}
				})
			})
		},
	}
}

func promoteCmd(g *globals) *cobra.Command {
	var opt catalog.MoveOptions
	cmd := &cobra.Command{
		Use:   "promote NAME@VERSION CHANNEL | promote NAME CHANNEL --from CHANNEL",
		Short: "Point a channel at a version (with --from, only what that channel holds)",
		Args:  args(2, "NAME@VERSION (or NAME with --from) and a channel"),
		RunE: func(cmd *cobra.Command, a []string) error {
			name, version := a[0], ""
			if strings.Contains(a[0], "@") {
				var err error
				if name, version, err = splitRef(a[0]); err != nil {
					return err
				}
			} else if opt.From == "" {
				return usageError{fmt.Errorf("promote needs NAME@VERSION, or NAME with --from CHANNEL")}
			}
			return g.withCatalog(func(c *catalog.Catalog) error {
				e, changed, err := c.Promote(cmd.Context(), name, a[1], version, opt)
				if err != nil {
					return err
				}
				return g.emit(struct {
					*catalog.ChannelEntry
					Changed bool `json:"changed"`
				}{e, changed}, func(w *tabwriter.Writer) {
					if !changed {
						fmt.Fprintf(w, "%s already holds %s@%s; nothing changed\n", a[1], name, e.Version)
						return
					}
					fmt.Fprintf(w, "%s: %s -> %s@%s\n", a[1], orNone(e.Previous), name, e.Version)
				})
			})
		},
	}
	moveFlags(cmd, &opt)
	cmd.Flags().StringVar(&opt.From, "from", "", "only promote what this channel holds (e.g. staging for production)")
	return cmd
}

func moveFlags(cmd *cobra.Command, opt *catalog.MoveOptions) {
	cmd.Flags().StringVar(&opt.Reason, "reason", "", "why, for the channel's history")
	cmd.Flags().StringVar(&opt.Actor, "actor", defaultActor(), "who, for the channel's history (default $STRATA_ACTOR or user@host)")
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func rollbackCmd(g *globals) *cobra.Command {
	var opt catalog.MoveOptions
	cmd := &cobra.Command{
		Use:   "rollback NAME CHANNEL",
		Short: "Move a channel back to the newest earlier version that is not revoked and still has its content",
		Args:  args(2, "an image name and a channel"),
		RunE: func(cmd *cobra.Command, a []string) error {
			return g.withCatalog(func(c *catalog.Catalog) error {
				e, skipped, err := c.Rollback(cmd.Context(), a[0], a[1], opt)
				if err != nil {
					return err
				}
				return g.emit(struct {
					*catalog.ChannelEntry
					Skipped []catalog.RollbackTarget `json:"skipped"`
				}{e, skipped}, func(w *tabwriter.Writer) {
					for _, s := range skipped {
						fmt.Fprintf(w, "skipped %s@%s: %s\n", a[0], s.Version, s.Skipped)
					}
					fmt.Fprintf(w, "%s: %s@%s -> %s@%s (rollback)\n", a[1], a[0], e.Previous, a[0], e.Version)
				})
			})
		},
	}
	moveFlags(cmd, &opt)
	cmd.Flags().StringVar(&opt.To, "to", "", "roll back to this version (it must be in the channel's history)")
	return cmd
}

func historyCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "history NAME CHANNEL",
		Short: "Show a channel's assignment history, oldest first",
		Args:  args(2, "an image name and a channel"),
		RunE: func(cmd *cobra.Command, a []string) error {
			return g.withCatalog(func(c *catalog.Catalog) error {
				h, err := c.History(cmd.Context(), a[0], a[1])
				if err != nil {
					return err
				}
				return g.emit(h, func(w *tabwriter.Writer) {
					fmt.Fprintln(w, "#\tTIME\tACTION\tFROM\tTO\tACTOR\tREASON")
					for _, e := range h {
						fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", e.ID, ts(e.Time), e.Action, orNone(e.Previous), e.Version, e.Actor, e.Reason)
					}
				})
			})
		},
	}
}

func revokeCmd(g *globals, revoke bool) *cobra.Command {
	var opt catalog.RevokeOptions
	use, short := "revoke NAME@VERSION --reason WHY", "Revoke a version: it can no longer be resolved, promoted or rolled back to"
	if !revoke {
		use, short = "restore NAME@VERSION", "Undo a revocation"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  args(1, "NAME@VERSION"),
		RunE: func(cmd *cobra.Command, a []string) error {
			name, version, err := splitRef(a[0])
			if err != nil {
				return err
			}
			return g.withCatalog(func(c *catalog.Catalog) error {
				f := c.Restore
				if revoke {
					f = c.Revoke
				}
				changed, err := f(cmd.Context(), name, version, opt)
				if err != nil {
					return err
				}
				var held []catalog.Channel
				if revoke {
					for _, v := range changed {
						chs, _ := c.Channels(cmd.Context(), v.Image)
						for _, ch := range chs {
							if ch.Version == v.Version {
								held = append(held, ch)
							}
						}
					}
				}
				return g.emit(struct {
					Changed      []*catalog.Version `json:"changed"`
					HeldChannels []catalog.Channel  `json:"channels_holding_revoked,omitempty"`
				}{changed, held}, func(w *tabwriter.Writer) {
					verb := "restored"
					if revoke {
						verb = "revoked"
					}
					if len(changed) == 0 {
						fmt.Fprintf(w, "nothing to do: %s is already %s\n", a[0], verb)
					}
					for _, v := range changed {
						fmt.Fprintf(w, "%s %s\n", verb, v.Ref())
					}
					for _, ch := range held {
						fmt.Fprintf(w, "warning: channel %s of %s still holds revoked %s; run: strata rollback %s %s\n", ch.Name, ch.Image, ch.Version, ch.Image, ch.Name)
					}
				})
			})
		},
	}
	if revoke {
		cmd.Flags().StringVar(&opt.Reason, "reason", "", "why (required)")
	}
	cmd.Flags().BoolVar(&opt.Descendants, "descendants", false, "also every version built on it, by lineage")
	return cmd
}

func lineageCmd(g *globals) *cobra.Command {
	var outOfDate bool
	cmd := &cobra.Command{
		Use:   "lineage NAME@VERSION | lineage --out-of-date [NAME]",
		Short: "Show a version's ancestors and descendants, or which channel heads sit on a parent no channel holds",
		RunE: func(cmd *cobra.Command, a []string) error {
			if outOfDate {
				if len(a) > 1 {
					return usageError{fmt.Errorf("lineage --out-of-date takes at most an image name")}
				}
				image := ""
				if len(a) == 1 {
					image = a[0]
				}
				return g.withCatalog(func(c *catalog.Catalog) error {
					ood, err := c.OutOfDate(cmd.Context(), image)
					if err != nil {
						return err
					}
					return g.emit(ood, func(w *tabwriter.Writer) {
						if len(ood) == 0 {
							fmt.Fprintln(w, "every channel head is built on a parent that a channel holds")
							return
						}
						fmt.Fprintln(w, "IMAGE\tCHANNEL\tVERSION\tPARENT (OFF EVERY CHANNEL)\tPARENT'S CHANNELS NOW")
						for _, o := range ood {
							fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", o.Image, o.Channel, o.Version, o.Parent, strings.Join(o.Current, " "))
						}
					})
				})
			}
			if len(a) != 1 {
				return usageError{fmt.Errorf("lineage takes NAME@VERSION (or --out-of-date)")}
			}
			name, version, err := splitRef(a[0])
			if err != nil {
				return err
			}
			return g.withCatalog(func(c *catalog.Catalog) error {
				l, err := c.Lineage(cmd.Context(), name, version)
				if err != nil {
					return err
				}
				return g.emit(l, func(w *tabwriter.Writer) {
					for i := len(l.Ancestors) - 1; i >= 0; i-- {
						fmt.Fprintf(w, "%s%s\t%s\n", strings.Repeat("  ", len(l.Ancestors)-1-i), l.Ancestors[i].Ref(), short(l.Ancestors[i].ImageID))
					}
					fmt.Fprintf(w, "%s%s\t%s\t<- this\n", strings.Repeat("  ", len(l.Ancestors)), l.Version.Ref(), short(l.Version.ImageID))
					for _, d := range l.Descendants {
						fmt.Fprintf(w, "%s%s\t%s\n", strings.Repeat("  ", len(l.Ancestors)+1), d.Ref(), short(d.ImageID))
					}
				})
			})
		},
	}
	cmd.Flags().BoolVar(&outOfDate, "out-of-date", false, "list channel heads whose parent is no longer on any channel")
	return cmd
}

func diffCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "diff NAME@A NAME@B",
		Short: "Show what changed between two versions: packages, labels, artifacts",
		Args:  args(2, "two NAME@VERSION"),
		RunE: func(cmd *cobra.Command, a []string) error {
			n1, v1, err := splitRef(a[0])
			if err != nil {
				return err
			}
			n2, v2, err := splitRef(a[1])
			if err != nil {
				return err
			}
			return g.withCatalog(func(c *catalog.Catalog) error {
				d, err := c.Diff(cmd.Context(), n1, v1, n2, v2)
				if err != nil {
					return err
				}
				return g.emit(d, func(w *tabwriter.Writer) {
					if d.Empty() {
						fmt.Fprintln(w, "no differences")
						return
					}
					if d.ImageIDChanged {
						fmt.Fprintln(w, "content\tchanged (image ID)")
					}
					for _, ch := range d.PackagesAdded {
						fmt.Fprintf(w, "+ package\t%s\t%s\n", ch.Name, ch.To)
					}
					for _, ch := range d.PackagesRemoved {
						fmt.Fprintf(w, "- package\t%s\t%s\n", ch.Name, ch.From)
					}
					for _, ch := range d.PackagesChanged {
						fmt.Fprintf(w, "~ package\t%s\t%s -> %s\n", ch.Name, ch.From, ch.To)
					}
					for _, ch := range d.LabelsChanged {
						fmt.Fprintf(w, "~ label\t%s\t%q -> %q\n", ch.Name, ch.From, ch.To)
					}
					for _, ch := range d.ArtifactsChanged {
						fmt.Fprintf(w, "~ artifact\t%s\t%s -> %s\n", ch.Name, short(ch.From), short(ch.To))
					}
				})
			})
		},
	}
}

func gcCmd(g *globals) *cobra.Command {
	var opt catalog.GCOptions
	var apply, deleteFiles bool
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Delete versions nothing needs (a dry run unless --apply); --delete-files removes their artifacts too",
		Args:  args(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			opt.DryRun = !apply
			return g.withCatalog(func(c *catalog.Catalog) error {
				res, err := c.GC(cmd.Context(), opt)
				if err != nil {
					return err
				}
				// Files go only after the catalog no longer names them.
				var fileErrs []string
				if apply && deleteFiles {
					for _, f := range res.Files {
						for _, p := range []string{f, f + ".sha256"} {
							if err := os.RemoveAll(p); err != nil {
								fileErrs = append(fileErrs, err.Error())
							}
						}
					}
				}
				defer func() {
					if len(fileErrs) > 0 {
						fmt.Fprintln(os.Stderr, "strata: could not remove:", strings.Join(fileErrs, "; "))
					}
				}()
				return g.emit(res, func(w *tabwriter.Writer) {
					verb := "would delete"
					if apply {
						verb = "deleted"
					}
					for _, v := range res.Deleted {
						fmt.Fprintf(w, "%s\t%s\n", verb, v.Ref())
					}
					for _, k := range slices.Sorted(maps.Keys(res.Kept)) {
						fmt.Fprintf(w, "keep\t%s\t%s\n", k, res.Kept[k])
					}
					fileVerb := "unneeded file"
					if apply && deleteFiles {
						fileVerb = "removed file"
					}
					for _, f := range res.Files {
						fmt.Fprintf(w, "%s\t%s\n", fileVerb, f)
					}
					if !apply {
						fmt.Fprintf(w, "dry run: %d to delete; run again with --apply\n", len(res.Deleted))
					}
				})
			})
		},
	}
	cmd.Flags().IntVar(&opt.KeepRollbacks, "keep", 5, "versions below each channel head a rollback must still reach")
	cmd.Flags().DurationVar(&opt.MinAge, "min-age", 24*time.Hour, "keep every version younger than this")
	cmd.Flags().StringVar(&opt.Image, "image", "", "only this image")
	cmd.Flags().BoolVar(&apply, "apply", false, "delete for real")
	cmd.Flags().BoolVar(&deleteFiles, "delete-files", false, "with --apply, also remove the deleted versions' artifact files (and their .sha256) that no kept version names")
	return cmd
}
