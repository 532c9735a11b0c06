package test

import (
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/strata-build/packer-plugin-strata/export"
)

// Result is one test case's outcome.
type Result struct {
	Name   string `json:"name"`
	Check  string `json:"check"`
	Type   string `json:"type"`
	Passed bool   `json:"passed"`
	// Skipped: the run ended (its time limit, a failed boot) before it ran.
	Skipped    bool   `json:"skipped,omitempty"`
	ExitCode   int    `json:"exit_code"`
	DurationMS int64  `json:"duration_ms"`
	Message    string `json:"message,omitempty"`
	Output     string `json:"output"`
}

// Report is the JSON report (NAME.json).
type Report struct {
	Kind       string    `json:"kind"`
	Mode       string    `json:"mode"`
	Image      string    `json:"image_id"`
	Build      string    `json:"build_name,omitempty"`
	Passed     bool      `json:"passed"`
	Started    time.Time `json:"started"`
	DurationMS int64     `json:"duration_ms"`
	// vm mode: the accelerator, and the time from starting QEMU to
	// multi-user.target; ChecksMS is the checks' own time.
	Accel    string            `json:"accel,omitempty"`
	BootMS   int64             `json:"boot_ms,omitempty"`
	ChecksMS int64             `json:"checks_ms"`
	Counts   export.TestCounts `json:"counts"`
	Error    string            `json:"error,omitempty"`
	Results  []Result          `json:"results"`
}

var markRe = regexp.MustCompile(regexp.QuoteMeta(Marker) + `([A-Z]+)(?: (.*))?$`)

// raw is what the runner printed for one case.
type raw struct {
	ran      bool
	exit     int
	ms       int64
	out      strings.Builder
	done     bool
	badLines int
}

// parsed is what the runner's lines say.
type parsed struct {
	cases map[int]*raw
	ready bool
	end   bool
}

// parseLines reads the runner's marked lines among any others (a VM's
// console interleaves the kernel's and systemd's).
func parseLines(lines []string) *parsed {
	p := &parsed{cases: map[int]*raw{}}
	get := func(i int) *raw {
		if p.cases[i] == nil {
			p.cases[i] = &raw{}
		}
		return p.cases[i]
	}
	for _, l := range lines {
		m := markRe.FindStringSubmatch(strings.TrimRight(l, "\r"))
		if m == nil {
			continue
		}
		f := strings.Fields(m[2])
		switch m[1] {
		case "READY":
			p.ready = true
		case "END":
			p.end = true
		case "RESULT":
			if len(f) != 3 {
				continue
			}
			i, err1 := strconv.Atoi(f[0])
			code, err2 := strconv.Atoi(f[1])
			ms, _ := strconv.ParseInt(f[2], 10, 64)
			if err1 != nil || err2 != nil {
				continue
			}
			r := get(i)
			r.ran, r.exit, r.ms = true, code, ms
		case "OUT":
			if len(f) != 2 {
				continue
			}
			if i, err := strconv.Atoi(f[0]); err == nil {
				get(i).out.WriteString(f[1])
			}
		case "DONE":
			if i, err := strconv.Atoi(strings.TrimSpace(m[2])); err == nil {
				get(i).done = true
			}
		}
	}
	return p
}

// output decodes a case's output.
func (r *raw) output() string {
	b, err := base64.StdEncoding.DecodeString(r.out.String())
	if err != nil {
		return "(the output did not come back whole: " + err.Error() + ")"
	}
	return string(b)
}

// evaluate turns the runner's lines into results; why says why the run
// ended early, when it did.
func evaluate(cases []testCase, p *parsed, why string) []Result {
	out := make([]Result, len(cases))
	for i, tc := range cases {
		res := Result{Name: tc.Name, Check: tc.Check.Name, Type: tc.Type}
		r := p.cases[i]
		if r == nil || !r.ran {
			res.Skipped = true
			res.Message = "did not run"
			if why != "" {
				res.Message += ": " + why
			}
			out[i] = res
			continue
		}
		res.ExitCode, res.DurationMS, res.Output = r.exit, r.ms, r.output()
		res.Passed, res.Message = judge(tc, r.exit, res.Output)
		out[i] = res
	}
	return out
}

// judge says whether a case passed, and why not.
func judge(tc testCase, code int, output string) (bool, string) {
	if code == 124 || code == 137 {
		return false, fmt.Sprintf("timed out after %s", tc.Timeout)
	}
	ch := tc.Check
	switch tc.Type {
	case "command":
		want := 0
		if ch.ExitCode != nil {
			want = *ch.ExitCode
		}
		if code != want {
			return false, fmt.Sprintf("exit code %d, want %d", code, want)
		}
		if ch.re != nil && !ch.re.MatchString(output) {
			return false, fmt.Sprintf("the output does not match %q", ch.OutputMatches)
		}
	case "http":
		status, body := splitHTTP(output)
		want := ch.Status
		if want == 0 {
			want = 200
		}
		if status != want {
			return false, fmt.Sprintf("%s answered status %d, want %d", ch.HTTP, status, want)
		}
		if ch.re != nil && !ch.re.MatchString(body) {
			return false, fmt.Sprintf("the body does not match %q", ch.OutputMatches)
		}
	default:
		if code != 0 {
			return false, fmt.Sprintf("exit code %d", code)
		}
	}
	return true, ""
}

