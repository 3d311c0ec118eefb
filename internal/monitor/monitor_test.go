package monitor

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lightsout/lightsout/internal/probe"
	"github.com/lightsout/lightsout/internal/secret"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
	"github.com/lightsout/lightsout/internal/store/sqlstore"
)

// fake is a scripted prober: it answers each call with the next state of
// its script (the last one repeats) and counts calls and concurrency.
type fake struct {
	mu      sync.Mutex
	lights  []bool // Target.Light of each call
	suites  []int  // Target.CipherSuite of each call
	script  []state.OOB
	calls   int
	running atomic.Int32
	maxRun  atomic.Int32
	delay   time.Duration
}

func (f *fake) probe(ctx context.Context, t probe.Target) probe.Observation {
	n := f.running.Add(1)
	defer f.running.Add(-1)
	for {
		m := f.maxRun.Load()
		if n <= m || f.maxRun.CompareAndSwap(m, n) {
			break
		}
	}
	time.Sleep(f.delay) // the check's duration, on the bubble's clock (synctest)
	f.mu.Lock()
	i := min(f.calls, len(f.script)-1)
	f.calls++
	f.lights = append(f.lights, t.Light)
	f.suites = append(f.suites, t.CipherSuite)
	s := f.script[i]
	f.mu.Unlock()
	o := probe.Observation{Name: t.Name, State: s, At: time.Now(), Message: string(s)}
	o.Evidence.CipherSuite = 3
	if s == state.Connectable && !t.Light {
		o.Conditions = []state.Condition{state.Insecure} // auth caps are read by full checks only
	}
	switch s {
	case state.NotResponding:
		o.Reason = state.ReasonSilent
	case state.NotAuthenticated:
		o.Reason = state.ReasonWrongPassword
	}
	return o
}

func (f *fake) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// setup opens a SQLite store with one machine and account, and a monitor
// with f as its IPMI prober.
func setup(t *testing.T, f *fake, sch state.Schedule, d state.Damping) (*Monitor, store.Store, int64) {
	t.Helper()
	ctx := context.Background()
	box, err := secret.NewRandomBox()
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlstore.Open(ctx, sqlstore.Options{DSN: filepath.Join(t.TempDir(), "m.db"), Box: box})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	mc := store.Machine{Name: "node-1"}
	if err := st.AddMachine(ctx, &mc); err != nil {
		t.Fatal(err)
	}
	a := store.Account{MachineID: mc.ID, Protocol: "ipmi", Address: "127.0.0.1", Port: 623, User: "admin", Password: []byte("pw")}
	if err := st.AddAccount(ctx, &a); err != nil {
		t.Fatal(err)
	}
	m := New(st, Config{Schedule: sch, Damping: d, Probers: map[string]probe.Prober{"ipmi": f.probe}})
	if err := m.Load(ctx); err != nil {
		t.Fatal(err)
	}
	return m, st, a.ID
}

// The tests below run in a synctest bubble: the monitor's timers and the
// fake prober's delay run on the bubble's clock, so a test waits for
// nothing but the monitor's own work, and synctest.Wait returns once every
// check in flight is done (or waits on the clock).

// advance moves the bubble's clock on by d and returns once every
// goroutine of the bubble is idle again (the checks that fell due are done).
func advance(d time.Duration) {
	time.Sleep(d) // the bubble's clock, not a wait
	synctest.Wait()
}

func run(t *testing.T, m *Monitor) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func TestNotRespondingBacksOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fake{script: []state.OOB{state.NotResponding}}
		sch := state.Schedule{Interval: 100 * time.Millisecond, Confirm: 50 * time.Millisecond, MaxBackoff: 400 * time.Millisecond, AuthRetry: time.Hour}
		m, _, _ := setup(t, f, sch, state.DefaultDamping)
		run(t, m)
		advance(2 * time.Second) // the bubble's clock: the test is about 2 s of schedule
		// Without back-off: ~20 checks in 2 s. With it: 100, 200, 400, 400… ms.
		if n := f.count(); n < 3 || n > 9 {
			t.Fatalf("%d checks of a silent BMC in 2s at a 100ms interval backing off to 400ms", n)
		}
	})
}

func TestRefusedAccountWaitsForAnEdit(t *testing.T) {
	synctest.Test(t, testRefusedAccountWaitsForAnEdit)
}

