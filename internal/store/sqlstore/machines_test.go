package sqlstore

import (
	"reflect"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/poll"
)

func machineNames(ms []Machine) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Name)
	}
	return out
}

func TestMachineCRUD(t *testing.T) {
	eachStore(t, func(t *testing.T, db *DB) {
		ctx := ctxT(t)
		encl := Enclosure{Name: "enc1", Address: "10.9.0.1", Slots: 16}
		mustNil(t, db.AddEnclosure(ctx, &encl))
		before := time.Now().Add(-time.Second)
		m := Machine{Name: "web-1", GUID: "4C4C4544-0031-3210-8052-B4C04F4E3432", Group: "web", Tags: []string{"rack-a", "prod", "rack-a"},
			Role: "web1.example.com", Registering: true, Enclosure: "enc1", Slot: 3}
		mustNil(t, db.AddMachine(ctx, &m))
		if m.ID == 0 || m.CreatedAt.Before(before) || !m.CreatedAt.Equal(m.UpdatedAt) {
			t.Fatalf("AddMachine set ID %d, CreatedAt %v, UpdatedAt %v", m.ID, m.CreatedAt, m.UpdatedAt)
		}
		want := m
		want.GUID = "4c4c4544-0031-3210-8052-b4c04f4e3432"
		want.Tags = []string{"rack-a", "prod"}
		got, err := db.Machine(ctx, "web-1")
		mustNil(t, err)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("Machine = %+v\nwant      %+v", got, want)
		}
		if got, err := db.MachineByID(ctx, m.ID); err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("MachineByID = %+v, %v", got, err)
		}
		if got, err := db.MachineByGUID(ctx, "4C4C4544-0031-3210-8052-B4C04F4E3432"); err != nil || got.ID != m.ID {
			t.Fatalf("MachineByGUID = %+v, %v", got, err)
		}

		// Update every field.
		m2 := Machine{Name: "db-1", Group: "db", Tags: []string{"x"}}
		mustNil(t, db.AddMachine(ctx, &m2))
		poll.Until(t, time.Second, "the clock passes the creation", func() bool { return time.Now().After(got.CreatedAt) })
		up := got
		up.Name, up.GUID, up.Group, up.Tags, up.Role = "web-01", "", "", nil, ""
		up.Spare, up.Registering, up.Enclosure, up.Slot = true, false, "", 0
		mustNil(t, db.UpdateMachine(ctx, &up))
		if !up.UpdatedAt.After(up.CreatedAt) || !up.CreatedAt.Equal(m.CreatedAt) {
			t.Errorf("UpdateMachine times: created %v (was %v), updated %v", up.CreatedAt, m.CreatedAt, up.UpdatedAt)
		}
		got, err = db.Machine(ctx, "web-01")
		mustNil(t, err)
		if !reflect.DeepEqual(got, up) {
			t.Fatalf("after update: %+v\nwant          %+v", got, up)
		}
		if _, err := db.Machine(ctx, "web-1"); err == nil {
			t.Fatal("old name still found")
		} else {
			wantFieldErr(t, err, "machine", ErrNotFound, "web-1")
		}
		if _, err := db.MachineByGUID(ctx, want.GUID); err == nil {
			t.Fatal("unpinned GUID still found")
		}

		// Not found.
		_, err = db.MachineByID(ctx, 9999)
		wantFieldErr(t, err, "machine", ErrNotFound)
		err = db.UpdateMachine(ctx, &Machine{ID: 9999, Name: "ghost"})
		wantFieldErr(t, err, "id", ErrNotFound)
		wantFieldErr(t, db.DeleteMachine(ctx, "ghost"), "machine", ErrNotFound, "ghost")

		mustNil(t, db.DeleteMachine(ctx, "web-01"))
		ms, err := db.Machines(ctx, MachineFilter{}, Page{})
		mustNil(t, err)
		if names := machineNames(ms); !reflect.DeepEqual(names, []string{"db-1"}) {
			t.Fatalf("after delete: %v", names)
		}
	})
}

