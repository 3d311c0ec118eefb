package cluster

import (
	"context"
	"errors"
	"github.com/lightsout/lightsout/internal/poll"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lightsout/lightsout/internal/probe"
	"github.com/lightsout/lightsout/internal/store"
)

// fakeStore is an instances table in memory; fail makes every call fail
// (the database unreachable).
type fakeStore struct {
	mu   sync.Mutex
	rows map[string]store.Instance
	fail bool
}

var errDown = errors.New("database unreachable")

func (f *fakeStore) Heartbeat(_ context.Context, in store.Instance, lease time.Duration, _ bool) (store.Instance, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return store.Instance{}, errDown
	}
	in.LeaseUntil, in.Live = time.Now().Add(lease), true
	f.rows[in.Name] = in
	return in, nil
}

func (f *fakeStore) Instances(context.Context) ([]store.Instance, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return nil, errDown
	}
	var out []store.Instance
	for _, in := range f.rows {
		in.Live = time.Now().Before(in.LeaseUntil)
		out = append(out, in)
	}
	return out, nil
}

func (f *fakeStore) Leave(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.rows, name)
	return nil
}

func (f *fakeStore) Listen(context.Context, func(), func(store.Change)) error {
	return store.ErrNoNotify
}

// fakeMonitor records what the node removed; Load asks the node's
// filter about machines 1..n, as the monitor would through Node.Store.
type fakeMonitor struct {
	n       *Node
	mu      sync.Mutex
	held    map[int64]bool // by account = machine ID
	removed []int64
	count   int64
}

func (m *fakeMonitor) Load(context.Context) error {
	for id := int64(1); id <= m.count; id++ {
		if m.n.admit(id, "m", store.DefaultZone, id) {
			m.mu.Lock()
			m.held[id] = true
			m.mu.Unlock()
		}
	}
	return nil
}

func (m *fakeMonitor) IDs() []int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []int64
	for id := range m.held {
		out = append(out, id)
	}
	return out
}

func (m *fakeMonitor) Remove(id int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.held, id)
	m.removed = append(m.removed, id)
}
func (m *fakeMonitor) Refresh(context.Context, int64) error        { return nil }
func (m *fakeMonitor) RefreshMachine(context.Context, int64) error { return nil }

