package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/lightsout/lightsout/internal/ipmi"
)

const enclosureCols = `id, name, protocol, address, port, username, password, slots, kind, ipmb, created_at, updated_at`

func (db *DB) scanEnclosure(s scanner) (Enclosure, error) {
	var e Enclosure
	var pw []byte
	var created, updated int64
	if err := s.Scan(&e.ID, &e.Name, &e.Protocol, &e.Address, &e.Port, &e.User, &pw, &e.Slots, &e.Kind, &e.IPMB, &created, &updated); err != nil {
		return e, err
	}
	var err error
	if e.Password, err = db.unseal(fmt.Sprintf("enclosure %q", e.Name), pw, enclosureBinding(e.Protocol, e.Address, e.Port)); err != nil {
		return e, err
	}
	e.CreatedAt, e.UpdatedAt = fromTS(created), fromTS(updated)
	return e, nil
}

func normalizeEnclosure(e *Enclosure) *FieldError {
	if fe := checkName(e.Name, "name", e.Name); fe != nil {
		return fe
	}
	if e.Protocol == "" {
		e.Protocol = "ipmi"
		if e.Kind == "redfish" {
			e.Protocol = "redfish"
		}
	}
	if fe := checkEndpoint(e.Name, &e.Protocol, e.Address, &e.Port); fe != nil {
		return fe
	}
	if e.Slots < 0 {
		return &FieldError{Record: e.Name, Field: "slots", Reason: fmt.Sprintf("%d is negative", e.Slots)}
	}
	switch e.Kind {
	case "":
		e.Kind = "oem"
		if e.Protocol == "redfish" {
			e.Kind = "redfish" // a Redfish enclosure manager is asked the Redfish way
		}
	case "oem":
	case "redfish":
		// A Redfish enclosure manager: its Chassis (Links.Contains, the
		// blades' PowerState, Status and LocationIndicatorActive).
		if e.Protocol != "redfish" {
			return &FieldError{Record: e.Name, Field: "protocol", Reason: fmt.Sprintf("%q: an enclosure of kind redfish speaks redfish", e.Protocol)}
		}
	case "ipmb":
		if _, err := ipmi.ParseIPMBRule(e.IPMB); err != nil {
			return &FieldError{Record: e.Name, Field: "ipmb", Reason: err.Error()}
		}
	default:
		return &FieldError{Record: e.Name, Field: "kind", Reason: fmt.Sprintf("%q is not an enclosure kind (ipmb, oem or redfish)", e.Kind)}
	}
	return nil
}

// checkEnclosureUnique refuses a name or endpoint another enclosure
// (ID ≠ e.ID) has, naming it; and, for an existing enclosure, a slot count
// below a slot in use.
func checkEnclosureUnique(ctx context.Context, x q, e *Enclosure) error {
	var other string
	err := x.row(ctx, "SELECT name FROM enclosures WHERE name = ? AND id <> ?", e.Name, e.ID).Scan(&other)
	if err == nil {
		return &FieldError{Record: e.Name, Field: "name", Reason: fmt.Sprintf("already used by enclosure %q", other), Err: ErrConflict}
	} else if !errors.Is(err, sql.ErrNoRows) {
		return mapErr(err, e.Name)
	}
	err = x.row(ctx, "SELECT name FROM enclosures WHERE protocol = ? AND address = ? AND port = ? AND id <> ?",
		e.Protocol, e.Address, e.Port, e.ID).Scan(&other)
	if err == nil {
		return &FieldError{Record: e.Name, Field: "address", Reason: fmt.Sprintf("%s %s port %d is already used by enclosure %q", e.Protocol, e.Address, e.Port, other), Err: ErrConflict}
	} else if !errors.Is(err, sql.ErrNoRows) {
		return mapErr(err, e.Name)
	}
	if e.ID != 0 && e.Slots > 0 {
		var machine string
		var slot int
		err = x.row(ctx, "SELECT name, slot FROM machines WHERE enclosure_id = ? AND slot > ? ORDER BY slot DESC LIMIT 1", e.ID, e.Slots).Scan(&machine, &slot)
		if err == nil {
			return &FieldError{Record: e.Name, Field: "slots", Reason: fmt.Sprintf("machine %q is in slot %d, beyond %d slots", machine, slot, e.Slots)}
		} else if !errors.Is(err, sql.ErrNoRows) {
			return mapErr(err, e.Name)
		}
	}
	return nil
}

