package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/strata-build/packer-plugin-strata/export"
	"github.com/strata-build/packer-plugin-strata/internal/storeroot"
	"github.com/strata-build/packer-plugin-strata/layer"
)

func verifyCmd(g *globals) *cobra.Command {
	var layers bool
	cmd := &cobra.Command{
		Use:   "verify [DIR] [--layers]",
		Short: "Check a strata-chroot output directory (every output and every file artifact.json names, against it) and, with --layers, every layer and image in the store",
		Args: func(cmd *cobra.Command, a []string) error {
			if len(a) > 1 || (len(a) == 0 && !layers) {
				return usageError{fmt.Errorf("verify takes an output directory, --layers or both (%s)", cmd.UseLine())}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, a []string) error {
			if len(a) == 1 {
				// With --layers too, the store's report is the one printed.
				if err := verifyOutputDir(cmd, g, a[0], !layers); err != nil {
					return err
				}
			}
			if !layers {
				return nil
			}
			return verifyStore(cmd, g)
		},
	}
	cmd.Flags().BoolVar(&layers, "layers", false, "re-read every layer of the store and check it against its diffID, and every image against its ID (costs one read of the store)")
	return cmd
}

// verifyOutputDir checks an output directory and, when report is set,
// prints what it checked.
func verifyOutputDir(cmd *cobra.Command, g *globals, arg string, report bool) error {
	dir, err := filepath.Abs(arg)
	if err != nil {
		return err
	}
	m, err := export.ReadManifest(dir)
	if err != nil {
		return usageError{err}
	}
	if err := export.VerifyOutputs(cmd.Context(), dir, m); err != nil {
		return err
	}
	if !report {
		return nil
	}
	type result struct {
		Format string `json:"format"`
		Path   string `json:"path"`
		SHA256 string `json:"sha256"`
		OK     bool   `json:"ok"`
	}
	rows := []result{}
	for _, o := range m.Outputs {
		rows = append(rows, result{o.Format, o.Path, o.SHA256, true})
	}
	for _, f := range m.Files {
		rows = append(rows, result{"file", filepath.Join(dir, f.Name), f.SHA256, true})
	}
	return g.emit(rows, func(w *tabwriter.Writer) {
		for _, r := range rows {
			fmt.Fprintf(w, "%s\t%s\tOK (sha256 %s)\n", r.Format, filepath.Base(r.Path), layer.ShortDigest(r.SHA256))
		}
		fmt.Fprintf(w, "%s: every output matches %s, and so does every file it names\n", dir, export.ManifestName)
	})
}

// verifyStore checks every layer against its diffID and every image against
// its ID and its layers; any damage fails the command after the report.
func verifyStore(cmd *cobra.Command, g *globals) error {
	store, err := layer.OpenExisting(storeroot.Layout{Root: g.store}.Layers())
	if err != nil {
		return usageError{err}
	}
	type result struct {
		Kind  string `json:"kind"` // layer or image
		ID    string `json:"id"`
		OK    bool   `json:"ok"`
		Error string `json:"error,omitempty"`
	}
	rows := []result{}
	var damaged []string
	add := func(kind, id string, err error) {
		r := result{Kind: kind, ID: id, OK: err == nil}
		if err != nil {
			r.Error = err.Error()
			damaged = append(damaged, kind+" "+id)
		}
		rows = append(rows, r)
	}
	ls, err := store.Layers()
	if err != nil {
		return err
	}
	for _, l := range ls {
		add("layer", l.DiffID, store.VerifyLayer(cmd.Context(), l.Layer))
	}
	imgs, err := store.Images() // each read checks its config against its ID
	if err != nil {
		return err
	}
	for _, img := range imgs {
		add("image", img.ID, store.Complete(img))
	}
	if err := g.emit(rows, func(w *tabwriter.Writer) {
		for _, r := range rows {
			state := "OK"
			if !r.OK {
				state = "DAMAGED: " + r.Error
			}
			fmt.Fprintf(w, "%s\t%s\t%s\n", r.Kind, layer.ShortDigest(r.ID), state)
		}
		fmt.Fprintf(w, "%d layer(s) and %d image(s) checked, %d damaged\n", len(ls), len(imgs), len(damaged))
	}); err != nil {
		return err
	}
	if len(damaged) > 0 {
		return fmt.Errorf("%w: %s (in %s)", layer.ErrDamaged, strings.Join(damaged, ", "), store.Root())
	}
	return nil
}
