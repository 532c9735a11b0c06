package postgres_test

import (
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/strata-build/packer-plugin-strata/catalog"
	"github.com/strata-build/packer-plugin-strata/catalog/catalogtest"
	"github.com/strata-build/packer-plugin-strata/catalog/postgres"
	"github.com/strata-build/packer-plugin-strata/catalog/postgres/pgtest"
	"github.com/strata-build/packer-plugin-strata/catalog/sqlstore"
)

var server *pgtest.Server

// TestMain starts a throwaway server for this package and stops it after.
func TestMain(m *testing.M) {
	catalogtest.MaybeCrashChild()
	var err error
	server, err = pgtest.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting PostgreSQL:", err)
		os.Exit(1)
	}
	code := m.Run()
	if err := server.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(code)
}

var dbs atomic.Int64

func freshURL(t *testing.T) string {
	u, err := server.URL(fmt.Sprintf("t%d", dbs.Add(1)))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestContract(t *testing.T) {
	catalogtest.Run(t, func(t *testing.T) catalog.Store {
		s, err := postgres.Open(freshURL(t))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestOnlyWritersCreate(t *testing.T) {
	catalogtest.OnlyWritersCreate(t, freshURL(t))
}

func TestKilledWriterLeavesNothing(t *testing.T) {
	catalogtest.KilledWriterLeavesNothing(t, freshURL(t))
}

func TestTwoHostsMigrateOnce(t *testing.T) {
	u := freshURL(t)
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		go func() {
			s, err := postgres.Open(u)
			if err == nil {
				s.Close()
			}
			errs <- err
		}()
	}
	for i := 0; i < 4; i++ {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent open/migrate: %v", err)
		}
	}
}

// A catalog made at schema 2 (before evidence and policies) migrates on
// open, keeps its versions and history, and takes evidence and policies.
func TestMigrationFromSchema2(t *testing.T) {
	u := freshURL(t)
	db, err := sql.Open("pgx", u)
	if err != nil {
		t.Fatal(err)
	}
	if err := sqlstore.Migrate(t.Context(), db, sqlstore.Dialect{Numbered: true}, "", sqlstore.Migrations("BIGSERIAL PRIMARY KEY")[:2]); err != nil {
		t.Fatal(err)
	}
	id := "sha256:" + strings.Repeat("ef", 32)
	for _, q := range []string{
		`INSERT INTO images (name, created_ns) VALUES ('old', 1)`,
		`INSERT INTO versions (image, version, seq, image_id, created_ns) VALUES ('old', '1.0.0', 1, '` + id + `', 1)`,
		`INSERT INTO channel_history (image, channel, version, action, at_ns) VALUES ('old', 'staging', '1.0.0', 'promote', 2)`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	s, err := postgres.Open(u)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := sqlstore.SchemaVersion(t.Context(), s.Write); err != nil || v != latestSchema() {
		t.Fatalf("schema version %d %v", v, err)
	}
	c := catalog.New(s)
	defer c.Close()
	c.ContentExists = func(*catalog.Version) bool { return true }
	if h, err := c.History(t.Context(), "old", "staging"); err != nil || len(h) != 1 || h[0].Version != "1.0.0" {
		t.Fatalf("history after migrating: %+v %v", h, err)
	}
	if _, err := c.SetPolicy(t.Context(), catalog.Policy{Image: "old", Channel: "production", Require: []string{"tests"}, From: "staging"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Promote(t.Context(), "old", "production", "", catalog.MoveOptions{From: "staging"}); !errors.Is(err, catalog.ErrPolicy) {
		t.Fatalf("the migrated catalog's policy did not refuse: %v", err)
	}
	if _, err := c.AddEvidence(t.Context(), "old", "1.0.0", catalog.Evidence{Kind: "tests", Passed: true, Source: "cli"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Promote(t.Context(), "old", "production", "", catalog.MoveOptions{From: "staging"}); err != nil {
		t.Fatal(err)
	}
}

// latestSchema is the newest migration's number.
func latestSchema() int {
	m := sqlstore.Migrations("")
	return m[len(m)-1].Version
}
