package monitor

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/ipmi"
	"github.com/lightsout/lightsout/internal/probe"
	"github.com/lightsout/lightsout/internal/secret"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
	"github.com/lightsout/lightsout/internal/store/sqlstore"
)

// TestStep: the channel's pure core turns one observation into the next
// known state and one Outcome naming everything to apply.
func TestStep(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	conn := func(p *ipmi.Profile) probe.Observation {
		o := probe.Observation{State: state.Connectable, At: at, GUID: "g-1", Message: "ok"}
		o.Evidence.Power, o.Evidence.Profile = "on", p
		return o
	}
	suite3 := &ipmi.Profile{Suite: 3, Known: true}
	base := stepInput{accountID: 4, machineID: 2, machine: "web-1", enclosure: "e-1", address: "10.0.0.4", port: 623,
		damping: state.Damping{Consecutive: 2}}
	for _, c := range []struct {
		name  string
		in    func(stepInput) stepInput
		check func(t *testing.T, k known, o Outcome)
	}{
		{"first check declares, saves, learns, pins a registering machine", func(in stepInput) stepInput {
			in.obs, in.register = conn(suite3), true
			return in
		}, func(t *testing.T, k known, o Outcome) {
			if o.Change != state.Declared || o.Transition == nil || o.Transition.From != state.Unknown || o.Transition.To != state.Connectable ||
				o.State == nil || o.State.State != state.Connectable || o.Pin != "g-1" || o.Profile == nil || o.Profile.Suite != 3 ||
				o.Profile.Address != "10.0.0.4:623" || o.Declared != state.Connectable || o.Machine != "web-1" || o.Enclosure != "e-1" {
				t.Fatalf("outcome %+v", o)
			}
			if k.ch.State != state.Connectable || k.power != "on" || k.seenGUID != "g-1" || k.profile != nil {
				t.Fatalf("known %+v (the profile is kept once saved, by apply)", k)
			}
		}},
		{"steady state: nothing to apply", func(in stepInput) stepInput {
			in.known = known{ch: state.Channel{State: state.Connectable, Since: at, Streak: 1}, power: "on", seenGUID: "g-1", message: "ok", profile: suite3}
			in.obs = conn(&ipmi.Profile{Suite: 3, Known: true})
			return in
		}, func(t *testing.T, k known, o Outcome) {
			if o.Change != state.NoChange || o.State != nil || o.Transition != nil || o.Profile != nil || o.Pin != "" {
				t.Fatalf("outcome %+v", o)
			}
		}},
		{"a failed save is saved again", func(in stepInput) stepInput {
			in.known = known{ch: state.Channel{State: state.Connectable, Since: at, Streak: 1}, power: "on", seenGUID: "g-1", message: "ok"}
			in.obs, in.dirty = conn(nil), true
			return in
		}, func(t *testing.T, k known, o Outcome) {
			if o.State == nil || o.Transition != nil {
				t.Fatalf("outcome %+v", o)
			}
		}},
		{"one failure is damped, not declared", func(in stepInput) stepInput {
			in.known = known{ch: state.Channel{State: state.Connectable, Since: at, Streak: 1}, power: "on", seenGUID: "g-1", message: "ok"}
			in.obs = probe.Observation{State: state.NotResponding, Reason: state.ReasonSilent, At: at}
			return in
		}, func(t *testing.T, k known, o Outcome) {
			if o.Transition != nil || o.Declared != state.Connectable || k.ch.Observing() != state.NotResponding {
				t.Fatalf("outcome %+v known %+v", o, k.ch)
			}
		}},
		{"a light check keeps Insecure", func(in stepInput) stepInput {
			in.known = known{ch: state.Channel{State: state.Connectable, Conditions: []state.Condition{state.Insecure}, Since: at, Streak: 1},
				power: "on", seenGUID: "g-1", message: "ok", insecure: true}
			in.obs, in.light = conn(nil), true
			return in
		}, func(t *testing.T, k known, o Outcome) {
			if o.State != nil || !slices.Contains(o.Observation.Conditions, state.Insecure) || k.sinceFull != 1 {
				t.Fatalf("outcome %+v known %+v", o, k)
			}
		}},
		{"a refusal is remembered for the lockout guard", func(in stepInput) stepInput {
			in.obs = probe.Observation{State: state.NotAuthenticated, Reason: state.ReasonWrongPassword, At: at}
			return in
		}, func(t *testing.T, k known, o Outcome) {
			if !k.lastRefused.Equal(at) || o.Transition == nil || o.Transition.To != state.NotAuthenticated {
				t.Fatalf("outcome %+v known %+v", o, k)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			k, o := step(c.in(base))
			c.check(t, k, o)
		})
	}
}

// orderStore logs the writes apply makes.
type orderStore struct {
	store.Store
	mu  sync.Mutex
	log []string
}

func (s *orderStore) note(x string) { s.mu.Lock(); s.log = append(s.log, x); s.mu.Unlock() }
func (s *orderStore) UpdateMachine(ctx context.Context, m *store.Machine) error {
	s.note("pin")
	return s.Store.UpdateMachine(ctx, m)
}
func (s *orderStore) SaveProfile(ctx context.Context, p store.Profile) error {
	s.note("profile")
	return s.Store.SaveProfile(ctx, p)
}
func (s *orderStore) SaveState(ctx context.Context, cs store.ChannelState, tr *store.Transition) error {
	s.note("state")
	return s.Store.SaveState(ctx, cs, tr)
}

// TestApplyOrder: a registering machine's first check is applied pin,
// save (profile, then state with its transition), publish (the monitor's
// view), then the one Sink, which finds it all done.
func TestApplyOrder(t *testing.T) {
	ctx := context.Background()
	box, _ := secret.NewRandomBox()
	db, err := sqlstore.Open(ctx, sqlstore.Options{DSN: filepath.Join(t.TempDir(), "m.db"), Box: box})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st := &orderStore{Store: db}
	mc := store.Machine{Name: "new-1", Registering: true}
	mustOK(t, st.AddMachine(ctx, &mc))
	a := store.Account{MachineID: mc.ID, Protocol: "ipmi", Address: "127.0.0.1", Port: 623, User: "admin", Password: []byte("pw")}
	mustOK(t, st.AddAccount(ctx, &a))
	var m *Monitor
	var heard []Outcome
	sink := SinkFunc(func(ctx context.Context, o Outcome) {
		st.note("sink")
		if got, _ := m.Get(o.AccountID); got.State != o.Declared {
			t.Errorf("the sink heard before the monitor published: %s, want %s", got.State, o.Declared)
		}
		if cs, err := st.State(ctx, o.AccountID); err != nil || cs.State != o.Declared {
			t.Errorf("the sink heard before the state was saved: %+v %v", cs, err)
		}
		heard = append(heard, o)
	})
	p := func(ctx context.Context, t probe.Target) probe.Observation {
		o := probe.Observation{Name: t.Name, State: state.Connectable, GUID: "11111111-2222-3333-4444-555555555555", At: time.Now()}
		o.Evidence.Profile = &ipmi.Profile{Suite: 17, Known: true}
		return o
	}
	m = New(st, Config{Probers: map[string]probe.Prober{"ipmi": p}, Sink: sink})
	mustOK(t, m.Load(ctx))
	if _, err := m.CheckNow(ctx, []int64{a.ID}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(st.log, " "); got != "pin profile state sink" {
		t.Fatalf("applied %q, want pin profile state sink", got)
	}
	if len(heard) != 1 || heard[0].Transition == nil || heard[0].Transition.To != state.Connectable || heard[0].Pin == "" {
		t.Fatalf("sink heard %+v", heard)
	}
	if got, _ := st.MachineByID(ctx, mc.ID); got.GUID == "" || got.Registering {
		t.Fatalf("machine %+v: GUID not pinned", got)
	}
	// Checked again: nothing changed, nothing written; the sink hears of
	// the check all the same (the detectors count every check).
	st.log = nil
	if _, err := m.CheckNow(ctx, []int64{a.ID}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(st.log, " "); got != "sink" || heard[1].Transition != nil || heard[1].State != nil {
		t.Fatalf("steady state applied %q, sink heard %+v", got, heard[1])
	}
}
