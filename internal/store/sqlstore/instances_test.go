package sqlstore

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// TestInstancesLease: an instance registers, renews and lists with its
// zones and view; its liveness is the lease by the database's clock; a
// lapsed one is listed dead and pruned; a bad name is refused naming the
// field.
func TestInstancesLease(t *testing.T) {
	eachStore(t, func(t *testing.T, db *DB) {
		ctx := ctxT(t)
		a, err := db.Heartbeat(ctx, Instance{Name: "a", Zones: []string{"dc1", "dc2"}, PeerAddress: "127.0.0.1:1"}, time.Minute, true)
		if err != nil || !a.Live || !slices.Equal(a.Zones, []string{"dc1", "dc2"}) || a.View != nil || a.StartedAt.IsZero() {
			t.Fatalf("registered: %+v %v", a, err)
		}
		// A view with no member is not "no view".
		b, err := db.Heartbeat(ctx, Instance{Name: "b", Zones: []string{DefaultZone}, View: []string{}}, time.Nanosecond, true)
		if err != nil || b.View == nil || len(b.View) != 0 {
			t.Fatalf("b: %+v %v", b, err)
		}
		a2, err := db.Heartbeat(ctx, Instance{Name: "a", Zones: []string{"dc1"}, View: []string{"a", "b"}, Channels: 7, Checks: 9}, time.Minute, false)
		if err != nil || !a2.StartedAt.Equal(a.StartedAt) || !slices.Equal(a2.View, []string{"a", "b"}) || a2.Channels != 7 || a2.Checks != 9 {
			t.Fatalf("renewed: %+v %v", a2, err)
		}
		if !a2.LeaseUntil.After(a.LeaseUntil) && !a2.LeaseUntil.Equal(a.LeaseUntil) {
			t.Errorf("lease moved back: %v then %v", a.LeaseUntil, a2.LeaseUntil)
		}
		l, err := db.Instances(ctx)
		if err != nil || len(l) != 2 || l[0].Name != "a" || !l[0].Live || l[1].Name != "b" || l[1].Live {
			t.Fatalf("instances: %+v %v", l, err)
		}
		if n, err := db.PruneInstances(ctx, time.Now().Add(-time.Hour)); err != nil || n != 0 {
			t.Errorf("prune of the last hour's lapses: %d %v", n, err)
		}
		if n, err := db.PruneInstances(ctx, time.Now().Add(time.Second)); err != nil || n != 1 {
			t.Errorf("prune of b: %d %v", n, err)
		}
		mustNil(t, db.Leave(ctx, "a"))
		if l, _ := db.Instances(ctx); len(l) != 0 {
			t.Errorf("after leave: %+v", l)
		}
		_, err = db.Heartbeat(ctx, Instance{Name: "a b"}, time.Minute, true)
		wantFieldErr(t, err, "name", nil)
		_, err = db.Heartbeat(ctx, Instance{Name: "c", Zones: []string{""}}, time.Minute, true)
		wantFieldErr(t, err, "zones", nil)
	})
}

