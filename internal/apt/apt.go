// Package apt runs apt-get non-interactively and reads its output for why
// it failed, naming the package.
package apt

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"sync"
)

// Get is apt-get run non-interactively: no prompts, no debconf
// questions, the packaged configuration files kept as they are, and a wait
// (not a failure) when something else holds dpkg's lock, as a fresh cloud
// machine's unattended-upgrades often does.
func Get(args ...string) string {
	return "env DEBIAN_FRONTEND=noninteractive APT_LISTCHANGES_FRONTEND=none NEEDRESTART_MODE=a " +
		"apt-get -y -q -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold " +
		strings.Join(args, " ")
}

var (
	unknownRe     = regexp.MustCompile(`(?m)^E: Unable to locate package (\S+)`)
	noCandidateRe = regexp.MustCompile(`(?m)^E: Package '([^']+)' has no installation candidate`)
	versionGoneRe = regexp.MustCompile(`(?m)^E: Version '([^']+)' for '([^']+)' was not found`)
	releaseGoneRe = regexp.MustCompile(`(?m)^E: Release '([^']+)' for '([^']+)' was not found`)
	unmetRe       = regexp.MustCompile(`(?m)^ ?(\S+) : ((?:Pre-)?Depends|Conflicts|Breaks): (.+)$`)
	essentialRe   = regexp.MustCompile(`(?m)^E: (Removing essential system-critical packages is not permitted|Essential packages were removed and -y was used without --allow-remove-essential)`)
	dueToRe       = regexp.MustCompile(`(\S+)( \(due to \S+\))?`)
	fetchRe       = regexp.MustCompile(`(?m)^E: Failed to fetch (\S+)\s+(.*)$`)
	errorLineRe   = regexp.MustCompile(`(?m)^E: (.+)$`)
)

// Problem is what went wrong in an apt-get run, read from its output,
// with the package it concerns.
type Problem struct {
	Package string
	Version string // for a version that is not available
	Kind    string // unknown, version, release, conflict, essential, fetch, other
	Detail  string
}

func (p Problem) String() string {
	switch p.Kind {
	case "unknown":
		return fmt.Sprintf("package %s is unknown: no configured apt source has it (check the name and the image's apt sources)", p.Package)
	case "version":
		return fmt.Sprintf("%s version %s is not available from the configured apt sources", p.Package, p.Version)
	case "release":
		return fmt.Sprintf("%s: release %s is not available from the configured apt sources", p.Package, p.Version)
	case "conflict":
		return fmt.Sprintf("dependency conflict: %s %s", p.Package, p.Detail)
	case "essential":
		return fmt.Sprintf("%s%s is Essential (or Protected); apt refuses to remove it", p.Package, p.Detail)
	case "fetch":
		return fmt.Sprintf("could not download %s: %s", p.Package, p.Detail)
	}
	return p.Detail
}

// Problems reads apt-get's output for the reasons it failed, most
// specific first.
func Problems(out string) []Problem {
	var ps []Problem
	for _, m := range unknownRe.FindAllStringSubmatch(out, -1) {
		ps = append(ps, Problem{Package: m[1], Kind: "unknown"})
	}
	for _, m := range noCandidateRe.FindAllStringSubmatch(out, -1) {
		ps = append(ps, Problem{Package: m[1], Kind: "unknown"})
	}
	for _, m := range versionGoneRe.FindAllStringSubmatch(out, -1) {
		ps = append(ps, Problem{Package: m[2], Version: m[1], Kind: "version"})
	}
	for _, m := range releaseGoneRe.FindAllStringSubmatch(out, -1) {
		ps = append(ps, Problem{Package: m[2], Version: m[1], Kind: "release"})
	}
	if strings.Contains(out, "unmet dependencies") {
		// " foo : Depends: bar (>= 2) but it is not going to be installed";
		// continuation lines ("       Depends: baz ...") belong to the
		// package above them.
		last := ""
		for _, line := range strings.Split(out, "\n") {
			if m := unmetRe.FindStringSubmatch(line); m != nil {
				last = m[1]
				ps = append(ps, Problem{Package: m[1], Kind: "conflict", Detail: m[2] + ": " + m[3]})
				continue
			}
			t := strings.TrimSpace(line)
			for _, rel := range []string{"Depends: ", "Pre-Depends: ", "Conflicts: ", "Breaks: "} {
				if last != "" && strings.HasPrefix(t, rel) && strings.HasPrefix(line, "   ") {
					ps = append(ps, Problem{Package: last, Kind: "conflict", Detail: t})
				}
			}
		}
	}
	if essentialRe.MatchString(out) {
		for _, e := range essentialList(out) {
			ps = append(ps, Problem{Package: e[0], Kind: "essential", Detail: e[1]})
		}
	}
	for _, m := range fetchRe.FindAllStringSubmatch(out, -1) {
		ps = append(ps, Problem{Package: m[1], Kind: "fetch", Detail: strings.TrimSpace(m[2])})
	}
	if len(ps) == 0 {
		for _, m := range errorLineRe.FindAllStringSubmatch(out, -1) {
			ps = append(ps, Problem{Kind: "other", Detail: m[1]})
		}
	}
	return ps
}

// essentialList reads what apt lists under "WARNING: The following
// essential packages will be removed.": each name, and " (due to X)" when
// it would go because X does.
func essentialList(out string) [][2]string {
	var list [][2]string
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		if !strings.HasPrefix(l, "WARNING: The following essential packages will be removed") {
			continue
		}
		for _, next := range lines[i+1:] {
			if strings.HasPrefix(next, "This should NOT") {
				continue
			}
			if !strings.HasPrefix(next, "  ") {
				break
			}
			for _, m := range dueToRe.FindAllStringSubmatch(strings.TrimSpace(next), -1) {
				list = append(list, [2]string{m[1], m[2]})
			}
		}
	}
	return list
}

// Error joins the problems apt-get printed into one error for operation
// op; without any, it says how apt-get exited.
func Error(op string, status int, out string) error {
	ps := Problems(out)
	if len(ps) == 0 {
		return fmt.Errorf("%s: apt-get exited %d", op, status)
	}
	msgs := make([]string, 0, len(ps))
	seen := map[string]bool{}
	for _, p := range ps {
		s := p.String()
		if !seen[s] {
			msgs = append(msgs, s)
			seen[s] = true
		}
	}
	if len(msgs) == 1 {
		return fmt.Errorf("%s: %s", op, msgs[0])
	}
	return fmt.Errorf("%s failed:\n  %s", op, strings.Join(msgs, "\n  "))
}

// Output collects apt-get's standard output and error, which a
// communicator writes from two goroutines, for Error to read.
type Output struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}
