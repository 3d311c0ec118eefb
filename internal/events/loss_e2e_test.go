package events_test

import (
	"context"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/events"
	"github.com/lightsout/lightsout/internal/ipmi"
	"github.com/lightsout/lightsout/internal/monitor"
	"github.com/lightsout/lightsout/internal/probe"
	"github.com/lightsout/lightsout/internal/secret"
	"github.com/lightsout/lightsout/internal/sim"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
	"github.com/lightsout/lightsout/internal/store/sqlstore"
)

// TestLossyPathMonitor is issue 15's "loss is loss" on the monitor's side,
// over real UDP: a simulated BMC whose path drops a quarter of the
// datagrams sent to it is checked by the monitor with the real IPMI prober
// and the events watcher as its sink. The channel becomes
// Connectable+Degraded with the measured loss rate in its state and
// message, oob.degraded carries the rate, and the timeout-flood detector
// sees the unanswered requests.
func TestLossyPathMonitor(t *testing.T) {
	ctx := context.Background()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	port := c.LocalAddr().(*net.UDPAddr).Port
	c.Close()
	fleet, err := sim.New(sim.Config{Count: 1, Seed: 5, Password: "loss-pass-1", BaseAddr: "127.0.0.1", BasePort: port,
		Faults: map[string]sim.Faults{"bmc-00001": {Lossy: 0.25}}})
	if err != nil {
		t.Skipf("simulator: %v", err) // the free port was taken meanwhile
	}
	defer fleet.Close()
	b := fleet.BMCs()[0]

	box, _ := secret.NewRandomBox()
	st, err := sqlstore.Open(ctx, sqlstore.Options{DSN: filepath.Join(t.TempDir(), "e.db"), Box: box})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	mc := store.Machine{Name: "lossy", GUID: b.RegisteredGUID().String()}
	if err := st.AddMachine(ctx, &mc); err != nil {
		t.Fatal(err)
	}
	a := store.Account{MachineID: mc.ID, Protocol: "ipmi", Address: "127.0.0.1", Port: int(b.Addr().Port()), User: sim.AdminUser, Password: []byte("loss-pass-1")}
	if err := st.AddAccount(ctx, &a); err != nil {
		t.Fatal(err)
	}
	eng, err := ipmi.New(ipmi.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()

	w := events.NewWatcher(events.FloodConfig{Window: time.Minute, Threshold: 5}, events.CorrelateConfig{})
	var mu sync.Mutex
	var evs []store.Event
	var outs []monitor.Outcome
	m := monitor.New(st, monitor.Config{Timeout: 3 * time.Second, Probers: map[string]probe.Prober{"ipmi": probe.IPMI(eng)},
		Sink: monitor.SinkFunc(func(_ context.Context, o monitor.Outcome) {
			mu.Lock()
			defer mu.Unlock()
			outs = append(outs, o)
			evs = append(evs, w.Observe(events.SampleOf(o))...)
		})})
	if err := m.Load(ctx); err != nil {
		t.Fatal(err)
	}
	find := func(code string) *store.Event {
		mu.Lock()
		defer mu.Unlock()
		for i := len(evs) - 1; i >= 0; i-- { // the latest
			if evs[i].Code == code {
				e := evs[i]
				return &e
			}
		}
		return nil
	}
	// Check until the loss is measured and both events are raised
	// (bounded: 25 checks of a few requests each).
	var deg *store.Event
	var degraded store.ChannelState
	for i := 0; ; i++ {
		res, err := m.CheckNow(ctx, []int64{a.ID})
		if err != nil {
			t.Fatal(err)
		}
		if s := res[0].State; s.State == state.Connectable && slices.Contains(s.Conditions, state.Degraded) && strings.Contains(s.Message, "datagrams lost") {
			degraded = s
		}
		deg = find(events.OOBDegraded)
		if deg != nil && strings.Contains(deg.Message, "datagrams lost") && degraded.State != "" && find(events.OOBTimeoutFlood) != nil {
			t.Logf("after %d checks: %s; %s", i+1, degraded.Message, deg.Message)
			break
		}
		if i == 25 {
			t.Fatalf("after %d checks: state %+v; events %v", i+1, res[0].State, codes(evs))
		}
	}
	// The rate is the path's: a quarter of the requests, and about as many
	// of the retransmissions, dropped.
	mu.Lock()
	defer mu.Unlock()
	var l *probe.Loss
	for _, o := range outs {
		if o.Observation.Evidence.Loss != nil {
			l = o.Observation.Evidence.Loss
		}
	}
	if l == nil || l.Rate < 0.1 || l.Rate > 0.5 || l.Sent < 20 {
		t.Fatalf("measured loss %+v, want about 0.25", l)
	}
	if !strings.Contains(degraded.Message, "Degraded: ") || !strings.Contains(degraded.Message, "% of ") {
		t.Errorf("channel message %q does not give the rate", degraded.Message)
	}
	if !strings.Contains(deg.Message, "duplex") || !strings.Contains(string(deg.Data), `"rate"`) {
		t.Errorf("oob.degraded: %s %s", deg.Message, deg.Data)
	}
}

func codes(evs []store.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Code)
	}
	return out
}

// TestWatcherDegradedRate: oob.degraded is raised on the edge into
// Degraded, and once more (the recorder merges it into the same event)
// when the monitor first measures the loss rate; not again after that.
func TestWatcherDegradedRate(t *testing.T) {
	w := events.NewWatcher(events.FloodConfig{Window: time.Minute, Threshold: 100}, events.CorrelateConfig{})
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	obs := func(i int, l *probe.Loss) []store.Event {
		return w.Observe(events.Sample{Source: "web-1", Address: "10.1.1.1", At: t0.Add(time.Duration(i) * time.Minute),
			Declared: state.Connectable, Observed: state.Connectable, Conditions: []state.Condition{state.Degraded}, Lost: 3, Loss: l})
	}
	loss := &probe.Loss{Sent: 40, Lost: 12, Checks: 4, Rate: 0.3}
	for i, want := range []struct {
		loss *probe.Loss
		msg  string
	}{{nil, "only after retransmissions"}, {nil, ""}, {loss, "30% of 40 datagrams lost over the last 4 checks"}, {loss, ""}} {
		evs := obs(i, want.loss)
		switch {
		case want.msg == "" && len(evs) != 0:
			t.Fatalf("check %d: %v", i, codes(evs))
		case want.msg != "" && (len(evs) != 1 || evs[0].Code != events.OOBDegraded || !strings.Contains(evs[0].Message, want.msg)):
			t.Fatalf("check %d: %+v, want oob.degraded with %q", i, evs, want.msg)
		}
	}
}
