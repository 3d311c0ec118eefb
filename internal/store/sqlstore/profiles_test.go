package sqlstore

import (
	"errors"
	"slices"
	"testing"
)

// TestProfilesAndSuiteLists: a learned profile is stored, replaced, and
// goes with its account; an account's
// cipher suite allow-list is stored and read back, and a bad one is refused
// naming the field.
func TestProfilesAndSuiteLists(t *testing.T) {
	eachStore(t, func(t *testing.T, db *DB) {
		ctx := ctxT(t)
		_, a := addMachine(t, db, "m1", "10.0.0.1")
		if ps, err := db.Profiles(ctx); err != nil || len(ps) != 0 {
			t.Fatalf("no profiles yet: %v %v", ps, err)
		}
		p := Profile{AccountID: a.ID, Address: "10.0.0.1:623", Suite: 3, Quirks: []string{"no_presence_ping", "counter_proposal"}}
		mustNil(t, db.SaveProfile(ctx, p))
		ps, err := db.Profiles(ctx)
		if got := ps[a.ID]; err != nil || got.Suite != 3 || got.Address != p.Address || !slices.Equal(got.Quirks, p.Quirks) || got.LearnedAt.IsZero() {
			t.Fatalf("profile: %+v %v", got, err)
		}
		p.Suite, p.Quirks = 17, nil
		mustNil(t, db.SaveProfile(ctx, p))
		if ps, _ := db.Profiles(ctx); ps[a.ID].Suite != 17 || ps[a.ID].Quirks != nil || ps[a.ID].RedfishAuth != "" {
			t.Fatalf("replaced: %+v", ps[a.ID])
		}
		// A Redfish BMC's learned authentication (migration 0010).
		p.Suite, p.RedfishAuth = 0, "basic"
		mustNil(t, db.SaveProfile(ctx, p))
		if ps, _ := db.Profiles(ctx); ps[a.ID].RedfishAuth != "basic" || ps[a.ID].Suite != 0 {
			t.Fatalf("learned Redfish authentication: %+v", ps[a.ID])
		}
		wantFieldErr(t, db.SaveProfile(ctx, Profile{AccountID: a.ID, RedfishAuth: "digest"}), "redfish_auth", nil)
		if err := db.SaveProfile(ctx, Profile{AccountID: 9999, Address: "x"}); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown account: %v", err)
		}
		wantFieldErr(t, db.SaveProfile(ctx, Profile{AccountID: a.ID, Quirks: []string{"a,b"}}), "quirks", nil)

		a.CipherSuites = []int{17, 3}
		mustNil(t, db.UpdateAccount(ctx, &a))
		got, err := db.Account(ctx, a.ID)
		if err != nil || !slices.Equal(got.CipherSuites, []int{17, 3}) {
			t.Fatalf("allow-list: %v %v", got.CipherSuites, err)
		}
		for _, bad := range [][]int{{17, 0}, {4}, {3, 3}} {
			a.CipherSuites = bad
			wantFieldErr(t, db.UpdateAccount(ctx, &a), "cipher_suites", nil)
		}
		mustNil(t, db.DeleteMachine(ctx, "m1"))
		if ps, _ := db.Profiles(ctx); len(ps) != 0 {
			t.Errorf("profile outlived its account: %v", ps)
		}
	})
}
