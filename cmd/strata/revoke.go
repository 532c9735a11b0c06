package main

import (
	"context"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/strata-build/packer-plugin-strata/catalog"
	"github.com/strata-build/packer-plugin-strata/internal/hint"
)

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
		RunE: g.onVersion(func(ctx context.Context, c *catalog.Catalog, name, version string) error {
			f := c.Restore
			if revoke {
				f = c.Revoke
			}
			changed, err := f(ctx, name, version, opt)
			if err != nil {
				return err
			}
			held := []catalog.Channel{}
			if revoke {
				for _, v := range changed {
					chs, err := c.Channels(ctx, v.Image)
					if err != nil {
						return err
					}
					for _, ch := range chs {
						if ch.Version == v.Version {
							held = append(held, ch)
						}
					}
				}
			}
			return g.emit(struct {
				Changed      []*catalog.Version `json:"changed"`
				HeldChannels []catalog.Channel  `json:"channels_holding_revoked"`
			}{changed, held}, func(w *tabwriter.Writer) {
				verb := "restored"
				if revoke {
					verb = "revoked"
				}
				if len(changed) == 0 {
					printEsc(w, "nothing to do: %s@%s is already %s\n", name, version, verb)
				}
				for _, v := range changed {
					printEsc(w, "%s %s\n", verb, v.Ref())
				}
				for _, ch := range held {
					printEsc(w, "warning: channel %s of %s still holds revoked %s; run: %s\n", ch.Name, ch.Image, ch.Version, hint.Rollback(ch.Image, ch.Name))
				}
			})
		}),
	}
	if revoke {
		cmd.Flags().StringVar(&opt.Reason, "reason", "", "why (required)")
		cmd.Flags().StringVar(&opt.Actor, "actor", defaultActor(), "who, recorded on the version (default $STRATA_ACTOR or user@host)")
	}
	cmd.Flags().BoolVar(&opt.Descendants, "descendants", false, "also every version built on it, by lineage")
	return cmd
}
