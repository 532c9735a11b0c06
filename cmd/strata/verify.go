package main

import (
	"fmt"
	"path/filepath"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/strata-build/packer-plugin-strata/export"
)

func verifyCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "verify DIR",
		Short: "Check a strata-chroot output directory: every output against artifact.json, and a dir output's tree digest",
		Args:  args(1, "an output directory"),
		RunE: func(cmd *cobra.Command, a []string) error {
			dir, err := filepath.Abs(a[0])
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
			return g.emit(rows, func(w *tabwriter.Writer) {
				for _, r := range rows {
					fmt.Fprintf(w, "%s\t%s\tOK (sha256 %s)\n", r.Format, filepath.Base(r.Path), short(r.SHA256))
				}
				fmt.Fprintf(w, "%s: every output matches %s\n", dir, export.ManifestName)
			})
		},
	}
}
