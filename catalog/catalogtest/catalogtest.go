// Package catalogtest is the contract every catalog backend must pass: the
// same tests, run against SQLite and PostgreSQL.
package catalogtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-build/packer-plugin-strata/catalog"
)

// NewStore opens a fresh, empty store for one test.
type NewStore func(t *testing.T) catalog.Store

// Run runs the whole contract.
func Run(t *testing.T, newStore NewStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, c *catalog.Catalog)
	}{
		{"RegisterAndRead", testRegisterAndRead},
		{"RegisterErrors", testRegisterErrors},
		{"RegisterRules", testRegisterRules},
		{"RegisterAndPromoteIsOneTransaction", testRegisterPromote},
		{"ResolveParent", testResolveParent},
		{"ResolveTag", testResolveTag},
		{"PromoteAndFrom", testPromote},
		{"RollbackWalksBack", testRollback},
		{"RollbackSkipsRevokedAndMissing", testRollbackSkips},
		{"RevokeRestoreDescendants", testRevoke},
		{"LineageAndOutOfDate", testLineage},
		{"Diff", testDiff},
		{"GC", testGC},
		{"ConcurrentPromoteRollback", testConcurrent},
		{"Evidence", testEvidence},
		{"PolicyMissingKind", testPolicyMissingKind},
		{"PolicyFailedEvidence", testPolicyFailedEvidence},
		{"PolicyFromAndMinAge", testPolicyFromAndAge},
		{"PolicyOverrideRecorded", testPolicyOverride},
		{"PolicyHistory", testPolicyHistory},
		{"PolicyRollbackNotBlocked", testPolicyRollback},
		{"PolicyConcurrentPromote", testPolicyConcurrent},
		{"Tokens", testTokens},
		{"TokenNamesConcurrent", testTokenNamesConcurrent},
		{"RegistryRefs", testRegistryRefs},
		{"MultiArchitectureVersions", testMultiArch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			c := catalog.New(s)
			c.ContentExists = func(*catalog.Version) bool { return true }
			t.Cleanup(func() { c.Close() })
			tc.fn(t, c)
		})
	}
}

var ctx = context.Background()

func digest(s string) string {
	return fmt.Sprintf("sha256:%064x", []byte(s)[:min(len(s), 32)])
}

func min(a, b int) int {
	if a < b {
		return a
	}
	return b
}

func register(t *testing.T, c *catalog.Catalog, image, version, parent string) *catalog.Version {
	t.Helper()
	v, err := c.Register(ctx, &catalog.Version{Image: image, Version: version, ImageID: digest(image + "@" + version + fmt.Sprint(rand.Int())), ParentID: parent}, catalog.RegisterOptions{})
	if err != nil {
		t.Fatalf("register %s@%s: %v", image, version, err)
	}
	return v
}

func mustIs(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error %v, want %v", err, target)
	}
}

