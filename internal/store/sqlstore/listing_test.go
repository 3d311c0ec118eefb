package sqlstore

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/state"
)

// listingFleet builds a fleet with every shape a listing filters on:
// machines with no, one and two accounts, groups, tags, zones, blades of
// two enclosures, names with GLOB and LIKE wildcards and non-ASCII,
// channels Connectable, NotResponding (two reasons), Unknown saved and
// never saved, an account moved to another machine and one deleted.
func listingFleet(t *testing.T, db *DB) {
	t.Helper()
	ctx := ctxT(t)
	for _, e := range []string{"encA", "encB"} {
		mustNil(t, db.AddEnclosure(ctx, &Enclosure{Name: e, Address: "10.9.0." + e[3:], Slots: 64}))
	}
	names := []string{"n*1", "n?2", "n[3", "n_4", "n%5", "né6", "nz7", "n\U0010FFFF8"}
	for i := range 140 {
		name := fmt.Sprintf("node-%03d", i)
		if i < len(names) {
			name = names[i]
		}
		m := Machine{Name: name, Group: fmt.Sprintf("g%d", i%4)}
		if i%3 == 0 {
			m.Tags = []string{"t1"}
		}
		if i%5 == 0 {
			m.Tags = append(m.Tags, "t2")
		}
		if i%7 == 0 {
			m.Zone = "dc2"
		}
		if i%9 < 2 {
			m.Enclosure, m.Slot = []string{"encA", "encB"}[i%9], i/9+1
		}
		mustNil(t, db.AddMachine(ctx, &m))
		for k := range 2 {
			if (k == 1) != (i%4 == 1) || i%11 == 10 {
				continue // most have one account, some two, some none
			}
			a := Account{MachineID: m.ID, Protocol: "ipmi", Address: fmt.Sprintf("10.1.%d.%d", i, k), User: "admin", Password: []byte("pw")}
			mustNil(t, db.AddAccount(ctx, &a))
			now := time.Unix(1_700_000_000+int64(i), int64(k))
			cs := ChannelState{AccountID: a.ID, State: state.Connectable, Since: now, CheckedAt: now, Power: "on", Message: "ok"}
			switch (i + k) % 6 {
			case 0:
				cs.State, cs.Reason = state.NotResponding, state.ReasonSilent
			case 1:
				cs.State, cs.Reason = state.NotResponding, state.Reason("refused")
			case 2:
				cs.State = state.Unknown
			case 3:
				continue // never saved
			case 4:
				cs.Conditions = []state.Condition{state.Degraded}
			}
			mustNil(t, db.SaveState(ctx, cs, nil))
			if i%13 == 0 {
				// a second save with another state: the index follows
				cs.State, cs.Reason = state.NotAuthenticated, state.Reason("rejected")
				mustNil(t, db.SaveState(ctx, cs, nil))
			}
		}
	}
	accts, err := db.Accounts(ctx, MachineFilter{}, Page{})
	mustNil(t, err)
	// Move an account to another machine, delete another.
	mv := accts[5]
	target, err := db.Machine(ctx, "node-100")
	mustNil(t, err)
	mv.MachineID = target.ID
	mustNil(t, db.UpdateAccount(ctx, &mv))
	mustNil(t, db.DeleteAccount(ctx, accts[9].ID))
}

