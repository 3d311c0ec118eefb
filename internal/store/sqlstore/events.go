package sqlstore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// AddEvent stores e, or merges it into the latest event with the same code
// and source whose LastAt is within dedup of e.At (Count+1, LastAt, Message
// and Data updated); dedup 0 never merges. e is updated to the stored event
// (ID, At, Count, LastAt). A zero e.At means now; an empty severity, info.
func (db *DB) AddEvent(ctx context.Context, e *Event, dedup time.Duration) error {
	if fe := checkName(e.Code, "code", e.Code); fe != nil {
		return fe
	}
	switch e.Severity {
	case SeverityInfo, SeverityWarning, SeverityCritical:
	case "":
		e.Severity = SeverityInfo
	default:
		return &FieldError{Record: e.Code, Field: "severity", Reason: fmt.Sprintf("%q is not info, warning or critical", e.Severity)}
	}
	data, err := rawJSON("data", e.Data)
	if err != nil {
		return err
	}
	if e.At.IsZero() {
		e.At = now()
	}
	return db.tx(ctx, func(x q) error {
		if dedup > 0 {
			if db.d.name == "postgres" {
				// Serialize AddEvent per (code, source) so concurrent
				// duplicates merge instead of racing to insert.
				if _, err := x.exec(ctx, "SELECT pg_advisory_xact_lock(?)", eventLockKey(e.Code, e.Source)); err != nil {
					return mapErr(err, e.Code)
				}
			}
			var id, at, last int64
			var count int
			err := x.row(ctx, `SELECT id, at, last_at, count FROM events WHERE code = ? AND source = ? AND last_at >= ?
ORDER BY last_at DESC, id DESC LIMIT 1`, e.Code, e.Source, ts(e.At.Add(-dedup))).Scan(&id, &at, &last, &count)
			if err == nil {
				if l := ts(e.At); l > last {
					last = l
				}
				count++
				if _, err := x.exec(ctx, "UPDATE events SET count = ?, last_at = ?, message = ?, data = ? WHERE id = ?",
					count, last, e.Message, data, id); err != nil {
					return mapErr(err, e.Code)
				}
				e.ID, e.At, e.LastAt, e.Count = id, fromTS(at), fromTS(last), count
				return nil
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return mapErr(err, e.Code)
			}
		}
		if e.Count < 1 {
			e.Count = 1
		}
		e.LastAt = e.At
		err := x.row(ctx, `INSERT INTO events (at, code, severity, source, message, count, last_at, data)
VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			ts(e.At), e.Code, string(e.Severity), e.Source, e.Message, e.Count, ts(e.LastAt), data).Scan(&e.ID)
		return mapErr(err, e.Code)
	})
}

func eventLockKey(code, source string) int64 {
	h := sha256.Sum256([]byte("lightsout.event\x00" + code + "\x00" + source))
	return int64(binary.BigEndian.Uint64(h[:8]))
}

// Events lists events newest (by LastAt) first: those with LastAt ≥ since
// (zero: all), of one code ("" all), at most limit (0: 100).
func (db *DB) Events(ctx context.Context, since time.Time, code string, limit int) ([]Event, error) {
	if limit <= 0 {
		limit = 100
	}
	where, args := "1 = 1", []any{}
	if !since.IsZero() {
		where += " AND last_at >= ?"
		args = append(args, ts(since))
	}
	if code != "" {
		where += " AND code = ?"
		args = append(args, code)
	}
	args = append(args, limit)
	return db.queryEvents(ctx, where, args)
}

// ListEvents lists events newest (by LastAt) first, filtered by f.
func (db *DB) ListEvents(ctx context.Context, f EventFilter) ([]Event, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	where, args := "1 = 1", []any{}
	if !f.Since.IsZero() {
		where += " AND last_at >= ?"
		args = append(args, ts(f.Since))
	}
	if f.Code != "" {
		if fam, ok := strings.CutSuffix(f.Code, "*"); ok && strings.HasSuffix(fam, ".") {
			// An exact prefix comparison: LIKE would take "_" in a
			// code as a wildcard.
			where += " AND substr(code, 1, ?) = ?"
			args = append(args, utf8.RuneCountInString(fam), fam)
		} else {
			where += " AND code = ?"
			args = append(args, f.Code)
		}
	}
	if f.Source != "" {
		where += " AND source = ?"
		args = append(args, f.Source)
	}
	if f.MinSeverity != "" {
		if _, err := ParseSeverity(string(f.MinSeverity)); err != nil {
			return nil, &FieldError{Field: "severity", Reason: fmt.Sprintf("%q is not info, warning or critical", f.MinSeverity)}
		}
		var sev []string
		for _, s := range []Severity{SeverityInfo, SeverityWarning, SeverityCritical} {
			if s.AtLeast(f.MinSeverity) {
				sev = append(sev, "'"+string(s)+"'")
			}
		}
		where += " AND severity IN (" + strings.Join(sev, ", ") + ")"
	}
	if f.Before > 0 {
		where += " AND id < ?"
		args = append(args, f.Before)
	}
	args = append(args, f.Limit)
	return db.queryEvents(ctx, where, args)
}

// queryEvents is the one query and row scan of Events and ListEvents: the
// events matching where (args: its parameters, then the limit), newest (by
// LastAt) first.
func (db *DB) queryEvents(ctx context.Context, where string, args []any) ([]Event, error) {
	rows, err := db.read().query(ctx, `SELECT id, at, code, severity, source, message, count, last_at, data FROM events
WHERE `+where+` ORDER BY last_at DESC, id DESC LIMIT ?`, args...)
	if err != nil {
		return nil, mapErr(err, "")
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var e Event
		var at, last int64
		var sev, data string
		if err := rows.Scan(&e.ID, &at, &e.Code, &sev, &e.Source, &e.Message, &e.Count, &last, &data); err != nil {
			return nil, mapErr(err, "")
		}
		e.At, e.LastAt, e.Severity, e.Data = fromTS(at), fromTS(last), Severity(sev), toRaw(data)
		out = append(out, e)
	}
	return out, mapErr(rows.Err(), "")
}

// PruneEvents deletes events whose LastAt is before before, returning how
// many.
func (db *DB) PruneEvents(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := db.tx(ctx, func(x q) error {
		res, err := x.exec(ctx, "DELETE FROM events WHERE last_at < ?", ts(before))
		if err != nil {
			return mapErr(err, "")
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

// Audit appends an entry to the audit log, setting its ID (and At, when
// zero). Actor and action must be set; the result must be ok, refused or
// failed.
func (db *DB) Audit(ctx context.Context, a *AuditEntry) error {
	if fe := checkName(a.Action, "actor", a.Actor); fe != nil {
		return fe
	}
	if fe := checkName(a.Action, "action", a.Action); fe != nil {
		return fe
	}
	switch a.Result {
	case "ok", "refused", "failed":
	default:
		return &FieldError{Record: a.Action, Field: "result", Reason: fmt.Sprintf("%q is not ok, refused or failed", a.Result)}
	}
	if a.At.IsZero() {
		a.At = now()
	}
	return db.tx(ctx, func(x q) error {
		return mapErr(x.row(ctx, `INSERT INTO audit (at, actor, action, target, detail, result, error) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			ts(a.At), a.Actor, a.Action, a.Target, a.Detail, a.Result, a.Error).Scan(&a.ID), a.Action)
	})
}

