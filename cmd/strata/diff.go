package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/strata-build/packer-plugin-strata/catalog"
	"github.com/strata-build/packer-plugin-strata/layer"
)

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
			with := g.withCatalog
			if n1 == n2 {
				with = func(fn func(*catalog.Catalog) error) error { return g.withImage(cmd.Context(), n1, "", fn) }
			}
			return with(func(c *catalog.Catalog) error {
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
						printEsc(w, "+ package\t%s\t%s\n", ch.Name, ch.To)
					}
					for _, ch := range d.PackagesRemoved {
						printEsc(w, "- package\t%s\t%s\n", ch.Name, ch.From)
					}
					for _, ch := range d.PackagesChanged {
						printEsc(w, "~ package\t%s\t%s -> %s\n", ch.Name, ch.From, ch.To)
					}
					for _, ch := range d.LabelsChanged {
						printEsc(w, "~ label\t%s\t\"%s\" -> \"%s\"\n", ch.Name, ch.From, ch.To)
					}
					for _, ch := range d.ArtifactsChanged {
						printEsc(w, "~ artifact\t%s\t%s -> %s\n", ch.Name, layer.ShortDigest(ch.From), layer.ShortDigest(ch.To))
					}
				})
			})
		},
	}
}