func testRefusedAccountWaitsForAnEdit(t *testing.T) {
	f := &fake{script: []state.OOB{state.NotAuthenticated, state.NotAuthenticated, state.Connectable}}
	sch := state.Schedule{Interval: 50 * time.Millisecond, Confirm: 20 * time.Millisecond, MaxBackoff: time.Second, AuthRetry: time.Hour}
	m, st, id := setup(t, f, sch, state.DefaultDamping)
	run(t, m)
	advance(500 * time.Millisecond) // the bubble's clock: ten intervals pass
	if n := f.count(); n != 1 {
		t.Fatalf("%d attempts on a refused account within the retry interval, want 1", n)
	}
	res, err := m.CheckNow(context.Background(), []int64{id})
	if err != nil || res[0].Skipped == "" || f.count() != 1 {
		t.Fatalf("check now on a refused account: %+v %v (%d attempts)", res, err, f.count())
	}
	// Edit the credentials (same user, new password): retried at once.
	a, _ := st.Account(context.Background(), id)
	a.Password = []byte("new-pw")
	if err := st.UpdateAccount(context.Background(), &a); err != nil {
		t.Fatal(err)
	}
	if err := m.Refresh(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	synctest.Wait() // the retry is due at once: it has run
	if f.count() != 2 {
		t.Fatalf("no retry after the credentials were edited (%d attempts)", f.count())
	}
}

func TestOneCheckAtATimePerChannel(t *testing.T) { synctest.Test(t, testOneCheckAtATimePerChannel) }

func testOneCheckAtATimePerChannel(t *testing.T) {
	f := &fake{script: []state.OOB{state.Connectable}, delay: 30 * time.Millisecond}
	sch := state.Schedule{Interval: 20 * time.Millisecond, Confirm: 10 * time.Millisecond, MaxBackoff: time.Second, AuthRetry: time.Hour}
	m, _, id := setup(t, f, sch, state.DefaultDamping)
	run(t, m)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := m.CheckNow(context.Background(), []int64{id})
			if err != nil || res[0].State.State != state.Connectable {
				t.Errorf("check now: %+v %v", res, err)
			}
		}()
	}
	wg.Wait()
	if f.maxRun.Load() != 1 {
		t.Fatalf("%d checks of one channel ran at once", f.maxRun.Load())
	}
	if f.count() < 8 {
		t.Fatalf("%d checks for 8 check-now calls: each must return a fresh check", f.count())
	}
}

