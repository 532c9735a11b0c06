package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/strata-build/packer-plugin-strata/export"
	"github.com/strata-build/packer-plugin-strata/internal/storeroot"
	"github.com/strata-build/packer-plugin-strata/layer"
)

func layersCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "layers",
		Short: "List the layers in the store: size, entries, and the images that use each",
		Args:  args(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			store, err := g.layerStore()
			if err != nil {
				return err
			}
			ls, err := store.Layers()
			if err != nil {
				return err
			}
			return g.emit(ls, func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "LAYER\tSIZE\tENTRIES\tIMAGES\tCREATED")
				var total int64
				for _, l := range ls {
					total += l.Size
					fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%s\n", short(l.DiffID), export.HumanBytes(l.Size), l.Entries, len(l.Images), ts(l.Created))
				}
				fmt.Fprintf(w, "%d layers, %s\n", len(ls), export.HumanBytes(total))
			})
		},
	}
}

// layerStore opens the store's layers.
func (g *globals) layerStore() (*layer.Store, error) {
	return layer.Open(storeroot.Layout{Root: g.store}.Layers())
}
