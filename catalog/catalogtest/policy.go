package catalogtest

import (
	"errors"
	"fmt"
	"math/rand"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-build/packer-plugin-strata/catalog"
)

func evidence(kind string, passed bool) catalog.Evidence {
	return catalog.Evidence{Kind: kind, Passed: passed, Source: catalog.SourceCLI, Counts: catalog.Counts{Passed: 3, Skipped: 1}}
}

func addEvidence(t *testing.T, c *catalog.Catalog, image, version, kind string, passed bool) {
	t.Helper()
	if _, err := c.AddEvidence(ctx, image, version, evidence(kind, passed)); err != nil {
		t.Fatalf("evidence %s on %s@%s: %v", kind, image, version, err)
	}
}

func setPolicy(t *testing.T, c *catalog.Catalog, p catalog.Policy) {
	t.Helper()
	if _, err := c.SetPolicy(ctx, p); err != nil {
		t.Fatalf("policy %+v: %v", p, err)
	}
}

// refused checks a promotion is refused by the policy with a message that
// says each of want.
func refused(t *testing.T, err error, want ...string) {
	t.Helper()
	if !errors.Is(err, catalog.ErrPolicy) {
		t.Fatalf("want a policy refusal, got %v", err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("refusal %q does not say %q", err, w)
		}
	}
}

func testEvidence(t *testing.T, c *catalog.Catalog) {
	register(t, c, "app", "1", "")
	e := catalog.Evidence{Kind: "tests", Passed: true, Source: catalog.SourceCLI, Actor: "ci", Counts: catalog.Counts{Passed: 12, Failed: 0, Skipped: 2},
		Report: "tests.json", ReportSHA256: strings.Repeat("ab", 32), Statement: "tests.json.intoto.json", ExtraFiles: []string{"tests.junit.xml"}}
	got, err := c.AddEvidence(ctx, "app", "1", e)
	if err != nil || got.ID == 0 || got.Time.IsZero() {
		t.Fatalf("add evidence: %+v %v", got, err)
	}
	addEvidence(t, c, "app", "1", "load", false)
	v, err := c.Get(ctx, "app", "1")
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Evidence) != 2 {
		t.Fatalf("evidence of app@1: %+v", v.Evidence)
	}
	r := v.Evidence[0]
	if r.Kind != "tests" || !r.Passed || r.Counts != e.Counts || r.Report != "tests.json" || r.ReportSHA256 != e.ReportSHA256 ||
		r.Statement != e.Statement || r.Source != "cli" || r.Actor != "ci" || !r.Time.Equal(got.Time) ||
		strings.Join(r.ExtraFiles, " ") != "tests.junit.xml" || strings.Join(r.Files(), " ") != "tests.json tests.json.intoto.json tests.junit.xml" {
		t.Fatalf("evidence read back %+v, recorded %+v", r, e)
	}
	if v.Evidence[1].Kind != "load" || v.Evidence[1].Passed {
		t.Fatalf("second evidence: %+v", v.Evidence[1])
	}
	_, err = c.AddEvidence(ctx, "app", "9", evidence("tests", true))
	mustIs(t, err, catalog.ErrNotFound)
	_, err = c.AddEvidence(ctx, "app", "1", evidence("Bad Kind", true))
	mustIs(t, err, catalog.ErrInvalid)
	_, err = c.AddEvidence(ctx, "app", "1", catalog.Evidence{Kind: "tests", Passed: true})
	mustIs(t, err, catalog.ErrInvalid) // no source
	_, err = c.AddEvidence(ctx, "app", "1", catalog.Evidence{Kind: "tests", Source: "cli", ReportSHA256: "xyz"})
	mustIs(t, err, catalog.ErrInvalid)
	_, err = c.AddEvidence(ctx, "app", "1", catalog.Evidence{Kind: "tests", Source: "cli", ExtraFiles: []string{""}})
	mustIs(t, err, catalog.ErrInvalid)
	if v, _ := c.Get(ctx, "app", "1"); len(v.Evidence) != 2 || len(v.Evidence[1].ExtraFiles) != 0 {
		t.Fatalf("evidence after refused additions: %+v", v.Evidence)
	}

	// Registered with its evidence in one transaction: a channel whose
	// policy requires it takes the new version at once.
	setPolicy(t, c, catalog.Policy{Image: "app", Channel: "dev", Require: []string{"bootcheck", "tests"}})
	boot := evidence("bootcheck", true)
	boot.BootTimeMS = 1234
	boot.Source = catalog.SourcePostProcessor
	out, err := c.Register(ctx, &catalog.Version{Image: "app", Version: "2", ImageID: digest("app2"),
		Evidence: []catalog.Evidence{boot, evidence("tests", true)}}, catalog.RegisterOptions{Channels: []string{"dev"}})
	if err != nil {
		t.Fatalf("register with evidence and a channel that requires it: %v", err)
	}
	if len(out.Evidence) != 2 || out.Evidence[0].ID == 0 {
		t.Fatalf("registered evidence: %+v", out.Evidence)
	}
	v2, _ := c.Get(ctx, "app", "2")
	if len(v2.Evidence) != 2 || v2.Evidence[0].BootTimeMS != 1234 || v2.Evidence[0].Source != "post-processor" {
		t.Fatalf("app@2 evidence: %+v", v2.Evidence)
	}
	// A version whose required evidence failed is refused together with
	// its registration: nothing half-registered.
	_, err = c.Register(ctx, &catalog.Version{Image: "app", Version: "3", ImageID: digest("app3"),
		Evidence: []catalog.Evidence{evidence("bootcheck", true), evidence("tests", false)}}, catalog.RegisterOptions{Channels: []string{"dev"}})
	refused(t, err, "tests evidence failed", "dev")
	if _, err := c.Get(ctx, "app", "3"); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("a refused registration left its version: %v", err)
	}
	// Registered without a channel (on_failure = "register"): kept for
	// inspection, never promotable to a channel that requires the kind.
	if _, err := c.Register(ctx, &catalog.Version{Image: "app", Version: "3", ImageID: digest("app3"),
		Evidence: []catalog.Evidence{evidence("bootcheck", true), evidence("tests", false)}}, catalog.RegisterOptions{}); err != nil {
		t.Fatal(err)
	}
	addEvidence(t, c, "app", "3", "tests", true) // a later pass does not erase the failure
	_, _, err = c.Promote(ctx, "app", "dev", "3", catalog.MoveOptions{})
	refused(t, err, "tests evidence failed")
}

