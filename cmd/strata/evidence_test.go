package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-build/packer-plugin-strata/export"
)

func TestCLIEvidenceAndPolicy(t *testing.T) {
	c := cli{t, "sqlite://" + filepath.Join(t.TempDir(), "catalog.db")}
	c.ok("register", "web", "--from-output", fakeOutput(t, "one", "apt\t2.6.1\tamd64\n"))
	c.ok("register", "web", "--from-output", fakeOutput(t, "two", "apt\t2.6.2\tamd64\n"))
	var v1 struct {
		ImageID string `json:"image_id"`
	}
	json.Unmarshal([]byte(c.ok("show", "web@1.0.0", "--json")), &v1)

	// A policy set before any evidence refuses, with exit code 4 and what
	// is missing.
	if o := c.ok("policy", "set", "web", "production", "--require", "tests", "--from", "staging", "--min-age", "1h", "--reason", "tested only"); !strings.Contains(o, "passing evidence of tests; held by staging; on staging for at least 1h0m0s") {
		t.Fatalf("policy set: %s", o)
	}
	c.fails(4, "not held by staging", "promote", "web@1.0.0", "production")
	c.ok("promote", "web@1.0.0", "staging")
	c.fails(4, "no passing tests evidence", "promote", "web", "production", "--from", "staging")
	c.fails(4, "less than the 1h0m0s required", "promote", "web", "production", "--from", "staging")
	c.ok("policy", "set", "web", "production", "--require", "tests", "--from", "staging")

	// Usage errors of evidence add.
	c.fails(2, "--passed or --failed", "evidence", "add", "web@1.0.0", "--kind", "tests")
	c.fails(2, "--passed or --failed", "evidence", "add", "web@1.0.0", "--kind", "tests", "--passed", "--failed")
	c.fails(2, "PASSED,FAILED,SKIPPED", "evidence", "add", "web@1.0.0", "--kind", "tests", "--passed", "--counts", "1,2")
	c.fails(2, "evidence kind", "evidence", "add", "web@1.0.0", "--kind", "Tests!", "--passed")
	c.fails(3, "no such version", "evidence", "add", "web@9.9.9", "--kind", "tests", "--passed")

	// Evidence from an external test system, with its report: the
	// statement is written beside the report.
	report := filepath.Join(t.TempDir(), "junit.xml")
	os.WriteFile(report, []byte(`<testsuite tests="4" failures="0" skipped="1"/>`), 0o644)
	sum, _, _ := export.FileSHA256(report)
	if o := c.ok("evidence", "add", "web@1.0.0", "--kind", "tests", "--passed", "--report", report, "--counts", "3,0,1", "--passed-test", "http", "--source", "jenkins"); !strings.Contains(o, "recorded tests evidence on web@1.0.0: passed") || !strings.Contains(o, report+".intoto.json") {
		t.Fatalf("evidence add: %s", o)
	}
	var st export.Statement
	b, err := os.ReadFile(report + ".intoto.json")
	if err != nil || json.Unmarshal(b, &st) != nil {
		t.Fatalf("statement: %s %v", b, err)
	}
	if st.Type != export.InTotoStatementType || st.PredicateType != export.TestResultPredicateType || st.Subject[0].Name != "web@1.0.0" ||
		"sha256:"+st.Subject[0].Digest["sha256"] != v1.ImageID || st.Predicate.Result != "PASSED" || st.Predicate.Configuration[0].Digest["sha256"] != sum ||
		len(st.Predicate.PassedTests) != 1 {
		t.Fatalf("statement: %s", b)
	}
	if o := c.ok("show", "web@1.0.0"); !strings.Contains(o, "Evidence:") || !strings.Contains(o, "tests passed") || !strings.Contains(o, "3 passed, 0 failed, 1 skipped") || !strings.Contains(o, "jenkins") {
		t.Fatalf("show: %s", o)
	}
	var shown struct {
		Evidence []struct {
			Kind         string `json:"kind"`
			Passed       bool   `json:"passed"`
			Report       string `json:"report"`
			ReportSHA256 string `json:"report_sha256"`
			Statement    string `json:"statement"`
			Source       string `json:"source"`
			Actor        string `json:"actor"`
			Counts       struct{ Passed, Failed, Skipped int }
		} `json:"evidence"`
	}
	json.Unmarshal([]byte(c.ok("show", "web@1.0.0", "--json")), &shown)
	if len(shown.Evidence) != 1 || shown.Evidence[0].Kind != "tests" || !shown.Evidence[0].Passed || shown.Evidence[0].ReportSHA256 != sum ||
		shown.Evidence[0].Report != report || shown.Evidence[0].Counts.Skipped != 1 || shown.Evidence[0].Actor != "tester" || shown.Evidence[0].Source != "jenkins" {
		t.Fatalf("show --json evidence: %+v", shown)
	}
	var listed []map[string]interface{}
	json.Unmarshal([]byte(c.ok("evidence", "list", "web@1.0.0", "--json")), &listed)
	if len(listed) != 1 || listed[0]["kind"] != "tests" {
		t.Fatalf("evidence list --json: %v", listed)
	}
	checkSnake(t, "evidence list", listed)
	if o := c.ok("promote", "web", "production", "--from", "staging"); !strings.Contains(o, "production: (none) -> web@1.0.0") {
		t.Fatalf("promote with evidence: %s", o)
	}

	// Failed evidence: never promotable to production, even after a pass.
	c.ok("evidence", "add", "web@1.0.1", "--kind", "tests", "--failed", "--counts", "2,1,0", "--statement", filepath.Join(t.TempDir(), "st.json"))
	c.ok("evidence", "add", "web@1.0.1", "--kind", "tests", "--passed")
	c.ok("promote", "web@1.0.1", "staging")
	c.fails(4, "tests evidence failed", "promote", "web", "production", "--from", "staging")
	c.fails(2, "--override needs --reason", "promote", "web", "production", "--from", "staging", "--override")
	if o := c.ok("promote", "web", "production", "--from", "staging", "--override", "--reason", "hotfix"); !strings.Contains(o, "policy of production overridden (hotfix): tests evidence failed") {
		t.Fatalf("override: %s", o)
	}
	var hist []struct {
		Version  string `json:"version"`
		Override string `json:"override"`
		Reason   string `json:"reason"`
	}
	json.Unmarshal([]byte(c.ok("history", "web", "production", "--json")), &hist)
	if len(hist) != 2 || hist[1].Override != "tests evidence failed" || hist[1].Reason != "hotfix" {
		t.Fatalf("history --json: %+v", hist)
	}
	if o := c.ok("history", "web", "production"); !strings.Contains(o, "policy overridden: tests evidence failed") {
		t.Fatalf("history: %s", o)
	}

	// Rollback is never blocked, but says what the target lacks now.
	c.ok("policy", "set", "web", "production", "--require", "tests,bootcheck", "--from", "staging")
	if o := c.ok("rollback", "web", "production"); !strings.Contains(o, "web@1.0.1 -> web@1.0.0") || !strings.Contains(o, "lacks evidence the policy of production requires now: no passing bootcheck evidence") {
		t.Fatalf("rollback: %s", o)
	}

	// Show, with history; clear.
	if o := c.ok("policy", "show", "web", "production"); !strings.Contains(o, "needs: passing evidence of tests, bootcheck; held by staging") || !strings.Contains(o, "tested only") {
		t.Fatalf("policy show: %s", o)
	}
	if o := c.ok("policy", "show", "web"); !strings.Contains(o, "production") || !strings.Contains(o, "tests,bootcheck") {
		t.Fatalf("policy show (all): %s", o)
	}
	c.ok("policy", "clear", "web", "production", "--reason", "retired")
	c.fails(3, "no policy to clear", "policy", "clear", "web", "production")
	var ps struct {
		Policy  *struct{} `json:"policy"`
		History []struct {
			Cleared bool   `json:"cleared"`
			MinAge  string `json:"min_age"`
			From    string `json:"from"`
		} `json:"history"`
	}
	json.Unmarshal([]byte(c.ok("policy", "show", "web", "production", "--json")), &ps)
	if ps.Policy != nil || len(ps.History) != 4 || !ps.History[3].Cleared || ps.History[0].MinAge != "1h0m0s" || ps.History[0].From != "staging" {
		t.Fatalf("policy show --json after clear: %+v", ps)
	}
	c.fails(2, "needs --require, --from or --min-age", "policy", "set", "web", "production")
	c.fails(2, "policy needs a subcommand: set, show, clear", "policy")
}

