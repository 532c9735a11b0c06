// Package sqlite is the catalog's embedded default backend: one SQLite file
// in the store root, in WAL mode, through the pure-Go modernc.org/sqlite.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite"

	"github.com/strata-build/packer-plugin-strata/catalog"
	"github.com/strata-build/packer-plugin-strata/catalog/sqlstore"
)

func init() {
	catalog.RegisterBackend("sqlite", func(u *url.URL, create bool) (catalog.Store, bool, error) {
		p := u.Path
		if u.Host != "" { // sqlite://relative/path
			p = filepath.Join(u.Host, u.Path)
		}
		if p == "" {
			return nil, false, fmt.Errorf("sqlite URL needs a path: sqlite:///var/lib/strata/catalog.db")
		}
		// The driver makes a missing file (and Open its directory), so
		// whether there is a catalog is asked first.
		_, err := os.Stat(p)
		missing := errors.Is(err, os.ErrNotExist)
		switch {
		case missing && !create:
			return nil, false, catalog.ErrNoCatalog
		case err != nil && !missing:
			return nil, false, err
		}
		s, err := Open(p)
		if err != nil {
			return nil, false, err
		}
		return s, missing, nil
	})
}

var migrations = sqlstore.Migrations("INTEGER PRIMARY KEY AUTOINCREMENT")

// Open opens (creating when needed) the catalog file at path and brings its
// schema up to date.
func Open(path string) (*sqlstore.Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	// Writers take the database lock when they begin (BEGIN IMMEDIATE), so
	// two writers never deadlock upgrading a read lock; busy_timeout makes
	// them wait for each other, across processes too.
	base := "file:" + path + "?_pragma=busy_timeout(30000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=foreign_keys(ON)"
	w, err := sql.Open("sqlite", base+"&_txlock=immediate")
	if err != nil {
		return nil, err
	}
	// One writer connection: in-process writers queue here instead of
	// spinning on SQLITE_BUSY.
	w.SetMaxOpenConns(1)
	r, err := sql.Open("sqlite", base)
	if err != nil {
		w.Close()
		return nil, err
	}
	r.SetMaxOpenConns(8)
	if err := sqlstore.Migrate(context.Background(), w, sqlstore.Dialect{}, "", migrations); err != nil {
		w.Close()
		r.Close()
		return nil, err
	}
	return &sqlstore.Store{Write: w, Read: r, Dialect: sqlstore.Dialect{}}, nil
}