// splitHTTP reads httpScript's "HTTP-STATUS: N" line and the body after it.
func splitHTTP(out string) (int, string) {
	i := strings.Index(out, "HTTP-STATUS: ")
	if i < 0 {
		return 0, out
	}
	rest := out[i+len("HTTP-STATUS: "):]
	line, body, _ := strings.Cut(rest, "\n")
	n, _ := strconv.Atoi(strings.TrimSpace(line))
	return n, body
}

// counts tallies results.
func counts(rs []Result) export.TestCounts {
	var c export.TestCounts
	for _, r := range rs {
		switch {
		case r.Skipped:
			c.Skipped++
		case r.Passed:
			c.Passed++
		default:
			c.Failed++
		}
	}
	return c
}

// JSON is the report as written.
func (r *Report) JSON() ([]byte, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	return append(b, '\n'), err
}

// JUnit XML, as CI systems read it (the Ant/Jenkins schema).
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr"`
	Properties []junitProperty `xml:"properties>property,omitempty"`
	Cases      []junitCase     `xml:"testcase"`
	SystemErr  string          `xml:"system-err,omitempty"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",chardata"`
}

func secs(ms int64) string { return strconv.FormatFloat(float64(ms)/1000, 'f', 3, 64) }

// xmlText drops what XML 1.0 cannot carry (a check's output is anything).
func xmlText(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' || (r >= 0x20 && r != 0xFFFE && r != 0xFFFF && (r < 0xD800 || r > 0xDFFF)) {
			return r
		}
		return '?'
	}, strings.ToValidUTF8(s, "?"))
}

// JUnit is the report as JUnit XML.
func (r *Report) JUnit() ([]byte, error) {
	s := junitSuite{Name: "strata-test " + r.Kind + " (" + r.Mode + ")", Tests: len(r.Results), Failures: r.Counts.Failed,
		Skipped: r.Counts.Skipped, Time: secs(r.DurationMS), Timestamp: r.Started.UTC().Format("2006-01-02T15:04:05"),
		Properties: []junitProperty{{"image_id", r.Image}, {"mode", r.Mode}}}
	if r.Accel != "" {
		s.Properties = append(s.Properties, junitProperty{"accel", r.Accel}, junitProperty{"boot_ms", strconv.FormatInt(r.BootMS, 10)})
	}
	if r.Error != "" {
		s.SystemErr = xmlText(r.Error)
	}
	class := "strata-test." + r.Kind
	if r.Build != "" {
		class += "." + r.Build
	}
	for _, res := range r.Results {
		c := junitCase{Name: res.Name, Classname: class, Time: secs(res.DurationMS), SystemOut: xmlText(res.Output)}
		switch {
		case res.Skipped:
			c.Skipped = &junitMessage{Message: res.Message}
		case !res.Passed:
			c.Failure = &junitMessage{Message: xmlText(res.Message), Type: res.Type, Text: xmlText(res.Output)}
		}
		s.Cases = append(s.Cases, c)
	}
	all := junitSuites{Name: "strata-test", Tests: s.Tests, Failures: s.Failures, Skipped: s.Skipped, Time: s.Time, Suites: []junitSuite{s}}
	b, err := xml.MarshalIndent(all, "", "  ")
	if err != nil {
		return nil, err
	}
	return append([]byte(xml.Header), append(b, '\n')...), nil
}

// Summary is the table Packer's UI shows.
func (r *Report) Summary() string {
	var b strings.Builder
	verdict := "PASSED"
	if !r.Passed {
		verdict = "FAILED"
	}
	fmt.Fprintf(&b, "%s: %d passed, %d failed, %d skipped in %s (%s mode", verdict, r.Counts.Passed, r.Counts.Failed, r.Counts.Skipped,
		(time.Duration(r.DurationMS) * time.Millisecond).Round(100*time.Millisecond), r.Mode)
	if r.Accel != "" {
		fmt.Fprintf(&b, ", %s, boot %s, checks %s", r.Accel, (time.Duration(r.BootMS) * time.Millisecond).Round(100*time.Millisecond),
			(time.Duration(r.ChecksMS) * time.Millisecond).Round(100*time.Millisecond))
	}
	b.WriteString(")\n")
	w := 4
	for _, res := range r.Results {
		w = max(w, len(res.Name))
	}
	fmt.Fprintf(&b, "  %-6s %-*s %9s  %s\n", "RESULT", w, "CHECK", "TIME", "DETAIL")
	for _, res := range r.Results {
		st := "pass"
		switch {
		case res.Skipped:
			st = "skip"
		case !res.Passed:
			st = "FAIL"
		}
		fmt.Fprintf(&b, "  %-6s %-*s %8.1fs  %s\n", st, w, res.Name, float64(res.DurationMS)/1000, res.Message)
	}
	return strings.TrimRight(b.String(), "\n")
}
