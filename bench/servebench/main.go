// Command servebench measures strata serve: N concurrent pollers on the
// channel endpoint (with If-None-Match, so most answers are 304, while a
// mover moves the channel twice a second) and on the lineage page, p50/p99
// latency and requests/s, on SQLite and a throwaway PostgreSQL, against
// the CLI answering the same questions (process start included). It runs
// the real strata binary (-strata) and prints one table.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"bufio"
	"crypto/sha256"

	"github.com/strata-build/packer-plugin-strata/catalog"
	"github.com/strata-build/packer-plugin-strata/catalog/postgres/pgtest"

	_ "github.com/strata-build/packer-plugin-strata/catalog/postgres"
	_ "github.com/strata-build/packer-plugin-strata/catalog/sqlite"
)

var (
	strata   = flag.String("strata", "bin/strata", "the strata binary")
	pollers  = flag.Int("n", 32, "concurrent HTTP pollers")
	cliN     = flag.Int("cli-n", 2, "concurrent CLI processes")
	duration = flag.Duration("d", 5*time.Second, "how long each measurement runs")
	versions = flag.Int("versions", 100, "versions of each image (base-os, runtime, app)")
)

func main() {
	flag.Parse()
	dir, err := os.MkdirTemp("", "strata-servebench-")
	must(err)
	defer os.RemoveAll(dir)
	backends := [][2]string{{"sqlite", "sqlite://" + filepath.Join(dir, "catalog.db")}}
	if srv, err := pgtest.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "no PostgreSQL, SQLite only:", err)
	} else {
		defer srv.Stop()
		u, err := srv.URL("bench")
		must(err)
		backends = append(backends, [2]string{"postgres", u})
	}
	var rows []row
	for _, b := range backends {
		fmt.Fprintf(os.Stderr, "%s: filling ...\n", b[0])
		secret, lineageOf := fill(b[1])
		rows = append(rows, measure(b[0], b[1], secret, lineageOf)...)
	}
	fmt.Printf("\n## strata serve: %d pollers for %s each; the CLI with %d processes at once (%d versions of each of 3 images)\n", *pollers, *duration, *cliN, *versions)
	fmt.Printf("| %-9s | %-52s | %9s | %9s | %9s | %7s |\n", "backend", "what", "req/s", "p50 ms", "p99 ms", "304 %")
	fmt.Printf("|%s|%s|%s|%s|%s|%s|\n", strings.Repeat("-", 11), strings.Repeat("-", 54), strings.Repeat("-", 11), strings.Repeat("-", 11), strings.Repeat("-", 11), strings.Repeat("-", 9))
	for _, r := range rows {
		pct := "-"
		if r.n304 >= 0 {
			pct = fmt.Sprintf("%.1f", 100*float64(r.n304)/float64(max(r.n, 1)))
		}
		fmt.Printf("| %-9s | %-52s | %9.0f | %9.2f | %9.2f | %7s |\n", r.backend, r.what, r.rate, ms(r.p50), ms(r.p99), pct)
	}
}

type row struct {
	backend, what string
	rate          float64
	p50, p99      time.Duration
	n, n304       int
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "servebench:", err)
		os.Exit(1)
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// fill registers base-os → runtime → app versions with lineage, channel
// history on each, and an admin token; it returns the token's secret and
// the base-os version whose lineage the pollers ask for.
func fill(url string) (string, string) {
	ctx := context.Background()
	c, err := catalog.Open(url)
	must(err)
	defer c.Close()
	c.ContentExists = func(*catalog.Version) bool { return true }
	dig := func(s string) string { return fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(s))) }
	var parents []string
	for _, img := range []string{"base-os", "runtime", "app"} {
		var ids []string
		for i := 0; i < *versions; i++ {
			v := &catalog.Version{Image: img, Version: fmt.Sprintf("1.%d", i), ImageID: dig(fmt.Sprint(img, i)),
				Packages: []catalog.Package{{Name: "bash", Version: fmt.Sprint(i)}, {Name: "curl", Version: "7"}}}
			if parents != nil {
				v.ParentID = parents[i/10*10%len(parents)]
			}
			_, err := c.Register(ctx, v, catalog.RegisterOptions{})
			must(err)
			ids = append(ids, v.ImageID)
			if i%5 == 0 {
				_, _, err = c.Promote(ctx, img, "production", v.Version, catalog.MoveOptions{Actor: "bench"})
				must(err)
			}
			_, _, err = c.Promote(ctx, img, "staging", v.Version, catalog.MoveOptions{Actor: "bench"})
			must(err)
		}
		parents = ids
	}
	secret, _, err := c.CreateToken(ctx, "bench", []string{"*:*"}, "bench")
	must(err)
	return secret, fmt.Sprintf("1.%d", (*versions-1)/10*10-10)
}

