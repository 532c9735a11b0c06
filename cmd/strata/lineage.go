package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/strata-build/packer-plugin-strata/catalog"
	"github.com/strata-build/packer-plugin-strata/layer"
)

func lineageCmd(g *globals) *cobra.Command {
	var outOfDate bool
	cmd := &cobra.Command{
		Use:   "lineage NAME@VERSION | lineage --out-of-date [NAME]",
		Short: "Show a version's ancestors and descendants, or which channel heads sit on an ancestor no channel holds",
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
							fmt.Fprintln(w, "every channel head is built on ancestors that a channel holds")
							return
						}
						fmt.Fprintln(w, "IMAGE\tCHANNEL\tVERSION\tBUILT ON\tSTALE ANCESTOR (OFF EVERY CHANNEL)\tITS CHANNELS NOW")
						for _, o := range ood {
							printEsc(w, "%s\t%s\t%s\t%s\t%s\t%s\n", o.Image, o.Channel, o.Version, strings.Join(o.Chain, " on "), o.Ancestor, strings.Join(o.AncestorChannels, " "))
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
			return g.withImage(cmd.Context(), name, "", func(c *catalog.Catalog) error {
				l, err := c.Lineage(cmd.Context(), name, version)
				if err != nil {
					return err
				}
				return g.emit(l, func(w *tabwriter.Writer) {
					for i := len(l.Ancestors) - 1; i >= 0; i-- {
						printEsc(w, "%s%s\t%s\n", strings.Repeat("  ", len(l.Ancestors)-1-i), l.Ancestors[i].Ref(), layer.ShortDigest(l.Ancestors[i].ImageID))
					}
					printEsc(w, "%s%s\t%s\t<- this\n", strings.Repeat("  ", len(l.Ancestors)), l.Version.Ref(), layer.ShortDigest(l.Version.ImageID))
					for _, d := range l.Descendants {
						printEsc(w, "%s%s\t%s\n", strings.Repeat("  ", len(l.Ancestors)+1), d.Ref(), layer.ShortDigest(d.ImageID))
					}
				})
			})
		},
	}
	cmd.Flags().BoolVar(&outOfDate, "out-of-date", false, "list channel heads whose parent, or any ancestor further up, is no longer on any channel of its image")
	return cmd
}
