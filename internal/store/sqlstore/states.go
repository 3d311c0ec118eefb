package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/lightsout/lightsout/internal/state"
)

func conditionsJSON(cs []state.Condition) string {
	if len(cs) == 0 {
		return ""
	}
	b, _ := json.Marshal(cs)
	return string(b)
}

func parseConditions(s string) ([]state.Condition, error) {
	if s == "" {
		return nil, nil
	}
	var cs []state.Condition
	err := json.Unmarshal([]byte(s), &cs)
	return cs, err
}

// rawJSON checks that a JSON column value is valid JSON ("" when empty).
func rawJSON(field string, v json.RawMessage) (string, error) {
	if len(v) == 0 {
		return "", nil
	}
	if !json.Valid(v) {
		return "", &FieldError{Field: field, Reason: "is not valid JSON"}
	}
	return string(v), nil
}

func toRaw(s string) json.RawMessage {
	if s == "" {
		return nil
	}
	return json.RawMessage(s)
}

// SaveState stores s as the current state of its channel and, when t is not
// nil, appends t to the channel's history, in one transaction. t.AccountID
// defaults to s.AccountID, t.At to s.CheckedAt, t.To to s.State; t.ID is
// set. An account that does not exist (deleted meanwhile) is ErrNotFound.
func (db *DB) SaveState(ctx context.Context, s ChannelState, t *Transition) error {
	if s.AccountID <= 0 {
		return &FieldError{Field: "account_id", Reason: "must be set"}
	}
	if s.State == "" {
		return &FieldError{Field: "state", Reason: "must not be empty"}
	}
	ev, err := rawJSON("evidence", s.Evidence)
	if err != nil {
		return err
	}
	var tev string
	if t != nil {
		if t.AccountID == 0 {
			t.AccountID = s.AccountID
		}
		if t.AccountID != s.AccountID {
			return &FieldError{Field: "account_id", Reason: fmt.Sprintf("transition is for account %d, state for %d", t.AccountID, s.AccountID)}
		}
		if t.At.IsZero() {
			t.At = s.CheckedAt
		}
		if t.At.IsZero() {
			t.At = now()
		}
		if t.To == "" {
			t.To = s.State
		}
		if tev, err = rawJSON("evidence", t.Evidence); err != nil {
			return err
		}
	}
	err = db.tx(ctx, func(x q) error {
		_, err := x.exec(ctx, `INSERT INTO channel_states (account_id, state, reason, conditions, message, since, checked_at, guid, power, evidence)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (account_id) DO UPDATE SET state = excluded.state, reason = excluded.reason, conditions = excluded.conditions,
  message = excluded.message, since = excluded.since, checked_at = excluded.checked_at, guid = excluded.guid,
  power = excluded.power, evidence = excluded.evidence`,
			s.AccountID, string(s.State), string(s.Reason), conditionsJSON(s.Conditions), s.Message,
			ts(s.Since), ts(s.CheckedAt), s.GUID, s.Power, ev)
		if err != nil {
			return err
		}
		// The listing's state and reason filters (0012); rewritten only
		// when they changed.
		if _, err := x.exec(ctx, "UPDATE channel_index SET state = ?, reason = ? WHERE account_id = ? AND (state <> ? OR reason <> ?)",
			string(s.State), string(s.Reason), s.AccountID, string(s.State), string(s.Reason)); err != nil {
			return err
		}
		if t == nil {
			return nil
		}
		return x.row(ctx, `INSERT INTO transitions (account_id, at, from_state, to_state, reason, conditions, message, evidence)
VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			t.AccountID, ts(t.At), string(t.From), string(t.To), string(t.Reason), conditionsJSON(t.Conditions), t.Message, tev).Scan(&t.ID)
	})
	if v, _ := classify(err); v == foreignKeyViolation {
		return notFoundID("account", s.AccountID)
	}
	return mapErr(err, "")
}

const stateCols = `account_id, state, reason, conditions, message, since, checked_at, guid, power, evidence`

// stateColsBrief is stateCols with an empty evidence.
const stateColsBrief = `account_id, state, reason, conditions, message, since, checked_at, guid, power, ''`

func scanState(s scanner) (ChannelState, error) {
	var c ChannelState
	var st, reason, conds, ev string
	var since, checked int64
	if err := s.Scan(&c.AccountID, &st, &reason, &conds, &c.Message, &since, &checked, &c.GUID, &c.Power, &ev); err != nil {
		return c, err
	}
	c.State, c.Reason = state.OOB(st), state.Reason(reason)
	var err error
	if c.Conditions, err = parseConditions(conds); err != nil {
		return c, fmt.Errorf("store: account %d: stored conditions: %w", c.AccountID, err)
	}
	c.Since, c.CheckedAt = fromTS(since), fromTS(checked)
	c.Evidence = toRaw(ev)
	return c, nil
}

// States lists every channel's current state, by account ID, in one query.
func (db *DB) States(ctx context.Context) ([]ChannelState, error) {
	// Evidence is left out: at fleet scale it is most of the bytes, and
	// the one channel's evidence comes from State.
	rows, err := db.read().query(ctx, "SELECT "+stateColsBrief+" FROM channel_states ORDER BY account_id")
	if err != nil {
		return nil, mapErr(err, "")
	}
	defer rows.Close()
	out := make([]ChannelState, 0, 64)
	for rows.Next() {
		c, err := scanState(rows)
		if err != nil {
			return nil, mapErr(err, "")
		}
		out = append(out, c)
	}
	return out, mapErr(rows.Err(), "")
}

// State returns the current state of one channel; ErrNotFound if it was
// never saved.
func (db *DB) State(ctx context.Context, accountID int64) (ChannelState, error) {
	c, err := scanState(db.read().row(ctx, "SELECT "+stateCols+" FROM channel_states WHERE account_id = ?", accountID))
	if errors.Is(err, sql.ErrNoRows) {
		return c, &FieldError{Field: "account", Reason: fmt.Sprintf("no state saved for account %d", accountID), Err: ErrNotFound}
	}
	return c, mapErr(err, "")
}

const transitionSelect = `SELECT t.id, t.account_id, m.name, t.at, t.from_state, t.to_state, t.reason, t.conditions, t.message, t.evidence
FROM transitions t JOIN accounts a ON a.id = t.account_id JOIN machines m ON m.id = a.machine_id`

// History lists a channel's transitions newest first: IDs below before
// (0: from the newest), at most limit (0: 100).
func (db *DB) History(ctx context.Context, accountID int64, before int64, limit int) ([]Transition, error) {
	return db.history(ctx, "t.account_id = ?", accountID, before, limit)
}

// HistoryOfMachine is History over all of a machine's accounts.
func (db *DB) HistoryOfMachine(ctx context.Context, machineID int64, before int64, limit int) ([]Transition, error) {
	return db.history(ctx, "a.machine_id = ?", machineID, before, limit)
}

func (db *DB) history(ctx context.Context, where string, id, before int64, limit int) ([]Transition, error) {
	if limit <= 0 {
		limit = 100
	}
	args := []any{id}
	if before > 0 {
		where += " AND t.id < ?"
		args = append(args, before)
	}
	args = append(args, limit)
	rows, err := db.read().query(ctx, transitionSelect+" WHERE "+where+" ORDER BY t.id DESC LIMIT ?", args...)
	if err != nil {
		return nil, mapErr(err, "")
	}
	defer rows.Close()
	var out []Transition
	for rows.Next() {
		var t Transition
		var from, to, reason, conds, ev string
		var at int64
		if err := rows.Scan(&t.ID, &t.AccountID, &t.Machine, &at, &from, &to, &reason, &conds, &t.Message, &ev); err != nil {
			return nil, mapErr(err, "")
		}
		t.At, t.From, t.To, t.Reason = fromTS(at), state.OOB(from), state.OOB(to), state.Reason(reason)
		if t.Conditions, err = parseConditions(conds); err != nil {
			return nil, fmt.Errorf("store: transition %d: stored conditions: %w", t.ID, err)
		}
		t.Evidence = toRaw(ev)
		out = append(out, t)
	}
	return out, mapErr(rows.Err(), "")
}

// StatesOf returns the stored states (without evidence) of the given
// accounts, by account ID; accounts never saved are absent. It is how an
// instance shows channels another instance checks (docs/scale-out.md).
func (db *DB) StatesOf(ctx context.Context, accountIDs []int64) (map[int64]ChannelState, error) {
	out := make(map[int64]ChannelState, len(accountIDs))
	if len(accountIDs) == 0 {
		return out, nil
	}
	ids, err := json.Marshal(accountIDs)
	if err != nil {
		return nil, err
	}
	// An ID list as one JSON parameter, joined on the primary key.
	in := "SELECT value FROM json_each(?)"
	if db.d.name == "postgres" {
		in = "SELECT CAST(v AS BIGINT) FROM json_array_elements_text(CAST(? AS json)) AS v"
	}
	rows, err := db.read().query(ctx, "SELECT "+stateColsBrief+" FROM channel_states WHERE account_id IN ("+in+")", string(ids))
	if err != nil {
		return nil, mapErr(err, "")
	}
	defer rows.Close()
	for rows.Next() {
		c, err := scanState(rows)
		if err != nil {
			return nil, mapErr(err, "")
		}
		out[c.AccountID] = c
	}
	return out, mapErr(rows.Err(), "")
}