// listingFilters are the filters a listing is checked under.
func listingFilters() []MachineFilter {
	fs := []MachineFilter{{}, {Group: "g1"}, {Tag: "t1"}, {Tag: "t2"}, {Zone: "dc2"}, {Zone: DefaultZone}, {Enclosure: "encA"},
		{Enclosure: "nope"}, {Prefix: "node-1"}, {Prefix: "n*"}, {Prefix: "n?"}, {Prefix: "n["}, {Prefix: "n_"}, {Prefix: "n%"},
		{Prefix: "né"}, {Prefix: "n\U0010FFFF"}, {Prefix: "node-"}, {Names: []string{"node-010", "node-011", "n*1"}}}
	for _, s := range []string{"Connectable", "NotResponding", "NotAuthenticated", "Unknown", "Invalid"} {
		fs = append(fs, MachineFilter{State: s})
	}
	fs = append(fs, MachineFilter{Reason: "silent"}, MachineFilter{State: "NotResponding", Reason: "refused"},
		MachineFilter{State: "Connectable", Reason: "silent"}, MachineFilter{State: "Unknown", Group: "g2"},
		MachineFilter{State: "NotResponding", Tag: "t1"}, MachineFilter{Tag: "t1", Zone: "dc2"},
		MachineFilter{Prefix: "node-0", Zone: DefaultZone, Group: "g0"}, MachineFilter{Enclosure: "encB", State: "Connectable"},
		MachineFilter{Reason: "silent", Prefix: "node-1", Tag: "t2"})
	return fs
}

// oracle is a listing computed in Go from the whole tables, as the filters
// are documented (store.MachineFilter).
type oracle struct {
	ms     []Machine
	accts  map[int64][]Account // by machine, by ID
	states map[int64]ChannelState
}

func newOracle(t *testing.T, db *DB) oracle {
	ctx := ctxT(t)
	ms, err := db.Machines(ctx, MachineFilter{}, Page{})
	mustNil(t, err)
	accts, err := db.Accounts(ctx, MachineFilter{}, Page{})
	mustNil(t, err)
	ss, err := db.States(ctx)
	mustNil(t, err)
	o := oracle{ms: ms, accts: map[int64][]Account{}, states: map[int64]ChannelState{}}
	for _, a := range accts {
		a.Password = nil
		o.accts[a.MachineID] = append(o.accts[a.MachineID], a)
	}
	for _, s := range ss {
		s.Evidence = nil
		o.states[s.AccountID] = s
	}
	return o
}

func (o oracle) match(f MachineFilter, m Machine) bool {
	zone := f.Zone
	if zone == DefaultZone {
		zone = ""
	}
	if f.Group != "" && m.Group != f.Group || f.Tag != "" && !slices.Contains(m.Tags, f.Tag) ||
		f.Zone != "" && m.Zone != zone || !strings.HasPrefix(m.Name, f.Prefix) ||
		f.Enclosure != "" && m.Enclosure != f.Enclosure || len(f.Names) > 0 && !slices.Contains(f.Names, m.Name) {
		return false
	}
	if f.State == "" && f.Reason == "" {
		return true
	}
	for _, a := range o.accts[m.ID] {
		s, ok := o.states[a.ID]
		st := string(s.State)
		if !ok {
			st = "Unknown"
		}
		if (f.State == "" || st == f.State) && (f.Reason == "" || string(s.Reason) == f.Reason) {
			return true
		}
	}
	return false
}

func (o oracle) page(f MachineFilter, p Page) ([]Machine, []Account, map[int64]ChannelState) {
	var ms []Machine
	var accts []Account
	states := map[int64]ChannelState{}
	for _, m := range o.ms {
		if m.ID <= p.After || !o.match(f, m) || p.Limit > 0 && len(ms) == p.Limit {
			continue
		}
		ms = append(ms, m)
		for _, a := range o.accts[m.ID] {
			accts = append(accts, a)
			if s, ok := o.states[a.ID]; ok {
				states[a.ID] = s
			}
		}
	}
	return ms, accts, states
}

