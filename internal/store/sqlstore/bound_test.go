package sqlstore

import (
	"errors"
	"testing"

	"github.com/lightsout/lightsout/internal/secret"
)

// TestPasswordsBound: a password is sealed bound to its account's protocol,
// address and port: moved behind the store's back (a direct UPDATE of the
// endpoint), it no longer opens; moved through UpdateAccount it is sealed
// again for the new endpoint. Rows sealed before binding (version 1) are
// sealed again, bound, when the database is opened, and keep working.
func TestPasswordsBound(t *testing.T) {
	t.Parallel()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			ctx := ctxT(t)
			dsn := b.dsn(t)
			db := openT(t, dsn, testBox)
			m := Machine{Name: "m1"}
			mustNil(t, db.AddMachine(ctx, &m))
			a := Account{MachineID: m.ID, Protocol: "ipmi", Address: "10.0.0.1", User: "admin", Password: []byte("pw")}
			mustNil(t, db.AddAccount(ctx, &a))
			e := Enclosure{Name: "e1", Address: "10.0.1.1", User: "root", Password: []byte("epw")}
			mustNil(t, db.AddEnclosure(ctx, &e))
			raw := func(table string, id int64) []byte {
				var pw []byte
				mustNil(t, db.read().row(ctx, "SELECT password FROM "+table+" WHERE id = ?", id).Scan(&pw))
				return pw
			}
			if !secret.Bound(raw("accounts", a.ID)) || !secret.Bound(raw("enclosures", e.ID)) {
				t.Fatal("a new password is not sealed bound")
			}

			// Moved behind the store's back: the password does not open.
			w := q{db.w, db.d}
			if _, err := w.exec(ctx, "UPDATE accounts SET address = '192.0.2.66' WHERE id = ?", a.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Account(ctx, a.ID); !errors.Is(err, secret.ErrDecrypt) {
				t.Fatalf("account moved by SQL: %v, want ErrDecrypt", err)
			}
			if _, err := w.exec(ctx, "UPDATE accounts SET address = '10.0.0.1' WHERE id = ?", a.ID); err != nil {
				t.Fatal(err)
			}

			// Moved through the store: sealed again for the new endpoint.
			a.Address, a.Port = "10.0.0.2", 624
			mustNil(t, db.UpdateAccount(ctx, &a))
			got, err := db.Account(ctx, a.ID)
			if err != nil || string(got.Password) != "pw" {
				t.Fatalf("after a move through UpdateAccount: %q, %v", got.Password, err)
			}
			if _, err := w.exec(ctx, "UPDATE accounts SET address = '10.0.0.1', port = 623 WHERE id = ?", a.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Account(ctx, a.ID); !errors.Is(err, secret.ErrDecrypt) {
				t.Fatalf("the old endpoint still opens the re-sealed password: %v", err)
			}
			if _, err := w.exec(ctx, "UPDATE accounts SET address = '10.0.0.2', port = 624 WHERE id = ?", a.ID); err != nil {
				t.Fatal(err)
			}

			// A database from before binding: version 1 values, no marker.
			v1a, _ := testBox.Seal([]byte("pw"))
			v1e, _ := testBox.Seal([]byte("epw"))
			for _, s := range []struct {
				sql string
				arg []byte
				id  int64
			}{{"UPDATE accounts SET password = ? WHERE id = ?", v1a, a.ID}, {"UPDATE enclosures SET password = ? WHERE id = ?", v1e, e.ID}} {
				if _, err := w.exec(ctx, s.sql, s.arg, s.id); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := w.exec(ctx, "DELETE FROM meta WHERE key = 'passwords_bound'"); err != nil {
				t.Fatal(err)
			}
			db.Close()
			db = openT(t, dsn, testBox)
			if got, err := db.Account(ctx, a.ID); err != nil || string(got.Password) != "pw" {
				t.Fatalf("version 1 account password after reopening: %q, %v", got.Password, err)
			}
			if got, err := db.Enclosure(ctx, "e1"); err != nil || string(got.Password) != "epw" {
				t.Fatalf("version 1 enclosure password after reopening: %q, %v", got.Password, err)
			}
			if !secret.Bound(raw("accounts", a.ID)) || !secret.Bound(raw("enclosures", e.ID)) {
				t.Error("version 1 passwords were not sealed again bound on open")
			}
		})
	}
}