// serve starts strata serve on a free loopback port and returns its URL.
func serve(url string) (string, func()) {
	cmd := exec.Command(*strata, "--catalog", url, "serve", "--listen", "127.0.0.1:0", "--rate", "0", "--quiet")
	stderr, err := cmd.StderrPipe()
	must(err)
	must(cmd.Start())
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		if _, addr, ok := strings.Cut(sc.Text(), "listening on "); ok {
			go io.Copy(io.Discard, stderr)
			return addr, func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }
		}
	}
	must(fmt.Errorf("strata serve did not start"))
	return "", nil
}

func measure(backend, url, secret, lineageOf string) []row {
	base, stop := serve(url)
	defer stop()
	var out []row
	// A mover: the channel changes twice a second, so pollers see 200s too.
	moverCtx, cancel := context.WithCancel(context.Background())
	go func() {
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for i := 0; ; i++ {
			select {
			case <-moverCtx.Done():
				return
			case <-t.C:
			}
			path, body := "/v1/images/base-os/channels/production/rollback", `{"reason":"bench"}`
			if i%2 == 1 {
				path, body = "/v1/images/base-os/channels/production/promote", `{"from":"staging","reason":"bench"}`
			}
			req, _ := http.NewRequest("POST", base+path, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+secret)
			if res, err := http.DefaultClient.Do(req); err == nil {
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
			}
		}
	}()
	fmt.Fprintf(os.Stderr, "%s: pollers on the channel ...\n", backend)
	out = append(out, poll(backend, "GET /v1/images/base-os/channels/production (ETag)", base+"/v1/images/base-os/channels/production", true))
	cancel()
	fmt.Fprintf(os.Stderr, "%s: pollers on the lineage page ...\n", backend)
	out = append(out, poll(backend, "GET lineage page of base-os@"+lineageOf+" (SVG)", base+"/images/base-os/versions/"+lineageOf+"/lineage", false))
	fmt.Fprintf(os.Stderr, "%s: the CLI ...\n", backend)
	out = append(out, cli(backend, "strata channels base-os --json (a process each)", url, "--json", "channels", "base-os"))
	out = append(out, cli(backend, "strata lineage base-os@"+lineageOf+" --json", url, "--json", "lineage", "base-os@"+lineageOf))
	return out
}

// poll runs the pollers for the duration and sums their latencies.
func poll(backend, what, url string, etag bool) row {
	tr := &http.Transport{MaxIdleConnsPerHost: *pollers}
	client := &http.Client{Transport: tr}
	defer tr.CloseIdleConnections()
	var mu sync.Mutex
	var lat []time.Duration
	var n304, errs atomic.Int64
	deadline := time.Now().Add(*duration)
	var wg sync.WaitGroup
	for i := 0; i < *pollers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tag := ""
			var mine []time.Duration
			for time.Now().Before(deadline) {
				req, _ := http.NewRequest("GET", url, nil)
				if etag && tag != "" {
					req.Header.Set("If-None-Match", tag)
				}
				t0 := time.Now()
				res, err := client.Do(req)
				if err != nil {
					errs.Add(1)
					continue
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				mine = append(mine, time.Since(t0))
				switch res.StatusCode {
				case 200:
					tag = res.Header.Get("ETag")
				case 304:
					n304.Add(1)
				default:
					errs.Add(1)
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if errs.Load() > 0 {
		fmt.Fprintf(os.Stderr, "%s %s: %d errors\n", backend, what, errs.Load())
	}
	r := summarize(backend, what, lat)
	if etag {
		r.n304 = int(n304.Load())
	}
	return r
}

// cli runs strata processes, cliN at a time, for the duration.
func cli(backend, what, url string, args ...string) row {
	var mu sync.Mutex
	var lat []time.Duration
	deadline := time.Now().Add(*duration)
	var wg sync.WaitGroup
	for i := 0; i < *cliN; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				t0 := time.Now()
				out, err := exec.Command(*strata, append([]string{"--catalog", url}, args...)...).CombinedOutput()
				if err != nil {
					must(fmt.Errorf("%s: %v\n%s", what, err, out))
				}
				mu.Lock()
				lat = append(lat, time.Since(t0))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return summarize(backend, what, lat)
}

func summarize(backend, what string, lat []time.Duration) row {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	r := row{backend: backend, what: what, n: len(lat), n304: -1, rate: float64(len(lat)) / duration.Seconds()}
	if len(lat) > 0 {
		r.p50 = lat[len(lat)/2]
		r.p99 = lat[min(len(lat)-1, len(lat)*99/100)]
	}
	return r
}
