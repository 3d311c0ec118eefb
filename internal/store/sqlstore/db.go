package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/lightsout/lightsout/internal/secret"
)

// Options tell Open which database to use.
type Options struct {
	// DSN is a PostgreSQL URL (postgres://… or postgresql://…) or the path
	// of a SQLite file, optionally written sqlite:PATH. A new SQLite file
	// is created with mode 0600.
	DSN string
	// Box encrypts and decrypts stored passwords. Without one, the store
	// still works, but writing or reading a non-empty password fails.
	Box *secret.Box
}

// DB is the SQLite or PostgreSQL implementation of [Store].
type DB struct {
	w   *sql.DB // writes (SQLite: one connection, so writers queue in Go, never on SQLITE_BUSY)
	r   *sql.DB // reads (SQLite: a pool of query-only connections; PostgreSQL: w)
	d   *dialect
	box *secret.Box
	// stmts are the prepared statements of queryPrepared, by query text.
	stmts sync.Map
}

var _ Store = (*DB)(nil)

// dialect is what differs between SQLite and PostgreSQL. SQL is written once
// with ? placeholders.
type dialect struct {
	name string // "sqlite" or "postgres"
	// dollar: placeholders are $1, $2, … (PostgreSQL).
	dollar bool
	// jsonList is a sub-select of the strings of a JSON array given as one
	// parameter: `x IN (` + jsonList + `)`.
	jsonList string
	cache    sync.Map // query → rewritten query
}

var (
	sqliteDialect = &dialect{
		name:     "sqlite",
		jsonList: "SELECT value FROM json_each(?)",
	}
	postgresDialect = &dialect{
		name:     "postgres",
		dollar:   true,
		jsonList: "SELECT json_array_elements_text(CAST(? AS json))",
	}
)

// rebind rewrites ? placeholders to $n for PostgreSQL. Question marks in
// quoted literals are left alone.
func (d *dialect) rebind(q string) string {
	if !d.dollar {
		return q
	}
	if v, ok := d.cache.Load(q); ok {
		return v.(string)
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n, quote := 0, byte(0)
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	s := b.String()
	d.cache.Store(q, s)
	return s
}

// Driver names the database kind: "sqlite" or "postgres".
func (db *DB) Driver() string { return db.d.name }

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error { return db.w.PingContext(ctx) }

// Close closes the database.
func (db *DB) Close() error {
	db.stmts.Range(func(_, s any) bool {
		s.(*sql.Stmt).Close()
		return true
	})
	var err error
	if db.r != db.w {
		err = db.r.Close()
	}
	if err2 := db.w.Close(); err == nil {
		err = err2
	}
	return err
}

// Open opens (creating when needed) the database named by o.DSN and brings
// its schema up to date. A database whose schema is newer than this binary
// knows is refused, and so is a key that does not match the one the
// database's passwords were sealed with.
func Open(ctx context.Context, o Options) (*DB, error) {
	dsn := strings.TrimSpace(o.DSN)
	var db *DB
	var err error
	switch {
	case dsn == "":
		return nil, errors.New("store: no database given (DSN is empty)")
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		db, err = openPostgres(ctx, dsn)
	default:
		db, err = openSQLite(ctx, strings.TrimPrefix(dsn, "sqlite:"))
	}
	if err != nil {
		return nil, err
	}
	db.box = o.Box
	if err := db.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if err := db.checkKey(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if err := db.bindPasswords(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

func openPostgres(ctx context.Context, dsn string) (*DB, error) {
	pool, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: postgres: %w", err)
	}
	pool.SetMaxOpenConns(16)
	pool.SetMaxIdleConns(16)
	pool.SetConnMaxIdleTime(5 * time.Minute)
	if err := pool.PingContext(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("store: postgres: %s: %w", redact(dsn), err)
	}
	return &DB{w: pool, r: pool, d: postgresDialect}, nil
}

// redact hides a password in a URL for error messages.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparsable DSN)"
	}
	return u.Redacted()
}

func openSQLite(ctx context.Context, path string) (*DB, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("store: %q: give the path of a SQLite database file", path)
	}
	path, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	// Create the file ourselves so it is private from the start; SQLite
	// gives its -wal and -shm files the database file's permissions.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	fi, err := f.Stat()
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("store: %s is not a regular file", path)
	}
	uri := "file:" + (&url.URL{Path: path}).EscapedPath()
	// Writers: one connection, BEGIN IMMEDIATE (a transaction takes the
	// write lock up front, so two processes never deadlock upgrading a read
	// lock), fsync on every commit.
	w, err := sql.Open("sqlite", uri+"?_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)"+
		"&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("store: sqlite: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	var mode string
	if err := w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		w.Close()
		return nil, fmt.Errorf("store: sqlite %s: %w", path, err)
	}
	if !strings.EqualFold(mode, "wal") {
		w.Close()
		return nil, fmt.Errorf("store: sqlite %s: journal mode is %q, not WAL (a file system without shared memory?)", path, mode)
	}
	r, err := sql.Open("sqlite", uri+"?_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("store: sqlite: %w", err)
	}
	n := min(max(runtime.GOMAXPROCS(0), 2), 8)
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	return &DB{w: w, r: r, d: sqliteDialect}, nil
}

