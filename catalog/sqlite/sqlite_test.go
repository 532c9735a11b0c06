package sqlite_test

import (
	"os"
	"path/filepath"
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
		if err != nil || v != 1 {
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