func testRegisterAndRead(t *testing.T, c *catalog.Catalog) {
	in := &catalog.Version{
		Image: "base-os", ImageID: digest("a"), ParentID: digest("outside"),
		Labels:      map[string]string{"suite": "bookworm"},
		Tags:        []string{"lts", "slim"},
		Artifacts:   []catalog.Artifact{{Format: "tar.zst", Path: "/out/rootfs.tar.zst", Size: 42, SHA256: strings.Repeat("ab", 32)}},
		Packages:    []catalog.Package{{Name: "apt", Version: "2.6.1", Arch: "amd64"}},
		Build:       catalog.BuildInfo{PackerRunUUID: "run-1", BuildName: "base", TemplateHash: "h"},
		Description: "bookworm minbase, minimized",
		Layers:      []string{digest("layer0"), digest("layer1")},
	}
	v1, err := c.Register(ctx, in, catalog.RegisterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v1.Version != "1.0.0" || v1.Seq != 1 {
		t.Fatalf("first assigned version %q seq %d, want 1.0.0 / 1", v1.Version, v1.Seq)
	}
	in2 := *in
	in2.ImageID = digest("b")
	v2, err := c.Register(ctx, &in2, catalog.RegisterOptions{})
	if err != nil || v2.Version != "1.0.1" {
		t.Fatalf("next assigned version %v %v, want 1.0.1", v2, err)
	}
	register(t, c, "base-os", "2.3.9", "")
	v4 := register(t, c, "base-os", "", "")
	if v4.Version != "2.3.10" {
		t.Fatalf("next after 2.3.9 is %s, want 2.3.10", v4.Version)
	}
	ts, err := c.Register(ctx, &catalog.Version{Image: "nightly", ImageID: digest("n")}, catalog.RegisterOptions{Scheme: catalog.SchemeTimestamp})
	if err != nil || len(ts.Version) != len("20060102.150405") {
		t.Fatalf("timestamp version %v %v", ts, err)
	}

	got, err := c.Get(ctx, "base-os", "1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	if got.Labels["suite"] != "bookworm" || len(got.Tags) != 2 || got.Artifacts[0].Size != 42 || got.Packages[0].Name != "apt" ||
		got.Build.PackerRunUUID != "run-1" || got.ParentID != in.ParentID || got.Created.IsZero() ||
		got.Description != in.Description || len(got.Layers) != 2 || got.Layers[1] != digest("layer1") {
		t.Fatalf("round trip lost content: %+v", got)
	}
	vs, err := c.Versions(ctx, "base-os")
	if err != nil || len(vs) != 4 || vs[0].Version != "1.0.0" || vs[3].Version != "2.3.10" {
		t.Fatalf("versions %v %v", vs, err)
	}
	imgs, err := c.Images(ctx)
	if err != nil || len(imgs) != 2 || imgs[0].Name != "base-os" || imgs[0].Versions != 4 || imgs[0].Latest != "2.3.10" {
		t.Fatalf("images %+v %v", imgs, err)
	}
	_, err = c.Get(ctx, "base-os", "9.9.9")
	mustIs(t, err, catalog.ErrNotFound)
	_, err = c.Versions(ctx, "nope")
	mustIs(t, err, catalog.ErrNotFound)
}

func testRegisterErrors(t *testing.T, c *catalog.Catalog) {
	register(t, c, "img", "1.0.0", "")
	_, err := c.Register(ctx, &catalog.Version{Image: "img", Version: "1.0.0", ImageID: digest("x")}, catalog.RegisterOptions{})
	mustIs(t, err, catalog.ErrConflict)
	for _, bad := range []*catalog.Version{
		{Image: "Bad Name", ImageID: digest("x")},
		{Image: "img", Version: "a b", ImageID: digest("x")},
		{Image: "img"},
		{Image: "img", ImageID: "sha256:x"},
		{Image: "img", ImageID: digest("y"), ParentID: "base-os"},
		{Image: "img", ImageID: digest("x"), Artifacts: []catalog.Artifact{{Path: "", SHA256: "x"}}},
		{Image: "img", ImageID: digest("z"), Labels: map[string]string{"note": "a\x1b[2Jb"}},
		{Image: "img", ImageID: digest("z"), Labels: map[string]string{"a\nb": "x"}},
		{Image: "img", ImageID: digest("z"), Tags: []string{"ok", "row\tforged"}},
		{Image: "img", ImageID: digest("z"), Description: "two\nlines"},
		{Image: "img", ImageID: digest("z"), Layers: []string{"layer0"}},
	} {
		_, err := c.Register(ctx, bad, catalog.RegisterOptions{})
		mustIs(t, err, catalog.ErrInvalid)
	}
	// Nothing of the refused registrations is visible.
	if vs, _ := c.Versions(ctx, "img"); len(vs) != 1 {
		t.Fatalf("refused registrations left %d versions", len(vs))
	}
}

func testPromote(t *testing.T, c *catalog.Catalog) {
	register(t, c, "app", "1.0.0", "")
	register(t, c, "app", "1.0.1", "")
	e, changed, err := c.Promote(ctx, "app", "dev", "1.0.0", catalog.MoveOptions{Actor: "ci", Reason: "first"})
	if err != nil || !changed || e.Previous != "" || e.Actor != "ci" || e.Reason != "first" || e.Action != catalog.ActionPromote {
		t.Fatalf("promote: %+v %v %v", e, changed, err)
	}
	if _, changed, _ := c.Promote(ctx, "app", "dev", "1.0.0", catalog.MoveOptions{}); changed {
		t.Fatal("promoting what the channel holds must change nothing")
	}
	e, _, err = c.Promote(ctx, "app", "dev", "1.0.1", catalog.MoveOptions{})
	if err != nil || e.Previous != "1.0.0" {
		t.Fatalf("second promote %+v %v", e, err)
	}
	_, _, err = c.Promote(ctx, "app", "production", "1.0.1", catalog.MoveOptions{From: "staging"})
	mustIs(t, err, catalog.ErrNotFound)
	c.Promote(ctx, "app", "staging", "1.0.0", catalog.MoveOptions{})
	_, _, err = c.Promote(ctx, "app", "production", "1.0.1", catalog.MoveOptions{From: "staging"})
	mustIs(t, err, catalog.ErrConflict)
	e, _, err = c.Promote(ctx, "app", "production", "", catalog.MoveOptions{From: "staging"})
	if err != nil || e.Version != "1.0.0" {
		t.Fatalf("promote --from staging: %+v %v", e, err)
	}
	_, _, err = c.Promote(ctx, "app", "dev", "7.7.7", catalog.MoveOptions{})
	mustIs(t, err, catalog.ErrNotFound)
	_, _, err = c.Promote(ctx, "ghost", "dev", "1.0.0", catalog.MoveOptions{})
	mustIs(t, err, catalog.ErrNotFound)
	_, _, err = c.Promote(ctx, "app", "Bad Channel", "1.0.0", catalog.MoveOptions{})
	mustIs(t, err, catalog.ErrInvalid)
	c.Revoke(ctx, "app", "1.0.1", catalog.RevokeOptions{Reason: "broken"})
	_, _, err = c.Promote(ctx, "app", "staging", "1.0.1", catalog.MoveOptions{})
	mustIs(t, err, catalog.ErrRevoked)

	c.ContentExists = func(v *catalog.Version) bool { return v.Version != "1.0.0" }
	_, _, err = c.Promote(ctx, "app", "canary", "1.0.0", catalog.MoveOptions{})
	mustIs(t, err, catalog.ErrConflict)
	c.ContentExists = func(*catalog.Version) bool { return true }

	chs, err := c.Channels(ctx, "app")
	if err != nil || len(chs) != 3 {
		t.Fatalf("channels %+v %v", chs, err)
	}
	for _, ch := range chs {
		if ch.Name == "dev" && (!ch.Revoked || ch.Version != "1.0.1") {
			t.Fatalf("dev should show it holds a revoked version: %+v", ch)
		}
	}
	_, err = c.Resolve(ctx, "app", "dev")
	mustIs(t, err, catalog.ErrRevoked)
	if v, err := c.Resolve(ctx, "app", "production"); err != nil || v.Version != "1.0.0" {
		t.Fatalf("resolve production %v %v", v, err)
	}
}

func testRollback(t *testing.T, c *catalog.Catalog) {
	for _, v := range []string{"1", "2", "3"} {
		register(t, c, "svc", v, "")
		c.Promote(ctx, "svc", "production", v, catalog.MoveOptions{})
	}
	steps := []string{"2", "1"}
	for _, want := range steps {
		e, _, err := c.Rollback(ctx, "svc", "production", catalog.MoveOptions{Actor: "oncall", Reason: "bad deploy"})
		if err != nil || e.Version != want || e.Action != catalog.ActionRollback {
			t.Fatalf("rollback: %+v %v, want %s", e, err, want)
		}
	}
	_, _, err := c.Rollback(ctx, "svc", "production", catalog.MoveOptions{})
	mustIs(t, err, catalog.ErrNoRollback)
	// Promote forward again, then --to an older one.
	c.Promote(ctx, "svc", "production", "3", catalog.MoveOptions{})
	e, _, err := c.Rollback(ctx, "svc", "production", catalog.MoveOptions{To: "1"})
	if err != nil || e.Version != "1" || e.Previous != "3" {
		t.Fatalf("rollback --to 1: %+v %v", e, err)
	}
	_, _, err = c.Rollback(ctx, "svc", "production", catalog.MoveOptions{To: "3"})
	mustIs(t, err, catalog.ErrNoRollback)
	_, _, err = c.Rollback(ctx, "svc", "staging", catalog.MoveOptions{})
	mustIs(t, err, catalog.ErrNotFound)

	h, err := c.History(ctx, "svc", "production")
	if err != nil {
		t.Fatal(err)
	}
	checkChain(t, h)
	if len(h) != 7 {
		t.Fatalf("history has %d entries, want 7: %+v", len(h), h)
	}
}

// checkChain: every entry's previous is the version before it.
func checkChain(t *testing.T, h []catalog.ChannelEntry) {
	t.Helper()
	for i := range h {
		want := ""
		if i > 0 {
			want = h[i-1].Version
			if h[i].ID <= h[i-1].ID || h[i].Time.Before(h[i-1].Time.Add(-time.Second)) {
				t.Fatalf("history out of order at %d: %+v", i, h[i])
			}
		}
		if h[i].Previous != want {
			t.Fatalf("broken chain at entry %d: previous %q, want %q", i, h[i].Previous, want)
		}
	}
}

func testRollbackSkips(t *testing.T, c *catalog.Catalog) {
	for _, v := range []string{"1", "2", "3", "4"} {
		register(t, c, "svc", v, "")
		c.Promote(ctx, "svc", "production", v, catalog.MoveOptions{})
	}
	c.Revoke(ctx, "svc", "3", catalog.RevokeOptions{Reason: "CVE"})
	c.ContentExists = func(v *catalog.Version) bool { return v.Version != "2" }
	e, skipped, err := c.Rollback(ctx, "svc", "production", catalog.MoveOptions{})
	if err != nil || e.Version != "1" {
		t.Fatalf("rollback should skip revoked 3 and content-less 2: %+v %v", e, err)
	}
	if len(skipped) != 2 || !strings.Contains(skipped[0].Skipped, "revoked") || !strings.Contains(skipped[1].Skipped, "gone") {
		t.Fatalf("skipped %+v", skipped)
	}
}

func testRevoke(t *testing.T, c *catalog.Catalog) {
	base := register(t, c, "base", "1", "")
	rt := register(t, c, "runtime", "1", base.ImageID)
	app := register(t, c, "app", "1", rt.ImageID)
	other := register(t, c, "base", "2", "")
	_, err := c.Revoke(ctx, "base", "1", catalog.RevokeOptions{})
	mustIs(t, err, catalog.ErrInvalid)
	changed, err := c.Revoke(ctx, "base", "1", catalog.RevokeOptions{Reason: "CVE-1", Descendants: true, Actor: "sec-team"})
	if err != nil || len(changed) != 3 {
		t.Fatalf("revoke with descendants changed %d: %v", len(changed), err)
	}
	for _, ref := range [][2]string{{"base", "1"}, {"runtime", "1"}, {"app", "1"}} {
		v, _ := c.Get(ctx, ref[0], ref[1])
		if !v.Revoked || v.RevokedReason != "CVE-1" || v.RevokedAt == nil || v.RevokedAt.IsZero() || v.RevokedBy != "sec-team" {
			t.Fatalf("%s@%s not revoked: %+v", ref[0], ref[1], v)
		}
	}
	if v, _ := c.Get(ctx, "base", other.Version); v.Revoked {
		t.Fatal("an unrelated version was revoked")
	}
	changed, err = c.Restore(ctx, "base", "1", catalog.RevokeOptions{})
	if err != nil || len(changed) != 1 {
		t.Fatalf("restore without descendants: %d %v", len(changed), err)
	}
	if v, _ := c.Get(ctx, "app", app.Version); !v.Revoked {
		t.Fatal("restore without descendants restored a descendant")
	}
	if v, _ := c.Get(ctx, "base", "1"); v.Revoked || v.RevokedBy != "" {
		t.Fatalf("restored, still recorded as revoked by someone: %+v", v)
	}
	if changed, _ = c.Restore(ctx, "base", "1", catalog.RevokeOptions{Descendants: true}); len(changed) != 2 {
		t.Fatalf("restore with descendants changed %d, want 2", len(changed))
	}
	_, err = c.Revoke(ctx, "base", "404", catalog.RevokeOptions{Reason: "x"})
	mustIs(t, err, catalog.ErrNotFound)
}

func testLineage(t *testing.T, c *catalog.Catalog) {
	b1 := register(t, c, "base", "1", "")
	b2 := register(t, c, "base", "2", "")
	r1 := register(t, c, "runtime", "1", b1.ImageID)
	a1 := register(t, c, "app", "1", r1.ImageID)
	register(t, c, "app", "2", r1.ImageID)
	l, err := c.Lineage(ctx, "runtime", "1")
	if err != nil || len(l.Ancestors) != 1 || l.Ancestors[0].Ref() != "base@1" || len(l.Descendants) != 2 {
		t.Fatalf("lineage %+v %v", l, err)
	}
	l, _ = c.Lineage(ctx, "app", "1")
	if len(l.Ancestors) != 2 || l.Ancestors[1].Ref() != "base@1" {
		t.Fatalf("app ancestors %+v", l.Ancestors)
	}
	c.Promote(ctx, "base", "production", "1", catalog.MoveOptions{})
	c.Promote(ctx, "runtime", "production", "1", catalog.MoveOptions{})
	c.Promote(ctx, "app", "production", a1.Version, catalog.MoveOptions{})
	if ood, _ := c.OutOfDate(ctx, ""); len(ood) != 0 {
		t.Fatalf("nothing is out of date yet: %+v", ood)
	}
	if st, err := c.Stale(ctx, "app", a1.Version); err != nil || st != nil {
		t.Fatalf("app@1 is current: %+v %v", st, err)
	}
	// base's channel moves: runtime@1 sits on a replaced base, and so does
	// app@1 on runtime@1 (lineage is transitive), though runtime@1 is
	// still what runtime's channel holds.
	c.Promote(ctx, "base", "production", b2.Version, catalog.MoveOptions{})
	ood, err := c.OutOfDate(ctx, "")
	if err != nil || len(ood) != 2 {
		t.Fatalf("runtime@1 and app@1 should be out of date: %+v %v", ood, err)
	}
	byImage := map[string]catalog.OutOfDate{}
	for _, o := range ood {
		byImage[o.Image] = o
	}
	if r := byImage["runtime"]; r.Parent != "base@1" || r.Ancestor != "base@1" || strings.Join(r.Chain, " ") != "base@1" ||
		strings.Join(r.AncestorChannels, " ") != "production=2" {
		t.Errorf("runtime: %+v", r)
	}
	if a := byImage["app"]; a.Channel != "production" || a.Version != "1" || a.Parent != "runtime@1" || a.Ancestor != "base@1" ||
		strings.Join(a.Chain, " ") != "runtime@1 base@1" {
		t.Errorf("app: %+v", a)
	}
	if only, _ := c.OutOfDate(ctx, "app"); len(only) != 1 || only[0].Image != "app" {
		t.Fatalf("out of date in app: %+v", only)
	}
	st, err := c.Stale(ctx, "app", "2") // not on a channel, asked by version
	if err != nil || st == nil || st.Ancestor != "base@1" {
		t.Fatalf("app@2 sits on base@1 too: %+v %v", st, err)
	}
	if st, _ := c.Stale(ctx, "base", b2.Version); st != nil {
		t.Fatalf("a base has no ancestor to be stale: %+v", st)
	}
	// StaleOf answers the same for many versions in one transaction.
	l, _ = c.Lineage(ctx, "base", "1")
	many, err := c.StaleOf(ctx, append([]*catalog.Version{l.Version}, l.Descendants...))
	if err != nil || len(many) != 3 || many["app@2"] == nil || many["app@2"].Ancestor != "base@1" || many["runtime@1"].Ancestor != "base@1" {
		t.Fatalf("StaleOf: %+v %v", many, err)
	}
	// The base moves back: nothing is out of date.
	c.Promote(ctx, "base", "production", "1", catalog.MoveOptions{})
	if ood, _ := c.OutOfDate(ctx, ""); len(ood) != 0 {
		t.Fatalf("base@1 is on production again: %+v", ood)
	}
}

func testDiff(t *testing.T, c *catalog.Catalog) {
	a, _ := c.Register(ctx, &catalog.Version{Image: "x", Version: "1", ImageID: digest("1"),
		Labels:    map[string]string{"keep": "1", "gone": "1", "chg": "a"},
		Packages:  []catalog.Package{{Name: "apt", Version: "1"}, {Name: "old", Version: "1"}, {Name: "same", Version: "1"}},
		Artifacts: []catalog.Artifact{{Format: "tar.zst", Path: "/a", SHA256: strings.Repeat("1", 64)}}}, catalog.RegisterOptions{})
	b, _ := c.Register(ctx, &catalog.Version{Image: "x", Version: "2", ImageID: digest("2"),
		Labels:    map[string]string{"keep": "1", "chg": "b", "new": "1"},
		Packages:  []catalog.Package{{Name: "apt", Version: "2"}, {Name: "new", Version: "1"}, {Name: "same", Version: "1"}},
		Artifacts: []catalog.Artifact{{Format: "tar.zst", Path: "/b", SHA256: strings.Repeat("2", 64)}}}, catalog.RegisterOptions{})
	d, err := c.Diff(ctx, "x", a.Version, "x", b.Version)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.PackagesAdded) != 1 || d.PackagesAdded[0].Name != "new" || len(d.PackagesRemoved) != 1 || d.PackagesRemoved[0].Name != "old" ||
		len(d.PackagesChanged) != 1 || d.PackagesChanged[0].To != "2" || len(d.LabelsChanged) != 3 || len(d.ArtifactsChanged) != 1 || !d.ImageIDChanged {
		t.Fatalf("diff %+v", d)
	}
	if same, _ := c.Diff(ctx, "x", "1", "x", "1"); !same.Empty() {
		t.Fatalf("a version differs from itself: %+v", same)
	}
}

func testGC(t *testing.T, c *catalog.Catalog) {
	now := time.Now()
	c.Now = func() time.Time { return now.Add(-48 * time.Hour) }
	base := register(t, c, "base", "1", "")
	for i := 1; i <= 8; i++ {
		register(t, c, "app", fmt.Sprint(i), base.ImageID)
	}
	register(t, c, "base", "2", "")
	for i := 1; i <= 6; i++ {
		c.Promote(ctx, "app", "production", fmt.Sprint(i), catalog.MoveOptions{})
	}
	sum := strings.Repeat("c", 64)
	c.Register(ctx, &catalog.Version{Image: "app", Version: "pinned", ImageID: digest("p"),
		Artifacts: []catalog.Artifact{{Path: "/store/shared", SHA256: sum}}}, catalog.RegisterOptions{})
	c.Promote(ctx, "app", "pinned", "pinned", catalog.MoveOptions{})
	c.Register(ctx, &catalog.Version{Image: "app", Version: "stale", ImageID: digest("s"),
		Artifacts: []catalog.Artifact{{Path: "/store/stale", SHA256: sum}, {Path: "/store/shared", SHA256: sum}}}, catalog.RegisterOptions{})
	c.Now = func() time.Time { return now }
	register(t, c, "app", "fresh", "")

	for _, bad := range []catalog.GCOptions{{KeepRollbacks: -1, MinAge: time.Hour}, {KeepRollbacks: 2, MinAge: -time.Hour}} {
		_, err := c.GC(ctx, bad)
		mustIs(t, err, catalog.ErrInvalid)
	}
	dry, err := c.GC(ctx, catalog.GCOptions{KeepRollbacks: 2, MinAge: catalog.DefaultMinAge, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	deleted := map[string]bool{}
	for _, v := range dry.Deleted {
		deleted[v.Ref()] = true
	}
	if len(dry.Files) != 1 || dry.Files[0] != "/store/stale" {
		t.Errorf("files to remove %v: want only /store/stale (a kept version still names /store/shared)", dry.Files)
	}
	for _, want := range []string{"app@1", "app@2", "app@3", "app@7", "app@8", "base@2", "app@stale"} {
		if !deleted[want] {
			t.Errorf("gc should delete %s; plan %v, kept %v", want, deleted, dry.Kept)
		}
	}
	for _, keep := range []string{"app@6", "app@5", "app@4", "base@1", "app@fresh", "app@pinned"} {
		if deleted[keep] {
			t.Errorf("gc would delete %s (%s)", keep, "head, rollback window, ancestor or fresh")
		}
	}
	if vs, _ := c.Versions(ctx, "app"); len(vs) != 11 {
		t.Fatal("a dry run deleted something")
	}
	res, err := c.GC(ctx, catalog.GCOptions{KeepRollbacks: 2, MinAge: catalog.DefaultMinAge})
	if err != nil || len(res.Deleted) != len(dry.Deleted) {
		t.Fatalf("gc deleted %d, planned %d: %v", len(res.Deleted), len(dry.Deleted), err)
	}
	for i := 0; i < 2; i++ {
		if _, _, err := c.Rollback(ctx, "app", "production", catalog.MoveOptions{}); err != nil {
			t.Fatalf("a rollback within the keep window failed after gc: %v", err)
		}
	}
	// Zero windows mean zero: the fresh version and the rollback window go.
	zero, err := c.GC(ctx, catalog.GCOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	gone := map[string]bool{}
	for _, v := range zero.Deleted {
		gone[v.Ref()] = true
	}
	if !gone["app@fresh"] || !gone["app@5"] || gone["app@4"] {
		t.Errorf("gc with zero windows (production holds app@4 now) deletes %v, kept %v", gone, zero.Kept)
	}
}

// testConcurrent: 16 goroutines promote and roll back one channel at once;
// afterwards the history holds every change, in an unbroken chain.
func testConcurrent(t *testing.T, c *catalog.Catalog) {
	for i := 1; i <= 5; i++ {
		register(t, c, "hot", fmt.Sprint(i), "")
	}
	c.Promote(ctx, "hot", "production", "1", catalog.MoveOptions{})
	var mu sync.Mutex
	changes := 1
	hammer(t, 16, 20, func(g int, r *rand.Rand) error {
		if r.Intn(3) == 0 {
			_, _, err := c.Rollback(ctx, "hot", "production", catalog.MoveOptions{Actor: fmt.Sprint("g", g)})
			if err != nil && !errors.Is(err, catalog.ErrNoRollback) {
				return err
			}
			if err == nil {
				mu.Lock()
				changes++
				mu.Unlock()
			}
			return nil
		}
		_, changed, err := c.Promote(ctx, "hot", "production", fmt.Sprint(1+r.Intn(5)), catalog.MoveOptions{Actor: fmt.Sprint("g", g)})
		if changed {
			mu.Lock()
			changes++
			mu.Unlock()
		}
		return err
	})
	h, err := c.History(ctx, "hot", "production")
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != changes {
		t.Fatalf("history has %d entries, but %d changes succeeded", len(h), changes)
	}
	checkChain(t, h)
}

// hammer runs step steps times in each of n goroutines at once (each with
// its own seeded random source) and reports every error a step returns.
func hammer(t *testing.T, n, steps int, step func(g int, r *rand.Rand) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n*steps)
	for g := 0; g < n; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			r := rand.New(rand.NewSource(int64(g)))
			for i := 0; i < steps; i++ {
				if err := step(g, r); err != nil {
					errs <- err
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent move failed: %v", err)
	}
}

// crashEnv tells a re-executed test binary to be the writer that gets killed.
const crashEnv = "STRATA_CATALOGTEST_CRASH_URL"

// MaybeCrashChild must be called first in a backend's TestMain: in the
// child process it registers a version, announces it before committing,
// and waits to be killed.
func MaybeCrashChild() {
	url := os.Getenv(crashEnv)
	if url == "" {
		return
	}
	c, err := catalog.Open(url)
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(3)
	}
	err = c.Store().Update(context.Background(), func(tx catalog.Tx) error {
		if err := tx.LockImage("crash"); err != nil {
			return err
		}
		v := &catalog.Version{Image: "crash", Version: "1.0.0", Seq: 1, ImageID: digest("crash"), Created: time.Now()}
		if err := tx.InsertVersion(v); err != nil {
			return err
		}
		if err := tx.AppendChannelEntry(&catalog.ChannelEntry{Image: "crash", Channel: "dev", Version: "1.0.0", Action: catalog.ActionPromote, Time: time.Now()}); err != nil {
			return err
		}
		fmt.Println("inserted")
		time.Sleep(time.Hour)
		return nil
	})
	fmt.Println("unexpected:", err)
	os.Exit(4)
}

// KilledWriterLeavesNothing kills a process in the middle of registering a
// version (inserted, not committed) and checks nothing of it is visible
// and the catalog still takes writes.
func KilledWriterLeavesNothing(t *testing.T, url string) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashEnv+"="+url)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "inserted" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("the writer did not get to its insert: %q", line)
	}
	cmd.Process.Kill()
	cmd.Wait()

	c, err := catalog.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Get(ctx, "crash", "1.0.0"); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("a killed writer's version is visible: %v", err)
	}
	if _, err := c.History(ctx, "crash", "dev"); err == nil {
		t.Fatal("a killed writer's channel entry is visible")
	}
	if _, err := c.Register(ctx, &catalog.Version{Image: "crash", Version: "1.0.0", ImageID: digest("again")}, catalog.RegisterOptions{}); err != nil {
		t.Fatalf("the catalog takes no writes after a killed writer: %v", err)
	}
}

