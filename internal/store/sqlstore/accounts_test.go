package sqlstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/poll"

	"github.com/lightsout/lightsout/internal/secret"
)

func hash(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func TestAccountCRUD(t *testing.T) {
	eachStore(t, func(t *testing.T, db *DB) {
		ctx := ctxT(t)
		m := Machine{Name: "m1", Group: "g"}
		mustNil(t, db.AddMachine(ctx, &m))
		a := Account{MachineID: m.ID, Protocol: "IPMI", Address: "10.0.0.1", User: "admin", Password: []byte("s3cret")}
		mustNil(t, db.AddAccount(ctx, &a))
		if a.ID == 0 || a.Port != 623 || a.Privilege != "administrator" || a.Protocol != "ipmi" || a.Machine != "m1" {
			t.Fatalf("AddAccount defaults: %+v", a)
		}
		if a.CredentialsChangedAt.IsZero() || !a.CredentialsChangedAt.Equal(a.CreatedAt) {
			t.Fatalf("CredentialsChangedAt %v, CreatedAt %v", a.CredentialsChangedAt, a.CreatedAt)
		}
		got, err := db.Account(ctx, a.ID)
		mustNil(t, err)
		if !reflect.DeepEqual(got, a) {
			t.Fatalf("Account = %+v\nwant      %+v", got, a)
		}
		rf := Account{MachineID: m.ID, Protocol: "redfish", Address: "10.0.0.1", Privilege: "operator", CipherSuite: 0}
		mustNil(t, db.AddAccount(ctx, &rf))
		if rf.Port != 443 || rf.Password != nil {
			t.Fatalf("redfish account: %+v", rf)
		}

		// An update that does not touch credentials keeps CredentialsChangedAt.
		poll.Until(t, time.Second, "the clock passes the creation", func() bool { return time.Now().After(a.CreatedAt) })
		a.Privilege, a.CipherSuite = "operator", 17
		mustNil(t, db.UpdateAccount(ctx, &a))
		got, err = db.Account(ctx, a.ID)
		mustNil(t, err)
		if !got.CredentialsChangedAt.Equal(got.CreatedAt) || got.Privilege != "operator" || got.CipherSuite != 17 || !got.UpdatedAt.After(got.CreatedAt) {
			t.Fatalf("after non-credential update: %+v", got)
		}
		// Password change moves it; so does a user change.
		for _, change := range []func(*Account){
			func(a *Account) { a.Password = []byte("new") },
			func(a *Account) { a.User = "root" },
			func(a *Account) { a.Password = nil },
		} {
			prev := got.CredentialsChangedAt
			poll.Until(t, time.Second, "the clock passes the last change", func() bool { return time.Now().After(prev) })
			change(&got)
			mustNil(t, db.UpdateAccount(ctx, &got))
			back, err := db.Account(ctx, a.ID)
			mustNil(t, err)
			if !back.CredentialsChangedAt.After(prev) || back.User != got.User || !bytes.Equal(back.Password, got.Password) {
				t.Fatalf("credential change not recorded: %+v (prev %v)", back, prev)
			}
			got = back
		}

		// Listing.
		m2 := Machine{Name: "m2", Group: "h"}
		mustNil(t, db.AddMachine(ctx, &m2))
		b := Account{MachineID: m2.ID, Protocol: "ipmi", Address: "10.0.0.2", Password: []byte("pw2")}
		mustNil(t, db.AddAccount(ctx, &b))
		of, err := db.AccountsOf(ctx, m.ID)
		mustNil(t, err)
		if len(of) != 2 || of[0].ID != a.ID || of[1].ID != rf.ID {
			t.Fatalf("AccountsOf = %+v", of)
		}
		all, err := db.Accounts(ctx, MachineFilter{}, Page{})
		mustNil(t, err)
		if len(all) != 3 || string(all[2].Password) != "pw2" || all[2].Machine != "m2" {
			t.Fatalf("Accounts = %+v", all)
		}
		g, err := db.Accounts(ctx, MachineFilter{Group: "h"}, Page{})
		mustNil(t, err)
		if len(g) != 1 || g[0].ID != b.ID {
			t.Fatalf("Accounts(group h) = %+v", g)
		}
		pg, err := db.Accounts(ctx, MachineFilter{}, Page{After: a.ID, Limit: 1})
		mustNil(t, err)
		if len(pg) != 1 || pg[0].ID != rf.ID {
			t.Fatalf("Accounts(page) = %+v", pg)
		}
		byName, err := db.Accounts(ctx, MachineFilter{Names: []string{"m2"}}, Page{})
		mustNil(t, err)
		if len(byName) != 1 || byName[0].ID != b.ID {
			t.Fatalf("Accounts(names) = %+v", byName)
		}

		// Moving an account to another machine.
		b.MachineID = m.ID
		mustNil(t, db.UpdateAccount(ctx, &b))
		if b.Machine != "m1" {
			t.Errorf("moved account's Machine = %q", b.Machine)
		}

		// Not found.
		_, err = db.Account(ctx, 999)
		wantFieldErr(t, err, "account", ErrNotFound)
		wantFieldErr(t, db.UpdateAccount(ctx, &Account{ID: 999, MachineID: m.ID, Protocol: "ipmi", Address: "1.1.1.1"}), "id", ErrNotFound)
		wantFieldErr(t, db.AddAccount(ctx, &Account{MachineID: 999, Protocol: "ipmi", Address: "1.1.1.1"}), "machine", ErrNotFound)
	})
}

func TestAccountValidation(t *testing.T) {
	eachStore(t, func(t *testing.T, db *DB) {
		ctx := ctxT(t)
		m := Machine{Name: "m"}
		mustNil(t, db.AddMachine(ctx, &m))
		ok := Account{MachineID: m.ID, Protocol: "ipmi", Address: "10.0.0.1"}
		tests := []struct {
			name  string
			mod   func(*Account)
			field string
		}{
			{"no protocol", func(a *Account) { a.Protocol = "" }, "protocol"},
			{"bad protocol", func(a *Account) { a.Protocol = "ssh" }, "protocol"},
			{"no address", func(a *Account) { a.Address = "" }, "address"},
			{"space in address", func(a *Account) { a.Address = "10.0.0.1 x" }, "address"},
			{"port negative", func(a *Account) { a.Port = -1 }, "port"},
			{"port too big", func(a *Account) { a.Port = 65536 }, "port"},
			{"privilege", func(a *Account) { a.Privilege = "root" }, "privilege"},
			{"cipher", func(a *Account) { a.CipherSuite = 256 }, "cipher_suite"},
		}
		for _, tc := range tests {
			a := ok
			tc.mod(&a)
			err := db.AddAccount(ctx, &a)
			if err == nil {
				t.Errorf("%s: accepted", tc.name)
				continue
			}
			wantFieldErr(t, err, tc.field, nil)
		}
		if n := count(t, db, "accounts"); n != 0 {
			t.Fatalf("%d accounts written by refused adds", n)
		}
	})
}

// rawColumn reads one stored value as bytes.
func rawColumn(t *testing.T, db *DB, query string, args ...any) []byte {
	t.Helper()
	var b []byte
	mustNil(t, db.read().row(context.Background(), query, args...).Scan(&b))
	return b
}

func TestPasswordsEncryptedAtRest(t *testing.T) {
	eachStore(t, func(t *testing.T, db *DB) {
		ctx := ctxT(t)
		pw := []byte("Hunter2-Plaintext-Password")
		m := Machine{Name: "m"}
		mustNil(t, db.AddMachine(ctx, &m))
		a := Account{MachineID: m.ID, Protocol: "ipmi", Address: "10.0.0.1", Password: pw}
		mustNil(t, db.AddAccount(ctx, &a))
		empty := Account{MachineID: m.ID, Protocol: "ipmi", Address: "10.0.0.2"}
		mustNil(t, db.AddAccount(ctx, &empty))
		e := Enclosure{Name: "e", Address: "10.0.0.3", Password: pw}
		mustNil(t, db.AddEnclosure(ctx, &e))
		mustNil(t, db.Import(ctx, []ImportRow{{Line: 1, Machine: Machine{Name: "imp"},
			Account: Account{Protocol: "ipmi", Address: "10.0.0.4", Password: pw}}}, nil, false))

		for _, raw := range [][]byte{
			rawColumn(t, db, "SELECT password FROM accounts WHERE id = ?", a.ID),
			rawColumn(t, db, "SELECT password FROM enclosures WHERE id = ?", e.ID),
			rawColumn(t, db, "SELECT a.password FROM accounts a JOIN machines m ON m.id = a.machine_id WHERE m.name = 'imp'"),
		} {
			if len(raw) != len(pw)+secret.Overhead {
				t.Errorf("stored password is %d bytes, want %d (sealed)", len(raw), len(pw)+secret.Overhead)
			}
			if bytes.Contains(raw, pw) || bytes.Contains(raw, pw[:8]) {
				t.Errorf("stored password contains the plaintext: %q", raw)
			}
		}
		if raw := rawColumn(t, db, "SELECT password FROM accounts WHERE id = ?", empty.ID); len(raw) != 0 {
			t.Errorf("empty password stored as %d bytes", len(raw))
		}
		got, err := db.Account(ctx, a.ID)
		mustNil(t, err)
		if !bytes.Equal(got.Password, pw) {
			t.Fatalf("decrypted password %q", got.Password)
		}
		// The SQLite files hold no plaintext either.
		if db.Driver() == "sqlite" {
			var seq int
			var name, file string
			mustNil(t, db.r.QueryRow("PRAGMA database_list").Scan(&seq, &name, &file))
			mustNil(t, db.Close())
			for _, f := range []string{file, file + "-wal"} {
				b, _ := os.ReadFile(f)
				if bytes.Contains(b, pw) {
					t.Errorf("%s contains the plaintext password", f)
				}
			}
		}
	})
}

func TestWrongKey(t *testing.T) {
	eachDSN(t, func(t *testing.T, dsn string) {
		ctx := ctxT(t)
		db := openT(t, dsn, testBox)
		m, a := addMachine(t, db, "m", "10.0.0.1")
		_ = m
		mustNil(t, db.Close())

		other, err := secret.NewRandomBox()
		mustNil(t, err)
		_, err = Open(ctx, Options{DSN: dsn, Box: other})
		if err == nil || !errors.Is(err, secret.ErrDecrypt) || !strings.Contains(err.Error(), "key") {
			t.Fatalf("Open with another key: %v; want a key mismatch error", err)
		}

		// Past the open-time check (a database from before it, say), a read
		// fails clearly, naming the account.
		db = openT(t, dsn, testBox)
		_, err = db.w.ExecContext(ctx, "DELETE FROM meta")
		mustNil(t, err)
		mustNil(t, db.Close())
		db2 := openT(t, dsn, other)
		_, err = db2.Account(ctx, a.ID)
		if !errors.Is(err, secret.ErrDecrypt) || !strings.Contains(err.Error(), `machine "m"`) {
			t.Fatalf("Account with another key: %v", err)
		}
		if _, err := db2.Accounts(ctx, MachineFilter{}, Page{}); !errors.Is(err, secret.ErrDecrypt) {
			t.Fatalf("Accounts with another key: %v", err)
		}

		// Without a key: passwords can be neither written nor read.
		db3 := openT(t, dsn, nil)
		if _, err := db3.Account(ctx, a.ID); err == nil || !strings.Contains(err.Error(), "key") {
			t.Fatalf("Account without key: %v", err)
		}
		m2 := Machine{Name: "m2"}
		mustNil(t, db3.AddMachine(ctx, &m2))
		err = db3.AddAccount(ctx, &Account{MachineID: m2.ID, Protocol: "ipmi", Address: "10.0.0.9", Password: []byte("x")})
		if err == nil || !strings.Contains(err.Error(), "key") {
			t.Fatalf("AddAccount without key: %v", err)
		}
		mustNil(t, db3.AddAccount(ctx, &Account{MachineID: m2.ID, Protocol: "ipmi", Address: "10.0.0.9"}))
	})
}

func TestImport(t *testing.T) {
	eachStore(t, func(t *testing.T, db *DB) {
		ctx := ctxT(t)
		encs := []Enclosure{{Name: "enc", Address: "10.9.0.1", Slots: 8, Password: []byte("em")}}
		rows := []ImportRow{
			{Line: 2, Machine: Machine{Name: "a", Group: "web", Enclosure: "enc", Slot: 1}, Account: Account{Protocol: "ipmi", Address: "10.0.0.1", User: "u", Password: []byte("p1")}},
			{Line: 3, Machine: Machine{Name: "b", Tags: []string{"t"}}, Account: Account{Protocol: "redfish", Address: "10.0.0.2", Port: 8443}},
			{Line: 4, Machine: Machine{Name: "c"}}, // no account
		}
		mustNil(t, db.Import(ctx, rows, encs, false))
		ms, err := db.Machines(ctx, MachineFilter{}, Page{})
		mustNil(t, err)
		if got := machineNames(ms); !reflect.DeepEqual(got, []string{"a", "b", "c"}) || ms[0].Enclosure != "enc" || ms[1].Tags[0] != "t" {
			t.Fatalf("imported machines: %+v", ms)
		}
		accts, err := db.Accounts(ctx, MachineFilter{}, Page{})
		mustNil(t, err)
		if len(accts) != 2 || string(accts[0].Password) != "p1" || accts[1].Port != 8443 {
			t.Fatalf("imported accounts: %+v", accts)
		}

		// Again without replace: conflict naming the line.
		err = db.Import(ctx, rows[1:2], nil, false)
		fe := wantFieldErr(t, err, "name", ErrConflict, "line 3", `"b"`, "replace")
		if fe.Line != 3 {
			t.Errorf("Line = %d", fe.Line)
		}

		// With replace: machines and accounts updated in place, state kept.
		mustNil(t, db.SaveState(ctx, ChannelState{AccountID: accts[0].ID, State: "Connectable"}, nil))
		mustNil(t, db.UpdateMachine(ctx, &Machine{ID: ms[0].ID, Name: "a", GUID: "11111111-2222-3333-4444-555555555555", Enclosure: "enc", Slot: 1}))
		re := []ImportRow{
			{Line: 2, Machine: Machine{Name: "a", Group: "db", Enclosure: "enc", Slot: 2}, Account: Account{Protocol: "ipmi", Address: "10.0.0.11", User: "u2", Password: []byte("p2")}},
			{Line: 3, Machine: Machine{Name: "d"}, Account: Account{Protocol: "ipmi", Address: "10.0.0.4"}},
		}
		encs[0].Slots, encs[0].Address = 4, "10.9.0.2"
		mustNil(t, db.Import(ctx, re, encs, true))
		a, err := db.Machine(ctx, "a")
		mustNil(t, err)
		if a.ID != ms[0].ID || a.Group != "db" || a.Slot != 2 || a.GUID != "11111111-2222-3333-4444-555555555555" {
			t.Fatalf("replaced machine: %+v", a)
		}
		aa, err := db.AccountsOf(ctx, a.ID)
		mustNil(t, err)
		if len(aa) != 1 || aa[0].ID != accts[0].ID || aa[0].Address != "10.0.0.11" || string(aa[0].Password) != "p2" || aa[0].User != "u2" {
			t.Fatalf("replaced account: %+v", aa)
		}
		if _, err := db.State(ctx, aa[0].ID); err != nil {
			t.Fatalf("state lost by replace: %v", err)
		}
		if e, _ := db.Enclosure(ctx, "enc"); e.Slots != 4 || e.Address != "10.9.0.2" || e.ID == 0 {
			t.Fatalf("enclosure not upserted: %+v", e)
		}
		if es, _ := db.Enclosures(ctx); len(es) != 1 {
			t.Fatalf("%d enclosures after upsert", len(es))
		}
	})
}

func TestImportAllOrNothing(t *testing.T) {
	good := func(line int, name, addr string) ImportRow {
		return ImportRow{Line: line, Machine: Machine{Name: name}, Account: Account{Protocol: "ipmi", Address: addr, Password: []byte("pw")}}
	}
	tests := []struct {
		name   string
		third  ImportRow
		field  string
		err    error
		substr string
	}{
		{"bad port", ImportRow{Line: 3, Machine: Machine{Name: "c"}, Account: Account{Protocol: "ipmi", Address: "10.0.0.3", Port: 99999}}, "port", nil, "99999"},
		{"bad protocol", ImportRow{Line: 3, Machine: Machine{Name: "c"}, Account: Account{Protocol: "telnet", Address: "10.0.0.3"}}, "protocol", nil, "telnet"},
		{"empty name", ImportRow{Line: 3, Account: Account{Protocol: "ipmi", Address: "10.0.0.3"}}, "name", nil, "empty"},
		{"duplicate name in file", good(3, "a", "10.0.0.3"), "name", ErrConflict, "line 1"},
		{"duplicate address in file", good(3, "c", "10.0.0.1"), "address", ErrConflict, "line 1"},
		{"address of existing machine", good(3, "c", "10.8.0.1"), "address", ErrConflict, `"existing"`},
		{"existing machine", good(3, "existing", "10.0.0.3"), "name", ErrConflict, "already exists"},
		{"unknown enclosure", ImportRow{Line: 3, Machine: Machine{Name: "c", Enclosure: "nope", Slot: 1}}, "enclosure", ErrNotFound, "nope"},
		{"slot taken in file", ImportRow{Line: 3, Machine: Machine{Name: "c", Enclosure: "enc", Slot: 1}}, "slot", ErrConflict, `"b"`},
	}
	eachStore(t, func(t *testing.T, db *DB) {
		ctx := ctxT(t)
		addMachine(t, db, "existing", "10.8.0.1")
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				rows := []ImportRow{good(1, "a", "10.0.0.1"), good(2, "b", "10.0.0.2"), tc.third}
				rows[1].Machine.Enclosure, rows[1].Machine.Slot = "enc", 1
				encs := []Enclosure{{Name: "enc", Address: "10.9.0.1", Slots: 4}}
				err := db.Import(ctx, rows, encs, false)
				fe := wantFieldErr(t, err, tc.field, tc.err, "line 3", tc.substr)
				if fe.Line != 3 {
					t.Errorf("Line = %d, want 3", fe.Line)
				}
				if n := count(t, db, "machines"); n != 1 {
					t.Errorf("%d machines after a failed import, want the 1 existing", n)
				}
				if n := count(t, db, "accounts"); n != 1 {
					t.Errorf("%d accounts after a failed import", n)
				}
				if n := count(t, db, "enclosures"); n != 0 {
					t.Errorf("%d enclosures after a failed import", n)
				}
			})
		}
	})
}
