package monitor_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/events"
	"github.com/lightsout/lightsout/internal/monitor"
	"github.com/lightsout/lightsout/internal/probe"
	"github.com/lightsout/lightsout/internal/secret"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
	"github.com/lightsout/lightsout/internal/store/sqlstore"
)

// benchMonitor is a monitor over a SQLite store with one channel whose
// prober answers from script in turn, wired to an events.Recorder as the
// server wires it.
func benchMonitor(b *testing.B, script []state.OOB) (*monitor.Monitor, int64) {
	b.Helper()
	ctx := context.Background()
	box, err := secret.NewRandomBox()
	if err != nil {
		b.Fatal(err)
	}
	st, err := sqlstore.Open(ctx, sqlstore.Options{DSN: filepath.Join(b.TempDir(), "m.db"), Box: box})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	mc := store.Machine{Name: "node-1"}
	if err := st.AddMachine(ctx, &mc); err != nil {
		b.Fatal(err)
	}
	a := store.Account{MachineID: mc.ID, Protocol: "ipmi", Address: "127.0.0.1", Port: 623, User: "admin", Password: []byte("pw")}
	if err := st.AddAccount(ctx, &a); err != nil {
		b.Fatal(err)
	}
	rec, err := events.New(events.Config{Store: st, Retention: -1})
	if err != nil {
		b.Fatal(err)
	}
	rec.Start(ctx)
	b.Cleanup(rec.Close)
	n := 0
	p := func(ctx context.Context, t probe.Target) probe.Observation {
		s := script[n%len(script)]
		n++
		o := probe.Observation{Name: t.Name, State: s, At: time.Now(), Message: string(s)}
		if s == state.NotResponding {
			o.Reason = state.ReasonSilent
		}
		o.Evidence.Requests, o.Evidence.Power = 3, "on"
		return o
	}
	sch := state.Schedule{Interval: time.Hour, Confirm: time.Hour, MaxBackoff: time.Hour, AuthRetry: time.Hour}
	m := monitor.New(st, benchConfig(rec, sch, p))
	if err := m.Load(ctx); err != nil {
		b.Fatal(err)
	}
	return m, a.ID
}

func benchChecks(b *testing.B, script []state.OOB) {
	m, id := benchMonitor(b, script)
	ctx := context.Background()
	ids := []int64{id}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := m.CheckNow(ctx, ids); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheckSteady: a Connectable channel checked again: nothing is
// saved, the detectors see the check.
func BenchmarkCheckSteady(b *testing.B) { benchChecks(b, []state.OOB{state.Connectable}) }

// BenchmarkCheckFlap: every check declares a transition (damping 1): the
// state and transition are saved and two events recorded.
func BenchmarkCheckFlap(b *testing.B) {
	benchChecks(b, []state.OOB{state.Connectable, state.NotResponding})
}