// TestListenChanges: on PostgreSQL every account insert, update and delete
// and every machine update made through another connection is announced;
// SQLite says it has no notifications.
func TestListenChanges(t *testing.T) {
	eachDSN(t, func(t *testing.T, dsn string) {
		ctx := ctxT(t)
		db := openT(t, dsn, testBox)
		other := openT(t, dsn, testBox)
		lctx, cancel := context.WithCancel(ctx)
		defer cancel()
		got := make(chan Change, 64)
		ready := make(chan struct{})
		errc := make(chan error, 1)
		go func() { errc <- db.Listen(lctx, func() { close(ready) }, func(c Change) { got <- c }) }()
		if db.Driver() == "sqlite" {
			if err := <-errc; !errors.Is(err, ErrNoNotify) {
				t.Fatalf("sqlite Listen: %v", err)
			}
			if err := other.AnnounceStates(ctx, "i1"); !errors.Is(err, ErrNoNotify) {
				t.Fatalf("sqlite AnnounceStates: %v", err)
			}
			return
		}
		select {
		case <-ready:
		case err := <-errc:
			t.Fatal(err)
		}
		want := func(what string, c Change) {
			t.Helper()
			select {
			case g := <-got:
				if g.AccountID != c.AccountID || g.MachineID != c.MachineID || g.Instance != c.Instance || g.Digests != nil {
					t.Fatalf("%s: got %+v, want %+v", what, g, c)
				}
			case <-ctx.Done():
				t.Fatalf("%s: no notification", what)
			}
		}
		m, a := addMachine(t, other, "m1", "10.0.0.1")
		want("insert", Change{AccountID: a.ID, MachineID: m.ID})
		a.User = "root"
		mustNil(t, other.UpdateAccount(ctx, &a))
		want("update", Change{AccountID: a.ID, MachineID: m.ID})
		m.Group = "g"
		mustNil(t, other.UpdateMachine(ctx, &m))
		want("machine", Change{MachineID: m.ID})
		mustNil(t, other.DeleteMachine(ctx, "m1"))
		want("delete", Change{AccountID: a.ID, MachineID: m.ID})
		mustNil(t, other.AnnounceStates(ctx, "i2"))
		want("states", Change{Instance: "i2"})
		mustNil(t, other.AnnounceDigests(ctx, "i3", []byte(`[{"s":"m1"}]`)))
		select {
		case g := <-got:
			if g.Instance != "i3" || string(g.Digests) != `[{"s":"m1"}]` {
				t.Fatalf("digests: got %+v", g)
			}
		case <-ctx.Done():
			t.Fatal("digests: no notification")
		}
		if err := other.AnnounceDigests(ctx, "i3", make([]byte, NotifyMax)); err == nil {
			t.Error("a batch over NotifyMax was sent")
		}
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Errorf("Listen after cancel: %v", err)
		}
	})
}

// TestMachineFilterInDatabase: machines are selected in the database by
// zone, name prefix, enclosure, and a channel's stored state and reason
// (Unknown also matching a channel never checked), and paged by ID.
func TestMachineFilterInDatabase(t *testing.T) {
	eachStore(t, func(t *testing.T, db *DB) {
		ctx := ctxT(t)
		m1, a1 := addMachine(t, db, "rack1-a", "10.0.0.1")
		m2, a2 := addMachine(t, db, "rack1-b", "10.0.0.2")
		_, _ = addMachine(t, db, "rack2-a", "10.0.0.3")
		m1.Zone = "dc1"
		mustNil(t, db.UpdateMachine(ctx, &m1))
		_ = m2
		now := time.Now()
		mustNil(t, db.SaveState(ctx, ChannelState{AccountID: a1.ID, State: "Connectable", Since: now, CheckedAt: now}, nil))
		mustNil(t, db.SaveState(ctx, ChannelState{AccountID: a2.ID, State: "NotResponding", Reason: "silent", Since: now, CheckedAt: now}, nil))
		names := func(f MachineFilter, p Page) []string {
			t.Helper()
			ms, err := db.Machines(ctx, f, p)
			mustNil(t, err)
			var out []string
			for _, m := range ms {
				out = append(out, m.Name)
			}
			return out
		}
		for _, tc := range []struct {
			f    MachineFilter
			want []string
		}{
			{MachineFilter{Zone: "dc1"}, []string{"rack1-a"}},
			{MachineFilter{Zone: DefaultZone}, []string{"rack1-b", "rack2-a"}},
			{MachineFilter{Prefix: "rack1-"}, []string{"rack1-a", "rack1-b"}},
			{MachineFilter{State: "Connectable"}, []string{"rack1-a"}},
			{MachineFilter{State: "NotResponding", Reason: "silent"}, []string{"rack1-b"}},
			{MachineFilter{Reason: "silent", Prefix: "rack2"}, nil},
			{MachineFilter{Prefix: "RACK1"}, nil}, // case matters
			{MachineFilter{Prefix: "rack?"}, nil}, // wildcards are literal
			{MachineFilter{Prefix: "rack*"}, nil},
			{MachineFilter{Prefix: "rack[1]"}, nil},
			{MachineFilter{Prefix: "rack2-a"}, []string{"rack2-a"}},
			{MachineFilter{State: "Unknown"}, []string{"rack2-a"}},
		} {
			if got := names(tc.f, Page{}); !slices.Equal(got, tc.want) {
				t.Errorf("%+v: %v, want %v", tc.f, got, tc.want)
			}
		}
		if got := names(MachineFilter{Prefix: "rack"}, Page{After: m1.ID, Limit: 1}); !slices.Equal(got, []string{"rack1-b"}) {
			t.Errorf("page after rack1-a: %v", got)
		}
		m1.Zone = "a b"
		wantFieldErr(t, db.UpdateMachine(ctx, &m1), "zone", nil)
	})
}
