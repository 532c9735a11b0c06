// Package postgres is the catalog backend for teams with many build hosts:
// PostgreSQL through jackc/pgx. Writers to one image are serialized by a row
// lock on the image, so concurrent promotions never lose a history entry.
package postgres

import (
	"context"
	"database/sql"
	"net/url"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/strata-build/packer-plugin-strata/catalog"
	"github.com/strata-build/packer-plugin-strata/catalog/sqlstore"
)

func init() {
	catalog.RegisterBackend("postgres", func(u *url.URL, create bool) (catalog.Store, bool, error) {
		return open(u.String(), create)
	})
}

var dialect = sqlstore.Dialect{
	Numbered:  true,
	LockImage: `SELECT name FROM images WHERE name = ? FOR UPDATE`,
}

// migrationLock keeps two hosts from migrating the same database at once.
const migrationLock = `SELECT pg_advisory_xact_lock(7283947)`

var migrations = sqlstore.Migrations("BIGSERIAL PRIMARY KEY")

// Open connects to the database a postgres:// URL names and brings its
// schema up to date (creating it in an empty database).
func Open(dsn string) (*sqlstore.Store, error) {
	s, _, err := open(dsn, true)
	return s, err
}

// open connects; the database must exist (the catalog never creates one).
// A database without the catalog's schema holds no catalog: without
// create that is catalog.ErrNoCatalog, with it the schema is made and
// created says so.
func open(dsn string, create bool) (*sqlstore.Store, bool, error) {
	ctx := context.Background()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, false, err
	}
	db.SetMaxOpenConns(16)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, false, err
	}
	var has bool
	if err := db.QueryRowContext(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&has); err != nil {
		db.Close()
		return nil, false, err
	}
	if !has && !create {
		db.Close()
		return nil, false, catalog.ErrNoCatalog
	}
	if err := sqlstore.Migrate(ctx, db, dialect, migrationLock, migrations); err != nil {
		db.Close()
		return nil, false, err
	}
	return &sqlstore.Store{Write: db, Read: db, Dialect: dialect}, !has, nil
}
