package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/user"
	"reflect"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/strata-build/packer-plugin-strata/catalog"
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
	}
	root.PersistentFlags().StringVar(&g.catalogURL, "catalog", catalog.DefaultURL(), "catalog URL: sqlite:///path/catalog.db or postgres://... (default $STRATA_CATALOG)")
	store, _ := storeroot.Resolve("")
	root.PersistentFlags().StringVar(&g.store, "store", store, "the store root (default $STRATA_HOME or /var/lib/strata)")
	root.PersistentFlags().BoolVar(&g.json, "json", false, "print JSON instead of tables")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(
		imagesCmd(g), versionsCmd(g), showCmd(g), channelsCmd(g), registerCmd(g),
		promoteCmd(g), rollbackCmd(g), historyCmd(g), revokeCmd(g, true), revokeCmd(g, false),
		lineageCmd(g), diffCmd(g), gcCmd(g), verifyCmd(g), layersCmd(g), exportCmd(g), cacheCmd(g),
	)
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

// open opens the catalog; a version's content counts as there when its
// files are, or its image is complete in this host's layer store.
func (g *globals) open() (*catalog.Catalog, error) {
	c, err := catalog.Open(g.catalogURL)
	if err != nil {
		return nil, err
	}
	if g.store != "" {
		c.ContentExists = catalog.ContentInStore(storeroot.Layout{Root: g.store}.Layers())
	}
	return c, nil
}

// withCatalog opens the catalog for one command.
func (g *globals) withCatalog(fn func(c *catalog.Catalog) error) error {
	c, err := g.open()
	if err != nil {
		return err
	}
	defer c.Close()
	return fn(c)
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

// splitRef parses NAME@VERSION.
func splitRef(ref string) (string, string, error) {
	name, version, ok := strings.Cut(ref, "@")
	if !ok || name == "" || version == "" {
		return "", "", usageError{fmt.Errorf("%q is not NAME@VERSION", ref)}
	}
	return name, version, nil
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

func short(d string) string {
	d = strings.TrimPrefix(d, "sha256:")
	if len(d) > 12 {
		return d[:12]
	}
	return d
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
