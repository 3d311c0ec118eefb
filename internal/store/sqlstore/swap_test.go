package sqlstore

import (
	"errors"
	"testing"
)

func TestSwapAccountAddresses(t *testing.T) {
	eachStore(t, func(t *testing.T, db *DB) {
		ctx := ctxT(t)
		var ids []int64
		for i, addr := range []string{"10.0.0.1", "10.0.0.2"} {
			m := Machine{Name: "m" + string(rune('1'+i))}
			mustNil(t, db.AddMachine(ctx, &m))
			a := Account{MachineID: m.ID, Protocol: "ipmi", Address: addr, Port: 623 + i, User: "admin", Password: []byte("pw")}
			mustNil(t, db.AddAccount(ctx, &a))
			ids = append(ids, a.ID)
		}
		e1 := Endpoint{Protocol: "ipmi", Address: "10.0.0.1", Port: 623}
		e2 := Endpoint{Protocol: "ipmi", Address: "10.0.0.2", Port: 624}
		// Not at the verified addresses (someone moved one since): refused.
		if err := db.SwapAccountAddresses(ctx, ids[0], ids[1], e1, Endpoint{Protocol: "ipmi", Address: "192.0.2.66", Port: 623}); !errors.Is(err, ErrConflict) {
			t.Fatalf("swap with a stale verified address: %v, want ErrConflict", err)
		}
		mustNil(t, db.SwapAccountAddresses(ctx, ids[0], ids[1], e1, e2))
		a, _ := db.Account(ctx, ids[0])
		b, _ := db.Account(ctx, ids[1])
		if a.Address != "10.0.0.2" || a.Port != 624 || b.Address != "10.0.0.1" || b.Port != 623 || string(a.Password) != "pw" ||
			!a.CredentialsChangedAt.Equal(a.CreatedAt) {
			t.Fatalf("after the swap: %+v %+v", a, b)
		}
		// Swapping again restores them.
		mustNil(t, db.SwapAccountAddresses(ctx, ids[1], ids[0], e1, e2))
		if a, _ = db.Account(ctx, ids[0]); a.Address != "10.0.0.1" || a.Port != 623 || string(a.Password) != "pw" {
			t.Fatalf("after swapping back: %+v", a)
		}
		if err := db.SwapAccountAddresses(ctx, ids[0], 9999, e1, e2); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown account: %v", err)
		}
		if err := db.SwapAccountAddresses(ctx, ids[0], ids[0], e1, e1); err == nil {
			t.Error("swapped with itself")
		}
		if a, _ = db.Account(ctx, ids[0]); a.Address != "10.0.0.1" {
			t.Errorf("a refused swap changed the account: %+v", a)
		}
	})
}
