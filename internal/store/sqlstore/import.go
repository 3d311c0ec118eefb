package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Import adds (or, with replace, updates) every row's machine and account and
// upserts enclosures by name, in one transaction: all or nothing. The error
// is a *FieldError naming the row's line, the machine and the field.
//
// With replace, an existing machine takes the row's fields (keeping its
// pinned GUID when the row gives none), and the row's account updates the
// machine's account with the same endpoint, or else its only account of the
// same protocol, or is added. A row whose account has neither protocol nor
// address adds no account.
func (db *DB) Import(ctx context.Context, rows []ImportRow, enclosures []Enclosure, replace bool) error {
	// Validate everything before touching the database.
	for i := range enclosures {
		e := enclosures[i]
		if fe := normalizeEnclosure(&e); fe != nil {
			return fe
		}
	}
	for i := range rows {
		r := rows[i] // copy: nothing of the caller's changes until commit
		if fe := normalizeMachine(&r.Machine); fe != nil {
			fe.Line = r.Line
			return fe
		}
		if hasAccount(&r.Account) {
			if fe := normalizeAccount(r.Machine.Name, &r.Account); fe != nil {
				fe.Line = r.Line
				return fe
			}
		}
	}
	return db.tx(ctx, func(x q) error {
		for i := range enclosures {
			e := enclosures[i]
			if err := db.upsertEnclosure(ctx, x, &e); err != nil {
				return err
			}
		}
		names := map[string]int{}
		type endpoint struct {
			proto, addr string
			port        int
		}
		endpoints := map[endpoint]int{}
		for i := range rows {
			r := rows[i]
			m, a := r.Machine, r.Account
			lineErr := func(err error) error {
				var fe *FieldError
				if errors.As(err, &fe) {
					fe.Line = r.Line
					if fe.Record == "" {
						fe.Record = m.Name
					}
					return fe
				}
				return fmt.Errorf("line %d: %s: %w", r.Line, m.Name, err)
			}
			if prev, dup := names[m.Name]; dup {
				return &FieldError{Line: r.Line, Record: m.Name, Field: "name", Reason: fmt.Sprintf("machine %q is also on line %d", m.Name, prev), Err: ErrConflict}
			}
			names[m.Name] = r.Line
			existing, err := db.machineWhere(ctx, x, "m.name = ?", m.Name)
			switch {
			case errors.Is(err, sql.ErrNoRows):
				if err := insertMachine(ctx, x, &m); err != nil {
					return lineErr(err)
				}
			case err != nil:
				return lineErr(mapErr(err, m.Name))
			case !replace:
				return &FieldError{Line: r.Line, Record: m.Name, Field: "name", Reason: fmt.Sprintf("machine %q already exists (ID %d); import with replace to update it", m.Name, existing.ID), Err: ErrConflict}
			default:
				m.ID = existing.ID
				if m.GUID == "" {
					m.GUID = existing.GUID
				}
				if err := updateMachine(ctx, x, &m); err != nil {
					return lineErr(err)
				}
			}
			if !hasAccount(&a) {
				continue
			}
			if fe := normalizeAccount(m.Name, &a); fe != nil {
				return lineErr(fe)
			}
			ep := endpoint{a.Protocol, a.Address, a.Port}
			if prev, dup := endpoints[ep]; dup {
				return &FieldError{Line: r.Line, Record: m.Name, Field: "address", Reason: fmt.Sprintf("%s %s port %d is also on line %d", a.Protocol, a.Address, a.Port, prev), Err: ErrConflict}
			}
			endpoints[ep] = r.Line
			a.MachineID = m.ID
			a.ID, err = db.accountToReplace(ctx, x, &a)
			if err != nil {
				return lineErr(err)
			}
			if a.ID != 0 {
				err = db.updateAccount(ctx, x, m.Name, &a)
			} else {
				err = db.insertAccount(ctx, x, m.Name, &a)
			}
			if err != nil {
				return lineErr(err)
			}
		}
		return nil
	})
}

func hasAccount(a *Account) bool { return a.Protocol != "" || a.Address != "" }

// accountToReplace picks the account of machine a.MachineID an imported
// account updates: the one with the same endpoint, else the machine's only
// account of the same protocol; 0 to add one.
func (db *DB) accountToReplace(ctx context.Context, x q, a *Account) (int64, error) {
	var id int64
	err := x.row(ctx, "SELECT id FROM accounts WHERE machine_id = ? AND protocol = ? AND address = ? AND port = ?",
		a.MachineID, a.Protocol, a.Address, a.Port).Scan(&id)
	if err == nil {
		return id, nil
	} else if !errors.Is(err, sql.ErrNoRows) {
		return 0, err
	}
	rows, err := x.query(ctx, "SELECT id FROM accounts WHERE machine_id = ? AND protocol = ? LIMIT 2", a.MachineID, a.Protocol)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		if err := rows.Scan(&id); err != nil {
			return 0, err
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return 0, err
	}
	if len(ids) == 1 {
		return ids[0], nil
	}
	return 0, nil
}

// upsertEnclosure adds e, or updates the enclosure of the same name.
func (db *DB) upsertEnclosure(ctx context.Context, x q, e *Enclosure) error {
	err := x.row(ctx, "SELECT id FROM enclosures WHERE name = ?", e.Name).Scan(&e.ID)
	if errors.Is(err, sql.ErrNoRows) {
		return db.insertEnclosure(ctx, x, e)
	} else if err != nil {
		return mapErr(err, e.Name)
	}
	return db.updateEnclosure(ctx, x, e)
}
