package sqlite_test

import (
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-build/packer-plugin-strata/catalog"
	"github.com/strata-build/packer-plugin-strata/catalog/catalogtest"
	"github.com/strata-build/packer-plugin-strata/catalog/sqlite"
	"github.com/strata-build/packer-plugin-strata/catalog/sqlstore"
)

func TestMain(m *testing.M) {
	catalogtest.MaybeCrashChild()
	os.Exit(m.Run())
}

func TestContract(t *testing.T) {
	catalogtest.Run(t, func(t *testing.T) catalog.Store {
		s, err := sqlite.Open(filepath.Join(t.TempDir(), "catalog.db"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestKilledWriterLeavesNothing(t *testing.T) {
	catalogtest.KilledWriterLeavesNothing(t, "sqlite://"+filepath.Join(t.TempDir(), "catalog.db"))
}

func TestMigrationsAreVersionedAndIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catalog.db")
	for i := 0; i < 2; i++ {
		s, err := sqlite.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		v, err := sqlstore.SchemaVersion(t.Context(), s.Write)
		if err != nil || v != latestSchema() {
			t.Fatalf("schema version %d %v", v, err)
		}
		var mode string
		s.Write.QueryRow("PRAGMA journal_mode").Scan(&mode)
		if mode != "wal" {
			t.Fatalf("journal mode %q, want wal", mode)
		}
		s.Close()
	}
}

// oldCatalog makes a catalog at schema version upTo, holding what stmts
// insert, as an older strata left it.
func oldCatalog(t *testing.T, upTo int, stmts ...string) string {
	path := filepath.Join(t.TempDir(), "catalog.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := sqlstore.Migrate(t.Context(), db, sqlstore.Dialect{}, "", sqlstore.Migrations("INTEGER PRIMARY KEY AUTOINCREMENT")[:upTo]); err != nil {
		t.Fatal(err)
	}
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

// A catalog made before migration 2 (description, layers) opens, migrates,
// and its versions read back unchanged.
func TestMigrationFromSchema1(t *testing.T) {
	id := "sha256:" + strings.Repeat("ab", 32)
	path := oldCatalog(t, 1,
		`INSERT INTO images (name, created_ns) VALUES ('old', 1)`,
		`INSERT INTO versions (image, version, seq, image_id, created_ns) VALUES ('old', '1.0.0', 1, '`+id+`', 1)`)
	c, err := catalog.Open("sqlite://" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	v, err := c.Get(t.Context(), "old", "1.0.0")
	if err != nil || v.ImageID != id || v.Description != "" || len(v.Layers) != 0 {
		t.Fatalf("a schema 1 version after migrating: %+v %v", v, err)
	}
}

// A catalog made at schema 2 (before evidence and policies) opens,
// migrates, keeps its versions and channel history, and takes evidence and
// policies afterwards.
func TestMigrationFromSchema2(t *testing.T) {
	id := "sha256:" + strings.Repeat("cd", 32)
	path := oldCatalog(t, 2,
		`INSERT INTO images (name, created_ns) VALUES ('old', 1)`,
		`INSERT INTO versions (image, version, seq, image_id, created_ns) VALUES ('old', '1.0.0', 1, '`+id+`', 1)`,
		`INSERT INTO channel_history (image, channel, version, action, at_ns) VALUES ('old', 'dev', '1.0.0', 'promote', 2)`)
	c, err := catalog.Open("sqlite://" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.ContentExists = func(*catalog.Version) bool { return true }
	v, err := c.Get(t.Context(), "old", "1.0.0")
	if err != nil || v.ImageID != id || len(v.Evidence) != 0 {
		t.Fatalf("a schema 2 version after migrating: %+v %v", v, err)
	}
	h, err := c.History(t.Context(), "old", "dev")
	if err != nil || len(h) != 1 || h[0].Override != "" {
		t.Fatalf("a schema 2 history after migrating: %+v %v", h, err)
	}
	if _, err := c.SetPolicy(t.Context(), catalog.Policy{Image: "old", Channel: "prod", Require: []string{"tests"}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Promote(t.Context(), "old", "prod", "1.0.0", catalog.MoveOptions{}); !errors.Is(err, catalog.ErrPolicy) {
		t.Fatalf("the migrated catalog's policy did not refuse: %v", err)
	}
	if _, err := c.AddEvidence(t.Context(), "old", "1.0.0", catalog.Evidence{Kind: "tests", Passed: true, Source: "cli"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Promote(t.Context(), "old", "prod", "1.0.0", catalog.MoveOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestOnlyWritersCreate: a read that names a catalog that is not there
// creates neither the file nor its directory.
func TestOnlyWritersCreate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "typo")
	url := "sqlite://" + filepath.Join(dir, "catalog.db")
	if _, err := catalog.OpenExisting(url); err == nil {
		t.Fatal("a catalog that does not exist opened")
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("reading a catalog that does not exist made its directory: %v", err)
	}
	catalogtest.OnlyWritersCreate(t, url)
}

func TestOpenByURL(t *testing.T) {
	c, err := catalog.Open("sqlite://" + filepath.Join(t.TempDir(), "sub", "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if _, err := catalog.Open("mysql://x"); err == nil {
		t.Fatal("an unknown scheme opened")
	}
	if _, err := catalog.Open("no-scheme"); err == nil {
		t.Fatal("a URL without a scheme opened")
	}
}

// latestSchema is the newest migration's number.
func latestSchema() int {
	m := sqlstore.Migrations("")
	return m[len(m)-1].Version
}
