package server

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-build/packer-plugin-strata/catalog"
	_ "github.com/strata-build/packer-plugin-strata/catalog/postgres"
	"github.com/strata-build/packer-plugin-strata/catalog/postgres/pgtest"
	_ "github.com/strata-build/packer-plugin-strata/catalog/sqlite"
)

var (
	pg     *pgtest.Server
	pgErr  error
	pgOnce sync.Once
)

// TestMain stops the throwaway PostgreSQL server the API tests started
// (only those on that backend start it).
func TestMain(m *testing.M) {
	code := m.Run()
	if pg != nil {
		if err := pg.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	os.Exit(code)
}

var dbs atomic.Int64

// backends are a fresh catalog URL per backend.
func backends(t *testing.T) map[string]func(t *testing.T) string {
	return map[string]func(t *testing.T) string{
		"sqlite": func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "catalog.db") },
		"postgres": func(t *testing.T) string {
			pgOnce.Do(func() { pg, pgErr = pgtest.Start() })
			if pgErr != nil {
				t.Fatalf("starting PostgreSQL: %v", pgErr)
			}
			u, err := pg.URL(fmt.Sprintf("serve%d", dbs.Add(1)))
			if err != nil {
				t.Fatal(err)
			}
			return u
		},
	}
}

var ctx = context.Background()

func digest(s string) string { return fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(s))) }

// fixture fills a catalog at url: base-os 1.0, 1.1, 1.2 and app 1.0 (on
// base-os 1.0) and 2.0 (on base-os 1.1); base-os production went 1.0 →
// 1.1, staging holds 1.2; app production holds 1.0, which is out of date
// (base-os 1.0 is on no channel). Production of base-os has a policy.
// It returns the open catalog.
func fixture(t *testing.T, url string) *catalog.Catalog {
	t.Helper()
	c, err := catalog.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.ContentExists = func(*catalog.Version) bool { return true }
	reg := func(image, ver, parent string, pkgs []catalog.Package) *catalog.Version {
		v, err := c.Register(ctx, &catalog.Version{Image: image, Version: ver, ImageID: digest(image + ver), ParentID: parent,
			Labels: map[string]string{"team": "infra", "ver": ver}, Packages: pkgs,
			Layers:    []string{digest("layer" + image + ver)},
			Artifacts: []catalog.Artifact{{Format: "tar", Path: "/nonexistent/" + image + "-" + ver + ".tar", Size: 10, SHA256: fmt.Sprintf("%064x", len(ver))}},
		}, catalog.RegisterOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	pk := func(kv ...string) (out []catalog.Package) {
		for i := 0; i < len(kv); i += 2 {
			out = append(out, catalog.Package{Name: kv[i], Version: kv[i+1], Arch: "amd64"})
		}
		return out
	}
	b10 := reg("base-os", "1.0", "", pk("bash", "5.1", "curl", "7.0"))
	b11 := reg("base-os", "1.1", "", pk("bash", "5.2", "curl", "7.0", "jq", "1.6"))
	reg("base-os", "1.2", "", pk("bash", "5.2", "jq", "1.7"))
	reg("app", "1.0", b10.ImageID, pk("app", "1"))
	reg("app", "2.0", b11.ImageID, pk("app", "2"))
	mv := catalog.MoveOptions{Actor: "fixture", Reason: "setup"}
	for _, p := range [][3]string{{"base-os", "production", "1.0"}, {"base-os", "production", "1.1"}, {"base-os", "staging", "1.2"}, {"app", "production", "1.0"}} {
		if _, _, err := c.Promote(ctx, p[0], p[1], p[2], mv); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.AddEvidence(ctx, "base-os", "1.1", catalog.Evidence{Kind: "tests", Passed: true, Source: "test", Counts: catalog.Counts{Passed: 3}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetPolicy(ctx, catalog.Policy{Image: "base-os", Channel: "production", Require: []string{"tests"}, Actor: "fixture"}); err != nil {
		t.Fatal(err)
	}
	return c
}

// tokens are the fixture's tokens: name → secret.
func tokens(t *testing.T, c *catalog.Catalog) map[string]string {
	out := map[string]string{}
	for name, scopes := range map[string][]string{
		"admin":  {"*:*"},
		"ci":     {"promote:base-os", "rollback:base-os", "evidence:*"},
		"reader": {"read:*"},
		"appdev": {"promote:app", "revoke:app", "restore:app", "read:app"},
	} {
		s, _, err := c.CreateToken(ctx, name, scopes, "fixture")
		if err != nil {
			t.Fatal(err)
		}
		out[name] = s
	}
	return out
}

// start serves c on a test server.
func start(t *testing.T, c *catalog.Catalog, opt Options) (*Server, *httptest.Server) {
	s := New(c, opt)
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return s, ts
}

var _ = time.Second