func testPolicyMissingKind(t *testing.T, c *catalog.Catalog) {
	register(t, c, "web", "1", "")
	setPolicy(t, c, catalog.Policy{Image: "web", Channel: "production", Require: []string{"bootcheck", "tests", "tests"}, Actor: "ops", Reason: "tested only"})
	p, err := c.PolicyOf(ctx, "web", "production")
	if err != nil || p == nil || strings.Join(p.Require, ",") != "bootcheck,tests" || p.Actor != "ops" {
		t.Fatalf("policy read back: %+v %v", p, err)
	}
	_, _, err = c.Promote(ctx, "web", "production", "1", catalog.MoveOptions{})
	refused(t, err, "no passing bootcheck evidence", "no passing tests evidence", "web@1")
	addEvidence(t, c, "web", "1", "bootcheck", true)
	addEvidence(t, c, "web", "1", "lint", false) // not required: no matter
	_, _, err = c.Promote(ctx, "web", "production", "1", catalog.MoveOptions{})
	refused(t, err, "no passing tests evidence")
	if strings.Contains(err.Error(), "no passing bootcheck") {
		t.Fatalf("refusal names evidence that is there: %v", err)
	}
	addEvidence(t, c, "web", "1", "tests", true)
	if _, changed, err := c.Promote(ctx, "web", "production", "1", catalog.MoveOptions{}); err != nil || !changed {
		t.Fatalf("promote with the evidence: %v", err)
	}
	// Other channels are not bound.
	register(t, c, "web", "2", "")
	if _, _, err := c.Promote(ctx, "web", "dev", "2", catalog.MoveOptions{}); err != nil {
		t.Fatal(err)
	}
}

func testPolicyFailedEvidence(t *testing.T, c *catalog.Catalog) {
	register(t, c, "web", "1", "")
	setPolicy(t, c, catalog.Policy{Image: "web", Channel: "production", Require: []string{"tests"}})
	addEvidence(t, c, "web", "1", "tests", false)
	addEvidence(t, c, "web", "1", "tests", true)
	_, _, err := c.Promote(ctx, "web", "production", "1", catalog.MoveOptions{})
	refused(t, err, "tests evidence failed")
	if miss, err := c.MissingEvidence(ctx, "web", "production", "1"); err != nil || len(miss) != 1 {
		t.Fatalf("missing evidence: %v %v", miss, err)
	}
}

