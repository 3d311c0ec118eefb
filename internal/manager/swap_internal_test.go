package manager

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/diag"
	"github.com/lightsout/lightsout/internal/monitor"
	"github.com/lightsout/lightsout/internal/secret"
	"github.com/lightsout/lightsout/internal/store"
	"github.com/lightsout/lightsout/internal/store/sqlstore"
)

// TestSwapCannotBeSteered: the diagnosis's address-swap autocorrect moves
// passwords only between the two endpoints whose GUIDs it verified. An
// action naming a third account, an action without the verified
// endpoints, one applied to another account than the one it was made for,
// or one whose accounts moved since the verification is refused and
// changes nothing; the genuine swap moves each password with its account,
// sealed for its new address.
func TestSwapCannotBeSteered(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	box, err := secret.NewRandomBox()
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlstore.Open(ctx, sqlstore.Options{DSN: filepath.Join(t.TempDir(), "db"), Box: box})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	mon := monitor.New(st, monitor.Config{}) // no probers: nothing is sent
	m := New(st, mon, nil, nil)
	guids := []string{"11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222", "66666666-6666-6666-6666-666666666666"}
	var accts []store.Account
	for i, addr := range []string{"192.0.2.1", "192.0.2.2", "198.51.100.66"} { // the third: the operator's own
		mc := store.Machine{Name: []string{"a", "b", "evil"}[i], GUID: guids[i]}
		if err := st.AddMachine(ctx, &mc); err != nil {
			t.Fatal(err)
		}
		a := store.Account{MachineID: mc.ID, Protocol: "ipmi", Address: addr, User: "admin", Password: []byte("pw-" + mc.Name)}
		if err := st.AddAccount(ctx, &a); err != nil {
			t.Fatal(err)
		}
		accts = append(accts, a)
	}
	if err := mon.Load(ctx); err != nil {
		t.Fatal(err)
	}
	A, B, C := store.EndpointOf(accts[0]), store.EndpointOf(accts[1]), store.EndpointOf(accts[2])
	mcA, _ := st.Machine(ctx, "a")
	run := func() *diagRun {
		return &diagRun{m: m, actor: Actor{Name: "op", Role: store.RoleOperator}, changed: map[int64]fixed{}}
	}
	unchanged := func(what string) {
		t.Helper()
		for _, want := range accts {
			got, err := st.Account(ctx, want.ID)
			if err != nil || got.Address != want.Address || string(got.Password) != string(want.Password) {
				t.Fatalf("%s: account %d is %s %q (%v), want %s %q", what, want.ID, got.Address, got.Password, err, want.Address, want.Password)
			}
		}
	}
	for _, tc := range []struct {
		name string
		act  diag.Action
	}{
		{"a third account", diag.Action{Kind: diag.ActSwapAddresses, AccountID: accts[0].ID, OtherAccountID: accts[2].ID, At: A, OtherAt: B, GUIDAt: guids[1], GUIDOther: guids[0]}},
		// The third account's own address, which answered with a's GUID
		// (the operator's BMC can claim any), but a's address did not
		// answer with the third machine's GUID.
		{"a third account at its own address", diag.Action{Kind: diag.ActSwapAddresses, AccountID: accts[0].ID, OtherAccountID: accts[2].ID, At: A, OtherAt: C, GUIDAt: guids[1], GUIDOther: guids[0]}},
		{"no verified GUIDs", diag.Action{Kind: diag.ActSwapAddresses, AccountID: accts[0].ID, OtherAccountID: accts[1].ID, At: A, OtherAt: B}},
		{"no verified endpoints", diag.Action{Kind: diag.ActSwapAddresses, AccountID: accts[0].ID, OtherAccountID: accts[1].ID, GUIDAt: guids[1], GUIDOther: guids[0]}},
		{"made for another account", diag.Action{Kind: diag.ActSwapAddresses, AccountID: accts[2].ID, OtherAccountID: accts[1].ID, At: A, OtherAt: B, GUIDAt: guids[1], GUIDOther: guids[0]}},
		{"verified endpoints that are not theirs", diag.Action{Kind: diag.ActSwapAddresses, AccountID: accts[0].ID, OtherAccountID: accts[1].ID, At: A, OtherAt: C, GUIDAt: guids[1], GUIDOther: guids[0]}},
	} {
		ch := run().apply(ctx, mcA, accts[0], tc.act)
		if ch.Result != "failed" {
			t.Errorf("%s: %+v, want failed", tc.name, ch)
		}
		unchanged(tc.name)
	}
	// The genuine swap.
	ch := run().apply(ctx, mcA, accts[0], diag.Action{Kind: diag.ActSwapAddresses, AccountID: accts[0].ID, OtherAccountID: accts[1].ID, At: A, OtherAt: B, GUIDAt: guids[1], GUIDOther: guids[0]})
	if ch.Result != "ok" {
		t.Fatalf("genuine swap: %+v", ch)
	}
	a, err1 := st.Account(ctx, accts[0].ID)
	b, err2 := st.Account(ctx, accts[1].ID)
	if err1 != nil || err2 != nil || a.Address != B.Address || b.Address != A.Address || string(a.Password) != "pw-a" || string(b.Password) != "pw-b" {
		t.Fatalf("after the swap: %+v %v / %+v %v", a, err1, b, err2)
	}
}
