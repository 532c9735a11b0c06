package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/strata-build/packer-plugin-strata/catalog"
)

func policyCmd(g *globals) *cobra.Command {
	return groupCmd("policy", "Channel policies: the evidence, source channel and age a promotion needs",
		policySetCmd(g), policyShowCmd(g), policyClearCmd(g))
}

func policySetCmd(g *globals) *cobra.Command {
	var p catalog.Policy
	var minAge time.Duration
	cmd := &cobra.Command{
		Use:   "set NAME CHANNEL [--require KIND]... [--from CHANNEL] [--min-age DURATION]",
		Short: "Set what a promotion to a channel needs (replaces its policy; kept in the policy's history)",
		Args:  args(2, "an image name and a channel"),
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := checkNames("image", a[0], "channel", a[1]); err != nil {
				return err
			}
			if minAge < 0 {
				return usageError{fmt.Errorf("--min-age %s is negative", minAge)}
			}
			p.Image, p.Channel, p.MinAge = a[0], a[1], catalog.Duration(minAge)
			return g.withCatalog(func(c *catalog.Catalog) error {
				got, err := c.SetPolicy(cmd.Context(), p)
				if err != nil {
					return err
				}
				return g.emit(got, func(w *tabwriter.Writer) {
					printEsc(w, "policy of %s %s: %s\n", got.Image, got.Channel, got.Describe())
				})
			})
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&p.Require, "require", nil, "evidence kind a version needs a passing (and no failed) record of; repeat or separate with commas")
	f.StringVar(&p.From, "from", "", "the channel that must hold the version (e.g. staging for production)")
	f.DurationVar(&minAge, "min-age", 0, "how long the version must have been on --from (else registered), e.g. 24h")
	f.StringVar(&p.Reason, "reason", "", "why, for the policy's history")
	f.StringVar(&p.Actor, "actor", defaultActor(), "who, for the policy's history (default $STRATA_ACTOR or user@host)")
	return cmd
}

func policyClearCmd(g *globals) *cobra.Command {
	var actor, reason string
	cmd := &cobra.Command{
		Use:   "clear NAME CHANNEL",
		Short: "Remove a channel's policy (kept in the policy's history)",
		Args:  args(2, "an image name and a channel"),
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := checkNames("image", a[0], "channel", a[1]); err != nil {
				return err
			}
			return g.withImage(cmd.Context(), a[0], "", func(c *catalog.Catalog) error {
				got, err := c.ClearPolicy(cmd.Context(), a[0], a[1], actor, reason)
				if err != nil {
					return err
				}
				return g.emit(got, func(w *tabwriter.Writer) {
					printEsc(w, "policy of %s %s cleared\n", got.Image, got.Channel)
				})
			})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the policy's history")
	cmd.Flags().StringVar(&actor, "actor", defaultActor(), "who, for the policy's history (default $STRATA_ACTOR or user@host)")
	return cmd
}

func policyShowCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "show NAME [CHANNEL]",
		Short: "Show the policies in force (with CHANNEL: that channel's policy and its history)",
		Args: func(cmd *cobra.Command, a []string) error {
			if len(a) < 1 || len(a) > 2 {
				return usageError{fmt.Errorf("policy show takes an image name and optionally a channel (%s)", cmd.UseLine())}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := checkNames("image", a[0]); err != nil {
				return err
			}
			return g.withImage(cmd.Context(), a[0], "", func(c *catalog.Catalog) error {
				if len(a) == 1 {
					ps, err := c.Policies(cmd.Context(), a[0])
					if err != nil {
						return err
					}
					return g.emit(ps, func(w *tabwriter.Writer) {
						fmt.Fprintln(w, "CHANNEL\tREQUIRE\tFROM\tMIN AGE\tSET\tBY")
						for _, p := range ps {
							printEsc(w, "%s\t%s\t%s\t%s\t%s\t%s\n", p.Channel, strings.Join(p.Require, ","), p.From, p.MinAge.String(), ts(p.Time), p.Actor)
						}
					})
				}
				if err := checkNames("channel", a[1]); err != nil {
					return err
				}
				h, err := c.PolicyHistory(cmd.Context(), a[0], a[1])
				if err != nil {
					return err
				}
				var cur *catalog.Policy
				if len(h) > 0 && !h[len(h)-1].Cleared {
					cur = &h[len(h)-1]
				}
				return g.emit(struct {
					Policy  *catalog.Policy  `json:"policy"`
					History []catalog.Policy `json:"history"`
				}{cur, append([]catalog.Policy{}, h...)}, func(w *tabwriter.Writer) {
					if cur == nil {
						printEsc(w, "%s %s: no policy\n", a[0], a[1])
					} else {
						printEsc(w, "%s %s needs: %s\n", a[0], a[1], cur.Describe())
					}
					if len(h) == 0 {
						return
					}
					fmt.Fprintln(w, "\n#\tTIME\tPOLICY\tACTOR\tREASON")
					for _, p := range h {
						what := p.Describe()
						if p.Cleared {
							what = "cleared"
						}
						printEsc(w, "%d\t%s\t%s\t%s\t%s\n", p.ID, ts(p.Time), what, p.Actor, p.Reason)
					}
				})
			})
		},
	}
}