// runner is what *sql.DB, *sql.Conn and *sql.Tx have in common.
type runner interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// q runs dialect-rewritten SQL on a runner.
type q struct {
	r runner
	d *dialect
}

func (x q) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return x.r.ExecContext(ctx, x.d.rebind(query), args...)
}

func (x q) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return x.r.QueryContext(ctx, x.d.rebind(query), args...)
}

func (x q) row(ctx context.Context, query string, args ...any) *sql.Row {
	return x.r.QueryRowContext(ctx, x.d.rebind(query), args...)
}

// read returns a runner for reads outside a transaction.
func (db *DB) read() q { return q{db.r, db.d} }

// tx runs fn in a write transaction and commits it. Inside fn use only x:
// the SQLite writer pool has one connection, which x holds.
func (db *DB) tx(ctx context.Context, fn func(x q) error) error {
	for attempt := 0; ; attempt++ {
		err := db.tx1(ctx, fn)
		if err != nil && attempt < 3 && db.retryable(err) && ctx.Err() == nil {
			continue
		}
		return err
	}
}

func (db *DB) tx1(ctx context.Context, fn func(x q) error) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	if err := fn(q{tx, db.d}); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}

// retryable: PostgreSQL serialization failures and deadlocks.
func (db *DB) retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// Constraint violations.

type violation int

const (
	noViolation violation = iota
	uniqueViolation
	foreignKeyViolation
)

// classify tells a constraint violation and which constraint (SQLite: the
// "table.column, …" list of its message; PostgreSQL: the constraint name).
func classify(err error) (violation, string) {
	var se *sqlite.Error
	if errors.As(err, &se) {
		name := se.Error()
		if i := strings.LastIndex(name, "constraint failed: "); i >= 0 {
			name = name[i+len("constraint failed: "):]
		}
		if k := strings.LastIndex(name, " ("); k >= 0 { // trailing "(2067)"
			name = name[:k]
		}
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return uniqueViolation, name
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return foreignKeyViolation, name
		}
		return noViolation, ""
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505":
			return uniqueViolation, pe.ConstraintName
		case "23503":
			return foreignKeyViolation, pe.ConstraintName
		}
	}
	return noViolation, ""
}

// uniqueFields maps constraints (SQLite column lists and PostgreSQL names)
// to the field a FieldError names.
var uniqueFields = []struct{ sqlite, postgres, field string }{
	{"machines.name", "machines_name_key", "name"},
	{"machines.enclosure_id, machines.slot", "machines_slot_key", "slot"},
	{"accounts.protocol, accounts.address, accounts.port", "accounts_address_key", "address"},
	{"enclosures.name", "enclosures_name_key", "name"},
	{"enclosures.protocol, enclosures.address, enclosures.port", "enclosures_address_key", "address"},
	{"tokens.name", "tokens_name_key", "name"},
	{"tokens.hash", "tokens_hash_key", "hash"},
	{"machine_tags.machine_id, machine_tags.tag", "machine_tags_pkey", "tags"},
}

// mapErr turns a constraint violation into a *FieldError about record and
// wraps anything else.
func mapErr(err error, record string) error {
	if err == nil {
		return nil
	}
	var fe *FieldError
	if errors.As(err, &fe) {
		return err
	}
	switch v, name := classify(err); v {
	case uniqueViolation:
		field := "name"
		for _, u := range uniqueFields {
			if name == u.sqlite || name == u.postgres {
				field = u.field
				break
			}
		}
		return &FieldError{Record: record, Field: field, Reason: "already used (" + name + ")", Err: ErrConflict}
	case foreignKeyViolation:
		return &FieldError{Record: record, Field: "reference", Reason: "refers to a row that does not exist (" + name + ")", Err: ErrNotFound}
	}
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("store: %s: %w", record, ErrNotFound)
	}
	if strings.HasPrefix(err.Error(), "store:") {
		return err
	}
	return fmt.Errorf("store: %w", err)
}

// Time columns hold Unix nanoseconds; 0 is the zero time.

