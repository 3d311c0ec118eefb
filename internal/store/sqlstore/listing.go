package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/lightsout/lightsout/internal/state"
)

// pageIDs renders the sub-select of the IDs of a page of machines matching
// f, in ID order, walking the index of the filter that serves it best
// (0012): a state or reason filter walks channel_index by (state,
// machine_id), a tag machine_tags by (tag, machine_id), the rest the
// machines table by ID or by (group|zone|enclosure, id). The rows read are
// about the rows returned, whatever the fleet's size; a name prefix reads
// the names that have it, then sorts them.
func (db *DB) pageIDs(f MachineFilter, p Page) (string, []any) {
	var conds []string
	var args []any
	from, idCol, distinct := " FROM machines m", "m.id", ""
	switch {
	case f.State != "" || f.Reason != "":
		from, idCol, distinct = " FROM channel_index d", "d.machine_id", "DISTINCT "
		if f.State != "" {
			conds = append(conds, "d.state = ?")
			args = append(args, f.State)
		}
		if f.Reason != "" {
			conds = append(conds, "d.reason = ?")
			args = append(args, f.Reason)
		}
		f.State, f.Reason = "", ""
	case f.Tag != "":
		from, idCol = " FROM machine_tags d", "d.machine_id"
		conds = append(conds, "d.tag = ?")
		args = append(args, f.Tag)
		f.Tag = ""
	}
	if rest, rargs := db.filterSQL(f); rest != "" {
		if idCol != "m.id" {
			from += " JOIN machines m ON m.id = " + idCol
		}
		conds = append(conds, rest)
		args = append(args, rargs...)
	}
	tail, args := pageSQL(idCol, p, strings.Join(conds, " AND "), args)
	return "SELECT " + distinct + idCol + " AS id" + from + tail, args
}

// listingCols are a listing's columns beside machineCols: the account (no
// password) and its stored state (no evidence), empty when there is none.
const listingCols = `, COALESCE(a.id, 0), COALESCE(a.protocol, ''), COALESCE(a.address, ''), COALESCE(a.port, 0),
  COALESCE(a.username, ''), COALESCE(a.privilege, ''), COALESCE(a.cipher_suite, 0), COALESCE(a.cipher_suites, ''),
  COALESCE(a.redfish_auth, ''), COALESCE(a.credentials_changed_at, 0), COALESCE(a.created_at, 0), COALESCE(a.updated_at, 0),
  COALESCE(s.state, ''), COALESCE(s.reason, ''), COALESCE(s.conditions, ''), COALESCE(s.message, ''),
  COALESCE(s.since, 0), COALESCE(s.checked_at, 0), COALESCE(s.guid, ''), COALESCE(s.power, '')`

// MachinePage is a page of the machines matching f with their accounts
// (by ID, passwords left out) and those accounts' stored states (without
// evidence; accounts never saved are absent), in one query that reads
// about as many rows as it returns (pageIDs). It is what GET
// /api/v1/machines shows; Machines, Accounts and StatesOf answer the same
// in three.
func (db *DB) MachinePage(ctx context.Context, f MachineFilter, p Page) ([]Machine, []Account, map[int64]ChannelState, error) {
	query, args := db.pageQuery(f, p)
	rows, err := db.queryPrepared(ctx, query, args...)
	if err != nil {
		return nil, nil, nil, mapErr(err, "")
	}
	defer rows.Close()
	room := min(p.Limit, MaxListing)
	ms := make([]Machine, 0, room)
	accts := make([]Account, 0, room)
	states := make(map[int64]ChannelState, room)
	// The rows come by machine and account (the plans walk the page's IDs
	// in order, then each machine's accounts by accounts_machine_idx); an
	// ORDER BY would have SQLite sort them again in a temporary b-tree.
	// Should a plan not, they are sorted below.
	sorted := true
	var m Machine
	var tags, suites, st, reason, conds string
	var spare, reg int
	var created, updated, changed, acreated, aupdated, since, checked int64
	for rows.Next() {
		var a Account
		var c ChannelState
		if err := rows.Scan(&m.ID, &m.Name, &m.GUID, &m.Group, &tags, &m.Role, &spare, &reg,
			&m.Enclosure, &m.Slot, &created, &updated, &m.Zone,
			&a.ID, &a.Protocol, &a.Address, &a.Port, &a.User, &a.Privilege, &a.CipherSuite, &suites, &a.RedfishAuth,
			&changed, &acreated, &aupdated,
			&st, &reason, &conds, &c.Message, &since, &checked, &c.GUID, &c.Power); err != nil {
			return nil, nil, nil, mapErr(err, "")
		}
		if n := len(ms); n == 0 || ms[n-1].ID != m.ID {
			sorted = sorted && (n == 0 || ms[n-1].ID < m.ID)
			m.Tags = nil
			if tags != "" {
				if err := json.Unmarshal([]byte(tags), &m.Tags); err != nil {
					return nil, nil, nil, fmt.Errorf("store: machine %q: stored tags: %w", m.Name, err)
				}
			}
			m.Spare, m.Registering = spare != 0, reg != 0
			m.CreatedAt, m.UpdatedAt = fromTS(created), fromTS(updated)
			ms = append(ms, m)
		}
		if a.ID == 0 {
			continue // a machine without accounts
		}
		a.MachineID, a.Machine = m.ID, m.Name
		a.CipherSuites = parseSuiteText(suites)
		a.CredentialsChangedAt, a.CreatedAt, a.UpdatedAt = fromTS(changed), fromTS(acreated), fromTS(aupdated)
		if n := len(accts); n > 0 && accts[n-1].MachineID == a.MachineID && accts[n-1].ID > a.ID {
			sorted = false
		}
		accts = append(accts, a)
		if st == "" {
			continue // never saved
		}
		c.AccountID, c.State, c.Reason = a.ID, state.OOB(st), state.Reason(reason)
		if c.Conditions, err = parseConditions(conds); err != nil {
			return nil, nil, nil, fmt.Errorf("store: account %d: stored conditions: %w", a.ID, err)
		}
		c.Since, c.CheckedAt = fromTS(since), fromTS(checked)
		states[a.ID] = c
	}
	if err := rows.Err(); err != nil {
		return nil, nil, nil, mapErr(err, "")
	}
	if !sorted {
		slices.SortStableFunc(ms, func(x, y Machine) int { return cmp.Compare(x.ID, y.ID) })
		ms = slices.CompactFunc(ms, func(x, y Machine) bool { return x.ID == y.ID })
		slices.SortFunc(accts, func(x, y Account) int {
			return cmp.Or(cmp.Compare(x.MachineID, y.MachineID), cmp.Compare(x.ID, y.ID))
		})
	}
	return ms, accts, states, nil
}