func (m *fakeMonitor) heldIDs() []int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []int64
	for id := range m.held {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// TestNodeFencesWithoutTheDatabase: an instance that cannot renew its
// lease drops every machine before the lease can lapse (so the others may
// take them), and takes its share back once the database answers.
func TestNodeFencesWithoutTheDatabase(t *testing.T) {
	st := &fakeStore{rows: map[string]store.Instance{}}
	n, err := New(st, Config{Name: "a", Lease: 600 * time.Millisecond, Every: 100 * time.Millisecond, Fence: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	mon := &fakeMonitor{n: n, held: map[int64]bool{}, count: 50}
	n.Attach(mon)
	ctx := context.Background()
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	n.Tick(ctx)
	if got := mon.heldIDs(); len(got) != 50 {
		t.Fatalf("alone, it checks %d of 50", len(got))
	}
	st.mu.Lock()
	st.fail = true
	st.mu.Unlock()
	lost := time.Now()
	if !poll.Wait(2*time.Second, func() bool {
		if len(mon.heldIDs()) == 0 {
			return true
		}
		n.Tick(ctx) // every renewal fails
		return false
	}) {
		t.Fatal("still checking 2 s after the database went away")
	}
	if d := time.Since(lost); d > 600*time.Millisecond-150*time.Millisecond {
		t.Errorf("fenced %v after the last renewal, lease 600ms: too close to the lapse", d)
	}
	if n.Leader() {
		t.Error("a fenced instance is the leader")
	}
	st.mu.Lock()
	st.fail = false
	st.mu.Unlock()
	n.Tick(ctx)
	if got := mon.heldIDs(); len(got) != 50 {
		t.Errorf("database back: checks %d of 50", len(got))
	}
}

// TestNodeAloneNeverFences: alone on its database (SQLite), an instance
// whose renewals fail keeps checking everything: nobody could take over,
// and fencing would only stop the monitor (a 100,000-BMC server on a
// saturated CPU fenced itself that way).
func TestNodeAloneNeverFences(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &fakeStore{rows: map[string]store.Instance{}}
		n, err := New(st, Config{Name: "a", Alone: true, Lease: 600 * time.Millisecond, Every: 100 * time.Millisecond, Fence: 300 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		mon := &fakeMonitor{n: n, held: map[int64]bool{}, count: 50}
		n.Attach(mon)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		if err := n.Start(ctx); err != nil {
			t.Fatal(err)
		}
		n.Tick(ctx)
		st.mu.Lock()
		st.fail = true
		st.mu.Unlock()
		// Past the fence and the lease (the bubble's clock), renewals
		// failing all along.
		for range 50 {
			n.Tick(ctx)
			time.Sleep(20 * time.Millisecond) // synctest: moves the fake clock only
			if got := mon.heldIDs(); len(got) != 50 {
				t.Fatalf("alone, after failed renewals, it checks %d of 50", len(got))
			}
		}
		st.mu.Lock()
		st.fail = false
		st.mu.Unlock()
		n.Close(ctx) // stops the fence timer: the bubble ends with no timer left
	})
}

// TestNodeHandOverWaitsForTheCheckInFlight: when a second instance joins,
// the first drops the machines the new view gives away, and publishes that
// view only once their checks in flight ended; the newcomer checks none of
// them before.
func TestNodeHandOverWaitsForTheCheckInFlight(t *testing.T) {
	st := &fakeStore{rows: map[string]store.Instance{}}
	cfg := Config{Lease: 5 * time.Second, Every: time.Second, Fence: 2 * time.Second}
	cfg.Name = "a"
	a, _ := New(st, cfg)
	monA := &fakeMonitor{n: a, held: map[int64]bool{}, count: 60}
	a.Attach(monA)
	ctx := context.Background()
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	a.Tick(ctx)
	// A check of every machine a holds is in flight, released by hand.
	release := make(chan struct{})
	started := make(chan struct{}, 60)
	p := a.Prober(func(ctx context.Context, t probe.Target) probe.Observation {
		started <- struct{}{}
		<-release
		return probe.Observation{}
	})
	var wg sync.WaitGroup
	for range monA.heldIDs() {
		wg.Add(1)
		go func() { defer wg.Done(); p(ctx, probe.Target{Name: "m"}) }()
	}
	for range monA.heldIDs() {
		<-started
	}
	cfg.Name = "b"
	b, _ := New(st, cfg)
	monB := &fakeMonitor{n: b, held: map[int64]bool{}, count: 60}
	b.Attach(monB)
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	b.Tick(ctx) // b publishes [a b]; a still claims everything
	if got := monB.heldIDs(); len(got) != 0 {
		t.Fatalf("b checks %v while a's view still gives them to a", got)
	}
	done := make(chan struct{})
	go func() { a.Tick(ctx); close(done) }() // a shrinks, then waits for the checks
	select {
	case <-done:
		t.Fatal("a published its new view with checks in flight")
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	wg.Wait()
	<-done
	b.Tick(ctx)
	ha, hb := monA.heldIDs(), monB.heldIDs()
	if len(ha)+len(hb) != 60 || len(hb) == 0 || len(ha) == 0 {
		t.Fatalf("after the hand-over a checks %d, b %d of 60", len(ha), len(hb))
	}
	for _, id := range hb {
		if slices.Contains(ha, id) {
			t.Errorf("machine %d checked by both", id)
		}
		if Owner(id, []string{"a", "b"}) != "b" {
			t.Errorf("b took machine %d, which is a's", id)
		}
	}
}

// catchUpMonitor is a fakeMonitor that records how each load was asked
// for: Load (the first) or LoadWithin (a takeover).
type catchUpMonitor struct {
	*fakeMonitor
	calls []time.Duration // -1: Load
}

func (m *catchUpMonitor) Load(ctx context.Context) error {
	m.calls = append(m.calls, -1)
	return m.fakeMonitor.Load(ctx)
}

func (m *catchUpMonitor) LoadWithin(ctx context.Context, within time.Duration) error {
	m.calls = append(m.calls, within)
	return m.fakeMonitor.Load(ctx)
}

// TestNodeTakeoverCatchesUp: the first load spreads the share over an
// interval (Load); a later one — a member died and its machines are
// overdue — asks the monitor to catch up within TakeoverWindow.
func TestNodeTakeoverCatchesUp(t *testing.T) {
	st := &fakeStore{rows: map[string]store.Instance{}}
	cfg := Config{Lease: 600 * time.Millisecond, Every: 100 * time.Millisecond, Fence: 300 * time.Millisecond, TakeoverWindow: 7 * time.Second}
	cfg.Name = "a"
	a, err := New(st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Name = "b"
	b, err := New(st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ma := &catchUpMonitor{fakeMonitor: &fakeMonitor{n: a, held: map[int64]bool{}, count: 60}}
	mb := &fakeMonitor{n: b, held: map[int64]bool{}, count: 60}
	a.Attach(ma)
	b.Attach(mb)
	ctx := context.Background()
	for _, n := range []*Node{a, b} {
		if err := n.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		a.Tick(ctx)
		b.Tick(ctx)
	}
	if len(ma.calls) == 0 || ma.calls[0] != -1 {
		t.Fatalf("first load: %v, want Load", ma.calls)
	}
	if got := len(ma.heldIDs()) + len(mb.heldIDs()); got != 60 {
		t.Fatalf("a and b hold %d of 60", got)
	}
	// b dies: its row stays until the lease lapses.
	st.mu.Lock()
	r := st.rows["b"]
	r.LeaseUntil = time.Now().Add(-time.Millisecond)
	st.rows["b"] = r
	st.mu.Unlock()
	n := len(ma.calls)
	a.Tick(ctx)
	if len(ma.heldIDs()) != 60 {
		t.Fatalf("after b died a holds %d of 60", len(ma.heldIDs()))
	}
	if len(ma.calls) != n+1 || ma.calls[n] != 7*time.Second {
		t.Fatalf("takeover loads: %v, want one LoadWithin(7s)", ma.calls[n:])
	}
}

// countedMonitor is a fakeMonitor with the monitor's change counter (a
// channel came or went) and a count of the walks reconcile made.
type countedMonitor struct {
	fakeMonitor
	changes atomic.Uint64
	walks   atomic.Int64
}

func (m *countedMonitor) Load(ctx context.Context) error {
	m.changes.Add(1)
	return m.fakeMonitor.Load(ctx)
}
func (m *countedMonitor) IDs() []int64    { m.walks.Add(1); return m.fakeMonitor.IDs() }
func (m *countedMonitor) Roster() uint64  { return m.changes.Load() }
func (m *countedMonitor) Remove(id int64) { m.changes.Add(1); m.fakeMonitor.Remove(id) }
func (m *countedMonitor) insert(id int64) { // what a load racing a drop does
	m.mu.Lock()
	m.held[id] = true
	m.mu.Unlock()
	m.changes.Add(1)
}

// TestNodeReconcilesOnlyAfterAChange: a steady fleet is not walked at
// every heartbeat; a channel the node does not hold is still removed at
// the next heartbeat after it came (the monitor's count moved) or after
// the node dropped an account (its books moved).
func TestNodeReconcilesOnlyAfterAChange(t *testing.T) {
	st := &fakeStore{rows: map[string]store.Instance{}}
	n, err := New(st, Config{Name: "a", Alone: true, Lease: 600 * time.Millisecond, Every: 100 * time.Millisecond, Fence: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	mon := &countedMonitor{fakeMonitor: fakeMonitor{n: n, held: map[int64]bool{}, count: 50}}
	mon.fakeMonitor.n = n
	n.Attach(mon)
	ctx := context.Background()
	n.Tick(ctx) // publishes the view
	n.Tick(ctx) // loads
	n.Tick(ctx) // walks once after the load
	if got := mon.heldIDs(); len(got) != 50 {
		t.Fatalf("holds %d of 50", len(got))
	}
	before := mon.walks.Load()
	for range 5 {
		n.Tick(ctx)
	}
	if got := mon.walks.Load() - before; got != 0 {
		t.Fatalf("steady fleet: %d walks in 5 heartbeats, want 0", got)
	}
	// A load that raced a release inserts a machine after the node let it go.
	n.release(7)
	mon.insert(7)
	n.Tick(ctx)
	if slices.Contains(mon.heldIDs(), 7) {
		t.Fatal("a channel the node released stayed in the monitor")
	}
	// An account leaves the books while the monitor, unchanged, still has it.
	n.forget(8, 8)
	mon.fakeMonitor.mu.Lock()
	mon.held[8] = true // Remove not called: only the books moved
	mon.fakeMonitor.mu.Unlock()
	n.Tick(ctx)
	if slices.Contains(mon.heldIDs(), 8) {
		t.Fatal("a channel the node forgot stayed in the monitor")
	}
	before = mon.walks.Load()
	n.Tick(ctx)
	n.Tick(ctx)
	if got := mon.walks.Load() - before; got > 1 {
		t.Fatalf("after the fix-ups: %d walks in 2 heartbeats, want at most 1", got)
	}
	n.Close(ctx)
}