func TestMachinesFilterAndPage(t *testing.T) {
	eachStore(t, func(t *testing.T, db *DB) {
		ctx := ctxT(t)
		for i, spec := range []struct {
			name, group string
			tags        []string
		}{
			{"a", "web", []string{"prod", "rack1"}},
			{"b", "web", []string{"staging"}},
			{"c", "db", []string{"prod"}},
			{"d", "", nil},
			{"e", "web", []string{"prod"}},
		} {
			m := Machine{Name: spec.name, Group: spec.group, Tags: spec.tags}
			mustNil(t, db.AddMachine(ctx, &m))
			if m.ID == 0 {
				t.Fatalf("machine %d: no ID", i)
			}
		}
		all, err := db.Machines(ctx, MachineFilter{}, Page{})
		mustNil(t, err)
		tests := []struct {
			name string
			f    MachineFilter
			p    Page
			want []string
		}{
			{"all", MachineFilter{}, Page{}, []string{"a", "b", "c", "d", "e"}},
			{"group", MachineFilter{Group: "web"}, Page{}, []string{"a", "b", "e"}},
			{"tag", MachineFilter{Tag: "prod"}, Page{}, []string{"a", "c", "e"}},
			{"group+tag", MachineFilter{Group: "web", Tag: "prod"}, Page{}, []string{"a", "e"}},
			{"names", MachineFilter{Names: []string{"e", "c", "zz", `quo"te`}}, Page{}, []string{"c", "e"}},
			{"names+group", MachineFilter{Names: []string{"a", "c"}, Group: "db"}, Page{}, []string{"c"}},
			{"no match", MachineFilter{Tag: "nope"}, Page{}, nil},
			{"limit", MachineFilter{}, Page{Limit: 2}, []string{"a", "b"}},
			{"after", MachineFilter{}, Page{After: all[1].ID, Limit: 2}, []string{"c", "d"}},
			{"after end", MachineFilter{}, Page{After: all[4].ID}, nil},
			{"tag paged", MachineFilter{Tag: "prod"}, Page{After: all[0].ID, Limit: 1}, []string{"c"}},
		}
		for _, tc := range tests {
			ms, err := db.Machines(ctx, tc.f, tc.p)
			mustNil(t, err)
			if got := machineNames(ms); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("%s: Machines = %v, want %v", tc.name, got, tc.want)
			}
		}
	})
}

func TestMachineValidation(t *testing.T) {
	eachStore(t, func(t *testing.T, db *DB) {
		ctx := ctxT(t)
		mustNil(t, db.AddEnclosure(ctx, &Enclosure{Name: "enc", Address: "10.0.0.1", Slots: 4}))
		tests := []struct {
			name  string
			m     Machine
			field string
			sub   string
		}{
			{"empty name", Machine{}, "name", "empty"},
			{"blank name", Machine{Name: "  "}, "name", "empty"},
			{"spaces", Machine{Name: " a"}, "name", "spaces"},
			{"control", Machine{Name: "a\nb"}, "name", "control"},
			{"bad guid", Machine{Name: "a", GUID: "not-a-guid"}, "guid", "not a GUID"},
			{"negative slot", Machine{Name: "a", Slot: -1}, "slot", "negative"},
			{"slot no enclosure", Machine{Name: "a", Slot: 2}, "slot", "needs an enclosure"},
			{"slot too big", Machine{Name: "a", Enclosure: "enc", Slot: 5}, "slot", "4 slots"},
			{"unknown enclosure", Machine{Name: "a", Enclosure: "nope"}, "enclosure", "nope"},
			{"empty tag", Machine{Name: "a", Tags: []string{""}}, "tags", "empty"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				m := tc.m
				wantFieldErr(t, db.AddMachine(ctx, &m), tc.field, nil, tc.sub)
			})
		}
		if n := count(t, db, "machines"); n != 0 {
			t.Fatalf("%d machines written by refused adds", n)
		}
	})
}

