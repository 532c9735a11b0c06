// Command table turns `go test -bench` output into a comparison table with
// each benchmark's time relative to the first one listed with "Pipe" (the
// tool a user would pick instead) or, without one, to the first line.
package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

type row struct {
	name string
	ns   float64
	mib  string
}

func main() {
	f, err := os.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer f.Close()
	var rows []row
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 || !strings.HasPrefix(fields[0], "Benchmark") {
			continue
		}
		r := row{name: strings.TrimPrefix(fields[0], "Benchmark")}
		if i := strings.LastIndexByte(r.name, '-'); i > 0 {
			r.name = r.name[:i]
		}
		for i := 2; i+1 < len(fields); i += 2 {
			switch fields[i+1] {
			case "ns/op":
				r.ns, _ = strconv.ParseFloat(fields[i], 64)
			case "MiB":
				r.mib = fields[i]
			}
		}
		rows = append(rows, r)
	}
	if len(rows) == 0 {
		fmt.Println("no benchmark results")
		return
	}
	base := rows[0]
	for _, r := range rows {
		if strings.Contains(r.name, "Pipe") {
			base = r
			break
		}
	}
	fmt.Printf("| %-32s | %9s | %7s | %8s |\n", "benchmark", "seconds", "ratio", "MiB")
	fmt.Printf("|%s|%s|%s|%s|\n", strings.Repeat("-", 34), strings.Repeat("-", 11), strings.Repeat("-", 9), strings.Repeat("-", 10))
	for _, r := range rows {
		fmt.Printf("| %-32s | %9.2f | %6.2fx | %8s |\n", r.name, r.ns/1e9, r.ns/base.ns, r.mib)
	}
}
