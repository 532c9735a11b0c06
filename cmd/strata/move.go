package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/strata-build/packer-plugin-strata/catalog"
)

func promoteCmd(g *globals) *cobra.Command {
	var opt catalog.MoveOptions
	var rf registryFlags
	var doRetag bool
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
			return g.withImage(cmd.Context(), name, opt.From, func(c *catalog.Catalog) error {
				e, changed, err := c.Promote(cmd.Context(), name, a[1], version, opt)
				if err != nil {
					return err
				}
				var tags []string
				if doRetag {
					if tags, err = retag(cmd.Context(), c, name, e.Version, a[1], rf.options()); err != nil {
						return fmt.Errorf("%s now holds %s@%s, but moving its registry tag failed (rerun the promote with --retag): %w", a[1], name, e.Version, err)
					}
				}
				return g.emit(struct {
					*catalog.ChannelEntry
					Changed bool `json:"changed"`
				}{e, changed}, func(w *tabwriter.Writer) {
					if !changed {
						printEsc(w, "%s already holds %s@%s; nothing changed\n", a[1], name, e.Version)
						return
					}
					printEsc(w, "%s: %s -> %s@%s\n", a[1], orNone(e.Previous), name, e.Version)
					if e.Override != "" {
						printEsc(w, "policy of %s overridden (%s): %s\n", a[1], opt.Reason, e.Override)
					}
					for _, t := range tags {
						printEsc(w, "retagged %s\n", t)
					}
				})
			})
		},
	}
	moveFlags(cmd, &opt)
	cmd.Flags().StringVar(&opt.From, "from", "", "only promote what this channel holds (e.g. staging for production)")
	cmd.Flags().BoolVar(&opt.Override, "override", false, "promote although the channel's policy refuses (needs --reason; recorded in the history)")
	cmd.Flags().BoolVar(&doRetag, "retag", false, "also point the channel's tag at the version in every registry repository it was pushed to")
	rf.add(cmd)
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
	var rf registryFlags
	var doRetag bool
	cmd := &cobra.Command{
		Use:   "rollback NAME CHANNEL",
		Short: "Move a channel back to the newest earlier version that is not revoked and still has its content",
		Args:  args(2, "an image name and a channel"),
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := checkNames("image", a[0], "channel", a[1]); err != nil {
				return err
			}
			return g.withImage(cmd.Context(), a[0], a[1], func(c *catalog.Catalog) error {
				e, skipped, err := c.Rollback(cmd.Context(), a[0], a[1], opt)
				if err != nil {
					return err
				}
				var tags []string
				if doRetag {
					if tags, err = retag(cmd.Context(), c, a[0], e.Version, a[1], rf.options()); err != nil {
						return fmt.Errorf("%s rolled back to %s@%s, but moving its registry tag failed (rerun with --retag): %w", a[1], a[0], e.Version, err)
					}
				}
				// Never blocked by a policy, but said.
				lacks, err := c.MissingEvidence(cmd.Context(), a[0], a[1], e.Version)
				if err != nil {
					return err
				}
				return g.emit(struct {
					*catalog.ChannelEntry
					Skipped       []catalog.RollbackTarget `json:"skipped"`
					LacksEvidence []string                 `json:"lacks_evidence"`
				}{e, skipped, append([]string{}, lacks...)}, func(w *tabwriter.Writer) {
					for _, s := range skipped {
						printEsc(w, "skipped %s@%s: %s\n", a[0], s.Version, s.Skipped)
					}
					printEsc(w, "%s: %s@%s -> %s@%s (rollback)\n", a[1], a[0], e.Previous, a[0], e.Version)
					for _, t := range tags {
						printEsc(w, "retagged %s\n", t)
					}
					if len(lacks) > 0 {
						printEsc(w, "warning: %s@%s lacks evidence the policy of %s requires now: %s\n", a[0], e.Version, a[1], strings.Join(lacks, "; "))
					}
				})
			})
		},
	}
	moveFlags(cmd, &opt)
	cmd.Flags().StringVar(&opt.To, "to", "", "roll back to this version (it must be in the channel's history)")
	cmd.Flags().BoolVar(&doRetag, "retag", false, "also point the channel's tag at the version in every registry repository it was pushed to")
	rf.add(cmd)
	return cmd
}

func historyCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "history NAME CHANNEL",
		Short: "Show a channel's assignment history, oldest first",
		Args:  args(2, "an image name and a channel"),
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := checkNames("image", a[0], "channel", a[1]); err != nil {
				return err
			}
			return g.withImage(cmd.Context(), a[0], a[1], func(c *catalog.Catalog) error {
				h, err := c.History(cmd.Context(), a[0], a[1])
				if err != nil {
					return err
				}
				return g.emit(h, func(w *tabwriter.Writer) {
					fmt.Fprintln(w, "#\tTIME\tACTION\tFROM\tTO\tACTOR\tREASON")
					for _, e := range h {
						action := string(e.Action)
						if e.Override != "" {
							action += " (policy overridden: " + e.Override + ")"
						}
						printEsc(w, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", e.ID, ts(e.Time), action, orNone(e.Previous), e.Version, e.Actor, e.Reason)
					}
				})
			})
		},
	}
}
