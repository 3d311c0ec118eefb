package sqlstore

import (
	"errors"
	"testing"
)

// TestAccountRedfishAuth: redfish_auth is stored (lowercase, auto as ""),
// updated, and refused when it is not auto, session or basic.
func TestAccountRedfishAuth(t *testing.T) {
	eachStore(t, func(t *testing.T, db *DB) {
		ctx := ctxT(t)
		m := Machine{Name: "rf1"}
		mustNil(t, db.AddMachine(ctx, &m))
		a := Account{MachineID: m.ID, Protocol: "redfish", Address: "10.0.0.9", User: "admin", Password: []byte("pw"), RedfishAuth: "Basic"}
		mustNil(t, db.AddAccount(ctx, &a))
		got, err := db.Account(ctx, a.ID)
		mustNil(t, err)
		if got.RedfishAuth != "basic" {
			t.Fatalf("stored %q, want basic", got.RedfishAuth)
		}
		for in, want := range map[string]string{"session": "session", "auto": "", "": ""} {
			got.RedfishAuth = in
			mustNil(t, db.UpdateAccount(ctx, &got))
			back, err := db.Account(ctx, a.ID)
			mustNil(t, err)
			if back.RedfishAuth != want {
				t.Fatalf("%q stored as %q, want %q", in, back.RedfishAuth, want)
			}
		}
		got.RedfishAuth = "digest"
		var fe *FieldError
		if err := db.UpdateAccount(ctx, &got); !errors.As(err, &fe) || fe.Field != "redfish_auth" {
			t.Fatalf("digest: %v", err)
		}
	})
}
