package main

import (
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/strata-build/packer-plugin-strata/internal/bytesize"
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
					fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%s\n", layer.ShortDigest(l.DiffID), bytesize.Human(l.Size), l.Entries, len(l.Images), ts(l.Created))
				}
				fmt.Fprintf(w, "%d layers, %s\n", len(ls), bytesize.Human(total))
			})
		},
	}
}

// layerStore opens the store's layers, after checkStore.
func (g *globals) layerStore() (*layer.Store, error) {
	if err := g.checkStore(); err != nil {
		return nil, err
	}
	return layer.Open(storeroot.Layout{Root: g.store}.Layers())
}

// checkStore applies the builder's rules to --store before a command reads
// or deletes in it: the path is replaced by where it leads
// (storeroot.Real), and a store that exists must be this user's and closed
// to others, its layers and work dirs real directories of this user too.
// As root, the CLI would otherwise follow another user's links and delete
// where that user chose.
func (g *globals) checkStore() error {
	real, err := storeroot.Real(g.store)
	if err != nil {
		return fmt.Errorf("--store: %w", err)
	}
	g.store = real
	if _, err := os.Lstat(real); err != nil {
		return nil // nothing there: the command says so in its own words
	}
	l := storeroot.Layout{Root: real}
	if err := storeroot.CheckTree(real, filepath.Base(l.Layers()), filepath.Base(l.Work())); err != nil {
		return fmt.Errorf("--store: %w", err)
	}
	return nil
}
