// Package sqlstore implements catalog.Store over database/sql once, for the
// SQLite and PostgreSQL backends; a Dialect holds the few differences.
package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/strata-build/packer-plugin-strata/catalog"
)

// Dialect is what differs between SQL backends.
type Dialect struct {
	// Numbered placeholders ($1, $2, ...) instead of ?.
	Numbered bool
	// LockImage is the statement that holds an image's row against other
	// writers until the transaction ends; empty when the transaction itself
	// already excludes other writers (SQLite's BEGIN IMMEDIATE).
	LockImage string
}

// Store is a catalog.Store on a database/sql handle.
type Store struct {
	// Write takes read-write transactions; Read read-only ones (the same
	// handle when the backend needs no split).
	Write, Read *sql.DB
	Dialect     Dialect
	// OnClose runs after the handles are closed (a backend's own clean-up).
	OnClose func() error
}

var _ catalog.Store = (*Store)(nil)

func (s *Store) Update(ctx context.Context, fn func(catalog.Tx) error) error {
	return s.run(ctx, s.Write, false, fn)
}

func (s *Store) View(ctx context.Context, fn func(catalog.Tx) error) error {
	return s.run(ctx, s.Read, true, fn)
}

func (s *Store) run(ctx context.Context, db *sql.DB, readOnly bool, fn func(catalog.Tx) error) error {
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: readOnly && s.Dialect.Numbered})
	if err != nil {
		return fmt.Errorf("catalog: begin: %w", err)
	}
	if err := fn(&txn{tx: tx, d: s.Dialect}); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("catalog: commit: %w", err)
	}
	return nil
}

func (s *Store) Close() error {
	err := s.Write.Close()
	if s.Read != s.Write {
		if e := s.Read.Close(); err == nil {
			err = e
		}
	}
	if s.OnClose != nil {
		if e := s.OnClose(); err == nil {
			err = e
		}
	}
	return err
}

type txn struct {
	tx *sql.Tx
	d  Dialect
}

