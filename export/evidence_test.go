package export

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The statement's field names are the in-toto Statement v1's and the
// test-result predicate v0.1's, read back as a policy engine reads them.
func TestTestStatementFieldNames(t *testing.T) {
	id := "sha256:" + strings.Repeat("ab", 32)
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	st, err := TestStatement("web@1.0.0", id, Evidence{Kind: "tests", Passed: false, Time: at, Counts: TestCounts{Passed: 2, Failed: 1, Skipped: 3},
		Report: "report.json", ReportSHA256: strings.Repeat("cd", 32), PassedTests: []string{"nginx-config", "port"}, FailedTests: []string{"http"}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "report.json"+StatementSuffix)
	if _, err := WriteStatement(path, st); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	var got map[string]interface{}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got["_type"] != "https://in-toto.io/Statement/v1" || got["predicateType"] != "https://in-toto.io/attestation/test-result/v0.1" {
		t.Fatalf("statement type or predicate type: %s", b)
	}
	subj := got["subject"].([]interface{})[0].(map[string]interface{})
	if subj["name"] != "web@1.0.0" || subj["digest"].(map[string]interface{})["sha256"] != strings.Repeat("ab", 32) {
		t.Fatalf("subject: %v", subj)
	}
	pred := got["predicate"].(map[string]interface{})
	if pred["result"] != "FAILED" {
		t.Fatalf("result: %v", pred["result"])
	}
	for _, k := range []string{"configuration", "passedTests", "warnedTests", "failedTests"} {
		if _, ok := pred[k].([]interface{}); !ok {
			t.Fatalf("predicate field %s is not a list: %s", k, b)
		}
	}
	if len(pred["passedTests"].([]interface{})) != 2 || pred["failedTests"].([]interface{})[0] != "http" {
		t.Fatalf("tests: %s", b)
	}
	conf := pred["configuration"].([]interface{})[0].(map[string]interface{})
	if conf["name"] != "report.json" || conf["digest"].(map[string]interface{})["sha256"] != strings.Repeat("cd", 32) {
		t.Fatalf("configuration names the report: %v", conf)
	}
	ann := pred["configuration"].([]interface{})[1].(map[string]interface{})["annotations"].(map[string]interface{})
	if ann["kind"] != "tests" || ann["failed"] != 1.0 || ann["skipped"] != 3.0 {
		t.Fatalf("annotations: %v", ann)
	}
	st, _ = TestStatement("x", id, BootCheckEvidence(&BootCheck{Passed: true, Disk: "disk.raw", BootTimeMS: 900}, at))
	if st.Predicate.Result != "PASSED" || len(st.Predicate.FailedTests) != 0 || st.Predicate.FailedTests == nil {
		t.Fatalf("boot check statement: %+v", st.Predicate)
	}
	if _, err := TestStatement("x", "sha256:zz", Evidence{Kind: "tests"}); err == nil {
		t.Fatal("a statement about a non-digest")
	}
}

// WriteManifest hashes each evidence report and statement; a changed
// report fails verification; a report outside the directory is refused.
func TestManifestEvidence(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "junit.xml"), []byte("<testsuites/>"), 0o644)
	os.WriteFile(filepath.Join(dir, "junit.xml.intoto.json"), []byte("{}"), 0o644)
	m := &Manifest{ImageID: "sha256:" + strings.Repeat("1", 64), Evidence: []Evidence{{Kind: "tests", Passed: true, Report: "junit.xml", Statement: "junit.xml.intoto.json"}}}
	if err := WriteManifest(dir, m); err != nil {
		t.Fatal(err)
	}
	want, _, _ := FileSHA256(filepath.Join(dir, "junit.xml"))
	if len(m.Files) != 2 || m.Evidence[0].ReportSHA256 != want {
		t.Fatalf("files %+v, evidence %+v", m.Files, m.Evidence)
	}
	back, err := ReadManifest(dir)
	if err != nil || len(back.Evidence) != 1 || back.Evidence[0].ReportSHA256 != want {
		t.Fatalf("read back: %+v %v", back, err)
	}
	if err := VerifyOutputs(context.Background(), dir, back); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "junit.xml"), []byte("<testsuites>forged</testsuites>"), 0o644)
	if err := VerifyOutputs(context.Background(), dir, back); err == nil {
		t.Fatal("a changed report verified")
	}
	b, _ := os.ReadFile(filepath.Join(dir, ManifestName))
	bad := strings.Replace(string(b), `"report": "junit.xml"`, `"report": "../junit.xml"`, 1)
	if _, err := ParseManifest(dir, []byte(bad)); err == nil || !strings.Contains(err.Error(), "not a file name") {
		t.Fatalf("a report outside the directory: %v", err)
	}
	bad = strings.Replace(string(b), `"report_sha256": "`+want, `"report_sha256": "`+strings.Repeat("0", 64), 1)
	if _, err := ParseManifest(dir, []byte(bad)); err == nil {
		t.Fatal("a report sha256 that differs from files parsed")
	}
}