func testPolicyFromAndAge(t *testing.T, c *catalog.Catalog) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	c.Now = func() time.Time { return now }
	register(t, c, "web", "1", "")
	register(t, c, "web", "2", "")
	setPolicy(t, c, catalog.Policy{Image: "web", Channel: "production", From: "staging", MinAge: catalog.Duration(24 * time.Hour)})
	// Held by no channel, then by the wrong one.
	_, _, err := c.Promote(ctx, "web", "production", "1", catalog.MoveOptions{})
	refused(t, err, "not held by staging (it holds nothing)")
	c.Promote(ctx, "web", "dev", "1", catalog.MoveOptions{})
	_, _, err = c.Promote(ctx, "web", "production", "1", catalog.MoveOptions{})
	refused(t, err, "not held by staging")
	c.Promote(ctx, "web", "staging", "1", catalog.MoveOptions{})
	now = now.Add(time.Hour)
	_, _, err = c.Promote(ctx, "web", "production", "1", catalog.MoveOptions{})
	refused(t, err, "on staging for 1h0m0s, less than the 24h0m0s required")
	now = now.Add(23 * time.Hour)
	if _, _, err := c.Promote(ctx, "web", "production", "", catalog.MoveOptions{From: "staging"}); err != nil {
		t.Fatalf("promote after a day on staging: %v", err)
	}
	// Staging moves on: 1 is no longer what staging holds, and 2 is young.
	c.Promote(ctx, "web", "staging", "2", catalog.MoveOptions{})
	_, _, err = c.Promote(ctx, "web", "production", "2", catalog.MoveOptions{})
	refused(t, err, "less than the 24h0m0s")
	// Without From, min-age counts from registration.
	setPolicy(t, c, catalog.Policy{Image: "web", Channel: "dev", MinAge: catalog.Duration(48 * time.Hour)})
	_, _, err = c.Promote(ctx, "web", "dev", "2", catalog.MoveOptions{})
	refused(t, err, "registered for 24h0m0s, less than the 48h0m0s")
}

func testPolicyOverride(t *testing.T, c *catalog.Catalog) {
	register(t, c, "web", "1", "")
	setPolicy(t, c, catalog.Policy{Image: "web", Channel: "production", Require: []string{"tests"}})
	_, _, err := c.Promote(ctx, "web", "production", "1", catalog.MoveOptions{Override: true})
	mustIs(t, err, catalog.ErrInvalid) // an override needs a reason
	e, changed, err := c.Promote(ctx, "web", "production", "1", catalog.MoveOptions{Override: true, Reason: "hotfix for an outage", Actor: "oncall"})
	if err != nil || !changed {
		t.Fatalf("override: %v", err)
	}
	h, err := c.History(ctx, "web", "production")
	if err != nil || len(h) != 1 {
		t.Fatal(h, err)
	}
	if h[0].Override != "no passing tests evidence" || h[0].Reason != "hotfix for an outage" || h[0].Actor != "oncall" || e.Override != h[0].Override {
		t.Fatalf("override not recorded in the history: %+v", h[0])
	}
	// An override where nothing is missing records nothing to override.
	register(t, c, "web", "2", "")
	addEvidence(t, c, "web", "2", "tests", true)
	c.Promote(ctx, "web", "production", "2", catalog.MoveOptions{Override: true, Reason: "habit"})
	h, _ = c.History(ctx, "web", "production")
	if len(h) != 2 || h[1].Override != "" {
		t.Fatalf("an override that overrode nothing: %+v", h)
	}
}