func TestFlapsAreDampedInHistory(t *testing.T) {
	C, NR := state.Connectable, state.NotResponding
	f := &fake{script: []state.OOB{C, NR, C, NR, C, NR, NR, NR}}
	sch := state.Schedule{Interval: time.Hour, Confirm: time.Hour, MaxBackoff: time.Hour, AuthRetry: time.Hour}
	m, st, id := setup(t, f, sch, state.Damping{Consecutive: 2})
	for i := 0; i < 8; i++ {
		if _, err := m.CheckNow(context.Background(), []int64{id}); err != nil {
			t.Fatal(err)
		}
	}
	h, err := st.History(context.Background(), id, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 2 || h[1].From != state.Unknown || h[1].To != C || h[0].From != C || h[0].To != NR {
		t.Fatalf("history %+v: want Unknown→Connectable, Connectable→NotResponding", h)
	}
	cs, _ := st.State(context.Background(), id)
	if cs.State != NR || !cs.Since.Equal(h[0].At) {
		t.Fatalf("stored state %+v", cs)
	}
	if got, _ := m.Get(id); got.State != NR {
		t.Fatalf("monitor state %s", got.State)
	}
}

func TestRemovedChannelIsNotChecked(t *testing.T) { synctest.Test(t, testRemovedChannelIsNotChecked) }

func testRemovedChannelIsNotChecked(t *testing.T) {
	f := &fake{script: []state.OOB{state.Connectable}}
	sch := state.Schedule{Interval: 30 * time.Millisecond, Confirm: 10 * time.Millisecond, MaxBackoff: time.Second, AuthRetry: time.Hour}
	m, _, id := setup(t, f, sch, state.DefaultDamping)
	m.Remove(id)
	run(t, m)
	advance(200 * time.Millisecond) // the bubble's clock: several intervals pass
	if f.count() != 0 {
		t.Fatalf("%d checks of a removed channel", f.count())
	}
	if _, err := m.CheckNow(context.Background(), []int64{id}); err == nil {
		t.Fatal("check now of a removed channel did not fail")
	}
}

// TestLightChecksBetweenFullOnes: a Connectable channel gets one full check
// in FullEvery; light ones reuse the cipher suite and keep Insecure, which
// only full checks can see, so the channel does not flap.
func TestLightChecksBetweenFullOnes(t *testing.T) { synctest.Test(t, testLightChecksBetweenFullOnes) }

func testLightChecksBetweenFullOnes(t *testing.T) {
	f := &fake{script: []state.OOB{state.Connectable}}
	ctx := context.Background()
	box, _ := secret.NewRandomBox()
	st, err := sqlstore.Open(ctx, sqlstore.Options{DSN: filepath.Join(t.TempDir(), "m.db"), Box: box})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	mc := store.Machine{Name: "node-1"}
	_ = st.AddMachine(ctx, &mc)
	a := store.Account{MachineID: mc.ID, Protocol: "ipmi", Address: "127.0.0.1", Port: 623, User: "admin", Password: []byte("pw")}
	_ = st.AddAccount(ctx, &a)
	sch := state.Schedule{Interval: 20 * time.Millisecond, Confirm: 10 * time.Millisecond, MaxBackoff: time.Second, AuthRetry: time.Hour}
	m := New(st, Config{Schedule: sch, FullEvery: 3, Probers: map[string]probe.Prober{"ipmi": f.probe}})
	if err := m.Load(ctx); err != nil {
		t.Fatal(err)
	}
	run(t, m)
	// The bubble's clock: 7 checks at a 20 ms interval (±jitter) and their
	// first spread take less than a second.
	advance(time.Second)
	if n := f.count(); n < 7 {
		t.Fatalf("%d checks in a second at a 20ms interval", n)
	}
	f.mu.Lock()
	lights, suites := append([]bool(nil), f.lights[:7]...), append([]int(nil), f.suites[:7]...)
	f.mu.Unlock()
	want := []bool{false, true, true, false, true, true, false}
	for i := range want {
		if lights[i] != want[i] {
			t.Fatalf("light pattern %v, want %v", lights, want)
		}
		if suites[i] != 0 {
			t.Fatalf("check %d pinned suite %d: the learned suite is proposed first, never pinned", i, suites[i])
		}
	}
	h, _ := st.History(ctx, a.ID, 0, 0)
	cs, _ := m.Get(a.ID)
	if len(h) != 1 || !slices.Contains(cs.Conditions, state.Insecure) {
		t.Fatalf("history %+v, conditions %v: Insecure must stand through light checks", h, cs.Conditions)
	}
}

// TestEditFence: BeginEdit drops the check in flight (it used the account
// as it was) and no check starts until Refresh; then checks resume and
// record.
func TestEditFence(t *testing.T) { synctest.Test(t, testEditFence) }

func testEditFence(t *testing.T) {
	f := &fake{script: []state.OOB{state.Connectable}, delay: 150 * time.Millisecond}
	sch := state.Schedule{Interval: 20 * time.Millisecond, Confirm: 10 * time.Millisecond, MaxBackoff: time.Second, AuthRetry: time.Hour}
	m, st, id := setup(t, f, sch, state.DefaultDamping)
	run(t, m)
	// The first check is due within one interval; then it is in flight
	// (the fake prober's 150 ms on the bubble's clock).
	advance(sch.Interval)
	if f.running.Load() != 1 {
		t.Fatalf("%d checks running one interval after the start, want 1", f.running.Load())
	}
	m.BeginEdit(id)
	advance(400 * time.Millisecond) // the check in flight ends; nothing new starts
	if n, r := f.count(), f.running.Load(); n != 1 || r != 0 {
		t.Fatalf("%d checks made, %d running while the account was being edited: want the one in flight only", n, r)
	}
	if h, _ := st.History(context.Background(), id, 0, 0); len(h) != 0 {
		t.Fatalf("the check made with the account before the edit was recorded: %+v", h)
	}
	if err := m.Refresh(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	// A check that fell due while fenced was put off by a second; then
	// it takes the prober's delay.
	advance(time.Second + f.delay)
	if h, _ := st.History(context.Background(), id, 0, 0); len(h) != 1 || h[0].To != state.Connectable {
		t.Fatalf("history after Refresh %+v (%d checks)", h, f.count())
	}
	// EndEdit (a failed write) lifts the fence too.
	m.BeginEdit(id)
	advance(300 * time.Millisecond) // a check in flight at BeginEdit ends
	n := f.count()
	advance(300 * time.Millisecond)
	if f.count() != n {
		t.Fatal("a check started while fenced")
	}
	m.EndEdit(id)
	advance(time.Second + f.delay)
	if f.count() == n {
		t.Fatal("no check after EndEdit")
	}
}
