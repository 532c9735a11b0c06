package sqlite_test

import (
	"database/sql"
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
		if err != nil || v != 2 {
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

// A catalog made before migration 2 (description, layers) opens, migrates,
// and its versions read back unchanged.
func TestMigrationFromSchema1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catalog.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if err := sqlstore.Migrate(t.Context(), db, sqlstore.Dialect{}, "", sqlstore.Migrations("INTEGER PRIMARY KEY AUTOINCREMENT")[:1]); err != nil {
		t.Fatal(err)
	}
	id := "sha256:" + strings.Repeat("ab", 32)
	if _, err := db.Exec(`INSERT INTO images (name, created_ns) VALUES ('old', 1)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO versions (image, version, seq, image_id, created_ns) VALUES ('old', '1.0.0', 1, ?, 1)`, id); err != nil {
		t.Fatal(err)
	}
	db.Close()
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