// MaxListing bounds the rows MachinePage sets room for at once.
const MaxListing = 1000

// queryPrepared runs a read through a prepared statement kept for the
// query's text: SQLite (modernc) otherwise parses and plans every query
// again (a tenth of a listing page's CPU). The texts are few (one per
// combination of filters). PostgreSQL's driver (pgx) keeps its own.
func (db *DB) queryPrepared(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if db.d.name != "sqlite" {
		return db.read().query(ctx, query, args...)
	}
	if s, ok := db.stmts.Load(query); ok {
		return s.(*sql.Stmt).QueryContext(ctx, args...)
	}
	s, err := db.r.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if old, loaded := db.stmts.LoadOrStore(query, s); loaded {
		s.Close()
		s = old.(*sql.Stmt)
	}
	return s.QueryContext(ctx, args...)
}

// pageQuery is MachinePage's query: the page's IDs (pageIDs), then each
// machine with its accounts and their states by primary key and
// accounts_machine_idx. PostgreSQL's planner would rather hash-join the
// page to a scan of every machine (a page then reads the fleet: 20,301
// rows at 20,000 machines, TestMachinePageCostIsOPage): there each machine
// and its accounts are LATERAL sub-selects fenced with OFFSET 0, which it
// runs per machine of the page, through the indexes.
func (db *DB) pageQuery(f MachineFilter, p Page) (string, []any) {
	ids, args := db.pageIDs(f, p)
	if db.d.name != "postgres" {
		return "SELECT " + machineCols + listingCols + " FROM (" + ids + ") pg JOIN machines m ON m.id = pg.id" +
			" LEFT JOIN enclosures e ON e.id = m.enclosure_id LEFT JOIN accounts a ON a.machine_id = m.id" +
			" LEFT JOIN channel_states s ON s.account_id = a.id", args
	}
	return "SELECT m.id, m.name, m.guid, m.grp, m.tags, m.role, m.spare, m.registering, m.enclosure, m.slot, m.created_at, m.updated_at, m.zone" +
		strings.ReplaceAll(listingCols, "s.", "a.s_") +
		" FROM (" + ids + ") pg CROSS JOIN LATERAL (SELECT m.id, m.name, m.guid, m.grp, m.tags, m.role, m.spare, m.registering," +
		" COALESCE(e.name, '') AS enclosure, m.slot, m.created_at, m.updated_at, m.zone" +
		" FROM machines m LEFT JOIN enclosures e ON e.id = m.enclosure_id WHERE m.id = pg.id OFFSET 0) m" +
		" LEFT JOIN LATERAL (SELECT a.*, s.state AS s_state, s.reason AS s_reason, s.conditions AS s_conditions," +
		" s.message AS s_message, s.since AS s_since, s.checked_at AS s_checked_at, s.guid AS s_guid, s.power AS s_power" +
		" FROM accounts a LEFT JOIN channel_states s ON s.account_id = a.id WHERE a.machine_id = pg.id OFFSET 0) a ON true", args
}
