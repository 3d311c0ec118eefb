package monitor

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/secret"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
	"github.com/lightsout/lightsout/internal/store/sqlstore"
)

// TestLoadWithinCatchesUp: channels gained after the first load (a dead
// instance's share, docs/scale-out.md) that have a stored state get their
// first checks within the window, not over a whole interval; when they are
// many, no faster than CatchUpRate; a never-checked one is spread as by
// Load; channels already known keep their schedule.
func TestLoadWithinCatchesUp(t *testing.T) {
	ctx := context.Background()
	box, err := secret.NewRandomBox()
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlstore.Open(ctx, sqlstore.Options{DSN: filepath.Join(t.TempDir(), "m.db"), Box: box})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	add := func(i int, checked bool) int64 {
		t.Helper()
		mc := store.Machine{Name: fmt.Sprintf("node-%03d", i)}
		if err := st.AddMachine(ctx, &mc); err != nil {
			t.Fatal(err)
		}
		a := store.Account{MachineID: mc.ID, Protocol: "ipmi", Address: "127.0.0.1", Port: 1000 + i, User: "u", Password: []byte("p")}
		if err := st.AddAccount(ctx, &a); err != nil {
			t.Fatal(err)
		}
		if checked {
			at := time.Now().Add(-2 * time.Minute)
			if err := st.SaveState(ctx, store.ChannelState{AccountID: a.ID, State: state.Connectable, Since: at, CheckedAt: at}, nil); err != nil {
				t.Fatal(err)
			}
		}
		return a.ID
	}
	sched := state.DefaultSchedule
	sched.Interval = time.Hour
	// Run is never called: the test reads the schedule Load made.
	m := New(st, Config{Schedule: sched, CatchUpRate: 10})
	var first []int64
	for i := range 20 {
		first = append(first, add(i, true))
	}
	if err := m.Load(ctx); err != nil {
		t.Fatal(err)
	}
	due := func(id int64) time.Duration {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.wall(m.chans[id].due).Sub(time.Now())
	}
	before := map[int64]time.Duration{}
	late := 0
	for _, id := range first {
		before[id] = due(id)
		if before[id] > 10*time.Minute {
			late++
		}
	}
	if late == 0 {
		t.Fatalf("Load: all 20 first checks within 10 minutes of a 1 h interval; they should be spread over the interval")
	}

	// 30 gained with a state: 30 / CatchUpRate 10 = 3 s is under the
	// 1 minute window, so the window bounds them.
	var gained []int64
	for i := 20; i < 50; i++ {
		gained = append(gained, add(i, true))
	}
	never := add(50, false)
	if err := m.LoadWithin(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, id := range gained {
		if d := due(id); d > time.Minute {
			t.Fatalf("a channel taken over is due in %v, want within the 1 minute window", d)
		}
	}
	neverLate := due(never)
	for _, id := range first {
		if d := due(id); d > before[id]+time.Second || d < before[id]-time.Minute {
			t.Fatalf("a known channel moved from due in %v to %v by LoadWithin", before[id], d)
		}
	}

	// 2,000 gained: 2,000 / 10 a second = 200 s, longer than the window:
	// the rate bounds them (some are due past the window, none past it).
	var many []int64
	for i := 100; i < 2100; i++ {
		many = append(many, add(i, true))
	}
	if err := m.LoadWithin(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	past := 0
	for _, id := range many {
		d := due(id)
		if d > 200*time.Second+time.Second {
			t.Fatalf("due in %v, past gained/CatchUpRate = 200 s", d)
		}
		if d > time.Minute {
			past++
		}
	}
	if past < len(many)/2 {
		t.Fatalf("%d of %d due past the 1 minute window; at 10 a second about 70%% should be", past, len(many))
	}
	t.Logf("never-checked channel gained with them: due in %v (spread over the interval, as by Load)", neverLate)
}