// AuditLog lists audit entries newest first: about target ("" all), at most
// limit (0: 100).
func (db *DB) AuditLog(ctx context.Context, target string, limit int) ([]AuditEntry, error) {
	if limit <= 0 {
		limit = 100
	}
	where, args := "", []any{}
	if target != "" {
		where, args = " WHERE target = ?", append(args, target)
	}
	args = append(args, limit)
	rows, err := db.read().query(ctx, `SELECT id, at, actor, action, target, detail, result, error FROM audit`+where+` ORDER BY id DESC LIMIT ?`, args...)
	if err != nil {
		return nil, mapErr(err, "")
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var a AuditEntry
		var at int64
		if err := rows.Scan(&a.ID, &at, &a.Actor, &a.Action, &a.Target, &a.Detail, &a.Result, &a.Error); err != nil {
			return nil, mapErr(err, "")
		}
		a.At = fromTS(at)
		out = append(out, a)
	}
	return out, mapErr(rows.Err(), "")
}

// AddToken stores an API token (its SHA-256 hash, 32 bytes), setting ID and
// CreatedAt.
func (db *DB) AddToken(ctx context.Context, t *Token) error {
	if fe := checkName(t.Name, "name", t.Name); fe != nil {
		return fe
	}
	if t.Role.Rank() == 0 {
		return &FieldError{Record: t.Name, Field: "role", Reason: fmt.Sprintf("%q is not viewer, operator or admin", t.Role)}
	}
	if len(t.Hash) != sha256.Size {
		return &FieldError{Record: t.Name, Field: "hash", Reason: fmt.Sprintf("is %d bytes, not a SHA-256 hash", len(t.Hash))}
	}
	return db.tx(ctx, func(x q) error {
		var id int64
		err := x.row(ctx, "SELECT id FROM tokens WHERE name = ?", t.Name).Scan(&id)
		if err == nil {
			return &FieldError{Record: t.Name, Field: "name", Reason: fmt.Sprintf("already used by token %d", id), Err: ErrConflict}
		} else if !errors.Is(err, sql.ErrNoRows) {
			return mapErr(err, t.Name)
		}
		c := now()
		if err := x.row(ctx, "INSERT INTO tokens (name, role, hash, created_at, revoked) VALUES (?, ?, ?, ?, ?) RETURNING id",
			t.Name, string(t.Role), t.Hash, ts(c), b2i(t.Revoked)).Scan(&t.ID); err != nil {
			return mapErr(err, t.Name)
		}
		t.CreatedAt = c
		return nil
	})
}

