package export

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// Evidence is one test result recorded in artifact.json: what a test
// post-processor (strata-test) appends for the catalog to register.
type Evidence struct {
	// Kind is what was tested: "bootcheck", "tests", or a user's name.
	Kind   string     `json:"kind"`
	Passed bool       `json:"passed"`
	Time   time.Time  `json:"time"`
	Counts TestCounts `json:"counts"`
	// Report is the report's file name in the directory (a JUnit XML or
	// JSON report); WriteManifest lists it in Files and fills ReportSHA256.
	Report       string `json:"report,omitempty"`
	ReportSHA256 string `json:"report_sha256,omitempty"`
	// Statement is the in-toto Statement's file name in the directory
	// (WriteStatement), also listed in Files.
	Statement string `json:"statement,omitempty"`
	// ExtraFiles are more report files of the evidence in the directory
	// (strata-test's JUnit XML beside its JSON report), also in Files.
	ExtraFiles []string `json:"extra_files,omitempty"`
	BootTimeMS int64    `json:"boot_time_ms,omitempty"`
	// PassedTests and FailedTests name the checks, for the statement.
	PassedTests []string `json:"passed_tests,omitempty"`
	FailedTests []string `json:"failed_tests,omitempty"`
}

// TestCounts are a test run's tallies.
type TestCounts struct {
	Passed  int `json:"passed"`
	Failed  int `json:"failed"`
	Skipped int `json:"skipped"`
}

// The in-toto names a test-result attestation uses.
const (
	InTotoStatementType     = "https://in-toto.io/Statement/v1"
	TestResultPredicateType = "https://in-toto.io/attestation/test-result/v0.1"
	StatementSuffix         = ".intoto.json"
)

// Statement is an in-toto Statement v1.
type Statement struct {
	Type          string               `json:"_type"`
	Subject       []ResourceDescriptor `json:"subject"`
	PredicateType string               `json:"predicateType"`
	Predicate     TestResult           `json:"predicate"`
}

// ResourceDescriptor is in-toto's ResourceDescriptor (the fields used).
type ResourceDescriptor struct {
	Name        string                 `json:"name,omitempty"`
	URI         string                 `json:"uri,omitempty"`
	Digest      map[string]string      `json:"digest,omitempty"`
	Annotations map[string]interface{} `json:"annotations,omitempty"`
}

// TestResult is the in-toto test-result predicate v0.1.
type TestResult struct {
	// Result is PASSED, WARNED or FAILED.
	Result        string               `json:"result"`
	Configuration []ResourceDescriptor `json:"configuration"`
	URL           string               `json:"url,omitempty"`
	PassedTests   []string             `json:"passedTests"`
	WarnedTests   []string             `json:"warnedTests"`
	FailedTests   []string             `json:"failedTests"`
}

// TestStatement is the in-toto Statement of e about the image whose ID
// (the sha256 digest of its OCI config, artifact.json's image_id) is
// imageID; name names the subject (NAME@VERSION, or the build's name). The
// report, when e has one, is the configuration's first entry with its
// sha256; the kind, counts and boot time are annotations on a second.
func TestStatement(name, imageID string, e Evidence) (*Statement, error) {
	hexID, ok := strings.CutPrefix(imageID, "sha256:")
	if !ok || len(hexID) != 64 {
		return nil, fmt.Errorf("in-toto statement: image ID %q is not a sha256 digest", imageID)
	}
	result := "FAILED"
	if e.Passed {
		result = "PASSED"
	}
	st := &Statement{
		Type:          InTotoStatementType,
		Subject:       []ResourceDescriptor{{Name: name, Digest: map[string]string{"sha256": hexID}}},
		PredicateType: TestResultPredicateType,
		Predicate: TestResult{Result: result, Configuration: []ResourceDescriptor{},
			PassedTests: nonNil(e.PassedTests), WarnedTests: []string{}, FailedTests: nonNil(e.FailedTests)},
	}
	if e.Report != "" {
		d := ResourceDescriptor{Name: filepath.Base(e.Report)}
		if e.ReportSHA256 != "" {
			d.Digest = map[string]string{"sha256": e.ReportSHA256}
		}
		st.Predicate.Configuration = append(st.Predicate.Configuration, d)
	}
	ann := map[string]interface{}{"kind": e.Kind, "passed": e.Counts.Passed, "failed": e.Counts.Failed, "skipped": e.Counts.Skipped,
		"time": e.Time.UTC().Format(time.RFC3339)}
	if e.BootTimeMS > 0 {
		ann["boot_time_ms"] = e.BootTimeMS
	}
	st.Predicate.Configuration = append(st.Predicate.Configuration, ResourceDescriptor{Name: "strata-evidence:" + e.Kind, Annotations: ann})
	return st, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// StatementName is the file name of e's statement: beside its report
// (REPORT.intoto.json), else KIND.intoto.json.
func StatementName(e Evidence) string {
	if e.Report != "" {
		return filepath.Base(e.Report) + StatementSuffix
	}
	return e.Kind + StatementSuffix
}

// WriteStatement writes st to path atomically and returns its sha256.
func WriteStatement(path string, st *Statement) (string, error) {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return "", err
	}
	b = append(b, '\n')
	if err := WriteFileAtomic(path, b, 0o644); err != nil {
		return "", fmt.Errorf("writing the in-toto statement %s: %w", path, err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// BootCheckEvidence is the evidence a boot check gives: kind bootcheck,
// with its boot time.
func BootCheckEvidence(b *BootCheck, at time.Time) Evidence {
	e := Evidence{Kind: "bootcheck", Passed: b.Passed, Time: at, BootTimeMS: b.BootTimeMS}
	if b.Passed {
		e.Counts.Passed = 1
		e.PassedTests = []string{"boot " + b.Disk}
	} else {
		e.Counts.Failed = 1
		e.FailedTests = []string{"boot " + b.Disk}
	}
	return e
}
