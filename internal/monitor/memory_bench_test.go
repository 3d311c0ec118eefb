package monitor_test

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/events"
	"github.com/lightsout/lightsout/internal/guid"
	"github.com/lightsout/lightsout/internal/ipmi"
	"github.com/lightsout/lightsout/internal/monitor"
	"github.com/lightsout/lightsout/internal/probe"
	"github.com/lightsout/lightsout/internal/secret"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
	"github.com/lightsout/lightsout/internal/store/sqlstore"
)

// BenchmarkLiveBytesPerChannel reports the Go heap the monitor (and the
// events.Recorder wired to it, as the server wires it) keeps per channel
// of a healthy fleet: loaded from the store, then checked once each with
// what a light IPMI check observes. It is the live part of bench/monitor's
// memory per channel (which also holds the engine's per-BMC state and the
// garbage GOGC lets accumulate). go test ./internal/monitor -run '^$'
// -bench LiveBytes -benchtime 1x
func BenchmarkLiveBytesPerChannel(b *testing.B) {
	const n = 2000
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
	ids := make([]int64, 0, n)
	for i := range n {
		g := guid.GUID{byte(i), byte(i >> 8), 0x4e, 0x57, 0x5d, 0x8b, 0x44, 0x61, 0x8a, 0x8c, 0x21, 0x14, 0xe3, 0x6b, 0x77, 0x0f}
		mc := store.Machine{Name: fmt.Sprintf("bmc-%05d", i), GUID: g.String()}
		if err := st.AddMachine(ctx, &mc); err != nil {
			b.Fatal(err)
		}
		a := store.Account{MachineID: mc.ID, Protocol: "ipmi", Address: fmt.Sprintf("127.1.%d.%d", i/250, i%250+1), Port: 623, User: "admin", Password: []byte("password-123")}
		if err := st.AddAccount(ctx, &a); err != nil {
			b.Fatal(err)
		}
		ids = append(ids, a.ID)
	}
	rec, err := events.New(events.Config{Store: st, Retention: -1})
	if err != nil {
		b.Fatal(err)
	}
	rec.Start(ctx)
	b.Cleanup(rec.Close)
	p := func(ctx context.Context, t probe.Target) probe.Observation {
		o := probe.Observation{Name: t.Name, Host: t.Addr.String(), Protocol: "ipmi", State: state.Connectable, At: time.Now(),
			Message: fmt.Sprintf("session opened with %v, identity confirmed", ipmi.CipherSuite(17)), GUID: t.Expected.String(), Expected: t.Expected.String()}
		o.Evidence.Requests, o.Evidence.Power = 5, "on"
		pr := ipmi.Profile{Suite: 17, Known: true, Quirks: ipmi.QuirkRAKP2GUID}
		o.Evidence.Profile = &pr
		return o
	}
	sch := state.Schedule{Interval: time.Hour, Confirm: time.Hour, MaxBackoff: time.Hour, AuthRetry: time.Hour}
	for b.Loop() {
		var ms0, ms1, ms2 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms0)
		m := monitor.New(st, benchConfig(rec, sch, p))
		if err := m.Load(ctx); err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&ms1)
		for i := 0; i < n; i += 100 {
			if _, err := m.CheckNow(ctx, ids[i:i+100]); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&ms2)
		b.ReportMetric(float64(ms1.HeapAlloc-ms0.HeapAlloc)/n, "B/channel-loaded")
		b.ReportMetric(float64(ms2.HeapAlloc-ms0.HeapAlloc)/n, "B/channel-checked")
		runtime.KeepAlive(m)
	}
}
