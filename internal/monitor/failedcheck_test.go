package monitor

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/probe"
	"github.com/lightsout/lightsout/internal/secret"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
	"github.com/lightsout/lightsout/internal/store/sqlstore"
)

// TestFailedCheckWritesNothing: a check that fails once (not yet declared:
// damping wants two) read no power and no GUID, which is no change to
// store. Every such check of a fleet under load used to write its channel
// (bench/monitor --redfish at 10,000 BMCs: the store's one writer then
// timed out thousands of writes).
func TestFailedCheckWritesNothing(t *testing.T) {
	ctx := context.Background()
	box, _ := secret.NewRandomBox()
	st, err := sqlstore.Open(ctx, sqlstore.Options{DSN: filepath.Join(t.TempDir(), "m.db"), Box: box})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	mc := store.Machine{Name: "m1"}
	mustOK(t, st.AddMachine(ctx, &mc))
	a := store.Account{MachineID: mc.ID, Protocol: "ipmi", Address: "127.0.0.1", Port: 623, User: "admin", Password: []byte("pw-123456")}
	mustOK(t, st.AddAccount(ctx, &a))
	at := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	mustOK(t, st.SaveState(ctx, store.ChannelState{AccountID: a.ID, State: state.Connectable, Since: at, CheckedAt: at, Power: "on", Message: "seeded"}, nil))

	m := New(st, Config{Damping: state.Damping{Consecutive: 2}, Probers: map[string]probe.Prober{"ipmi": func(_ context.Context, tg probe.Target) probe.Observation {
		return probe.Observation{Name: tg.Name, State: state.NotResponding, Reason: state.ReasonSilent, Message: "no answer", At: time.Now()}
	}}})
	mustOK(t, m.Load(ctx))
	if _, err := m.CheckNow(ctx, []int64{a.ID}); err != nil {
		t.Fatal(err)
	}
	cs, err := st.State(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if cs.Message != "seeded" || !cs.CheckedAt.Equal(at) || cs.Power != "on" || cs.State != state.Connectable {
		t.Fatalf("one failed check was written: %+v", cs)
	}
}
