package main

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/strata-build/packer-plugin-strata/internal/bytesize"
	"github.com/strata-build/packer-plugin-strata/internal/storeroot"
	"github.com/strata-build/packer-plugin-strata/layer"
	"github.com/strata-build/packer-plugin-strata/pkgcache"
)

func cacheCmd(g *globals) *cobra.Command {
	var dir string
	open := func() (*pkgcache.Store, error) {
		if dir == "" {
			dir = storeroot.Layout{Root: g.store}.PackageCache()
		}
		// The builder's rules: the cache where the path leads, this
		// user's alone, its blob directory no link (prune deletes there).
		real, err := storeroot.Real(dir)
		if err != nil {
			return nil, fmt.Errorf("--dir: %w", err)
		}
		if _, err := os.Stat(real); err != nil {
			return nil, fmt.Errorf("no package cache at %s: %w", dir, err)
		}
		if err := storeroot.CheckTree(real, "blobs/sha256"); err != nil {
			return nil, fmt.Errorf("the package cache: %w", err)
		}
		return pkgcache.OpenStore(real)
	}
	cmd := &cobra.Command{
		Use:   "cache",
		Short: "The package cache: size, what builds took from it, snapshots; keep and prune",
		Args:  args(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := open()
			if err != nil {
				return err
			}
			files, bytes, err := s.Size()
			if err != nil {
				return err
			}
			us, err := s.Usages()
			if err != nil {
				return err
			}
			kept := s.Kept()
			type snap struct {
				ID       string    `json:"id"`
				Builds   int       `json:"builds"`
				LastUsed time.Time `json:"last_used"`
				Kept     bool      `json:"kept"`
				Releases []string  `json:"releases"`
			}
			type report struct {
				Dir       string         `json:"dir"`
				Files     int            `json:"files"`
				Bytes     int64          `json:"bytes"`
				Builds    int            `json:"builds"`
				Totals    pkgcache.Stats `json:"totals"`
				Snapshots []snap         `json:"snapshots"`
			}
			r := report{Dir: s.Dir(), Files: files, Bytes: bytes, Builds: len(us), Snapshots: []snap{}}
			byID := map[string]*snap{}
			for _, u := range us {
				r.Totals.Hits += u.Stats.Hits
				r.Totals.Misses += u.Stats.Misses
				r.Totals.Uncached += u.Stats.Uncached
				r.Totals.Upstream += u.Stats.Upstream
				r.Totals.Served += u.Stats.Served
				if len(u.Releases) == 0 {
					continue
				}
				sn, ok := byID[u.Snapshot]
				if !ok {
					sn = &snap{ID: u.Snapshot, Kept: kept[u.Snapshot], Releases: []string{}}
					for rel := range u.Releases {
						sn.Releases = append(sn.Releases, rel)
					}
					sort.Strings(sn.Releases)
					byID[u.Snapshot] = sn
				}
				sn.Builds++
				sn.LastUsed = u.Created
			}
			for _, sn := range byID {
				r.Snapshots = append(r.Snapshots, *sn)
			}
			sort.Slice(r.Snapshots, func(i, j int) bool { return r.Snapshots[i].LastUsed.After(r.Snapshots[j].LastUsed) })
			return g.emit(r, func(w *tabwriter.Writer) {
				fmt.Fprintf(w, "Cache:\t%s\n", r.Dir)
				fmt.Fprintf(w, "Size:\t%d files, %s\n", r.Files, bytesize.Human(r.Bytes))
				fmt.Fprintf(w, "Builds:\t%d: %d hits, %d misses, %s from upstream, %s served\n", r.Builds, r.Totals.Hits, r.Totals.Misses,
					bytesize.Human(r.Totals.Upstream), bytesize.Human(r.Totals.Served))
				if len(r.Snapshots) > 0 {
					fmt.Fprintln(w, "\nSNAPSHOT\tBUILDS\tLAST USED\tKEPT\tINRELEASE")
				}
				for _, sn := range r.Snapshots {
					k := ""
					if sn.Kept {
						k = "kept"
					}
					fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\n", layer.ShortDigest(sn.ID), sn.Builds, ts(sn.LastUsed), k, esc(strings.Join(sn.Releases, " ")))
				}
			})
		},
	}
	cmd.PersistentFlags().StringVar(&dir, "dir", "", "the cache (default <store>/cache/apt)")

	keep := &cobra.Command{
		Use:   "keep SNAPSHOT",
		Short: "Keep a snapshot: prune never removes a file it needs",
		Args:  args(1, "a snapshot ID (as strata cache lists it, or artifact.json's package_snapshot.id)"),
		RunE: func(cmd *cobra.Command, a []string) error {
			s, err := open()
			if err != nil {
				return err
			}
			id := a[0]
			if !strings.HasPrefix(id, "sha256:") {
				id = "sha256:" + id
			}
			if us, _ := s.Usages(); len(id) < 71 {
				for _, u := range us {
					if strings.HasPrefix(u.Snapshot, id) {
						id = u.Snapshot
						break
					}
				}
			}
			if err := s.Keep(id); err != nil {
				return err
			}
			return g.emit(map[string]string{"kept": id}, func(w *tabwriter.Writer) { fmt.Fprintf(w, "kept %s\n", id) })
		},
	}
	var unused time.Duration
	var dryRun, force bool
	prune := &cobra.Command{
		Use:   "prune --unused-for DURATION",
		Short: "Remove the files no build used for that long and no kept snapshot needs",
		Args:  args(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("unused-for") {
				return usageError{fmt.Errorf("--unused-for is required, such as --unused-for 720h (30 days)")}
			}
			if err := safetyWindow("unused-for", unused, force || dryRun); err != nil {
				return err
			}
			s, err := open()
			if err != nil {
				return err
			}
			res, err := s.Prune(unused, dryRun)
			if err != nil {
				return err
			}
			return g.emit(res, func(w *tabwriter.Writer) {
				verb := "removed"
				if dryRun {
					verb = "would remove"
				}
				fmt.Fprintf(w, "%s %d files, %d shared index sets and %d image binary caches (%s) and %d usage records; %d files stay for kept snapshots\n", verb, res.Files, res.IndexSets, res.ImageCaches, bytesize.Human(res.Bytes), res.Usages, res.Kept)
			})
		},
	}
	prune.Flags().DurationVar(&unused, "unused-for", 0, "remove what no build used for this long (720h = 30 days)")
	prune.Flags().BoolVar(&dryRun, "dry-run", false, "only say what would go")
	prune.Flags().BoolVar(&force, "force", false, "allow --unused-for 0 (remove every file no kept snapshot needs)")
	cmd.AddCommand(keep, prune)
	return cmd
}