func TestUniqueness(t *testing.T) {
	eachStore(t, func(t *testing.T, db *DB) {
		ctx := ctxT(t)
		mustNil(t, db.AddEnclosure(ctx, &Enclosure{Name: "enc", Address: "10.0.0.1", Slots: 4}))
		web1, acct1 := addMachine(t, db, "web-1", "10.1.0.1")
		web2, _ := addMachine(t, db, "web-2", "10.1.0.2")
		blade := Machine{Name: "blade-1", Enclosure: "enc", Slot: 1}
		mustNil(t, db.AddMachine(ctx, &blade))

		// Machine names.
		wantFieldErr(t, db.AddMachine(ctx, &Machine{Name: "web-1"}), "name", ErrConflict, "web-1")
		up := web2
		up.Name = "web-1"
		wantFieldErr(t, db.UpdateMachine(ctx, &up), "name", ErrConflict, "web-1")
		// Updating a machine under its own name is fine.
		mustNil(t, db.UpdateMachine(ctx, &web1))

		// Enclosure slots.
		wantFieldErr(t, db.AddMachine(ctx, &Machine{Name: "blade-2", Enclosure: "enc", Slot: 1}), "slot", ErrConflict, "blade-1")

		// Account endpoints (protocol, address, port).
		dup := Account{MachineID: web2.ID, Protocol: "ipmi", Address: "10.1.0.1"}
		wantFieldErr(t, db.AddAccount(ctx, &dup), "address", ErrConflict, `machine "web-1"`)
		// Same address, other port or protocol: fine.
		mustNil(t, db.AddAccount(ctx, &Account{MachineID: web2.ID, Protocol: "ipmi", Address: "10.1.0.1", Port: 6230}))
		mustNil(t, db.AddAccount(ctx, &Account{MachineID: web2.ID, Protocol: "redfish", Address: "10.1.0.1"}))
		// Moving an account onto a used endpoint.
		accts, err := db.AccountsOf(ctx, web2.ID)
		mustNil(t, err)
		a := accts[0]
		a.Address = acct1.Address
		wantFieldErr(t, db.UpdateAccount(ctx, &a), "address", ErrConflict, `machine "web-1"`)

		// Enclosures.
		wantFieldErr(t, db.AddEnclosure(ctx, &Enclosure{Name: "enc", Address: "10.0.0.2"}), "name", ErrConflict, "enc")
		wantFieldErr(t, db.AddEnclosure(ctx, &Enclosure{Name: "enc2", Address: "10.0.0.1"}), "address", ErrConflict, `enclosure "enc"`)

		// Tokens.
		h1, h2 := hash("one"), hash("two")
		mustNil(t, db.AddToken(ctx, &Token{Name: "ci", Role: RoleViewer, Hash: h1}))
		wantFieldErr(t, db.AddToken(ctx, &Token{Name: "ci", Role: RoleAdmin, Hash: h2}), "name", ErrConflict, "ci")
		wantFieldErr(t, db.AddToken(ctx, &Token{Name: "ci2", Role: RoleAdmin, Hash: h1}), "hash", ErrConflict)
	})
}

func TestReplaceMachine(t *testing.T) {
	eachStore(t, func(t *testing.T, db *DB) {
		ctx := ctxT(t)
		old := Machine{Name: "old", Group: "web", Role: "web1.example.com", Tags: []string{"prod", "rack1"}, GUID: "11111111-2222-3333-4444-555555555555"}
		mustNil(t, db.AddMachine(ctx, &old))
		mustNil(t, db.AddAccount(ctx, &Account{MachineID: old.ID, Protocol: "ipmi", Address: "10.0.0.1"}))
		spare := Machine{Name: "spare", Spare: true, Tags: []string{"pool"}, GUID: "66666666-2222-3333-4444-555555555555"}
		mustNil(t, db.AddMachine(ctx, &spare))
		busy := Machine{Name: "busy", Group: "db"}
		mustNil(t, db.AddMachine(ctx, &busy))

		wantFieldErr(t, db.ReplaceMachine(ctx, "old", "busy"), "spare", nil, "not a spare")
		wantFieldErr(t, db.ReplaceMachine(ctx, "old", "old"), "spare", nil, "itself")
		wantFieldErr(t, db.ReplaceMachine(ctx, "ghost", "spare"), "machine", ErrNotFound, "ghost")
		wantFieldErr(t, db.ReplaceMachine(ctx, "old", "ghost"), "spare", ErrNotFound, "ghost")

		mustNil(t, db.ReplaceMachine(ctx, "old", "spare"))
		o, err := db.Machine(ctx, "old")
		mustNil(t, err)
		s, err := db.Machine(ctx, "spare")
		mustNil(t, err)
		if o.Group != "" || o.Role != "" || o.Tags != nil || o.Spare || o.GUID != old.GUID {
			t.Errorf("old after replacement: %+v", o)
		}
		if s.Group != "web" || s.Role != "web1.example.com" || !reflect.DeepEqual(s.Tags, []string{"prod", "rack1"}) || s.Spare || s.GUID != spare.GUID {
			t.Errorf("spare after replacement: %+v", s)
		}
		if accts, _ := db.AccountsOf(ctx, o.ID); len(accts) != 1 {
			t.Errorf("old machine has %d accounts, want its 1", len(accts))
		}
		ms, err := db.Machines(ctx, MachineFilter{Tag: "prod"}, Page{})
		mustNil(t, err)
		if got := machineNames(ms); !reflect.DeepEqual(got, []string{"spare"}) {
			t.Errorf("tag prod after replacement: %v", got)
		}
		// The spare is no longer a spare: a second replacement is refused.
		wantFieldErr(t, db.ReplaceMachine(ctx, "spare", "old"), "spare", nil, "not a spare")
	})
}