func ts(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromTS(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// now is the current time as stored (UTC, no monotonic reading).
func now() time.Time { return time.Now().UTC().Round(0) }

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Passwords.
//
// A stored password is sealed bound to where it is to be sent: the
// account's (or enclosure's) protocol, address and port are the additional
// data of its AEAD seal (secret.SealBound). A row whose endpoint was changed
// behind the manager's back no longer opens; the manager re-seals a
// password only when its rules let the password move (manager.UpdateAccount).

// accountBinding is what an account's password is bound to.
func accountBinding(protocol, address string, port int) []byte {
	return []byte("account\x00" + protocol + "\x00" + address + "\x00" + strconv.Itoa(port))
}

// enclosureBinding is what an enclosure manager's password is bound to.
func enclosureBinding(protocol, address string, port int) []byte {
	return []byte("enclosure\x00" + protocol + "\x00" + address + "\x00" + strconv.Itoa(port))
}

func (db *DB) seal(what string, pw, binding []byte) ([]byte, error) {
	if len(pw) == 0 {
		return []byte{}, nil
	}
	if db.box == nil {
		return nil, fmt.Errorf("store: %s: cannot store a password without a secret key", what)
	}
	return db.box.SealBound(pw, binding)
}

func (db *DB) unseal(what string, ct, binding []byte) ([]byte, error) {
	if len(ct) == 0 {
		return nil, nil
	}
	if db.box == nil {
		return nil, fmt.Errorf("store: %s: cannot read the stored password without the secret key", what)
	}
	pt, err := db.box.OpenBound(ct, binding)
	if err != nil {
		return nil, fmt.Errorf("store: %s: stored password: %w (sealed for another endpoint, or is this not the key file the database was created with?)", what, err)
	}
	return pt, nil
}

// bindPasswords re-seals, bound to their endpoint, the passwords sealed
// before passwords were bound (version 1), in one transaction, once: meta
// 'passwords_bound' records that it was done.
func (db *DB) bindPasswords(ctx context.Context) error {
	if db.box == nil {
		return nil
	}
	var v []byte
	err := db.read().row(ctx, `SELECT value FROM meta WHERE key = 'passwords_bound'`).Scan(&v)
	if err == nil {
		return nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("store: reading meta: %w", err)
	}
	return db.tx(ctx, func(x q) error {
		for _, t := range []struct {
			table string
			bind  func(string, string, int) []byte
		}{{"accounts", accountBinding}, {"enclosures", enclosureBinding}} {
			type row struct {
				id          int64
				proto, addr string
				port        int
				pw          []byte
			}
			rows, err := x.query(ctx, "SELECT id, protocol, address, port, password FROM "+t.table)
			if err != nil {
				return fmt.Errorf("store: binding passwords: %w", err)
			}
			var old []row
			for rows.Next() {
				var r row
				if err := rows.Scan(&r.id, &r.proto, &r.addr, &r.port, &r.pw); err != nil {
					rows.Close()
					return fmt.Errorf("store: binding passwords: %w", err)
				}
				if len(r.pw) > 0 && !secret.Bound(r.pw) {
					old = append(old, r)
				}
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return fmt.Errorf("store: binding passwords: %w", err)
			}
			for _, r := range old {
				pt, err := db.box.Open(r.pw)
				if err != nil {
					return fmt.Errorf("store: binding passwords: %s %d: %w", t.table, r.id, err)
				}
				ct, err := db.box.SealBound(pt, t.bind(r.proto, r.addr, r.port))
				if err != nil {
					return err
				}
				if _, err := x.exec(ctx, "UPDATE "+t.table+" SET password = ? WHERE id = ?", ct, r.id); err != nil {
					return fmt.Errorf("store: binding passwords: %w", err)
				}
			}
		}
		_, err := x.exec(ctx, `INSERT INTO meta (key, value) VALUES ('passwords_bound', ?) ON CONFLICT (key) DO NOTHING`, []byte("1"))
		return err
	})
}

const keyCheckPlaintext = "lightsout key check"

// checkKey makes sure the Box is the key the database's passwords are sealed
// with: the first Box to open a database seals a check value into meta;
// later opens must be able to open it.
func (db *DB) checkKey(ctx context.Context) error {
	if db.box == nil {
		return nil
	}
	for i := 0; i < 2; i++ {
		var v []byte
		err := db.read().row(ctx, `SELECT value FROM meta WHERE key = 'key_check'`).Scan(&v)
		if err == nil {
			pt, err := db.box.Open(v)
			if err != nil || string(pt) != keyCheckPlaintext {
				return fmt.Errorf("store: the secret key does not match this database's (it was created with another key file): %w", secret.ErrDecrypt)
			}
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("store: reading key check: %w", err)
		}
		ct, err := db.box.Seal([]byte(keyCheckPlaintext))
		if err != nil {
			return err
		}
		if _, err := (q{db.w, db.d}).exec(ctx, `INSERT INTO meta (key, value) VALUES ('key_check', ?) ON CONFLICT (key) DO NOTHING`, ct); err != nil {
			return fmt.Errorf("store: writing key check: %w", err)
		}
	}
	return nil
}
