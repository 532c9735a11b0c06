// Command catalogbench measures the catalog on 10,000 versions of one image,
// on SQLite and on a throwaway PostgreSQL: promote and rollback latency
// (p50/p99) and listing every version. It prints one table.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/strata-build/packer-plugin-strata/catalog"
	"github.com/strata-build/packer-plugin-strata/catalog/postgres"
	"github.com/strata-build/packer-plugin-strata/catalog/postgres/pgtest"
	"github.com/strata-build/packer-plugin-strata/catalog/sqlite"
)

var (
	versions = flag.Int("versions", 10000, "versions of the image")
	moves    = flag.Int("moves", 500, "promote+rollback pairs to time")
	lists    = flag.Int("lists", 30, "times to list every version")
)

func main() {
	flag.Parse()
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "strata-catalogbench-")
	must(err)
	defer os.RemoveAll(dir)

	var rows []row
	s, err := sqlite.Open(filepath.Join(dir, "catalog.db"))
	must(err)
	rows = append(rows, measure(ctx, "sqlite", catalog.New(s))...)

	srv, err := pgtest.Start()
	must(err)
	defer srv.Stop()
	url, err := srv.URL("bench")
	must(err)
	p, err := postgres.Open(url)
	must(err)
	rows = append(rows, measure(ctx, "postgres", catalog.New(p))...)

	fmt.Printf("\n## catalog with %d versions of one image (%d promote+rollback pairs, %d listings)\n", *versions, *moves, *lists)
	fmt.Printf("| %-9s | %-22s | %9s | %9s | %9s |\n", "backend", "operation", "p50 ms", "p99 ms", "max ms")
	fmt.Printf("|%s|%s|%s|%s|%s|\n", strings.Repeat("-", 11), strings.Repeat("-", 24), strings.Repeat("-", 11), strings.Repeat("-", 11), strings.Repeat("-", 11))
	for _, r := range rows {
		fmt.Printf("| %-9s | %-22s | %9.2f | %9.2f | %9.2f |\n", r.backend, r.op, ms(r.p50), ms(r.p99), ms(r.max))
	}
}

type row struct {
	backend, op   string
	p50, p99, max time.Duration
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "catalogbench:", err)
		os.Exit(1)
	}
}

// seed inserts the versions a thousand per transaction: seeding is not
// what is measured.
func seed(ctx context.Context, c *catalog.Catalog) {
	const batch = 1000
	for start := 0; start < *versions; start += batch {
		must(c.Store().Update(ctx, func(tx catalog.Tx) error {
			if err := tx.LockImage("bench"); err != nil {
				return err
			}
			for i := start; i < start+batch && i < *versions; i++ {
				v := &catalog.Version{
					Image: "bench", Version: fmt.Sprintf("1.0.%d", i), Seq: int64(i + 1),
					ImageID: fmt.Sprintf("sha256:%064x", i), Created: time.Now(),
					Labels:    map[string]string{"suite": "bookworm"},
					Artifacts: []catalog.Artifact{{Format: "tar.zst", Path: "/nonexistent", SHA256: strings.Repeat("0", 64)}},
					Packages:  []catalog.Package{{Name: "apt", Version: "2.6.1"}},
				}
				if err := tx.InsertVersion(v); err != nil {
					return err
				}
			}
			return nil
		}))
	}
}

func measure(ctx context.Context, backend string, c *catalog.Catalog) []row {
	defer c.Close()
	c.ContentExists = func(*catalog.Version) bool { return true }
	start := time.Now()
	seed(ctx, c)
	fmt.Fprintf(os.Stderr, "%s: seeded %d versions in %s\n", backend, *versions, time.Since(start).Round(time.Millisecond))

	var promote, rollback, list []time.Duration
	for i := 0; i < *moves; i++ {
		v := fmt.Sprintf("1.0.%d", (i*7919)%*versions)
		t := time.Now()
		_, _, err := c.Promote(ctx, "bench", "production", v, catalog.MoveOptions{Actor: "bench"})
		promote = append(promote, time.Since(t))
		must(err)
		if i == 0 {
			continue
		}
		t = time.Now()
		_, _, err = c.Rollback(ctx, "bench", "production", catalog.MoveOptions{Actor: "bench"})
		rollback = append(rollback, time.Since(t))
		must(err)
		// Forward again so the history keeps growing like a real channel's.
		_, _, err = c.Promote(ctx, "bench", "production", v, catalog.MoveOptions{Actor: "bench"})
		must(err)
	}
	for i := 0; i < *lists; i++ {
		t := time.Now()
		vs, err := c.Versions(ctx, "bench")
		list = append(list, time.Since(t))
		must(err)
		if len(vs) != *versions {
			must(fmt.Errorf("listed %d versions, want %d", len(vs), *versions))
		}
	}
	return []row{stats(backend, "promote", promote), stats(backend, "rollback", rollback), stats(backend, fmt.Sprintf("versions (%d)", *versions), list)}
}

func stats(backend, op string, d []time.Duration) row {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	pick := func(q float64) time.Duration { return d[int(q*float64(len(d)-1))] }
	return row{backend, op, pick(0.50), pick(0.99), d[len(d)-1]}
}