const tokenCols = "id, name, role, hash, created_at, revoked"

func scanToken(s scanner) (Token, error) {
	var t Token
	var role string
	var created int64
	var revoked int
	if err := s.Scan(&t.ID, &t.Name, &role, &t.Hash, &created, &revoked); err != nil {
		return t, err
	}
	t.Role, t.CreatedAt, t.Revoked = Role(role), fromTS(created), revoked != 0
	return t, nil
}

// TokenByHash returns the token with that hash, revoked or not: callers
// check Revoked.
func (db *DB) TokenByHash(ctx context.Context, hash []byte) (Token, error) {
	// Every API request asks: a prepared statement (queryPrepared).
	rows, err := db.queryPrepared(ctx, "SELECT "+tokenCols+" FROM tokens WHERE hash = ?", hash)
	if err != nil {
		return Token{}, mapErr(err, "")
	}
	defer rows.Close()
	if !rows.Next() {
		err = rows.Err()
		if err == nil {
			err = sql.ErrNoRows
		}
	}
	var t Token
	if err == nil {
		t, err = scanToken(rows)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return t, &FieldError{Field: "token", Reason: "no such token", Err: ErrNotFound}
	}
	return t, mapErr(err, "")
}

// Tokens lists every token, revoked ones included, by ID.
func (db *DB) Tokens(ctx context.Context) ([]Token, error) {
	rows, err := db.read().query(ctx, "SELECT "+tokenCols+" FROM tokens ORDER BY id")
	if err != nil {
		return nil, mapErr(err, "")
	}
	defer rows.Close()
	var out []Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, mapErr(err, "")
		}
		out = append(out, t)
	}
	return out, mapErr(rows.Err(), "")
}

// RevokeToken marks the token named name revoked.
func (db *DB) RevokeToken(ctx context.Context, name string) error {
	return db.tx(ctx, func(x q) error {
		res, err := x.exec(ctx, "UPDATE tokens SET revoked = 1 WHERE name = ?", name)
		if err != nil {
			return mapErr(err, name)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return notFound("token", name)
		}
		return nil
	})
}
