package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"reflect"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/strata-build/packer-plugin-strata/catalog"
	"github.com/strata-build/packer-plugin-strata/internal/hint"
	"github.com/strata-build/packer-plugin-strata/internal/storeroot"
)

// globals are the flags every command shares.
type globals struct {
	catalogURL string
	store      string
	json       bool
	out        io.Writer
}

func newRoot() *cobra.Command {
	g := &globals{out: os.Stdout}
	root := &cobra.Command{
		Use:           "strata",
		Short:         "The Strata image catalog: versions, channels, promotion, rollback, revocation, lineage",
		SilenceUsage:  true,
		SilenceErrors: true,
		// Without a command, strata is a usage error (exit 2), not help
		// that exits 0 and lets a CI job go on.
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SetOut(os.Stderr)
			cmd.Usage()
			return usageError{errors.New("no command given; strata --help lists the commands")}
		},
	}
	root.PersistentFlags().StringVar(&g.catalogURL, "catalog", catalog.DefaultURL(), "catalog URL: sqlite:///path/catalog.db or postgres://... (default $STRATA_CATALOG)")
	store, _ := storeroot.Resolve("")
	root.PersistentFlags().StringVar(&g.store, "store", store, "the store root (default $STRATA_HOME or /var/lib/strata)")
	root.PersistentFlags().BoolVar(&g.json, "json", false, "print JSON instead of tables")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(
		imagesCmd(g), versionsCmd(g), showCmd(g), channelsCmd(g), registerCmd(g),
		promoteCmd(g), rollbackCmd(g), historyCmd(g), revokeCmd(g, true), revokeCmd(g, false),
		lineageCmd(g), diffCmd(g), gcCmd(g), verifyCmd(g), layersCmd(g), exportCmd(g), cacheCmd(g), bootCmd(g),
		evidenceCmd(g), policyCmd(g), pushCmd(g), pullCmd(g),
	)
	root.AddCommand(serveCmd(g), tokenCmd(g)) // strata serve and its tokens
	return root
}

// args checks the number of positional arguments with a usage error.
func args(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if len(a) != n {
			return usageError{fmt.Errorf("%s takes %s (%s)", cmd.Name(), names, cmd.UseLine())}
		}
		return nil
	}
}

// open opens the catalog, which must exist (only register creates one); a
// version's content counts as there when its files are, or its image is
// complete in this host's layer store.
func (g *globals) open() (*catalog.Catalog, error) { return g.openCatalog(catalog.OpenExisting) }

// openCatalog opens the catalog with open (catalog.Open or OpenExisting).
func (g *globals) openCatalog(open func(string) (*catalog.Catalog, error)) (*catalog.Catalog, error) {
	c, err := open(g.catalogURL)
	if errors.Is(err, catalog.ErrNoCatalog) {
		return nil, hint.With(err, catalog.NoCatalogAdvice)
	}
	if err != nil {
		return nil, err
	}
	if g.store != "" {
		c.ContentExists = catalog.ContentInStore(storeroot.Layout{Root: g.store}.Layers())
	}
	return c, nil
}

// withCatalog opens the existing catalog for one command.
func (g *globals) withCatalog(fn func(c *catalog.Catalog) error) error {
	c, err := g.open()
	if err != nil {
		return err
	}
	defer c.Close()
	return fn(c)
}

// withImage is withCatalog for a command about one image (and channel, ""
// when none): its error gets a hint, a strata command that shows what
// there is to pick from.
func (g *globals) withImage(ctx context.Context, name, channel string, fn func(c *catalog.Catalog) error) error {
	return g.withCatalog(func(c *catalog.Catalog) error {
		err := fn(c)
		switch {
		case err == nil || hint.Of(err) != "":
			return err
		case errors.Is(err, catalog.ErrNoRollback):
			return hint.With(err, hint.History(name, channel))
		case errors.Is(err, catalog.ErrRevoked):
			return hint.With(err, hint.Versions(name))
		case errors.Is(err, catalog.ErrNotFound):
			if _, verr := c.Versions(ctx, name); verr != nil {
				return hint.With(err, hint.Images())
			}
			if channel != "" {
				if chs, cerr := c.Channels(ctx, name); cerr == nil && len(chs) > 0 {
					return hint.With(err, hint.Channels(name))
				}
			}
			return hint.With(err, hint.Versions(name))
		}
		return err
	})
}

// safetyWindow checks a flag that keeps things from deletion (a duration
// or a count): negative is a usage error, and zero, which switches the
// window off, takes --force.
func safetyWindow[T int | time.Duration](flag string, v T, force bool) error {
	switch {
	case v < 0:
		return usageError{fmt.Errorf("--%s %v: a safety window can't be negative", flag, v)}
	case v == 0 && !force:
		return usageError{fmt.Errorf("--%s 0 switches its safety window off; add --force if that is what you mean", flag)}
	}
	return nil
}

// emit prints v as JSON, or calls table for people.
func (g *globals) emit(v interface{}, table func(w *tabwriter.Writer)) error {
	if g.json {
		// A list with nothing in it is [] for machines, not null.
		if rv := reflect.ValueOf(v); rv.Kind() == reflect.Slice && rv.IsNil() {
			v = []struct{}{}
		}
		enc := json.NewEncoder(g.out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	w := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
	table(w)
	return w.Flush()
}

// splitRef parses NAME@VERSION: anything that can't be one (a bad name or
// version syntax) is a usage error, not "not found".
func splitRef(ref string) (string, string, error) {
	name, version, ok := strings.Cut(ref, "@")
	if !ok || name == "" || version == "" {
		return "", "", usageError{fmt.Errorf("%q is not NAME@VERSION", ref)}
	}
	if err := catalog.ValidName("image", name); err != nil {
		return "", "", usageError{fmt.Errorf("%q is not NAME@VERSION: %w", ref, err)}
	}
	if err := catalog.CheckText(&catalog.Version{Version: version}); err != nil {
		return "", "", usageError{fmt.Errorf("%q is not NAME@VERSION: %w", ref, err)}
	}
	return name, version, nil
}

// checkNames checks image and channel names given as arguments.
func checkNames(kindsAndNames ...string) error {
	for i := 0; i+1 < len(kindsAndNames); i += 2 {
		if err := catalog.ValidName(kindsAndNames[i], kindsAndNames[i+1]); err != nil {
			return usageError{err}
		}
	}
	return nil
}

// defaultActor is who a channel move is recorded as: $STRATA_ACTOR, else user@host.
func defaultActor() string {
	if a := os.Getenv("STRATA_ACTOR"); a != "" {
		return a
	}
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return name + "@" + host
}

func ts(t interface{ Format(string) string }) string { return t.Format("2006-01-02 15:04:05Z") }

// printEsc prints one line of a table or message with format, every string
// argument passed through esc: text from the catalog (names, versions,
// reasons, even those written into the database by hand) can neither
// forge rows nor drive the terminal. The format's own tabs and newlines
// are the table's.
func printEsc(w io.Writer, format string, a ...interface{}) {
	for i, x := range a {
		switch v := x.(type) {
		case string:
			a[i] = esc(v)
		case []string:
			q := make([]string, len(v))
			for j, e := range v {
				q[j] = esc(e)
			}
			a[i] = q
		case error:
			a[i] = esc(v.Error())
		}
	}
	fmt.Fprintf(w, format, a...)
}

// esc makes free text from the catalog safe to print in a table: control
// characters (tabs and newlines that would forge columns and rows, terminal
// escapes) are shown escaped, as Go writes them.
func esc(s string) string {
	clean := true
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	q := strconv.QuoteToGraphic(s)
	return q[1 : len(q)-1]
}
