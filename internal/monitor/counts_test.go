package monitor

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/probe"
	"github.com/lightsout/lightsout/internal/secret"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
	"github.com/lightsout/lightsout/internal/store/sqlstore"
)

// TestStateCountsFollowTheFleet: the running counts behind lightsout_channels
// (read by a scrape in O(1)) equal a walk over every channel after loads,
// declared transitions in every direction, a channel removed while its
// check is in flight, and channels added by Refresh.
func TestStateCountsFollowTheFleet(t *testing.T) {
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
	const n = 40
	var ids []int64
	for i := range n {
		mc := store.Machine{Name: fmt.Sprintf("node-%02d", i)}
		if err := st.AddMachine(ctx, &mc); err != nil {
			t.Fatal(err)
		}
		a := store.Account{MachineID: mc.ID, Protocol: "ipmi", Address: "127.0.0.1", Port: 1000 + i, User: "u", Password: []byte("p")}
		if err := st.AddAccount(ctx, &a); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, a.ID)
	}
	// Each channel's observations cycle through every state, offset by its
	// index; removed is the channel deleted while its check runs.
	// NotAuthenticated comes last: the lockout guard then holds the
	// channel's next check.
	cycle := []state.OOB{state.Connectable, state.NotResponding, state.Invalid, state.Connectable}
	var mu sync.Mutex
	calls := map[string]int{}
	var removed int64
	var m *Monitor
	prober := func(ctx context.Context, tg probe.Target) probe.Observation {
		mu.Lock()
		i := calls[tg.Name]
		calls[tg.Name]++
		mu.Unlock()
		var idx int
		fmt.Sscanf(tg.Name, "node-%d", &idx)
		if removed != 0 && tg.Name == "node-07" {
			m.Remove(removed)
		}
		s := cycle[(i+idx)%len(cycle)]
		if i == 5 && idx%3 == 0 {
			s = state.NotAuthenticated
		}
		o := probe.Observation{Name: tg.Name, State: s, At: time.Now(), Message: string(s)}
		switch s {
		case state.NotResponding:
			o.Reason = state.ReasonSilent
		case state.NotAuthenticated:
			o.Reason = state.ReasonWrongPassword
		}
		return o
	}
	m = New(st, Config{Damping: state.Damping{Consecutive: 1}, Probers: map[string]probe.Prober{"ipmi": prober}})
	if err := m.Load(ctx); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		want := map[state.OOB]int{}
		for _, s := range countedStates {
			want[s] = 0
		}
		for _, cs := range m.Snapshot() {
			want[cs.State]++
		}
		got := m.StateCounts()
		for _, s := range countedStates {
			if got[s] != want[s] {
				t.Fatalf("%s: counts %v, a walk over the channels gives %v", when, got, want)
			}
		}
		if m.Len() != len(m.Snapshot()) {
			t.Fatalf("%s: Len %d, %d channels", when, m.Len(), len(m.Snapshot()))
		}
	}
	check("after Load")
	if got := m.StateCounts()[state.Unknown]; got != n {
		t.Fatalf("after Load: %d Unknown, want %d", got, n)
	}
	for round := range 6 {
		if round == 3 {
			removed = ids[7]
		}
		roster, changes := m.Roster(), m.Changes()
		if _, err := m.CheckNow(ctx, ids); err != nil && round != 3 {
			t.Fatal(err)
		}
		check(fmt.Sprintf("round %d", round))
		// Roster moves with channels coming and going only, not with
		// transitions (Changes does).
		if moved := m.Roster() != roster; moved != (round == 3) {
			t.Fatalf("round %d: Roster moved %v (a channel removed: %v)", round, moved, round == 3)
		}
		if m.Changes() == changes {
			t.Fatalf("round %d: transitions did not move Changes", round)
		}
		if round == 3 {
			removed = 0
			// Back by Refresh (as after an edit) and again by Load.
			roster := m.Roster()
			if err := m.Refresh(ctx, ids[7]); err != nil {
				t.Fatal(err)
			}
			check("after Refresh")
			if m.Roster() == roster {
				t.Fatal("a channel back by Refresh did not move Roster")
			}
		}
	}
	sc := m.StateCounts()
	if sc[state.Connectable] == 0 || sc[state.NotResponding] == 0 || sc[state.NotAuthenticated] == 0 || sc[state.Invalid] == 0 {
		t.Fatalf("the fleet did not pass through every state: %v", sc)
	}
	roster := m.Roster()
	m.Remove(ids[0])
	check("after Remove")
	if m.Roster() == roster {
		t.Fatal("Remove did not move Roster")
	}
	roster = m.Roster()
	if err := m.Load(ctx); err != nil { // ids[0] is back (it is still in the store)
		t.Fatal(err)
	}
	check("after a second Load")
	if m.Roster() == roster {
		t.Fatal("a channel back by Load did not move Roster")
	}
}
