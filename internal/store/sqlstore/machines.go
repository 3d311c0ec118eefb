package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

const machineCols = `m.id, m.name, m.guid, m.grp, m.tags, m.role, m.spare, m.registering,
  COALESCE(e.name, ''), m.slot, m.created_at, m.updated_at, m.zone`

const machineFrom = ` FROM machines m LEFT JOIN enclosures e ON e.id = m.enclosure_id`

type scanner interface{ Scan(dest ...any) error }

func scanMachine(s scanner) (Machine, error) {
	var m Machine
	var tags string
	var spare, reg int
	var created, updated int64
	if err := s.Scan(&m.ID, &m.Name, &m.GUID, &m.Group, &tags, &m.Role, &spare, &reg,
		&m.Enclosure, &m.Slot, &created, &updated, &m.Zone); err != nil {
		return m, err
	}
	if tags != "" {
		if err := json.Unmarshal([]byte(tags), &m.Tags); err != nil {
			return m, fmt.Errorf("store: machine %q: stored tags: %w", m.Name, err)
		}
	}
	m.Spare, m.Registering = spare != 0, reg != 0
	m.CreatedAt, m.UpdatedAt = fromTS(created), fromTS(updated)
	return m, nil
}

// checkName refuses empty names, names with surrounding spaces and names
// with control characters.
func checkName(record, field, name string) *FieldError {
	switch {
	case strings.TrimSpace(name) == "":
		return &FieldError{Record: record, Field: field, Reason: "must not be empty"}
	case strings.TrimSpace(name) != name:
		return &FieldError{Record: record, Field: field, Reason: fmt.Sprintf("%q has leading or trailing spaces", name)}
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return &FieldError{Record: record, Field: field, Reason: fmt.Sprintf("%q contains control characters", name)}
	case len(name) > 255:
		return &FieldError{Record: record, Field: field, Reason: "longer than 255 bytes"}
	}
	return nil
}

// normalizeMachine validates m and normalizes it in place (GUID lower case,
// tags deduplicated).
func normalizeMachine(m *Machine) *FieldError {
	if fe := checkName(m.Name, "name", m.Name); fe != nil {
		return fe
	}
	m.GUID = strings.ToLower(strings.TrimSpace(m.GUID))
	if m.GUID != "" && !isGUID(m.GUID) {
		return &FieldError{Record: m.Name, Field: "guid", Reason: fmt.Sprintf("%q is not a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)", m.GUID)}
	}
	if m.Slot < 0 {
		return &FieldError{Record: m.Name, Field: "slot", Reason: fmt.Sprintf("%d is negative", m.Slot)}
	}
	if m.Slot > 0 && m.Enclosure == "" {
		return &FieldError{Record: m.Name, Field: "slot", Reason: "a slot needs an enclosure"}
	}
	if m.Zone == DefaultZone {
		m.Zone = ""
	}
	if m.Zone != "" {
		if fe := checkName(m.Name, "zone", m.Zone); fe != nil {
			fe.Reason = "zone " + fe.Reason
			return fe
		}
		if strings.ContainsAny(m.Zone, ", \t") {
			return &FieldError{Record: m.Name, Field: "zone", Reason: fmt.Sprintf("%q: a zone name has no commas or spaces", m.Zone)}
		}
	}
	var tags []string
	seen := map[string]bool{}
	for _, t := range m.Tags {
		if fe := checkName(m.Name, "tags", t); fe != nil {
			fe.Reason = "tag " + fe.Reason
			return fe
		}
		if !seen[t] {
			seen[t] = true
			tags = append(tags, t)
		}
	}
	m.Tags = tags
	return nil
}

func isGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return false
			}
		}
	}
	return true
}

func tagsJSON(tags []string) string {
	if len(tags) == 0 {
		return ""
	}
	b, _ := json.Marshal(tags)
	return string(b)
}

// resolveEnclosure finds the enclosure a machine names (nil when none) and
// checks the slot against it.
func resolveEnclosure(ctx context.Context, x q, m *Machine) (*int64, error) {
	if m.Enclosure == "" {
		return nil, nil
	}
	var id int64
	var slots int
	err := x.row(ctx, "SELECT id, slots FROM enclosures WHERE name = ?", m.Enclosure).Scan(&id, &slots)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &FieldError{Record: m.Name, Field: "enclosure", Reason: fmt.Sprintf("no enclosure named %q", m.Enclosure), Err: ErrNotFound}
	}
	if err != nil {
		return nil, mapErr(err, m.Name)
	}
	if slots > 0 && m.Slot > slots {
		return nil, &FieldError{Record: m.Name, Field: "slot", Reason: fmt.Sprintf("enclosure %q has %d slots, not %d", m.Enclosure, slots, m.Slot)}
	}
	return &id, nil
}

