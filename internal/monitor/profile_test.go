package monitor

import (
	"context"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/ipmi"
	"github.com/lightsout/lightsout/internal/poll"
	"github.com/lightsout/lightsout/internal/probe"
	"github.com/lightsout/lightsout/internal/secret"
	"github.com/lightsout/lightsout/internal/sim"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
	"github.com/lightsout/lightsout/internal/store/sqlstore"
)

// TestLearnedProfileSurvivesRestart: the monitor checks a BMC that lists
// only suite 3 and never answers the presence ping (pyghmi-like) with the
// real prober over UDP: it is Connectable without Degraded, the learned
// profile (suite 3, no ping) is stored, and a monitor started afresh on
// the same store — a new engine that knows nothing — checks it without a
// ping and without negotiating again. An account allow-list without 3 is
// NotAuthenticated/no_cipher_suite.
func TestLearnedProfileSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	port := c.LocalAddr().(*net.UDPAddr).Port
	c.Close()
	fleet, err := sim.New(sim.Config{Count: 1, Seed: 3, Password: "mon-pass-1", BaseAddr: "127.0.0.1", BasePort: port,
		Faults: map[string]sim.Faults{"bmc-00001": {Quirk: sim.QuirkNoPing | sim.QuirkSuite3Only}}})
	if err != nil {
		t.Skipf("simulator: %v", err) // the free port was taken meanwhile
	}
	defer fleet.Close()
	b := fleet.BMCs()[0]

	box, _ := secret.NewRandomBox()
	dsn := filepath.Join(t.TempDir(), "m.db")
	st, err := sqlstore.Open(ctx, sqlstore.Options{DSN: dsn, Box: box})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	mc := store.Machine{Name: "quirky", GUID: b.RegisteredGUID().String()}
	mustOK(t, st.AddMachine(ctx, &mc))
	a := store.Account{MachineID: mc.ID, Protocol: "ipmi", Address: "127.0.0.1", Port: int(b.Addr().Port()), User: sim.AdminUser, Password: []byte("mon-pass-1")}
	mustOK(t, st.AddAccount(ctx, &a))

	checkWith := func() probe.Observation {
		eng, err := ipmi.New(ipmi.Config{})
		if err != nil {
			t.Fatal(err)
		}
		defer eng.Close()
		var got probe.Observation
		prober := probe.IPMI(eng)
		m := New(st, Config{Timeout: time.Second, Probers: map[string]probe.Prober{"ipmi": func(ctx context.Context, tg probe.Target) probe.Observation {
			got = prober(ctx, tg)
			return got
		}}})
		mustOK(t, m.Load(ctx))
		res, err := m.CheckNow(ctx, []int64{a.ID})
		if err != nil || len(res) != 1 {
			t.Fatalf("check now: %v %v", res, err)
		}
		return got
	}
	o := checkWith()
	if o.State != state.Connectable || slices.Contains(o.Conditions, state.Degraded) || o.Evidence.CipherSuite != 3 {
		t.Fatalf("first check: %s/%s %v suite %d: %s", o.State, o.Reason, o.Conditions, o.Evidence.CipherSuite, o.Message)
	}
	ps, err := st.Profiles(ctx)
	if p := ps[a.ID]; err != nil || p.Suite != 3 || !slices.Contains(p.Quirks, "no_presence_ping") {
		t.Fatalf("stored profile: %+v %v", p, err)
	}

	// "Restart": a new monitor and a new engine over the same store.
	o = checkWith()
	if o.State != state.Connectable || !o.Evidence.PingSkipped || !strings.Contains(o.Evidence.SuiteWhy, "cipher suite 3 worked last time") || o.Evidence.Negotiation != nil {
		t.Fatalf("after restart: %s ping skipped %v why %q negotiation %+v", o.State, o.Evidence.PingSkipped, o.Evidence.SuiteWhy, o.Evidence.Negotiation)
	}

	// An allow-list without suite 3.
	a.CipherSuites = []int{17}
	mustOK(t, st.UpdateAccount(ctx, &a))
	o = checkWith()
	if o.State != state.NotAuthenticated || o.Reason != state.ReasonNoCipherSuite || !strings.Contains(o.Message, "offers cipher suites 3") {
		t.Errorf("allow-list 17: %s/%s: %s", o.State, o.Reason, o.Message)
	}
}

func mustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestLightCheckRenegotiates: the monitor's light re-checks propose the
// learned suite first but do not pin it: when the BMC drops suite 17 (a
// hardening policy leaves only 3), the next light check negotiates suite 3
// within the allow-list and the channel stays Connectable — it is never
// declared NotAuthenticated/no_cipher_suite (which the lockout guard
// would then hold for AuthRetry).
func TestLightCheckRenegotiates(t *testing.T) {
	ctx := context.Background()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	port := c.LocalAddr().(*net.UDPAddr).Port
	c.Close()
	fleet, err := sim.New(sim.Config{Count: 1, Seed: 4, Password: "mon-pass-2", BaseAddr: "127.0.0.1", BasePort: port})
	if err != nil {
		t.Skipf("simulator: %v", err) // the free port was taken meanwhile
	}
	defer fleet.Close()
	b := fleet.BMCs()[0]
	box, _ := secret.NewRandomBox()
	st, err := sqlstore.Open(ctx, sqlstore.Options{DSN: filepath.Join(t.TempDir(), "m.db"), Box: box})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	mc := store.Machine{Name: "hardened", GUID: b.RegisteredGUID().String()}
	mustOK(t, st.AddMachine(ctx, &mc))
	a := store.Account{MachineID: mc.ID, Protocol: "ipmi", Address: "127.0.0.1", Port: int(b.Addr().Port()), User: sim.AdminUser, Password: []byte("mon-pass-2")}
	mustOK(t, st.AddAccount(ctx, &a))
	eng, err := ipmi.New(ipmi.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()

	var mu sync.Mutex
	var seen []probe.Observation
	prober := probe.IPMI(eng)
	sch := state.Schedule{Interval: 30 * time.Millisecond, Confirm: 10 * time.Millisecond, MaxBackoff: time.Second, AuthRetry: time.Hour}
	m := New(st, Config{Schedule: sch, FullEvery: 1000, Timeout: time.Second, Probers: map[string]probe.Prober{"ipmi": func(ctx context.Context, tg probe.Target) probe.Observation {
		o := prober(ctx, tg)
		mu.Lock()
		seen = append(seen, o)
		mu.Unlock()
		return o
	}}})
	mustOK(t, m.Load(ctx))
	run(t, m)
	waitFor := func(what string, ok func([]probe.Observation) bool) {
		t.Helper()
		poll.Until(t, 10*time.Second, what, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return ok(seen)
		})
	}
	light17 := func(o probe.Observation) bool {
		return o.State == state.Connectable && o.Evidence.AuthCaps == nil && o.Evidence.CipherSuite == 17
	}
	waitFor("a light check with suite 17", func(s []probe.Observation) bool { return slices.ContainsFunc(s, light17) })
	mustOK(t, fleet.SetFaults(b.Name(), sim.Faults{CipherSuites: sim.Suites(3)}))
	mu.Lock()
	from := len(seen)
	mu.Unlock()
	waitFor("a light check with suite 3", func(s []probe.Observation) bool {
		return slices.ContainsFunc(s[from:], func(o probe.Observation) bool {
			return o.State == state.Connectable && o.Evidence.AuthCaps == nil && o.Evidence.CipherSuite == 3
		})
	})
	mu.Lock()
	defer mu.Unlock()
	for _, o := range seen[from:] {
		if o.State != state.Connectable {
			t.Errorf("after the BMC dropped suite 17: %s/%s: %s", o.State, o.Reason, o.Message)
		}
	}
	if cs, _ := m.Get(a.ID); cs.State != state.Connectable {
		t.Errorf("declared %s/%s", cs.State, cs.Reason)
	}
}