func (db *DB) insertEnclosure(ctx context.Context, x q, e *Enclosure) error {
	if fe := normalizeEnclosure(e); fe != nil {
		return fe
	}
	e.ID = 0
	if err := checkEnclosureUnique(ctx, x, e); err != nil {
		return err
	}
	pw, err := db.seal("enclosure "+e.Name, e.Password, enclosureBinding(e.Protocol, e.Address, e.Port))
	if err != nil {
		return err
	}
	t := now()
	err = x.row(ctx, `INSERT INTO enclosures (name, protocol, address, port, username, password, slots, kind, ipmb, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		e.Name, e.Protocol, e.Address, e.Port, e.User, pw, e.Slots, e.Kind, e.IPMB, ts(t), ts(t)).Scan(&e.ID)
	if err != nil {
		return mapErr(err, e.Name)
	}
	e.CreatedAt, e.UpdatedAt = t, t
	return nil
}

func (db *DB) updateEnclosure(ctx context.Context, x q, e *Enclosure) error {
	if fe := normalizeEnclosure(e); fe != nil {
		return fe
	}
	if err := checkEnclosureUnique(ctx, x, e); err != nil {
		return err
	}
	pw, err := db.seal("enclosure "+e.Name, e.Password, enclosureBinding(e.Protocol, e.Address, e.Port))
	if err != nil {
		return err
	}
	t := now()
	var created int64
	err = x.row(ctx, `UPDATE enclosures SET name = ?, protocol = ?, address = ?, port = ?, username = ?, password = ?, slots = ?,
  kind = ?, ipmb = ?, updated_at = ? WHERE id = ? RETURNING created_at`,
		e.Name, e.Protocol, e.Address, e.Port, e.User, pw, e.Slots, e.Kind, e.IPMB, ts(t), e.ID).Scan(&created)
	if errors.Is(err, sql.ErrNoRows) {
		return &FieldError{Record: e.Name, Field: "id", Reason: fmt.Sprintf("no enclosure with ID %d", e.ID), Err: ErrNotFound}
	}
	if err != nil {
		return mapErr(err, e.Name)
	}
	e.CreatedAt, e.UpdatedAt = fromTS(created), t
	return nil
}

// AddEnclosure adds e, setting its ID and times. An empty protocol means
// ipmi; port 0 the protocol's default.
func (db *DB) AddEnclosure(ctx context.Context, e *Enclosure) error {
	return db.tx(ctx, func(x q) error { return db.insertEnclosure(ctx, x, e) })
}

// UpdateEnclosure writes every field of the enclosure with e.ID. Machines
// follow a rename.
func (db *DB) UpdateEnclosure(ctx context.Context, e *Enclosure) error {
	return db.tx(ctx, func(x q) error { return db.updateEnclosure(ctx, x, e) })
}

// DeleteEnclosure deletes an empty enclosure; one that still holds machines
// is refused (ErrConflict) naming them.
func (db *DB) DeleteEnclosure(ctx context.Context, name string) error {
	return db.tx(ctx, func(x q) error {
		var id int64
		err := x.row(ctx, "SELECT id FROM enclosures WHERE name = ?", name).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("enclosure", name)
		} else if err != nil {
			return mapErr(err, name)
		}
		rows, err := x.query(ctx, "SELECT name FROM machines WHERE enclosure_id = ? ORDER BY slot, id LIMIT 6", id)
		if err != nil {
			return mapErr(err, name)
		}
		var held []string
		for rows.Next() {
			var m string
			if err := rows.Scan(&m); err != nil {
				rows.Close()
				return mapErr(err, name)
			}
			held = append(held, fmt.Sprintf("%q", m))
		}
		rows.Close()
		if len(held) > 0 {
			if len(held) > 5 {
				held = append(held[:5], "…")
			}
			return &FieldError{Record: name, Field: "name", Reason: "the enclosure still holds machines " + strings.Join(held, ", ") + "; move or delete them first", Err: ErrConflict}
		}
		if _, err := x.exec(ctx, "DELETE FROM enclosures WHERE id = ?", id); err != nil {
			return mapErr(err, name)
		}
		return nil
	})
}

// Enclosure returns the enclosure named name, password decrypted.
func (db *DB) Enclosure(ctx context.Context, name string) (Enclosure, error) {
	e, err := db.scanEnclosure(db.read().row(ctx, "SELECT "+enclosureCols+" FROM enclosures WHERE name = ?", name))
	if errors.Is(err, sql.ErrNoRows) {
		return e, notFound("enclosure", name)
	}
	return e, mapErr(err, name)
}

// Enclosures lists every enclosure by ID.
func (db *DB) Enclosures(ctx context.Context) ([]Enclosure, error) {
	rows, err := db.read().query(ctx, "SELECT "+enclosureCols+" FROM enclosures ORDER BY id")
	if err != nil {
		return nil, mapErr(err, "")
	}
	defer rows.Close()
	var out []Enclosure
	for rows.Next() {
		e, err := db.scanEnclosure(rows)
		if err != nil {
			return nil, mapErr(err, "")
		}
		out = append(out, e)
	}
	return out, mapErr(rows.Err(), "")
}