// checkMachineUnique refuses a name or an enclosure slot that another machine
// (ID ≠ m.ID) has, naming it.
func checkMachineUnique(ctx context.Context, x q, m *Machine, encID *int64) error {
	var other int64
	err := x.row(ctx, "SELECT id FROM machines WHERE name = ? AND id <> ?", m.Name, m.ID).Scan(&other)
	if err == nil {
		return &FieldError{Record: m.Name, Field: "name", Reason: fmt.Sprintf("already used by machine %q (ID %d)", m.Name, other), Err: ErrConflict}
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return mapErr(err, m.Name)
	}
	if encID != nil && m.Slot > 0 {
		var name string
		err := x.row(ctx, "SELECT name FROM machines WHERE enclosure_id = ? AND slot = ? AND id <> ?", *encID, m.Slot, m.ID).Scan(&name)
		if err == nil {
			return &FieldError{Record: m.Name, Field: "slot", Reason: fmt.Sprintf("slot %d of enclosure %q is already used by machine %q", m.Slot, m.Enclosure, name), Err: ErrConflict}
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return mapErr(err, m.Name)
		}
	}
	return nil
}

func writeTags(ctx context.Context, x q, id int64, tags []string) error {
	if _, err := x.exec(ctx, "DELETE FROM machine_tags WHERE machine_id = ?", id); err != nil {
		return err
	}
	for _, t := range tags {
		if _, err := x.exec(ctx, "INSERT INTO machine_tags (machine_id, tag) VALUES (?, ?)", id, t); err != nil {
			return err
		}
	}
	return nil
}

