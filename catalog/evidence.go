package catalog

import (
	"context"
	"time"
)

// Evidence kinds strata itself records; any other valid name is a user's.
const (
	KindBootCheck = "bootcheck"
	KindTests     = "tests"
)

// Evidence sources: what recorded a piece of evidence.
const (
	SourcePostProcessor = "post-processor"
	SourceCLI           = "cli"
	SourceBuilder       = "builder" // the builder's boot check
)

// Evidence is one test result recorded on a version. It is append-only:
// a failed result is never replaced by a later pass (a policy that
// requires the kind refuses the version for good).
type Evidence struct {
	ID      int64  `json:"id"`
	Image   string `json:"image"`
	Version string `json:"version"`
	// Kind is what was tested: bootcheck, tests, or a name the user gives.
	Kind   string    `json:"kind"`
	Passed bool      `json:"passed"`
	Time   time.Time `json:"time"`
	Counts Counts    `json:"counts"`
	// Report is the report file's name (or path, from the CLI), and
	// ReportSHA256 its sha256 in hex.
	Report       string `json:"report,omitempty"`
	ReportSHA256 string `json:"report_sha256,omitempty"`
	// Statement is the in-toto Statement written for this evidence.
	Statement string `json:"statement,omitempty"`
	// ExtraFiles are more files of the same report (strata-test's JUnit
	// XML beside its JSON): shown, and deleted with the version by gc.
	ExtraFiles []string `json:"extra_files,omitempty"`
	// BootTimeMS is the boot time, for evidence that booted the image.
	BootTimeMS int64 `json:"boot_time_ms,omitempty"`
	// Source is what recorded it: post-processor, cli, or another tool.
	Source string `json:"source"`
	Actor  string `json:"actor,omitempty"`
}

// Counts are a test run's tallies.
type Counts struct {
	Passed  int `json:"passed"`
	Failed  int `json:"failed"`
	Skipped int `json:"skipped"`
}

// Files are the files e names: its report, statement and extra files.
func (e Evidence) Files() []string {
	var out []string
	for _, f := range append([]string{e.Report, e.Statement}, e.ExtraFiles...) {
		if f != "" {
			out = append(out, f)
		}
	}
	return out
}

// checkEvidence checks what of e is names and text, before any write.
func checkEvidence(e *Evidence) error {
	if err := ValidName("evidence kind", e.Kind); err != nil {
		return err
	}
	if e.ReportSHA256 != "" {
		if err := ValidDigest("report sha256", "sha256:"+e.ReportSHA256); err != nil {
			return err
		}
	}
	if e.Counts.Passed < 0 || e.Counts.Failed < 0 || e.Counts.Skipped < 0 || e.BootTimeMS < 0 {
		return invalid("evidence %s: counts and boot time cannot be negative", e.Kind)
	}
	for k, s := range map[string]string{"report": e.Report, "statement": e.Statement, "source": e.Source, "actor": e.Actor} {
		if err := checkText("evidence "+k, s); err != nil {
			return err
		}
	}
	for _, f := range e.ExtraFiles {
		if f == "" {
			return invalid("evidence %s: an extra file has no name", e.Kind)
		}
		if err := checkText("evidence extra file", f); err != nil {
			return err
		}
	}
	if e.Source == "" {
		return invalid("evidence %s: name its source (post-processor, cli, or the tool that tested)", e.Kind)
	}
	return nil
}

// AddEvidence records e on image@version in one transaction and returns
// it as recorded. A revoked version still takes evidence (it explains the
// revocation as well as anything).
func (c *Catalog) AddEvidence(ctx context.Context, image, version string, e Evidence) (*Evidence, error) {
	e.Image, e.Version = image, version
	if e.Time.IsZero() {
		e.Time = c.Now().UTC()
	}
	if err := checkEvidence(&e); err != nil {
		return nil, err
	}
	err := c.store.Update(ctx, func(tx Tx) error {
		if _, err := getVersion(tx, image, version); err != nil {
			return err
		}
		if err := tx.LockImage(image); err != nil {
			return err
		}
		return tx.InsertEvidence(&e)
	})
	if err != nil {
		return nil, err
	}
	return &e, nil
}

// EvidenceOf lists a version's evidence, oldest first.
func (c *Catalog) EvidenceOf(ctx context.Context, image, version string) ([]Evidence, error) {
	var out []Evidence
	err := c.store.View(ctx, func(tx Tx) error {
		if _, err := getVersion(tx, image, version); err != nil {
			return err
		}
		var err error
		out, err = tx.Evidence(image, version)
		return err
	})
	return out, err
}

// evidenceState says, per kind, whether a version has a passing record
// and whether it has a failed one.
func evidenceState(ev []Evidence) (passed, failed map[string]bool) {
	passed, failed = map[string]bool{}, map[string]bool{}
	for _, e := range ev {
		if e.Passed {
			passed[e.Kind] = true
		} else {
			failed[e.Kind] = true
		}
	}
	return passed, failed
}
