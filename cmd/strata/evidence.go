package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/strata-build/packer-plugin-strata/catalog"
	"github.com/strata-build/packer-plugin-strata/export"
	"github.com/strata-build/packer-plugin-strata/layer"
)

func evidenceCmd(g *globals) *cobra.Command {
	return groupCmd("evidence", "Record and list test evidence on versions (what channel policies require)",
		evidenceAddCmd(g), evidenceListCmd(g))
}

// groupCmd is a command that only holds subcommands: without one it is a
// usage error that names them.
func groupCmd(use, short string, subs ...*cobra.Command) *cobra.Command {
	var names []string
	for _, s := range subs {
		names = append(names, s.Name())
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageError{fmt.Errorf("%s needs a subcommand: %s", use, strings.Join(names, ", "))}
		},
	}
	cmd.AddCommand(subs...)
	return cmd
}

func evidenceAddCmd(g *globals) *cobra.Command {
	var (
		e                      catalog.Evidence
		passed, failed         bool
		report, statement      string
		counts                 string
		source                 string
		passedTests, failedTst []string
	)
	cmd := &cobra.Command{
		Use:   "add NAME@VERSION --kind KIND --passed|--failed [--report FILE] [--counts P,F,S]",
		Short: "Record a test result on a version (from an external test system), with an in-toto statement",
		Args:  args(1, "NAME@VERSION"),
		RunE: func(cmd *cobra.Command, a []string) error {
			name, version, err := splitRef(a[0])
			if err != nil {
				return err
			}
			if passed == failed {
				return usageError{errors.New("say --passed or --failed (one of them)")}
			}
			e.Passed = passed
			if err := catalog.ValidName("evidence kind", e.Kind); err != nil {
				return usageError{fmt.Errorf("--kind: %w", err)}
			}
			if counts != "" {
				if e.Counts, err = parseCounts(counts); err != nil {
					return err
				}
			}
			e.Source = source
			return g.withImage(cmd.Context(), name, "", func(c *catalog.Catalog) error {
				v, err := c.Get(cmd.Context(), name, version)
				if err != nil {
					return err
				}
				if report != "" {
					abs, err := filepath.Abs(report)
					if err != nil {
						return err
					}
					sum, _, err := export.FileSHA256(abs)
					if err != nil {
						return usageError{fmt.Errorf("--report: %w", err)}
					}
					e.Report, e.ReportSHA256 = abs, sum
					if statement == "" {
						statement = abs + export.StatementSuffix
					}
				}
				e.Time = c.Now().UTC()
				wrote := ""
				if statement != "" {
					ex := e.ToExport()
					ex.PassedTests, ex.FailedTests = passedTests, failedTst
					st, err := export.TestStatement(v.Ref(), v.ImageID, ex)
					if err != nil {
						return err
					}
					if e.Statement, err = filepath.Abs(statement); err != nil {
						return err
					}
					if _, err := export.WriteStatement(e.Statement, st); err != nil {
						return err
					}
					wrote = e.Statement
				}
				rec, err := c.AddEvidence(cmd.Context(), name, version, e)
				if err != nil {
					if wrote != "" {
						os.Remove(wrote) // no statement about evidence the catalog did not take
					}
					return err
				}
				return g.emit(rec, func(w *tabwriter.Writer) {
					printEsc(w, "recorded %s evidence on %s: %s\n", rec.Kind, v.Ref(), passFail(rec.Passed))
					if rec.Statement != "" {
						printEsc(w, "in-toto statement: %s\n", rec.Statement)
					} else {
						printEsc(w, "no in-toto statement written (give --report or --statement FILE)\n")
					}
				})
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&e.Kind, "kind", "", "what was tested: tests, bootcheck, or your own name (required)")
	f.BoolVar(&passed, "passed", false, "the tests passed")
	f.BoolVar(&failed, "failed", false, "the tests failed")
	f.StringVar(&report, "report", "", "the report file (JUnit XML, JSON ...): its path and sha256 are recorded")
	f.StringVar(&statement, "statement", "", "where to write the in-toto statement (default REPORT.intoto.json beside --report)")
	f.StringVar(&counts, "counts", "", "tallies as PASSED,FAILED,SKIPPED, e.g. 41,0,2")
	f.Int64Var(&e.BootTimeMS, "boot-time-ms", 0, "the boot time, for evidence that booted the image")
	f.StringVar(&source, "source", catalog.SourceCLI, "what recorded it (e.g. the CI system's name)")
	f.StringVar(&e.Actor, "actor", defaultActor(), "who recorded it (default $STRATA_ACTOR or user@host)")
	f.StringSliceVar(&passedTests, "passed-test", nil, "a passed test's name, for the statement (repeatable)")
	f.StringSliceVar(&failedTst, "failed-test", nil, "a failed test's name, for the statement (repeatable)")
	cmd.MarkFlagRequired("kind")
	return cmd
}

func parseCounts(s string) (catalog.Counts, error) {
	parts := strings.Split(s, ",")
	var n [3]int
	if len(parts) != 3 {
		return catalog.Counts{}, usageError{fmt.Errorf("--counts %q: write PASSED,FAILED,SKIPPED, e.g. 41,0,2", s)}
	}
	for i, p := range parts {
		x, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || x < 0 {
			return catalog.Counts{}, usageError{fmt.Errorf("--counts %q: write PASSED,FAILED,SKIPPED as numbers, e.g. 41,0,2", s)}
		}
		n[i] = x
	}
	return catalog.Counts{Passed: n[0], Failed: n[1], Skipped: n[2]}, nil
}

func evidenceListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list NAME@VERSION",
		Short: "List a version's evidence, oldest first",
		Args:  args(1, "NAME@VERSION"),
		RunE: g.onVersion(func(ctx context.Context, c *catalog.Catalog, name, version string) error {
			ev, err := c.EvidenceOf(ctx, name, version)
			if err != nil {
				return err
			}
			return g.emit(ev, func(w *tabwriter.Writer) { evidenceTable(w, ev) })
		}),
	}
}

func evidenceTable(w *tabwriter.Writer, ev []catalog.Evidence) {
	fmt.Fprintln(w, "KIND\tRESULT\tTIME\tPASSED/FAILED/SKIPPED\tBOOT\tSOURCE\tREPORT")
	for _, e := range ev {
		boot := ""
		if e.BootTimeMS > 0 {
			boot = fmt.Sprintf("%dms", e.BootTimeMS)
		}
		rep := e.Report
		if e.ReportSHA256 != "" {
			rep += " (sha256 " + layer.ShortDigest(e.ReportSHA256) + ")"
		}
		printEsc(w, "%s\t%s\t%s\t%d/%d/%d\t%s\t%s\t%s\n", e.Kind, passFail(e.Passed), ts(e.Time), e.Counts.Passed, e.Counts.Failed, e.Counts.Skipped, boot, e.Source, rep)
	}
}

func passFail(passed bool) string {
	if passed {
		return "passed"
	}
	return "FAILED"
}
