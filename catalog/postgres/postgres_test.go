package postgres_test

import (
	"fmt"
	"os"
	"sync/atomic"
	"testing"

	"github.com/strata-build/packer-plugin-strata/catalog"
	"github.com/strata-build/packer-plugin-strata/catalog/catalogtest"
	"github.com/strata-build/packer-plugin-strata/catalog/postgres"
	"github.com/strata-build/packer-plugin-strata/catalog/postgres/pgtest"
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