// TestMachinePageMatchesOracle: under every filter (each alone and
// combined), walking the cursor with pages of 1, 7 and 100 machines,
// MachinePage answers exactly the machines, accounts (no passwords) and
// stored states computed in Go from the whole tables, and Machines the
// same machines, on SQLite and PostgreSQL.
func TestMachinePageMatchesOracle(t *testing.T) {
	eachStore(t, func(t *testing.T, db *DB) {
		ctx := ctxT(t)
		listingFleet(t, db)
		o := newOracle(t, db)
		nonEmpty := 0
		for _, f := range listingFilters() {
			for _, limit := range []int{1, 7, 100} {
				after, pages := int64(0), 0
				for {
					wantM, wantA, wantS := o.page(f, Page{After: after, Limit: limit})
					ms, accts, states, err := db.MachinePage(ctx, f, Page{After: after, Limit: limit})
					mustNil(t, err)
					if len(ms) == 0 {
						ms = nil // empty is empty, allocated or not
					}
					if len(accts) == 0 {
						accts = nil
					}
					if !reflect.DeepEqual(ms, wantM) || !reflect.DeepEqual(accts, wantA) || !reflect.DeepEqual(states, wantS) {
						t.Fatalf("%+v after %d limit %d:\n machines %v\n     want %v\n accounts %d, want %d; states %d, want %d",
							f, after, limit, machineNames(ms), machineNames(wantM), len(accts), len(wantA), len(states), len(wantS))
					}
					plain, err := db.Machines(ctx, f, Page{After: after, Limit: limit})
					mustNil(t, err)
					if !reflect.DeepEqual(plain, wantM) {
						t.Fatalf("Machines %+v after %d limit %d: %v, want %v", f, after, limit, machineNames(plain), machineNames(wantM))
					}
					if len(ms) > 0 {
						nonEmpty++
					}
					if len(ms) < limit {
						break
					}
					after = ms[len(ms)-1].ID
					if pages++; pages > 200 {
						t.Fatalf("%+v: the cursor walk does not end", f)
					}
				}
			}
		}
		if nonEmpty < 100 {
			t.Fatalf("only %d non-empty pages: the fleet does not exercise the filters", nonEmpty)
		}
	})
}

func TestPrefixEnd(t *testing.T) {
	for _, c := range []struct {
		p, want string
		ok      bool
	}{{"a", "b", true}, {"node-1", "node-2", true}, {"n\u00e9", "n\u00ea", true}, {"a\uD7FF", "a\uE000", true},
		{"a\U0010FFFF", "b", true}, {"\U0010FFFF", "", false}, {"a\xff", "", false}} {
		got, ok := prefixEnd(c.p)
		if got != c.want || ok != c.ok {
			t.Errorf("prefixEnd(%q) = %q, %v; want %q, %v", c.p, got, ok, c.want, c.ok)
		}
	}
}

// TestListingMigrationBackfills: migration 0012 on a database that already
// has accounts and states (a fleet from before it) fills channel_index
// from them: the state and reason filters then answer as the oracle.
func TestListingMigrationBackfills(t *testing.T) {
	eachDSN(t, func(t *testing.T, dsn string) {
		ctx := ctxT(t)
		db := openT(t, dsn, testBox)
		listingFleet(t, db)
		// Back to schema 11: what 0012 made, gone.
		for _, s := range []string{"DROP TABLE channel_index", "DROP INDEX machine_tags_tag_machine_idx",
			"DELETE FROM schema_migrations WHERE version = 12"} {
			_, err := db.w.ExecContext(ctx, s)
			mustNil(t, err)
		}
		if db.d.name == "postgres" {
			_, err := db.w.ExecContext(ctx, "DROP INDEX machines_grp_id_idx, machines_zone_id_idx, machines_enclosure_id_idx, machines_name_c_idx")
			mustNil(t, err)
		}
		mustNil(t, db.Close())
		db = openT(t, dsn, testBox)
		if n := count(t, db, "channel_index"); n != count(t, db, "accounts") || n == 0 {
			t.Fatalf("channel_index has %d rows for %d accounts", n, count(t, db, "accounts"))
		}
		o := newOracle(t, db)
		for _, f := range listingFilters() {
			wantM, _, _ := o.page(f, Page{Limit: 1000})
			ms, _, _, err := db.MachinePage(ctx, f, Page{Limit: 1000})
			mustNil(t, err)
			if !reflect.DeepEqual(machineNames(ms), machineNames(wantM)) {
				t.Errorf("after the migration, %+v: %v, want %v", f, machineNames(ms), machineNames(wantM))
			}
		}
	})
}