// q rewrites ? placeholders for the dialect.
func (t *txn) q(query string) string {
	if !t.d.Numbered {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (t *txn) exec(query string, args ...interface{}) (sql.Result, error) {
	return t.tx.Exec(t.q(query), args...)
}

func (t *txn) LockImage(name string) error {
	if _, err := t.exec(`INSERT INTO images (name, created_ns) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`, name, time.Now().UnixNano()); err != nil {
		return fmt.Errorf("catalog: image %s: %w", name, err)
	}
	if t.d.LockImage != "" {
		var got string
		if err := t.tx.QueryRow(t.q(t.d.LockImage), name).Scan(&got); err != nil {
			return fmt.Errorf("catalog: locking image %s: %w", name, err)
		}
	}
	return nil
}

func (t *txn) Images() ([]catalog.Image, error) {
	rows, err := t.tx.Query(`SELECT i.name, i.created_ns, COUNT(v.version), COALESCE(MAX(v.seq), 0)
		FROM images i LEFT JOIN versions v ON v.image = i.name GROUP BY i.name, i.created_ns ORDER BY i.name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []catalog.Image
	latest := map[string]int64{}
	for rows.Next() {
		var im catalog.Image
		var ns, maxSeq int64
		if err := rows.Scan(&im.Name, &ns, &im.Versions, &maxSeq); err != nil {
			return nil, err
		}
		im.Created = time.Unix(0, ns).UTC()
		latest[im.Name] = maxSeq
		out = append(out, im)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		if latest[out[i].Name] > 0 {
			t.tx.QueryRow(t.q(`SELECT version FROM versions WHERE image = ? AND seq = ?`), out[i].Name, latest[out[i].Name]).Scan(&out[i].Latest)
		}
	}
	return out, nil
}

func (t *txn) ImageExists(name string) (bool, error) {
	var n int
	err := t.tx.QueryRow(t.q(`SELECT COUNT(*) FROM images WHERE name = ?`), name).Scan(&n)
	return n > 0, err
}

func marshal(v interface{}) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

func (t *txn) InsertVersion(v *catalog.Version) error {
	labels, err := marshal(v.Labels)
	if err != nil {
		return err
	}
	tags, _ := marshal(v.Tags)
	arts, _ := marshal(v.Artifacts)
	pkgs, _ := marshal(v.Packages)
	build, _ := marshal(v.Build)
	layers, _ := marshal(v.Layers)
	_, err = t.exec(`INSERT INTO versions (image, version, seq, image_id, parent_id, labels, tags, artifacts, packages, build, created_ns, revoked, revoked_reason, revoked_ns, description, layers, architecture)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, '', 0, ?, ?, ?)`,
		v.Image, v.Version, v.Seq, v.ImageID, v.ParentID, labels, tags, arts, pkgs, build, v.Created.UnixNano(), v.Description, layers, v.Architecture)
	if err != nil {
		return fmt.Errorf("catalog: inserting %s: %w", v.Ref(), err)
	}
	return nil
}

const fullColumns = `image, version, seq, image_id, parent_id, labels, tags, artifacts, packages, build, created_ns, revoked, revoked_reason, revoked_ns, description, layers, revoked_by, architecture`

func scanFull(sc interface{ Scan(...interface{}) error }) (*catalog.Version, error) {
	var v catalog.Version
	var labels, tags, arts, pkgs, build, layers string
	var created, revokedNs int64
	var revoked int
	if err := sc.Scan(&v.Image, &v.Version, &v.Seq, &v.ImageID, &v.ParentID, &labels, &tags, &arts, &pkgs, &build, &created, &revoked, &v.RevokedReason, &revokedNs, &v.Description, &layers, &v.RevokedBy, &v.Architecture); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		s string
		p interface{}
	}{{labels, &v.Labels}, {tags, &v.Tags}, {arts, &v.Artifacts}, {pkgs, &v.Packages}, {build, &v.Build}, {layers, &v.Layers}} {
		if f.s != "" && f.s != "null" {
			if err := json.Unmarshal([]byte(f.s), f.p); err != nil {
				return nil, fmt.Errorf("catalog: decoding %s@%s: %w", v.Image, v.Version, err)
			}
		}
	}
	v.Created = time.Unix(0, created).UTC()
	v.Revoked = revoked != 0
	if revokedNs != 0 {
		at := time.Unix(0, revokedNs).UTC()
		v.RevokedAt = &at
	}
	return &v, nil
}

func (t *txn) Version(image, version string) (*catalog.Version, error) {
	row := t.tx.QueryRow(t.q(`SELECT `+fullColumns+` FROM versions WHERE image = ? AND version = ?`), image, version)
	v, err := scanFull(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: %s@%s", catalog.ErrNotFound, image, version)
	}
	if err != nil {
		return nil, err
	}
	if v.Evidence, err = t.Evidence(image, version); err != nil {
		return nil, err
	}
	if v.Platforms, err = t.platforms(image, version); err != nil {
		return nil, err
	}
	return v, nil
}

func (t *txn) InsertPlatform(image, version string, p *catalog.Platform) error {
	layers, err := marshal(p.Layers)
	if err != nil {
		return err
	}
	arts, _ := marshal(p.Artifacts)
	pkgs, _ := marshal(p.Packages)
	build, _ := marshal(p.Build)
	_, err = t.exec(`INSERT INTO version_platforms (image, version, architecture, image_id, parent_id, layers, artifacts, packages, build, created_ns)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, image, version, p.Architecture, p.ImageID, p.ParentID, layers, arts, pkgs, build, p.Created.UnixNano())
	if err != nil {
		return fmt.Errorf("catalog: adding %s to %s@%s: %w", p.Architecture, image, version, err)
	}
	return nil
}

func (t *txn) platforms(image, version string) ([]catalog.Platform, error) {
	rows, err := t.tx.Query(t.q(`SELECT architecture, image_id, parent_id, layers, artifacts, packages, build, created_ns
		FROM version_platforms WHERE image = ? AND version = ? ORDER BY created_ns, architecture`), image, version)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []catalog.Platform
	for rows.Next() {
		var p catalog.Platform
		var layers, arts, pkgs, build string
		var created int64
		if err := rows.Scan(&p.Architecture, &p.ImageID, &p.ParentID, &layers, &arts, &pkgs, &build, &created); err != nil {
			return nil, err
		}
		for _, f := range []struct {
			s string
			p interface{}
		}{{layers, &p.Layers}, {arts, &p.Artifacts}, {pkgs, &p.Packages}, {build, &p.Build}} {
			if f.s != "" && f.s != "null" {
				if err := json.Unmarshal([]byte(f.s), f.p); err != nil {
					return nil, fmt.Errorf("catalog: decoding %s@%s %s: %w", image, version, p.Architecture, err)
				}
			}
		}
		p.Created = time.Unix(0, created).UTC()
		out = append(out, p)
	}
	return out, rows.Err()
}

func (t *txn) queryFull(query string, args ...interface{}) ([]*catalog.Version, error) {
	rows, err := t.tx.Query(t.q(query), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*catalog.Version
	for rows.Next() {
		v, err := scanFull(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func (t *txn) Versions(image string, withContent bool) ([]*catalog.Version, error) {
	if withContent {
		return t.queryFull(`SELECT `+fullColumns+` FROM versions WHERE image = ? ORDER BY seq`, image)
	}
	rows, err := t.tx.Query(t.q(`SELECT version, seq, image_id, parent_id, tags, created_ns, revoked, revoked_reason, architecture, build
		FROM versions WHERE image = ? ORDER BY seq`), image)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*catalog.Version
	for rows.Next() {
		v := &catalog.Version{Image: image}
		var tags, build string
		var created int64
		var revoked int
		if err := rows.Scan(&v.Version, &v.Seq, &v.ImageID, &v.ParentID, &tags, &created, &revoked, &v.RevokedReason, &v.Architecture, &build); err != nil {
			return nil, err
		}
		if len(build) > 2 {
			json.Unmarshal([]byte(build), &v.Build)
		}
		if len(tags) > 2 { // not "", "[]" or "{}": most versions have no tags
			json.Unmarshal([]byte(tags), &v.Tags)
		}
		v.Created = time.Unix(0, created).UTC()
		v.Revoked = revoked != 0
		out = append(out, v)
	}
	return out, rows.Err()
}

func (t *txn) VersionsByImageID(imageID string) ([]*catalog.Version, error) {
	out, err := t.queryFull(`SELECT `+fullColumns+` FROM versions WHERE image_id = ? ORDER BY created_ns, image, seq`, imageID)
	if err != nil {
		return nil, err
	}
	// Versions where it is another architecture's image, as that
	// architecture sees them (their ImageID is imageID too).
	rows, err := t.tx.Query(t.q(`SELECT image, version, architecture FROM version_platforms WHERE image_id = ? ORDER BY created_ns, image, version`), imageID)
	if err != nil {
		return nil, err
	}
	type ref struct{ image, version, arch string }
	var refs []ref
	for rows.Next() {
		var r ref
		if err := rows.Scan(&r.image, &r.version, &r.arch); err != nil {
			rows.Close()
			return nil, err
		}
		refs = append(refs, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, r := range refs {
		v, err := t.Version(r.image, r.version)
		if err != nil {
			return nil, err
		}
		if pv, ok := v.ForArch(r.arch); ok {
			out = append(out, pv)
		}
	}
	return out, nil
}

func (t *txn) VersionsByImageIDPrefix(prefix string) ([]*catalog.Version, error) {
	// The prefix is hex only (checked by the caller), so no LIKE escapes.
	return t.queryFull(`SELECT `+fullColumns+` FROM versions WHERE image_id LIKE ? ORDER BY created_ns, image, seq`, prefix+"%")
}

func (t *txn) Children(imageID string) ([]*catalog.Version, error) {
	if imageID == "" {
		return nil, nil
	}
	return t.queryFull(`SELECT `+fullColumns+` FROM versions WHERE parent_id = ? ORDER BY created_ns, image, seq`, imageID)
}

func (t *txn) SetRevoked(image, version string, revoked bool, reason string, at int64) error {
	r := 0
	if revoked {
		r = 1
	} else {
		at = 0
	}
	res, err := t.exec(`UPDATE versions SET revoked = ?, revoked_reason = ?, revoked_ns = ? WHERE image = ? AND version = ?`, r, reason, at, image, version)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("%w: %s@%s", catalog.ErrNotFound, image, version)
	}
	return nil
}

func (t *txn) SetRevokedBy(image, version, actor string) error {
	_, err := t.exec(`UPDATE versions SET revoked_by = ? WHERE image = ? AND version = ?`, actor, image, version)
	return err
}

func (t *txn) SetArtifacts(image, version string, artifacts []catalog.Artifact) error {
	arts, _ := marshal(artifacts)
	_, err := t.exec(`UPDATE versions SET artifacts = ? WHERE image = ? AND version = ?`, arts, image, version)
	return err
}

func (t *txn) DeleteVersion(image, version string) error {
	if _, err := t.exec(`DELETE FROM evidence WHERE image = ? AND version = ?`, image, version); err != nil {
		return err
	}
	if _, err := t.exec(`DELETE FROM version_platforms WHERE image = ? AND version = ?`, image, version); err != nil {
		return err
	}
	_, err := t.exec(`DELETE FROM versions WHERE image = ? AND version = ?`, image, version)
	return err
}

func (t *txn) MaxSeq(image string) (int64, error) {
	var n int64
	err := t.tx.QueryRow(t.q(`SELECT COALESCE(MAX(seq), 0) FROM versions WHERE image = ?`), image).Scan(&n)
	return n, err
}

func (t *txn) AppendChannelEntry(e *catalog.ChannelEntry) error {
	err := t.tx.QueryRow(t.q(`INSERT INTO channel_history (image, channel, version, previous, action, actor, reason, at_ns, override)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`),
		e.Image, e.Channel, e.Version, e.Previous, string(e.Action), e.Actor, e.Reason, e.Time.UnixNano(), e.Override).Scan(&e.ID)
	if err != nil {
		return fmt.Errorf("catalog: recording %s %s: %w", e.Action, e.Channel, err)
	}
	return nil
}

func (t *txn) History(image, channel string) ([]catalog.ChannelEntry, error) {
	rows, err := t.tx.Query(t.q(`SELECT id, version, previous, action, actor, reason, at_ns, override FROM channel_history
		WHERE image = ? AND channel = ? ORDER BY id`), image, channel)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []catalog.ChannelEntry
	for rows.Next() {
		e := catalog.ChannelEntry{Image: image, Channel: channel}
		var action string
		var at int64
		if err := rows.Scan(&e.ID, &e.Version, &e.Previous, &action, &e.Actor, &e.Reason, &at, &e.Override); err != nil {
			return nil, err
		}
		e.Action = catalog.Action(action)
		e.Time = time.Unix(0, at).UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

func (t *txn) ChannelNames(image string) ([]string, error) {
	rows, err := t.tx.Query(t.q(`SELECT DISTINCT channel FROM channel_history WHERE image = ? ORDER BY channel`), image)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// Migration is one versioned schema change.
type Migration struct {
	Version int
	SQL     []string
}

// Migrate applies the migrations not yet recorded, each in its own
// transaction. lock, when set, is run first in each transaction to keep two
// hosts from migrating at once.
func Migrate(ctx context.Context, db *sql.DB, d Dialect, lock string, migrations []Migration) error {
	for _, m := range migrations {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		t := &txn{tx: tx, d: d}
		if lock != "" {
			if _, err := tx.ExecContext(ctx, lock); err != nil {
				tx.Rollback()
				return fmt.Errorf("catalog: migration lock: %w", err)
			}
		}
		// Under the lock, so two hosts never race to create it.
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_ns BIGINT NOT NULL)`); err != nil {
			tx.Rollback()
			return fmt.Errorf("catalog: migrations table: %w", err)
		}
		var n int
		if err := tx.QueryRow(t.q(`SELECT COUNT(*) FROM schema_migrations WHERE version = ?`), m.Version).Scan(&n); err != nil {
			tx.Rollback()
			return err
		}
		if n > 0 {
			tx.Rollback()
			continue
		}
		for _, stmt := range m.SQL {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				tx.Rollback()
				return fmt.Errorf("catalog: migration %d: %w", m.Version, err)
			}
		}
		if _, err := t.exec(`INSERT INTO schema_migrations (version, applied_ns) VALUES (?, ?)`, m.Version, time.Now().UnixNano()); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("catalog: migration %d: %w", m.Version, err)
		}
	}
	return nil
}

// SchemaVersion is the newest applied migration.
func SchemaVersion(ctx context.Context, db *sql.DB) (int, error) {
	var v int
	err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	return v, err
}

// Migrations is the catalog schema, shared by the SQL backends; only the
// type of the history's auto-incrementing key differs (autoID).
func Migrations(autoID string) []Migration {
	return []Migration{
		{Version: 1, SQL: []string{
			`CREATE TABLE images (name TEXT PRIMARY KEY, created_ns BIGINT NOT NULL)`,
			`CREATE TABLE versions (
				image TEXT NOT NULL REFERENCES images(name),
				version TEXT NOT NULL,
				seq BIGINT NOT NULL,
				image_id TEXT NOT NULL,
				parent_id TEXT NOT NULL DEFAULT '',
				labels TEXT NOT NULL DEFAULT '{}',
				tags TEXT NOT NULL DEFAULT '[]',
				artifacts TEXT NOT NULL DEFAULT '[]',
				packages TEXT NOT NULL DEFAULT '[]',
				build TEXT NOT NULL DEFAULT '{}',
				created_ns BIGINT NOT NULL,
				revoked INTEGER NOT NULL DEFAULT 0,
				revoked_reason TEXT NOT NULL DEFAULT '',
				revoked_ns BIGINT NOT NULL DEFAULT 0,
				PRIMARY KEY (image, version),
				UNIQUE (image, seq))`,
			`CREATE INDEX versions_image_id ON versions (image_id)`,
			`CREATE INDEX versions_parent_id ON versions (parent_id)`,
			`CREATE TABLE channel_history (
				id ` + autoID + `,
				image TEXT NOT NULL REFERENCES images(name),
				channel TEXT NOT NULL,
				version TEXT NOT NULL,
				previous TEXT NOT NULL DEFAULT '',
				action TEXT NOT NULL,
				actor TEXT NOT NULL DEFAULT '',
				reason TEXT NOT NULL DEFAULT '',
				at_ns BIGINT NOT NULL)`,
			`CREATE INDEX channel_history_by_channel ON channel_history (image, channel, id)`,
		}},
		// A version's description, and its layers (diffIDs, bottom first)
		// when a layered builder made it.
		{Version: 2, SQL: []string{
			`ALTER TABLE versions ADD COLUMN description TEXT NOT NULL DEFAULT ''`,
			`ALTER TABLE versions ADD COLUMN layers TEXT NOT NULL DEFAULT '[]'`,
		}},
		// Evidence on versions, channel policies with their history, and
		// what an overriding promotion overrode. Existing catalogs gain
		// empty tables: no version has evidence, no channel a policy.
		{Version: 3, SQL: []string{
			`CREATE TABLE evidence (
				id ` + autoID + `,
				image TEXT NOT NULL,
				version TEXT NOT NULL,
				kind TEXT NOT NULL,
				passed INTEGER NOT NULL,
				at_ns BIGINT NOT NULL,
				passed_count BIGINT NOT NULL DEFAULT 0,
				failed_count BIGINT NOT NULL DEFAULT 0,
				skipped_count BIGINT NOT NULL DEFAULT 0,
				report TEXT NOT NULL DEFAULT '',
				report_sha256 TEXT NOT NULL DEFAULT '',
				statement TEXT NOT NULL DEFAULT '',
				boot_time_ms BIGINT NOT NULL DEFAULT 0,
				source TEXT NOT NULL DEFAULT '',
				actor TEXT NOT NULL DEFAULT '',
				FOREIGN KEY (image, version) REFERENCES versions(image, version))`,
			`CREATE INDEX evidence_by_version ON evidence (image, version, id)`,
			`CREATE TABLE channel_policies (
				id ` + autoID + `,
				image TEXT NOT NULL REFERENCES images(name),
				channel TEXT NOT NULL,
				require TEXT NOT NULL DEFAULT '[]',
				from_channel TEXT NOT NULL DEFAULT '',
				min_age_ns BIGINT NOT NULL DEFAULT 0,
				cleared INTEGER NOT NULL DEFAULT 0,
				actor TEXT NOT NULL DEFAULT '',
				reason TEXT NOT NULL DEFAULT '',
				at_ns BIGINT NOT NULL)`,
			`CREATE INDEX channel_policies_by_channel ON channel_policies (image, channel, id)`,
			`ALTER TABLE channel_history ADD COLUMN override TEXT NOT NULL DEFAULT ''`,
		}},
		// Bearer tokens of strata serve: only the sha256 of a secret is
		// kept; a name is unique among the tokens not revoked.
		{Version: 6, SQL: []string{
			`CREATE TABLE tokens (
				id ` + autoID + `,
				name TEXT NOT NULL,
				hash TEXT NOT NULL UNIQUE,
				scopes TEXT NOT NULL DEFAULT '[]',
				actor TEXT NOT NULL DEFAULT '',
				created_ns BIGINT NOT NULL,
				revoked_ns BIGINT NOT NULL DEFAULT 0)`,
			`CREATE UNIQUE INDEX tokens_active_name ON tokens (name) WHERE revoked_ns = 0`,
			// Who revoked a version: a strata serve write records its token's name.
			`ALTER TABLE versions ADD COLUMN revoked_by TEXT NOT NULL DEFAULT ''`,
		}},
		// A version's Debian architecture ("" before: the build host's),
		// and its images of other architectures (multi-architecture
		// versions).
		{Version: 7, SQL: []string{
			`ALTER TABLE versions ADD COLUMN architecture TEXT NOT NULL DEFAULT ''`,
			`CREATE TABLE version_platforms (
				image TEXT NOT NULL,
				version TEXT NOT NULL,
				architecture TEXT NOT NULL,
				image_id TEXT NOT NULL,
				parent_id TEXT NOT NULL DEFAULT '',
				layers TEXT NOT NULL DEFAULT '[]',
				artifacts TEXT NOT NULL DEFAULT '[]',
				packages TEXT NOT NULL DEFAULT '[]',
				build TEXT NOT NULL DEFAULT '{}',
				created_ns BIGINT NOT NULL,
				PRIMARY KEY (image, version, architecture),
				FOREIGN KEY (image, version) REFERENCES versions(image, version))`,
			`CREATE INDEX version_platforms_image_id ON version_platforms (image_id)`,
		}},
		// Evidence's extra report files (strata-test's JUnit XML), so gc
		// deletes them with the version's other files.
		{Version: 8, SQL: []string{
			`ALTER TABLE evidence ADD COLUMN extra_files TEXT NOT NULL DEFAULT '[]'`,
		}},
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (t *txn) InsertEvidence(e *catalog.Evidence) error {
	extraFiles := e.ExtraFiles
	if extraFiles == nil {
		extraFiles = []string{}
	}
	extra, err := marshal(extraFiles)
	if err != nil {
		return err
	}
	err = t.tx.QueryRow(t.q(`INSERT INTO evidence (image, version, kind, passed, at_ns, passed_count, failed_count, skipped_count, report, report_sha256, statement, extra_files, boot_time_ms, source, actor)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`),
		e.Image, e.Version, e.Kind, b2i(e.Passed), e.Time.UnixNano(), e.Counts.Passed, e.Counts.Failed, e.Counts.Skipped,
		e.Report, e.ReportSHA256, e.Statement, extra, e.BootTimeMS, e.Source, e.Actor).Scan(&e.ID)
	if err != nil {
		return fmt.Errorf("catalog: recording %s evidence on %s@%s: %w", e.Kind, e.Image, e.Version, err)
	}
	return nil
}

func (t *txn) Evidence(image, version string) ([]catalog.Evidence, error) {
	rows, err := t.tx.Query(t.q(`SELECT id, kind, passed, at_ns, passed_count, failed_count, skipped_count, report, report_sha256, statement, extra_files, boot_time_ms, source, actor
		FROM evidence WHERE image = ? AND version = ? ORDER BY id`), image, version)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []catalog.Evidence
	for rows.Next() {
		e := catalog.Evidence{Image: image, Version: version}
		var passed int
		var at int64
		var extra string
		if err := rows.Scan(&e.ID, &e.Kind, &passed, &at, &e.Counts.Passed, &e.Counts.Failed, &e.Counts.Skipped,
			&e.Report, &e.ReportSHA256, &e.Statement, &extra, &e.BootTimeMS, &e.Source, &e.Actor); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(extra), &e.ExtraFiles); err != nil {
			return nil, fmt.Errorf("catalog: evidence %d of %s@%s: extra_files: %w", e.ID, image, version, err)
		}
		e.Passed = passed != 0
		e.Time = time.Unix(0, at).UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

func (t *txn) AppendPolicy(p *catalog.Policy) error {
	req, err := marshal(p.Require)
	if err != nil {
		return err
	}
	err = t.tx.QueryRow(t.q(`INSERT INTO channel_policies (image, channel, require, from_channel, min_age_ns, cleared, actor, reason, at_ns)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`),
		p.Image, p.Channel, req, p.From, int64(p.MinAge), b2i(p.Cleared), p.Actor, p.Reason, p.Time.UnixNano()).Scan(&p.ID)
	if err != nil {
		return fmt.Errorf("catalog: recording the policy of %s: %w", p.Channel, err)
	}
	return nil
}

func (t *txn) PolicyHistory(image, channel string) ([]catalog.Policy, error) {
	query, args := `SELECT id, channel, require, from_channel, min_age_ns, cleared, actor, reason, at_ns FROM channel_policies WHERE image = ?`, []interface{}{image}
	if channel != "" {
		query += ` AND channel = ?`
		args = append(args, channel)
	}
	rows, err := t.tx.Query(t.q(query+` ORDER BY id`), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []catalog.Policy
	for rows.Next() {
		p := catalog.Policy{Image: image}
		var req string
		var minAge, at int64
		var cleared int
		if err := rows.Scan(&p.ID, &p.Channel, &req, &p.From, &minAge, &cleared, &p.Actor, &p.Reason, &at); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(req), &p.Require); err != nil {
			return nil, fmt.Errorf("catalog: decoding the policy of %s: %w", p.Channel, err)
		}
		p.MinAge = catalog.Duration(minAge)
		p.Cleared = cleared != 0
		p.Time = time.Unix(0, at).UTC()
		out = append(out, p)
	}
	return out, rows.Err()
}

func (t *txn) InsertToken(k *catalog.Token) error {
	scopes, err := marshal(k.Scopes)
	if err != nil {
		return err
	}
	err = t.tx.QueryRow(t.q(`INSERT INTO tokens (name, hash, scopes, actor, created_ns) VALUES (?, ?, ?, ?, ?) RETURNING id`),
		k.Name, k.Hash, scopes, k.Actor, k.Created.UnixNano()).Scan(&k.ID)
	if err != nil {
		return fmt.Errorf("catalog: recording token %s: %w", k.Name, err)
	}
	return nil
}

const tokenColumns = `id, name, hash, scopes, actor, created_ns, revoked_ns`

func scanToken(sc interface{ Scan(...interface{}) error }) (*catalog.Token, error) {
	var k catalog.Token
	var scopes string
	var created, revoked int64
	if err := sc.Scan(&k.ID, &k.Name, &k.Hash, &scopes, &k.Actor, &created, &revoked); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(scopes), &k.Scopes); err != nil {
		return nil, fmt.Errorf("catalog: decoding token %s: %w", k.Name, err)
	}
	k.Created = time.Unix(0, created).UTC()
	if revoked != 0 {
		at := time.Unix(0, revoked).UTC()
		k.Revoked, k.RevokedAt = true, &at
	}
	return &k, nil
}

func (t *txn) Tokens() ([]catalog.Token, error) {
	rows, err := t.tx.Query(`SELECT ` + tokenColumns + ` FROM tokens ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []catalog.Token
	for rows.Next() {
		k, err := scanToken(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *k)
	}
	return out, rows.Err()
}

func (t *txn) TokenByHash(hash string) (*catalog.Token, error) {
	k, err := scanToken(t.tx.QueryRow(t.q(`SELECT `+tokenColumns+` FROM tokens WHERE hash = ?`), hash))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: token", catalog.ErrNotFound)
	}
	return k, err
}

func (t *txn) RevokeToken(id int64, at int64) error {
	res, err := t.exec(`UPDATE tokens SET revoked_ns = ? WHERE id = ? AND revoked_ns = 0`, at, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("%w: token %d", catalog.ErrNotFound, id)
	}
	return nil
}