// TestCLIRegisterFromOutputWritesBootCheckStatement: register --from-output
// records the builder's boot check as evidence and writes its in-toto
// statement beside the outputs, as the strata-catalog post-processor does.
func TestCLIRegisterFromOutputWritesBootCheckStatement(t *testing.T) {
	c := cli{t, "sqlite://" + filepath.Join(t.TempDir(), "catalog.db")}
	dir := fakeOutput(t, "booted", "")
	m, err := export.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	m.BootCheck = &export.BootCheck{Passed: true, Disk: "disk.raw", Accel: "tcg", BootTimeMS: 2900, TotalMS: 9000, Expect: "login:"}
	if err := export.WriteManifest(dir, m); err != nil {
		t.Fatal(err)
	}
	c.ok("register", "web", "--from-output", dir)
	path := filepath.Join(dir, "bootcheck"+export.StatementSuffix)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("no boot check statement: %v", err)
	}
	var st struct {
		Type    string `json:"_type"`
		Subject []struct {
			Digest map[string]string `json:"digest"`
		} `json:"subject"`
		PredicateType string `json:"predicateType"`
		Predicate     struct {
			Result string `json:"result"`
		} `json:"predicate"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Subject) != 1 || "sha256:"+st.Subject[0].Digest["sha256"] != m.ImageID || st.Predicate.Result != "PASSED" {
		t.Fatalf("statement %s", b)
	}
	var v struct {
		Evidence []struct {
			Kind      string `json:"kind"`
			Statement string `json:"statement"`
		} `json:"evidence"`
	}
	json.Unmarshal([]byte(c.ok("show", "web@1.0.0", "--json")), &v)
	if len(v.Evidence) != 1 || v.Evidence[0].Kind != "bootcheck" || v.Evidence[0].Statement != path {
		t.Fatalf("evidence %+v", v.Evidence)
	}
}