func testRegisterRules(t *testing.T, c *catalog.Catalog) {
	id := digest("same content")
	if _, err := c.Register(ctx, &catalog.Version{Image: "dup", ImageID: id}, catalog.RegisterOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err := c.Register(ctx, &catalog.Version{Image: "dup", ImageID: id}, catalog.RegisterOptions{})
	mustIs(t, err, catalog.ErrConflict)
	if !strings.Contains(err.Error(), "dup@1.0.0") || !strings.Contains(err.Error(), "allow-duplicate") {
		t.Fatalf("the conflict must name the version holding the content and the way out: %v", err)
	}
	if v, err := c.Register(ctx, &catalog.Version{Image: "dup", ImageID: id}, catalog.RegisterOptions{AllowDuplicate: true}); err != nil || v.Version != "1.0.1" {
		t.Fatalf("allow duplicate: %+v %v", v, err)
	}
	// Another image may hold the same content.
	if _, err := c.Register(ctx, &catalog.Version{Image: "other", ImageID: id}, catalog.RegisterOptions{}); err != nil {
		t.Fatal(err)
	}
	// Control characters in moves are refused before anything is written.
	_, _, err = c.Promote(ctx, "dup", "dev", "1.0.0", catalog.MoveOptions{Reason: "ok\n1 2026 promote 9.9.9 evil"})
	mustIs(t, err, catalog.ErrInvalid)
	_, _, err = c.Promote(ctx, "dup", "dev", "1.0.0", catalog.MoveOptions{Actor: "\x1b]0;pwned\x07"})
	mustIs(t, err, catalog.ErrInvalid)
	if _, err := c.History(ctx, "dup", "dev"); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("a refused move left history: %v", err)
	}
	_, err = c.Revoke(ctx, "dup", "1.0.0", catalog.RevokeOptions{Reason: "bad\rreason"})
	mustIs(t, err, catalog.ErrInvalid)
	// Channels lists every channel that has history.
	for _, ch := range []string{"a", "b", "c"} {
		if _, _, err := c.Promote(ctx, "dup", ch, "1.0.0", catalog.MoveOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if chs, err := c.Channels(ctx, "dup"); err != nil || len(chs) != 3 {
		t.Fatalf("channels %+v %v", chs, err)
	}
}

// testRegisterPromote: a registration that promotes is one transaction: a
// promotion that fails leaves no version behind.
func testRegisterPromote(t *testing.T, c *catalog.Catalog) {
	v, err := c.Register(ctx, &catalog.Version{Image: "rp", ImageID: digest("rp1")}, catalog.RegisterOptions{Promote: "dev", Move: catalog.MoveOptions{Actor: "ci", Reason: "first"}})
	if err != nil {
		t.Fatal(err)
	}
	h, err := c.History(ctx, "rp", "dev")
	if err != nil || len(h) != 1 || h[0].Version != v.Version || h[0].Actor != "ci" {
		t.Fatalf("history %+v %v", h, err)
	}
	// The promotion fails inside the transaction: the content is gone.
	c.ContentExists = func(*catalog.Version) bool { return false }
	defer func() { c.ContentExists = func(*catalog.Version) bool { return true } }()
	_, err = c.Register(ctx, &catalog.Version{Image: "rp", ImageID: digest("rp2")}, catalog.RegisterOptions{Promote: "dev"})
	mustIs(t, err, catalog.ErrConflict)
	if vs, _ := c.Versions(ctx, "rp"); len(vs) != 1 {
		t.Fatalf("a failed register --promote left %d versions", len(vs))
	}
	_, err = c.Register(ctx, &catalog.Version{Image: "rp", ImageID: digest("rp3")}, catalog.RegisterOptions{Promote: "Bad Channel"})
	mustIs(t, err, catalog.ErrInvalid)
	_, err = c.Register(ctx, &catalog.Version{Image: "rp", ImageID: digest("rp3")}, catalog.RegisterOptions{Channels: []string{"dev", "Bad Channel"}})
	mustIs(t, err, catalog.ErrInvalid)
	if vs, _ := c.Versions(ctx, "rp"); len(vs) != 1 {
		t.Fatalf("a refused channel list left %d versions", len(vs))
	}
	c.ContentExists = func(*catalog.Version) bool { return true }
	// Several channels, all in the registering transaction.
	v, err = c.Register(ctx, &catalog.Version{Image: "rp", ImageID: digest("rp4")}, catalog.RegisterOptions{Channels: []string{"dev", "qa"}, Move: catalog.MoveOptions{Actor: "packer", Reason: "built"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range []string{"dev", "qa"} {
		h, err := c.History(ctx, "rp", ch)
		if err != nil || h[len(h)-1].Version != v.Version || h[len(h)-1].Actor != "packer" || h[len(h)-1].Reason != "built" {
			t.Fatalf("%s history %+v %v", ch, h, err)
		}
	}
}

func testResolveParent(t *testing.T, c *catalog.Catalog) {
	a := "sha256:aaaaaaaaaaaa" + strings.Repeat("1", 52)
	b := "sha256:aaaaaaaaaaaa" + strings.Repeat("2", 52)
	for i, id := range []string{a, b} {
		if _, err := c.Register(ctx, &catalog.Version{Image: "base", Version: fmt.Sprint(i + 1), ImageID: id}, catalog.RegisterOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	check := func(ref, want string, wantExternal bool, wantErr error) {
		t.Helper()
		id, ext, err := c.ResolveParent(ctx, ref)
		if wantErr != nil {
			if !errors.Is(err, wantErr) {
				t.Fatalf("%s: error %v, want %v", ref, err, wantErr)
			}
			return
		}
		if err != nil || id != want || ext != wantExternal {
			t.Fatalf("%s: %s %v %v", ref, id, ext, err)
		}
	}
	check("base@1", a, false, nil)
	check(a, a, false, nil)
	check("sha256:aaaaaaaaaaaa1", a, false, nil)
	check("aaaaaaaaaaaa2", b, false, nil)
	check("sha256:aaaaaaaaaaaa", "", false, catalog.ErrInvalid) // ambiguous
	check("sha256:"+strings.Repeat("c", 64), "sha256:"+strings.Repeat("c", 64), true, nil)
	check("sha256:abc", "", false, catalog.ErrInvalid)
	check("sha256:dddddddddddd", "", false, catalog.ErrNotFound)
	check("base@9", "", false, catalog.ErrNotFound)
	check("base", "", false, catalog.ErrInvalid)
}

func testResolveTag(t *testing.T, c *catalog.Catalog) {
	for i, tags := range [][]string{{"lts"}, {"edge"}, {"lts", "edge"}} {
		if _, err := c.Register(ctx, &catalog.Version{Image: "tagged", ImageID: digest(fmt.Sprint("tag", i)), Tags: tags}, catalog.RegisterOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	v, err := c.ResolveTag(ctx, "tagged", "lts")
	if err != nil || v.Version != "1.0.2" || len(v.Tags) != 2 {
		t.Fatalf("newest lts: %+v %v", v, err)
	}
	c.Revoke(ctx, "tagged", "1.0.2", catalog.RevokeOptions{Reason: "bad"})
	if v, err := c.ResolveTag(ctx, "tagged", "lts"); err != nil || v.Version != "1.0.0" {
		t.Fatalf("lts past a revoked version: %+v %v", v, err)
	}
	c.Revoke(ctx, "tagged", "1.0.1", catalog.RevokeOptions{Reason: "bad"})
	_, err = c.ResolveTag(ctx, "tagged", "edge")
	mustIs(t, err, catalog.ErrRevoked)
	_, err = c.ResolveTag(ctx, "tagged", "nope")
	mustIs(t, err, catalog.ErrNotFound)
	_, err = c.ResolveTag(ctx, "ghost", "lts")
	mustIs(t, err, catalog.ErrNotFound)
}

// OnlyWritersCreate checks, at a URL where no catalog is yet, that
// OpenExisting refuses with ErrNoCatalog and a message naming the catalog,
// and creates nothing (asking twice answers the same); that Open creates
// the catalog and says so; and that both then open it as it is.
func OnlyWritersCreate(t *testing.T, url string) {
	for i := 0; i < 2; i++ {
		_, err := catalog.OpenExisting(url)
		if !errors.Is(err, catalog.ErrNoCatalog) || !errors.Is(err, catalog.ErrNotFound) {
			t.Fatalf("opening a catalog that does not exist (try %d): %v", i+1, err)
		}
		if want := "catalog " + catalog.RedactURL(url) + " does not exist"; !strings.Contains(err.Error(), want) {
			t.Fatalf("the error %q does not say %q", err, want)
		}
	}
	c, err := catalog.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Created {
		t.Fatal("Open made a new catalog and did not say so")
	}
	register(t, c, "img", "1.0.0", "")
	c.Close()
	for _, open := range []func(string) (*catalog.Catalog, error){catalog.OpenExisting, catalog.Open} {
		c, err := open(url)
		if err != nil {
			t.Fatal(err)
		}
		if c.Created {
			t.Fatal("an existing catalog is said to be new")
		}
		if _, err := c.Get(ctx, "img", "1.0.0"); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
}

func testRegistryRefs(t *testing.T, c *catalog.Catalog) {
	v := register(t, c, "base-os", "1.0", "")
	d1, d2 := "sha256:"+strings.Repeat("1", 64), "sha256:"+strings.Repeat("2", 64)
	refs := []catalog.RegistryRef{{Ref: "registry.example:5000/team/base-os:1.0", Digest: d1}, {Ref: "registry.example:5000/team/base-os:dev", Digest: d1}}
	if err := c.AddRegistryRefs(ctx, v.Image, v.Version, refs); err != nil {
		t.Fatal(err)
	}
	// The channel tag pushed again: the same reference, a new digest.
	if err := c.AddRegistryRefs(ctx, v.Image, v.Version, []catalog.RegistryRef{{Ref: refs[1].Ref, Digest: d2}}); err != nil {
		t.Fatal(err)
	}
	got, err := c.Get(ctx, v.Image, v.Version)
	if err != nil {
		t.Fatal(err)
	}
	rr := got.RegistryRefs()
	if len(rr) != 2 || rr[0] != refs[0] || rr[1].Digest != d2 || len(got.Artifacts) != len(v.Artifacts)+2 {
		t.Fatalf("registry refs %+v (artifacts %+v)", rr, got.Artifacts)
	}
	if err := c.AddRegistryRefs(ctx, v.Image, v.Version, []catalog.RegistryRef{{Ref: "x", Digest: "nope"}}); err == nil {
		t.Fatal("a bad digest was recorded")
	}
	if err := c.AddRegistryRefs(ctx, v.Image, "9.9", refs); err == nil {
		t.Fatal("refs recorded on a version that does not exist")
	}
}