// insertMachine validates and inserts m (in x's transaction), setting ID and
// times.
func insertMachine(ctx context.Context, x q, m *Machine) error {
	if fe := normalizeMachine(m); fe != nil {
		return fe
	}
	encID, err := resolveEnclosure(ctx, x, m)
	if err != nil {
		return err
	}
	m.ID = 0
	if err := checkMachineUnique(ctx, x, m, encID); err != nil {
		return err
	}
	t := now()
	err = x.row(ctx, `INSERT INTO machines (name, guid, grp, tags, role, spare, registering, enclosure_id, slot, created_at, updated_at, zone)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		m.Name, m.GUID, m.Group, tagsJSON(m.Tags), m.Role, b2i(m.Spare), b2i(m.Registering), encID, m.Slot, ts(t), ts(t), m.Zone).Scan(&m.ID)
	if err != nil {
		return mapErr(err, m.Name)
	}
	if err := writeTags(ctx, x, m.ID, m.Tags); err != nil {
		return mapErr(err, m.Name)
	}
	m.CreatedAt, m.UpdatedAt = t, t
	return nil
}

// updateMachine validates and writes every field of m by ID.
func updateMachine(ctx context.Context, x q, m *Machine) error {
	if fe := normalizeMachine(m); fe != nil {
		return fe
	}
	encID, err := resolveEnclosure(ctx, x, m)
	if err != nil {
		return err
	}
	if err := checkMachineUnique(ctx, x, m, encID); err != nil {
		return err
	}
	t := now()
	var created int64
	err = x.row(ctx, `UPDATE machines SET name = ?, guid = ?, grp = ?, tags = ?, role = ?, spare = ?, registering = ?,
  enclosure_id = ?, slot = ?, updated_at = ?, zone = ? WHERE id = ? RETURNING created_at`,
		m.Name, m.GUID, m.Group, tagsJSON(m.Tags), m.Role, b2i(m.Spare), b2i(m.Registering), encID, m.Slot, ts(t), m.Zone, m.ID).Scan(&created)
	if errors.Is(err, sql.ErrNoRows) {
		return &FieldError{Record: m.Name, Field: "id", Reason: fmt.Sprintf("no machine with ID %d", m.ID), Err: ErrNotFound}
	}
	if err != nil {
		return mapErr(err, m.Name)
	}
	if err := writeTags(ctx, x, m.ID, m.Tags); err != nil {
		return mapErr(err, m.Name)
	}
	m.CreatedAt, m.UpdatedAt = fromTS(created), t
	return nil
}

// AddMachine adds m, setting its ID, CreatedAt and UpdatedAt.
func (db *DB) AddMachine(ctx context.Context, m *Machine) error {
	return db.tx(ctx, func(x q) error { return insertMachine(ctx, x, m) })
}

// UpdateMachine writes every field of the machine with m.ID.
func (db *DB) UpdateMachine(ctx context.Context, m *Machine) error {
	return db.tx(ctx, func(x q) error { return updateMachine(ctx, x, m) })
}

// DeleteMachine deletes a machine with its accounts, channel states and
// transitions.
func (db *DB) DeleteMachine(ctx context.Context, name string) error {
	return db.tx(ctx, func(x q) error {
		res, err := x.exec(ctx, "DELETE FROM machines WHERE name = ?", name)
		if err != nil {
			return mapErr(err, name)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return notFound("machine", name)
		}
		return nil
	})
}

func notFound(kind, name string) error {
	return &FieldError{Record: name, Field: kind, Reason: fmt.Sprintf("no %s named %q", kind, name), Err: ErrNotFound}
}

func notFoundID(kind string, id int64) error {
	return &FieldError{Field: kind, Reason: fmt.Sprintf("no %s with ID %d", kind, id), Err: ErrNotFound}
}

func (db *DB) machineWhere(ctx context.Context, x q, where string, arg any) (Machine, error) {
	m, err := scanMachine(x.row(ctx, "SELECT "+machineCols+machineFrom+" WHERE "+where+" ORDER BY m.id LIMIT 1", arg))
	return m, err
}

// Machine returns the machine named name.
func (db *DB) Machine(ctx context.Context, name string) (Machine, error) {
	m, err := db.machineWhere(ctx, db.read(), "m.name = ?", name)
	if errors.Is(err, sql.ErrNoRows) {
		return m, notFound("machine", name)
	}
	return m, mapErr(err, name)
}

// MachineByID returns the machine with ID id.
func (db *DB) MachineByID(ctx context.Context, id int64) (Machine, error) {
	m, err := db.machineWhere(ctx, db.read(), "m.id = ?", id)
	if errors.Is(err, sql.ErrNoRows) {
		return m, notFoundID("machine", id)
	}
	return m, mapErr(err, "")
}

// MachineByGUID returns the machine whose pinned GUID is g (any case); the
// one with the lowest ID if several are.
func (db *DB) MachineByGUID(ctx context.Context, g string) (Machine, error) {
	g = strings.ToLower(strings.TrimSpace(g))
	if g == "" {
		return Machine{}, &FieldError{Field: "guid", Reason: "must not be empty", Err: ErrNotFound}
	}
	m, err := db.machineWhere(ctx, db.read(), "m.guid = ?", g)
	if errors.Is(err, sql.ErrNoRows) {
		return m, &FieldError{Field: "guid", Reason: fmt.Sprintf("no machine has GUID %s", g), Err: ErrNotFound}
	}
	return m, mapErr(err, "")
}

// filterSQL renders a machine filter (over alias m) as AND-ed conditions.
func (db *DB) filterSQL(f MachineFilter) (string, []any) {
	var conds []string
	var args []any
	if f.Group != "" {
		conds = append(conds, "m.grp = ?")
		args = append(args, f.Group)
	}
	if len(f.Names) > 0 {
		b, _ := json.Marshal(f.Names)
		conds = append(conds, "m.name IN ("+db.d.jsonList+")")
		args = append(args, string(b))
	}
	if f.Tag != "" {
		conds = append(conds, "EXISTS (SELECT 1 FROM machine_tags t WHERE t.machine_id = m.id AND t.tag = ?)")
		args = append(args, f.Tag)
	}
	if f.Zone != "" {
		z := f.Zone
		if z == DefaultZone {
			z = ""
		}
		conds = append(conds, "m.zone = ?")
		args = append(args, z)
	}
	if f.Prefix != "" {
		if db.d.name == "sqlite" {
			// GLOB with a literal prefix is a range of the name index;
			// substr is not (a scan of the fleet: bench/api).
			conds = append(conds, "m.name GLOB ?")
			args = append(args, globPrefix(f.Prefix))
		} else if hi, ok := prefixEnd(f.Prefix); ok {
			// A range of machines_name_c_idx (byte order, 0012).
			conds = append(conds, `m.name COLLATE "C" >= ? AND m.name COLLATE "C" < ?`)
			args = append(args, f.Prefix, hi)
		} else {
			conds = append(conds, `m.name COLLATE "C" >= ? AND substr(m.name, 1, ?) = ?`)
			args = append(args, f.Prefix, len([]rune(f.Prefix)), f.Prefix)
		}
	}
	if f.Enclosure != "" {
		// The enclosure's ID, then the machines_enclosure index in ID order.
		conds = append(conds, "m.enclosure_id = (SELECT fe.id FROM enclosures fe WHERE fe.name = ?)")
		args = append(args, f.Enclosure)
	}
	if f.State != "" || f.Reason != "" {
		// One channel in that state and with that reason (channel_index:
		// 'Unknown' until the first saved state).
		c := "EXISTS (SELECT 1 FROM channel_index fi WHERE fi.machine_id = m.id"
		if f.State != "" {
			c += " AND fi.state = ?"
			args = append(args, f.State)
		}
		if f.Reason != "" {
			c += " AND fi.reason = ?"
			args = append(args, f.Reason)
		}
		conds = append(conds, c+")")
	}
	return strings.Join(conds, " AND "), args
}

// prefixEnd is the least string above every string that starts with p,
// in byte (code point) order: p with its last rune incremented, dropping
// trailing runes that cannot be. ok is false when there is none, or p is
// not UTF-8.
func prefixEnd(p string) (string, bool) {
	if !utf8.ValidString(p) {
		return "", false
	}
	rs := []rune(p)
	for i := len(rs) - 1; i >= 0; i-- {
		r := rs[i] + 1
		if r == 0xD800 {
			r = 0xE000 // past the surrogates, which UTF-8 cannot hold
		}
		if r <= utf8.MaxRune {
			rs[i] = r
			return string(rs[:i+1]), true
		}
	}
	return "", false
}

// globPrefix is a SQLite GLOB pattern matching the names that start with
// p, its wildcards taken literally.
func globPrefix(p string) string {
	var b strings.Builder
	for _, r := range p {
		switch r {
		case '*', '?', '[':
			b.WriteString("[" + string(r) + "]")
		default:
			b.WriteRune(r)
		}
	}
	return b.String() + "*"
}

func pageSQL(idCol string, p Page, conds string, args []any) (string, []any) {
	if p.After > 0 {
		if conds != "" {
			conds += " AND "
		}
		conds += idCol + " > ?"
		args = append(args, p.After)
	}
	s := ""
	if conds != "" {
		s = " WHERE " + conds
	}
	s += " ORDER BY " + idCol
	if p.Limit > 0 {
		s += " LIMIT ?"
		args = append(args, p.Limit)
	}
	return s, args
}

// Machines lists the machines matching f, by ID.
func (db *DB) Machines(ctx context.Context, f MachineFilter, p Page) ([]Machine, error) {
	conds, args := db.filterSQL(f)
	tail, args := pageSQL("m.id", p, conds, args)
	rows, err := db.read().query(ctx, "SELECT "+machineCols+machineFrom+tail, args...)
	if err != nil {
		return nil, mapErr(err, "")
	}
	defer rows.Close()
	var out []Machine
	for rows.Next() {
		m, err := scanMachine(rows)
		if err != nil {
			return nil, mapErr(err, "")
		}
		out = append(out, m)
	}
	return out, mapErr(rows.Err(), "")
}

// ReplaceMachine hands old's group, role and tags to spare, which stops
// being a spare; old keeps its accounts and identity but leaves its group.
func (db *DB) ReplaceMachine(ctx context.Context, old, spare string) error {
	return db.tx(ctx, func(x q) error {
		if old == spare {
			return &FieldError{Record: old, Field: "spare", Reason: "a machine cannot replace itself"}
		}
		o, err := db.machineWhere(ctx, x, "m.name = ?", old)
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("machine", old)
		} else if err != nil {
			return mapErr(err, old)
		}
		s, err := db.machineWhere(ctx, x, "m.name = ?", spare)
		if errors.Is(err, sql.ErrNoRows) {
			return &FieldError{Record: spare, Field: "spare", Reason: fmt.Sprintf("no machine named %q", spare), Err: ErrNotFound}
		} else if err != nil {
			return mapErr(err, spare)
		}
		if !s.Spare {
			return &FieldError{Record: spare, Field: "spare", Reason: fmt.Sprintf("machine %q is not a spare", spare)}
		}
		s.Group, s.Role, s.Tags, s.Spare = o.Group, o.Role, o.Tags, false
		o.Group, o.Role, o.Tags, o.Spare = "", "", nil, false
		if err := updateMachine(ctx, x, &o); err != nil {
			return err
		}
		return updateMachine(ctx, x, &s)
	})
}