func TestDeleteMachineCascade(t *testing.T) {
	eachStore(t, func(t *testing.T, db *DB) {
		ctx := ctxT(t)
		m, a := addMachine(t, db, "gone", "10.0.0.1")
		mustNil(t, db.AddAccount(ctx, &Account{MachineID: m.ID, Protocol: "redfish", Address: "10.0.0.1"}))
		mustNil(t, db.UpdateMachine(ctx, &Machine{ID: m.ID, Name: "gone", Tags: []string{"t1", "t2"}}))
		keep, ka := addMachine(t, db, "kept", "10.0.0.2")
		for _, acct := range []int64{a.ID, ka.ID} {
			for i := 0; i < 3; i++ {
				mustNil(t, db.SaveState(ctx, ChannelState{AccountID: acct, State: "NotResponding"}, &Transition{From: "Unknown"}))
			}
		}
		mustNil(t, db.DeleteMachine(ctx, "gone"))
		for table, want := range map[string]int{"machines": 1, "accounts": 1, "channel_states": 1, "transitions": 3, "machine_tags": 0} {
			if n := count(t, db, table); n != want {
				t.Errorf("%s: %d rows after delete, want %d", table, n, want)
			}
		}
		if _, err := db.Account(ctx, a.ID); err == nil {
			t.Error("deleted machine's account still readable")
		}
		if h, _ := db.HistoryOfMachine(ctx, keep.ID, 0, 0); len(h) != 3 {
			t.Errorf("other machine's history: %d, want 3", len(h))
		}
		// DeleteAccount cascades too.
		mustNil(t, db.DeleteAccount(ctx, ka.ID))
		if n := count(t, db, "transitions"); n != 0 {
			t.Errorf("transitions after DeleteAccount: %d", n)
		}
		wantFieldErr(t, db.DeleteAccount(ctx, ka.ID), "account", ErrNotFound)
	})
}

