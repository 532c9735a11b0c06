// Command testtimes reads `go test -json` on stdin and prints what `go test`
// would (a line per package, the whole output of what failed), then the
// slowest tests, so that every CI run says where the suite's time goes.
// It exits 1 when anything failed.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action     string
	Package    string
	Test       string
	Elapsed    float64
	Output     string
	ImportPath string // build events
}

type key struct{ pkg, test string }

func main() {
	failed, err := summarize(os.Stdin, os.Stdout, 15)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testtimes:", err)
		os.Exit(2)
	}
	if failed {
		os.Exit(1)
	}
}

// summarize copies the verdicts from r to w and lists the n slowest tests.
func summarize(r io.Reader, w io.Writer, n int) (failed bool, err error) {
	output := map[key][]string{} // a test's (or a package's, test "") output so far
	build := map[string][]string{}
	type timing struct {
		key
		secs float64
	}
	var times []timing
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if json.Unmarshal(line, &e) != nil {
			fmt.Fprintf(w, "%s\n", line) // not test2json: pass it on
			continue
		}
		k := key{e.Package, e.Test}
		switch e.Action {
		case "build-output":
			build[e.ImportPath] = append(build[e.ImportPath], e.Output)
		case "build-fail":
			failed = true
			fmt.Fprint(w, strings.Join(build[e.ImportPath], ""))
		case "output":
			output[k] = append(output[k], e.Output)
		case "pass", "skip":
			if e.Test == "" {
				// The package's own summary line ("ok  pkg 1.2s").
				fmt.Fprint(w, lastLine(output[k]))
			} else if e.Action == "pass" && !strings.Contains(e.Test, "/") {
				times = append(times, timing{k, e.Elapsed})
			}
			delete(output, k)
		case "fail":
			failed = true
			if e.Test == "" {
				fmt.Fprint(w, strings.Join(output[k], ""))
			} else {
				// The package's output holds it too, printed at its end;
				// keep it there only.
				output[key{e.Package, ""}] = append(output[key{e.Package, ""}], output[k]...)
				if !strings.Contains(e.Test, "/") {
					times = append(times, timing{k, e.Elapsed})
				}
			}
			delete(output, k)
		}
	}
	if err := sc.Err(); err != nil {
		return true, err
	}
	sort.Slice(times, func(i, j int) bool { return times[i].secs > times[j].secs })
	if len(times) > n {
		times = times[:n]
	}
	if len(times) > 0 {
		fmt.Fprintf(w, "\nslowest tests:\n")
		for _, t := range times {
			fmt.Fprintf(w, "%8.1fs  %s  %s\n", t.secs, t.test, strings.TrimPrefix(t.pkg, "github.com/strata-build/packer-plugin-strata/"))
		}
	}
	return failed, nil
}

// lastLine is the package's verdict line: the last line it printed.
func lastLine(out []string) string {
	for i := len(out) - 1; i >= 0; i-- {
		if strings.TrimSpace(out[i]) != "" {
			return out[i]
		}
	}
	return ""
}
