package audit

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
)

// listStore counts the listings of every account; Account reads one.
type listStore struct {
	accts    map[int64]store.Account
	listings int
	reads    int
}

func (s *listStore) Accounts(context.Context, store.MachineFilter, store.Page) ([]store.Account, error) {
	s.listings++
	var out []store.Account
	for _, a := range s.accts {
		out = append(out, a)
	}
	return out, nil
}
func (s *listStore) Account(_ context.Context, id int64) (store.Account, error) {
	s.reads++
	a, ok := s.accts[id]
	if !ok {
		return store.Account{}, store.ErrNotFound
	}
	return a, nil
}
func (s *listStore) SaveSecurityReport(context.Context, store.SecurityReport, *store.SecurityChange) error {
	return nil
}
func (s *listStore) SecurityReports(context.Context, []int64) ([]store.SecurityReport, error) {
	return nil, nil
}
func (s *listStore) SecurityHistory(context.Context, int64, int) ([]store.SecurityChange, error) {
	return nil, nil
}
func (s *listStore) AddEvent(context.Context, *store.Event, time.Duration) error { return nil }

// rosterStates: every channel Connectable; Roster as the monitor's.
type rosterStates struct{ roster atomic.Uint64 }

func (r *rosterStates) Get(int64) (store.ChannelState, bool) {
	return store.ChannelState{State: state.Connectable}, true
}
func (r *rosterStates) Roster() uint64 { return r.roster.Load() }

// plainStates has no Roster: every scan lists.
type plainStates struct{}

func (plainStates) Get(int64) (store.ChannelState, bool) {
	return store.ChannelState{State: state.Connectable}, true
}

// TestScanListsOnlyWhenTheRosterMoves: the scheduler's ticks reuse one
// listing of the accounts while the monitor's channels stay the same (at
// most relistEvery ticks); a channel coming or going lists again; an audit
// about to start from an earlier listing reads its account afresh, and a
// deleted account or one no longer IPMI is not audited.
func TestScanListsOnlyWhenTheRosterMoves(t *testing.T) {
	ctx := context.Background()
	st := &listStore{accts: map[int64]store.Account{}}
	for id := int64(1); id <= 3; id++ {
		st.accts[id] = store.Account{ID: id, Protocol: "ipmi", Address: "127.0.0.1", Port: 623}
	}
	states := &rosterStates{}
	// A day between audits, first ones far in the future: nothing due.
	a := New(st, nil, states, Config{Every: 24 * time.Hour, FirstSpread: time.Hour, Tick: time.Minute})
	for range relistEvery + 2 {
		if err := a.scan(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if st.listings != 2 { // the first scan, then after relistEvery reuses
		t.Fatalf("%d listings in %d steady ticks, want 2", st.listings, relistEvery+2)
	}
	states.roster.Add(1) // a channel came
	if err := a.scan(ctx); err != nil {
		t.Fatal(err)
	}
	if st.listings != 3 {
		t.Fatalf("a channel came: %d listings, want 3", st.listings)
	}
	// Make 1 and 2 due (3 is being audited on demand); from the cached
	// listing, 1 is deleted and 2 is Redfish now.
	a.mu.Lock()
	for id, e := range a.accts {
		e.offset = 0
		e.running = id == 3
	}
	a.mu.Unlock()
	delete(st.accts, 1)
	st.accts[2] = store.Account{ID: 2, Protocol: "redfish", Address: "127.0.0.1", Port: 443}
	if err := a.scan(ctx); err != nil {
		t.Fatal(err)
	}
	if st.listings != 3 || st.reads != 2 {
		t.Fatalf("%d listings, %d reads of one account; want 3 and 2 (the two due accounts read afresh)", st.listings, st.reads)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for id, e := range a.accts {
		if id != 3 && (e.running || !e.attempted.IsZero()) {
			t.Errorf("account %d started (deleted, or Redfish now)", id)
		}
	}
	// Without a Roster (another States) every scan lists, as before.
	st2 := &listStore{accts: st.accts}
	b := New(st2, nil, plainStates{}, Config{Every: 24 * time.Hour, FirstSpread: time.Hour, Tick: time.Minute})
	for range 3 {
		if err := b.scan(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if st2.listings != 3 {
		t.Fatalf("without a roster: %d listings in 3 scans, want 3", st2.listings)
	}
}
