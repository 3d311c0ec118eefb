package sqlstore

import (
	"context"
	"encoding/json"
	"strconv"
)

// SaveSecurityReport stores r as the account's latest report and, when c
// is not nil, appends c to its history, in one transaction. c.AccountID
// defaults to r.AccountID and c.At to r.AuditedAt; c.ID is set. An account
// that does not exist (deleted meanwhile) is ErrNotFound.
func (db *DB) SaveSecurityReport(ctx context.Context, r SecurityReport, c *SecurityChange) error {
	if r.AccountID <= 0 {
		return &FieldError{Field: "account_id", Reason: "must be set"}
	}
	findings, err := rawJSON("findings", r.Findings)
	if err != nil {
		return err
	}
	report, err := rawJSON("report", r.Report)
	if err != nil {
		return err
	}
	var added, removed, after string
	if c != nil {
		if c.AccountID == 0 {
			c.AccountID = r.AccountID
		}
		if c.AccountID != r.AccountID {
			return &FieldError{Field: "account_id", Reason: "the change is for account " + strconv.FormatInt(c.AccountID, 10) + ", the report for " + strconv.FormatInt(r.AccountID, 10)}
		}
		if c.At.IsZero() {
			c.At = r.AuditedAt
		}
		if c.At.IsZero() {
			c.At = now()
		}
		if after, err = rawJSON("findings", c.Findings); err != nil {
			return err
		}
		if added, err = rawJSON("added", c.Added); err != nil {
			return err
		}
		if removed, err = rawJSON("removed", c.Removed); err != nil {
			return err
		}
	}
	record := "account " + strconv.FormatInt(r.AccountID, 10)
	return db.tx(ctx, func(x q) error {
		if _, err := x.exec(ctx, `INSERT INTO security_reports (account_id, audited_at, attempted_at, findings, report, error)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (account_id) DO UPDATE SET audited_at = excluded.audited_at, attempted_at = excluded.attempted_at,
  findings = excluded.findings, report = excluded.report, error = excluded.error`,
			r.AccountID, ts(r.AuditedAt), ts(r.AttemptedAt), findings, report, r.Error); err != nil {
			return mapErr(err, record)
		}
		if c == nil {
			return nil
		}
		return mapErr(x.row(ctx, `INSERT INTO security_changes (account_id, at, findings, added, removed) VALUES (?, ?, ?, ?, ?) RETURNING id`,
			c.AccountID, ts(c.At), after, added, removed).Scan(&c.ID), record)
	})
}

// SecurityReports returns the latest reports of the given accounts (all
// accounts when ids is empty), by account ID. Accounts never audited have
// none.
func (db *DB) SecurityReports(ctx context.Context, ids []int64) ([]SecurityReport, error) {
	where, args := "", []any{}
	if len(ids) > 0 {
		list := make([]string, len(ids))
		for i, id := range ids {
			list[i] = strconv.FormatInt(id, 10)
		}
		b, _ := json.Marshal(list)
		where, args = " WHERE CAST(r.account_id AS TEXT) IN ("+db.d.jsonList+")", append(args, string(b))
	}
	rows, err := db.read().query(ctx, `SELECT r.account_id, m.name, r.audited_at, r.attempted_at, r.findings, r.report, r.error
FROM security_reports r JOIN accounts a ON a.id = r.account_id JOIN machines m ON m.id = a.machine_id`+where+` ORDER BY r.account_id`, args...)
	if err != nil {
		return nil, mapErr(err, "")
	}
	defer rows.Close()
	var out []SecurityReport
	for rows.Next() {
		var r SecurityReport
		var audited, attempted int64
		var findings, report string
		if err := rows.Scan(&r.AccountID, &r.Machine, &audited, &attempted, &findings, &report, &r.Error); err != nil {
			return nil, mapErr(err, "")
		}
		r.AuditedAt, r.AttemptedAt, r.Findings, r.Report = fromTS(audited), fromTS(attempted), toRaw(findings), toRaw(report)
		out = append(out, r)
	}
	return out, mapErr(rows.Err(), "")
}

// SecurityHistory lists an account's changes of findings newest first, at
// most limit (0: 100).
func (db *DB) SecurityHistory(ctx context.Context, accountID int64, limit int) ([]SecurityChange, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := db.read().query(ctx, `SELECT c.id, c.account_id, m.name, c.at, c.findings, c.added, c.removed
FROM security_changes c JOIN accounts a ON a.id = c.account_id JOIN machines m ON m.id = a.machine_id
WHERE c.account_id = ? ORDER BY c.id DESC LIMIT ?`, accountID, limit)
	if err != nil {
		return nil, mapErr(err, "")
	}
	defer rows.Close()
	var out []SecurityChange
	for rows.Next() {
		var c SecurityChange
		var at int64
		var findings, added, removed string
		if err := rows.Scan(&c.ID, &c.AccountID, &c.Machine, &at, &findings, &added, &removed); err != nil {
			return nil, mapErr(err, "")
		}
		c.At, c.Findings, c.Added, c.Removed = fromTS(at), toRaw(findings), toRaw(added), toRaw(removed)
		out = append(out, c)
	}
	return out, mapErr(rows.Err(), "")
}