func testPolicyHistory(t *testing.T, c *catalog.Catalog) {
	register(t, c, "web", "1", "")
	_, err := c.SetPolicy(ctx, catalog.Policy{Image: "web", Channel: "production"})
	mustIs(t, err, catalog.ErrInvalid) // asks nothing
	// Before the image's first version: in force at its registration.
	setPolicy(t, c, catalog.Policy{Image: "new", Channel: "production", Require: []string{"tests"}})
	_, err = c.Register(ctx, &catalog.Version{Image: "new", Version: "1", ImageID: digest("new1")}, catalog.RegisterOptions{Channels: []string{"production"}})
	refused(t, err, "no passing tests evidence")
	_, err = c.SetPolicy(ctx, catalog.Policy{Image: "web", Channel: "production", From: "production", Require: []string{"tests"}})
	mustIs(t, err, catalog.ErrInvalid)
	setPolicy(t, c, catalog.Policy{Image: "web", Channel: "production", Require: []string{"tests"}})
	setPolicy(t, c, catalog.Policy{Image: "web", Channel: "production", Require: []string{"tests", "bootcheck"}, From: "staging"})
	setPolicy(t, c, catalog.Policy{Image: "web", Channel: "staging", Require: []string{"bootcheck"}})
	all, err := c.Policies(ctx, "web")
	if err != nil || len(all) != 2 || all[0].Channel != "production" || all[0].From != "staging" || all[1].Channel != "staging" {
		t.Fatalf("policies: %+v %v", all, err)
	}
	if _, err := c.ClearPolicy(ctx, "web", "production", "ops", "retired"); err != nil {
		t.Fatal(err)
	}
	_, err = c.ClearPolicy(ctx, "web", "production", "ops", "again")
	mustIs(t, err, catalog.ErrNotFound)
	if p, err := c.PolicyOf(ctx, "web", "production"); err != nil || p != nil {
		t.Fatalf("a cleared policy is in force: %+v %v", p, err)
	}
	h, err := c.PolicyHistory(ctx, "web", "production")
	if err != nil || len(h) != 3 || h[0].Cleared || len(h[1].Require) != 2 || !h[2].Cleared || h[2].Reason != "retired" || h[2].ID <= h[1].ID {
		t.Fatalf("policy history: %+v %v", h, err)
	}
	if _, _, err := c.Promote(ctx, "web", "production", "1", catalog.MoveOptions{}); err != nil {
		t.Fatalf("promote after the policy was cleared: %v", err)
	}
}

func testPolicyRollback(t *testing.T, c *catalog.Catalog) {
	register(t, c, "web", "1", "")
	register(t, c, "web", "2", "")
	c.Promote(ctx, "web", "production", "1", catalog.MoveOptions{})
	setPolicy(t, c, catalog.Policy{Image: "web", Channel: "production", Require: []string{"tests"}, From: "staging", MinAge: catalog.Duration(time.Hour)})
	addEvidence(t, c, "web", "2", "tests", true)
	c.Promote(ctx, "web", "production", "2", catalog.MoveOptions{Override: true, Reason: "no staging yet"})
	e, _, err := c.Rollback(ctx, "web", "production", catalog.MoveOptions{Reason: "regression"})
	if err != nil || e.Version != "1" {
		t.Fatalf("a policy blocked a rollback: %+v %v", e, err)
	}
	miss, err := c.MissingEvidence(ctx, "web", "production", "1")
	if err != nil || len(miss) != 1 || miss[0] != "no passing tests evidence" {
		t.Fatalf("rollback target's missing evidence: %v %v", miss, err)
	}
	if miss, _ := c.MissingEvidence(ctx, "web", "production", "2"); len(miss) != 0 {
		t.Fatalf("a tested version lacks evidence: %v", miss)
	}
	if miss, _ := c.MissingEvidence(ctx, "web", "dev", "1"); len(miss) != 0 {
		t.Fatalf("a channel without policy requires evidence: %v", miss)
	}
}

// Concurrent promotions under a policy: the refused ones leave no trace,
// the others never lose an entry, and no entry holds an untested version.
func testPolicyConcurrent(t *testing.T, c *catalog.Catalog) {
	tested := map[string]bool{}
	for i := 1; i <= 6; i++ {
		v := fmt.Sprint(i)
		register(t, c, "hot", v, "")
		if i%2 == 0 {
			addEvidence(t, c, "hot", v, "tests", true)
			tested[v] = true
		}
	}
	setPolicy(t, c, catalog.Policy{Image: "hot", Channel: "production", Require: []string{"tests"}})
	var mu sync.Mutex
	changes, refusals := 0, 0
	hammer(t, 12, 20, func(g int, r *rand.Rand) error {
		_, changed, err := c.Promote(ctx, "hot", "production", fmt.Sprint(1+r.Intn(6)), catalog.MoveOptions{Actor: fmt.Sprint("g", g)})
		mu.Lock()
		defer mu.Unlock()
		if errors.Is(err, catalog.ErrPolicy) {
			refusals++
			return nil
		}
		if changed {
			changes++
		}
		return err
	})
	h, err := c.History(ctx, "hot", "production")
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != changes || refusals == 0 {
		t.Fatalf("history has %d entries, %d changes succeeded, %d refused", len(h), changes, refusals)
	}
	for _, e := range h {
		if !tested[e.Version] {
			t.Fatalf("production took untested %s", e.Version)
		}
	}
	checkChain(t, h)
}