func TestRebind(t *testing.T) {
	tests := []struct{ in, want string }{
		{"SELECT 1", "SELECT 1"},
		{"a = ? AND b = ?", "a = $1 AND b = $2"},
		{"x = '?' AND y = ?", "x = '?' AND y = $1"},
		{`"we?rd" = ? OR z = 'it''s ?' OR w = ?`, `"we?rd" = $1 OR z = 'it''s ?' OR w = $2`},
	}
	for _, tc := range tests {
		if got := postgresDialect.rebind(tc.in); got != tc.want {
			t.Errorf("rebind(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if got := sqliteDialect.rebind(tc.in); got != tc.in {
			t.Errorf("sqlite rebind changed %q", tc.in)
		}
	}
}

func TestEnclosures(t *testing.T) {
	eachStore(t, func(t *testing.T, db *DB) {
		ctx := ctxT(t)
		e := Enclosure{Name: "enc1", Address: "10.0.0.1", User: "em", Password: []byte("em-secret"), Slots: 8}
		mustNil(t, db.AddEnclosure(ctx, &e))
		if e.Protocol != "ipmi" || e.Port != 623 || e.ID == 0 {
			t.Fatalf("defaults: %+v", e)
		}
		got, err := db.Enclosure(ctx, "enc1")
		mustNil(t, err)
		if !reflect.DeepEqual(got, e) {
			t.Fatalf("Enclosure = %+v\nwant        %+v", got, e)
		}
		blade := Machine{Name: "b1", Enclosure: "enc1", Slot: 7}
		mustNil(t, db.AddMachine(ctx, &blade))

		// Rename: machines follow. Shrinking below a used slot: refused.
		e.Name, e.Password = "chassis-1", nil
		mustNil(t, db.UpdateEnclosure(ctx, &e))
		if m, _ := db.Machine(ctx, "b1"); m.Enclosure != "chassis-1" {
			t.Errorf("machine's enclosure after rename: %q", m.Enclosure)
		}
		if got, _ := db.Enclosure(ctx, "chassis-1"); got.Password != nil {
			t.Errorf("password not cleared: %q", got.Password)
		}
		e.Slots = 4
		wantFieldErr(t, db.UpdateEnclosure(ctx, &e), "slots", nil, "b1")
		wantFieldErr(t, db.UpdateEnclosure(ctx, &Enclosure{ID: 999, Name: "x", Address: "1.2.3.4"}), "id", ErrNotFound)
		for _, bad := range []struct {
			e     Enclosure
			field string
		}{
			{Enclosure{Address: "1.1.1.1"}, "name"},
			{Enclosure{Name: "x"}, "address"},
			{Enclosure{Name: "x", Address: "1.1.1.1", Protocol: "snmp"}, "protocol"},
			{Enclosure{Name: "x", Address: "1.1.1.1", Port: 70000}, "port"},
			{Enclosure{Name: "x", Address: "1.1.1.1", Slots: -1}, "slots"},
		} {
			wantFieldErr(t, db.AddEnclosure(ctx, &bad.e), bad.field, nil)
		}

		wantFieldErr(t, db.DeleteEnclosure(ctx, "chassis-1"), "name", ErrConflict, "b1")
		mustNil(t, db.DeleteMachine(ctx, "b1"))
		mustNil(t, db.DeleteEnclosure(ctx, "chassis-1"))
		wantFieldErr(t, db.DeleteEnclosure(ctx, "chassis-1"), "enclosure", ErrNotFound)
		if es, err := db.Enclosures(ctx); err != nil || len(es) != 0 {
			t.Fatalf("Enclosures = %v, %v", es, err)
		}
	})
}

// TestConstraintMapping: a violation the pre-checks did not catch (a race
// between two managers) still becomes a FieldError.
func TestConstraintMapping(t *testing.T) {
	eachStore(t, func(t *testing.T, db *DB) {
		ctx := ctxT(t)
		m, _ := addMachine(t, db, "m", "10.0.0.1")
		tests := []struct {
			query    string
			args     []any
			field    string
			sentinel error
		}{
			{"INSERT INTO machines (name, created_at, updated_at) VALUES (?, 0, 0)", []any{"m"}, "name", ErrConflict},
			{`INSERT INTO accounts (machine_id, protocol, address, port, privilege, credentials_changed_at, created_at, updated_at)
VALUES (?, 'ipmi', '10.0.0.1', 623, 'user', 0, 0, 0)`, []any{m.ID}, "address", ErrConflict},
			{`INSERT INTO accounts (machine_id, protocol, address, port, privilege, credentials_changed_at, created_at, updated_at)
VALUES (?, 'ipmi', '10.0.0.2', 623, 'user', 0, 0, 0)`, []any{m.ID + 100}, "reference", ErrNotFound},
		}
		for _, tc := range tests {
			err := db.tx(ctx, func(x q) error {
				_, err := x.exec(ctx, tc.query, tc.args...)
				return err
			})
			wantFieldErr(t, mapErr(err, "m"), tc.field, tc.sentinel)
		}
	})
}
