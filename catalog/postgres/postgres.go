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
	catalog.RegisterBackend("postgres", func(u *url.URL) (catalog.Store, error) { return Open(u.String()) })
}

var dialect = sqlstore.Dialect{
	Numbered:  true,
	LockImage: `SELECT name FROM images WHERE name = ? FOR UPDATE`,
}

// migrationLock keeps two hosts from migrating the same database at once.
const migrationLock = `SELECT pg_advisory_xact_lock(7283947)`

var migrations = sqlstore.Migrations("BIGSERIAL PRIMARY KEY")

// Open connects to the database a postgres:// URL names and brings its
// schema up to date.
func Open(dsn string) (*sqlstore.Store, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(16)
	if err := db.PingContext(context.Background()); err != nil {
		db.Close()
		return nil, err
	}
	if err := sqlstore.Migrate(context.Background(), db, dialect, migrationLock, migrations); err != nil {
		db.Close()
		return nil, err
	}
	return &sqlstore.Store{Write: db, Read: db, Dialect: dialect}, nil
}
