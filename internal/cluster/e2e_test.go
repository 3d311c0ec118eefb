package cluster_test

import (
	"context"
	"fmt"
	"github.com/lightsout/lightsout/internal/poll"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/api"
	"github.com/lightsout/lightsout/internal/api/client"
	"github.com/lightsout/lightsout/internal/api/wire"
	"github.com/lightsout/lightsout/internal/cluster"
	"github.com/lightsout/lightsout/internal/inventory"
	"github.com/lightsout/lightsout/internal/ipmi"
	"github.com/lightsout/lightsout/internal/manager"
	"github.com/lightsout/lightsout/internal/power"
	"github.com/lightsout/lightsout/internal/server"
	"github.com/lightsout/lightsout/internal/sim"
	"github.com/lightsout/lightsout/internal/sim/simtest"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
	"github.com/lightsout/lightsout/internal/store/pgtest"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		runChild()
		return
	}
	os.Exit(pgtest.Main(m))
}

var scaleAdmin = manager.Actor{Name: "test", Role: store.RoleAdmin}

// The instances' lease and heartbeat in these tests: with a 500 ms
// --timeout a check is cut at 3 s (server.MaxCheckTimeouts), so the fence
// (e2eFence, 5 s before the lease would lapse) outlasts it and its
// session's close (3.75 s) plus a heartbeat. An instance fences itself
// lease − fence = 5 s (ten heartbeats) after its last renewal: on a
// loaded machine PostgreSQL may take seconds to renew, and a fence after
// three heartbeats (1.5 s) stopped instances in the middle of the test —
// the safety rule (the fence outlasts a check) is the same either way.
const (
	e2eLease = 10 * time.Second
	e2eFence = 5 * time.Second
	e2eEvery = 500 * time.Millisecond
)

// scaleFleet starts n simulated BMCs, one loopback address each as root
// (in 127.70.0.0/16, simtest), else consecutive ports on 127.0.0.1.
func scaleFleet(t *testing.T, n int) *sim.Fleet {
	t.Helper()
	return simtest.Start(t, sim.Config{Count: n, Seed: 17, Password: "scale-out-pass1", SessionSlots: 4}, 70)
}

// scaleCluster starts instances on one PostgreSQL database: each named
// iN, sending from 127.0.7.N, sharing the first one's key.
type scaleCluster struct {
	t        *testing.T
	dsn      string
	key      string
	interval time.Duration
	lease    time.Duration
	fence    time.Duration // 0: e2eFence, or lease − 3 heartbeats when that is shorter
	token    string
	clients  map[*server.Server]*client.Client
}

func (c *scaleCluster) start(i int, zones ...string) *server.Server {
	c.t.Helper()
	dir := c.t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		c.t.Fatal(err)
	}
	if c.key == "" {
		c.key = filepath.Join(dir, "secret.key")
	}
	sch := state.Schedule{Interval: c.interval, Jitter: 0.1, Confirm: c.interval / 4, MaxBackoff: 2 * c.interval, AuthRetry: time.Hour}
	src := netip.AddrFrom4([4]byte{127, 0, 7, byte(i)})
	fence := c.fence
	if fence == 0 {
		fence = min(e2eFence, c.lease-3*e2eEvery)
	}
	s, err := server.New(context.Background(), server.Config{DataDir: dir, DB: c.dsn, KeyFile: c.key, Schedule: sch,
		Damping: state.Damping{Consecutive: 1}, Timeout: 500 * time.Millisecond,
		Engine: ipmi.Config{Source: src}, Logger: slog.New(slog.NewTextHandler(testWriter{c.t, fmt.Sprintf("i%d", i)}, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Cluster: cluster.Config{Name: fmt.Sprintf("i%d", i), Zones: zones, Lease: c.lease, Every: e2eEvery, Fence: fence,
			PeerAddress: ln.Addr().String()}})
	if err != nil {
		ln.Close()
		c.t.Fatalf("instance %d: %v", i, err)
	}
	hs := &http.Server{Handler: apiOf(s), ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	c.t.Cleanup(func() { hs.Close(); s.Close() })
	if c.token == "" {
		tok, err := server.CreateToken(context.Background(), s.Store, "e2e", store.RoleAdmin, "")
		if err != nil {
			c.t.Fatal(err)
		}
		c.token = tok
	}
	cl, err := client.New("http://"+ln.Addr().String(), c.token)
	if err != nil {
		c.t.Fatal(err)
	}
	c.clients[s] = cl
	return s
}

// testWriter logs an instance's warnings into the test's log.
type testWriter struct {
	t    *testing.T
	name string
}

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Logf("%s: %s", w.name, strings.TrimSpace(string(b)))
	return len(b), nil
}

// crash stops an instance as kill -9 would leave it: its checks end but it
// does not leave the instances table; the others wait for its lease.
func crash(s *server.Server) {
	s.Node = nil
	s.Close()
}

// sources is, per BMC, the sessions opened by each instance's source
// address.
func sources(f *sim.Fleet) map[string]map[netip.Addr]uint64 {
	out := map[string]map[netip.Addr]uint64{}
	for _, b := range f.BMCs() {
		out[b.Name()] = b.SessionsBySource()
	}
	return out
}

// checkedAgain waits (bounded by d) until each of names has k more
// sessions than in base, from src (or from any source if src is the zero
// Addr): k more checks, as each IPMI check opens and closes one session.
func checkedAgain(t *testing.T, f *sim.Fleet, base map[string]map[netip.Addr]uint64, names []string, src netip.Addr, k uint64, d time.Duration) {
	t.Helper()
	var short []string
	until(t, d, func() bool {
		now := sources(f)
		short = short[:0]
		for _, name := range names {
			var more uint64
			for s, v := range now[name] {
				if !src.IsValid() || s == src {
					more += v - base[name][s]
				}
			}
			if more < k {
				short = append(short, name)
			}
		}
		return len(short) == 0
	}, func() string {
		return fmt.Sprintf("%d BMCs not checked %d more times: %v", len(short), k, short[:min(len(short), 5)])
	})
}

// until waits (bounded) for cond, failing with what() at the deadline.
func until(t *testing.T, d time.Duration, cond func() bool, what func() string) {
	t.Helper()
	if !poll.Wait(d, cond) {
		t.Fatalf("after %v: %s", d, what())
	}
}

func importInto(t *testing.T, s *server.Server, f *sim.Fleet) {
	t.Helper()
	inv := f.Inventory("")
	pw := map[string][]byte{}
	for _, m := range inv.Machines {
		pw[m.Name] = []byte(f.Password())
	}
	if _, err := s.Manager.Import(context.Background(), scaleAdmin, inv, pw, nil, false); err != nil {
		t.Fatalf("import: %v", err)
	}
}

// listing is an instance's machines list as "name state" lines.
func listing(t *testing.T, s *server.Server) []string {
	t.Helper()
	mvs, err := s.Manager.Machines(context.Background(), store.MachineFilter{}, store.Page{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mv := range mvs {
		for _, c := range mv.Channels {
			out = append(out, mv.Name+" "+string(c.State.State))
		}
	}
	return out
}

// TestScaleOutThreeInstances: three instances on one PostgreSQL database,
// each with its own source address, and simulated BMCs imported through
// the first. Every BMC is checked by exactly one instance (the simulator's
// per-source counters) and never has two sessions at once; every
// instance lists the same states; after one instance dies (no leave:
// its lease lapses) all its BMCs are checked by the survivors within two
// intervals; a BMC imported through one instance is checked by its owner.
func TestScaleOutThreeInstances(t *testing.T) {
	n := 1000
	if testing.Short() {
		n = 200
	}
	c := &scaleCluster{t: t, dsn: pgtest.DSN(t), interval: 2 * time.Second, lease: e2eLease, clients: map[*server.Server]*client.Client{}}
	f := scaleFleet(t, n)
	extra := f.BMCs()[n-1] // imported later, through a non-owner
	srvs := []*server.Server{c.start(1), c.start(2), c.start(3)}
	srcOf := map[netip.Addr]string{}
	for i := range srvs {
		srcOf[netip.AddrFrom4([4]byte{127, 0, 7, byte(i + 1)})] = fmt.Sprintf("i%d", i+1)
	}
	until(t, 5*time.Second, func() bool {
		for _, s := range srvs {
			if len(s.Node.Members().Live()) != 3 {
				return false
			}
		}
		return true
	}, func() string { return fmt.Sprint(srvs[0].Node.Members().Live()) })

	// Import all but one through i1.
	full := f.Inventory("")
	last := full.Machines[len(full.Machines)-1]
	full.Machines = full.Machines[:len(full.Machines)-1]
	pw := map[string][]byte{}
	for _, m := range full.Machines {
		pw[m.Name] = []byte(f.Password())
	}
	if _, err := srvs[0].Manager.Import(context.Background(), scaleAdmin, full, pw, nil, false); err != nil {
		t.Fatalf("import: %v", err)
	}
	checked := func(m map[netip.Addr]uint64) int {
		k := 0
		for src, v := range m {
			if _, ours := srcOf[src]; ours && v > 0 {
				k++
			}
		}
		return k
	}
	until(t, 30*time.Second, func() bool {
		for name, m := range sources(f) {
			if name != extra.Name() && checked(m) == 0 {
				return false
			}
		}
		return true
	}, func() string {
		k := 0
		for name, m := range sources(f) {
			if name != extra.Name() && checked(m) == 0 {
				k++
			}
		}
		var ex []string
		for name, m := range sources(f) {
			if name != extra.Name() && checked(m) == 0 && len(ex) < 5 {
				mc, _ := srvs[0].Store.Machine(context.Background(), name)
				o, _ := srvs[0].Node.OwnerOf(mc.ID, store.ZoneOf(mc))
				accts, _ := srvs[0].Store.AccountsOf(context.Background(), mc.ID)
				var held []string
				for _, s := range srvs {
					if len(accts) > 0 {
						if cs, ok := s.Monitor.Get(accts[0].ID); ok {
							held = append(held, fmt.Sprintf("%s:%s/%s", s.Node.Name(), cs.State, cs.Reason))
						}
					}
				}
				ex = append(ex, fmt.Sprintf("%s owner %s held by %v", name, o.Name, held))
			}
		}
		return fmt.Sprintf("%d BMCs not checked yet: %v", k, ex)
	})

	// Three intervals: each BMC's sessions come from one instance only,
	// never two at once.
	before := sources(f)
	var all []string
	for name := range before {
		if name != extra.Name() {
			all = append(all, name)
		}
	}
	checkedAgain(t, f, before, all, netip.Addr{}, 3, 6*c.interval)
	after := sources(f)
	share := map[string]int{}
	for name, m := range after {
		if name == extra.Name() {
			continue
		}
		var by []string
		for src, v := range m {
			if v > before[name][src] {
				by = append(by, srcOf[src])
			}
		}
		if len(by) != 1 {
			t.Errorf("%s checked by %v over three intervals, want one instance", name, by)
			continue
		}
		share[by[0]]++
	}
	for _, b := range f.BMCs() {
		if c := b.Counters(); c.MaxSessionsOpen > 1 {
			t.Errorf("%s had %d sessions open at once", b.Name(), c.MaxSessionsOpen)
		}
	}
	t.Logf("shares: %v", share)
	for _, s := range srvs {
		if share[s.Node.Name()] == 0 {
			t.Errorf("instance %s checked nothing", s.Node.Name())
		}
	}

	// One answer: every instance lists the same states.
	want := listing(t, srvs[0])
	for _, s := range srvs[1:] {
		until(t, 2*c.interval, func() bool { return slices.Equal(listing(t, s), want) },
			func() string { return fmt.Sprintf("%s lists differently from i1", s.Node.Name()) })
	}
	if strings.Contains(strings.Join(want, "\n"), string(state.Unknown)) {
		t.Errorf("states still Unknown: %v", want[:5])
	}

	// Import one more through an instance that will not own it: checked
	// by its owner within an interval (the owner hears of it by
	// LISTEN/NOTIFY).
	ms, err := srvs[0].Store.Machines(context.Background(), store.MachineFilter{}, store.Page{})
	if err != nil {
		t.Fatal(err)
	}
	via := srvs[1]
	if cluster.Owner(ms[len(ms)-1].ID+1, []string{"i1", "i2", "i3"}) == "i2" {
		via = srvs[2]
	}
	if n := checked(extra.SessionsBySource()); n != 0 {
		t.Fatalf("%s checked before it was imported", last.Name)
	}
	one := f.Inventory("")
	one.Machines = []inventory.Machine{last}
	if _, err := via.Manager.Import(context.Background(), scaleAdmin, one, map[string][]byte{last.Name: []byte(f.Password())}, nil, false); err != nil {
		t.Fatalf("import %s: %v", last.Name, err)
	}
	imported := time.Now()
	mc, err := via.Store.Machine(context.Background(), last.Name)
	if err != nil {
		t.Fatal(err)
	}
	owner, ok := via.Node.OwnerOf(mc.ID, store.ZoneOf(mc))
	if !ok {
		t.Fatal("no owner for the imported machine")
	}
	until(t, c.interval+time.Second, func() bool {
		by := extra.SessionsBySource()
		return checked(by) == 1 && by[netip.MustParseAddr(owner.Source)] > 0
	}, func() string {
		return fmt.Sprintf("%s not checked by its owner %s: %v", last.Name, owner.Name, extra.SessionsBySource())
	})
	t.Logf("imported through %s, checked by its owner %s after %v", via.Node.Name(), owner.Name, time.Since(imported).Round(time.Millisecond))

	// Check now, power and diagnosis through an instance that does not
	// check the machine: forwarded to the one that does, which answers.
	ctx := context.Background()
	byOwner := map[string][]string{}
	for _, m := range ms {
		o, _ := srvs[0].Node.OwnerOf(m.ID, store.ZoneOf(m))
		byOwner[o.Name] = append(byOwner[o.Name], m.Name)
	}
	target := byOwner["i3"][0]
	bmc, _ := f.BMC(target)
	src1, src3 := netip.AddrFrom4([4]byte{127, 0, 7, 1}), netip.AddrFrom4([4]byte{127, 0, 7, 3})
	was := bmc.SessionsBySource()
	cl1 := c.clients[srvs[0]]
	res, err := cl1.Check(ctx, []string{target}, "")
	if err != nil || len(res) != 1 || res[0].Machine != target || res[0].State.State != state.Connectable {
		t.Fatalf("check now of %s through i1: %+v %v", target, res, err)
	}
	var got []power.Result
	sum, err := cl1.Power(ctx, wire.PowerRequest{Action: "status", Machines: []string{target}}, func(r power.Result) { got = append(got, r) })
	if err != nil || sum.OK != 1 || len(got) != 1 || got[0].Power != "on" {
		t.Fatalf("power status of %s through i1: %+v %+v %v", target, sum, got, err)
	}
	now := bmc.SessionsBySource()
	if now[src3] < was[src3]+2 || now[src1] != was[src1] {
		t.Errorf("%s: sessions from i3 %d -> %d, from i1 %d -> %d: the owner should have run both", target, was[src3], now[src3], was[src1], now[src1])
	}
	var diags []manager.DiagResult
	if _, err := cl1.Diag(ctx, wire.DiagRequest{Machines: []string{target}}, func(r manager.DiagResult) { diags = append(diags, r) }); err != nil || len(diags) != 1 || diags[0].Machine != target {
		t.Fatalf("diagnosis of %s through i1: %+v %v", target, diags, err)
	}
	// Machines of all three in one request: each part goes to its owner,
	// the answers come back as one.
	mixed := []string{byOwner["i1"][0], byOwner["i2"][0], byOwner["i3"][1], byOwner["i2"][1]}
	res, err = cl1.Check(ctx, mixed, "")
	if err != nil || len(res) != len(mixed) {
		t.Fatalf("check now of %v through i1: %+v %v", mixed, res, err)
	}
	for _, r := range res {
		if r.State.State != state.Connectable || !slices.Contains(mixed, r.Machine) {
			t.Errorf("mixed check: %s %s %s", r.Machine, r.State.State, r.Error)
		}
	}
	got = nil
	if sum, err := cl1.Power(ctx, wire.PowerRequest{Action: "status", Machines: mixed}, func(r power.Result) { got = append(got, r) }); err != nil || sum.OK != len(mixed) || len(got) != len(mixed) {
		t.Fatalf("mixed power status: %+v %+v %v", sum, got, err)
	}
	// An unknown machine among them: refused whole, nothing run anywhere.
	was = bmc.SessionsBySource()
	if _, err := cl1.Power(ctx, wire.PowerRequest{Action: "status", Machines: []string{target, "no-such-machine"}}, nil); err == nil || !strings.Contains(err.Error(), "no-such-machine") {
		t.Errorf("power with an unknown machine: %v", err)
	}
	if now := bmc.SessionsBySource(); now[src3] != was[src3] {
		t.Errorf("%s was reached although the request was refused", target)
	}
	// A forged peer signature is refused.
	req, _ := http.NewRequest("POST", "http://"+srvs[2].Node.Members().All["i3"].PeerAddress+"/api/v1/check", strings.NewReader(`{"machines":["`+target+`"]}`))
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set(api.PeerHeader, fmt.Sprintf("i1;%d;%s", time.Now().UnixMilli(), strings.Repeat("0", 64)))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("forged peer signature: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	// i2 dies without leaving: within two intervals every BMC it checked is
	// checked by a survivor.
	before = sources(f)
	var orphans []string
	for name, m := range before {
		for src, v := range m {
			if srcOf[src] == "i2" && v > 0 {
				orphans = append(orphans, name)
			}
		}
	}
	src2 := netip.AddrFrom4([4]byte{127, 0, 7, 2})
	crash(srvs[1])
	died := time.Now()
	base := sources(f)
	until(t, c.lease+2*c.interval+time.Second, func() bool {
		now := sources(f)
		for _, name := range orphans {
			moved := false
			for src, v := range now[name] {
				if src != src2 && srcOf[src] != "" && v > base[name][src] {
					moved = true
				}
			}
			if !moved {
				return false
			}
		}
		return true
	}, func() string { return fmt.Sprintf("%d BMCs of i2 not all taken over", len(orphans)) })
	t.Logf("%d BMCs of i2 taken over %v after its death (lease %v, interval %v)", len(orphans), time.Since(died).Round(time.Millisecond), c.lease, c.interval)
	// Power through a survivor for a machine the dead one checked: its
	// new owner answers.
	got = nil
	if sum, err := cl1.Power(ctx, wire.PowerRequest{Action: "status", Machines: []string{byOwner["i2"][0]}}, func(r power.Result) { got = append(got, r) }); err != nil || sum.OK != 1 {
		t.Errorf("power status of %s after i2 died: %+v %+v %v", byOwner["i2"][0], sum, got, err)
	}
	for _, b := range f.BMCs() {
		if c := b.Counters(); c.MaxSessionsOpen > 1 {
			t.Errorf("%s had %d sessions open at once", b.Name(), c.MaxSessionsOpen)
		}
	}

	// Zones: i4 alone serves dc9; five machines moved there are checked by
	// it only. When it dies, the zone is unwatched: fleet.zone_unwatched,
	// and every instance shows those channels stale, never current.
	i4 := c.start(4, "dc9")
	src4 := netip.AddrFrom4([4]byte{127, 0, 7, 4})
	dc9 := byOwner["i1"][2:4]
	dc9 = append(dc9, byOwner["i3"][2:5]...)
	z := "dc9"
	for _, name := range dc9 {
		if _, err := srvs[0].Manager.UpdateMachine(ctx, scaleAdmin, name, manager.MachinePatch{Zone: &z}); err != nil {
			t.Fatal(err)
		}
	}
	base = sources(f)
	until(t, 3*c.interval, func() bool {
		now := sources(f)
		for _, name := range dc9 {
			if now[name][src4] <= base[name][src4] {
				return false
			}
		}
		return true
	}, func() string { return "dc9's machines not checked by i4" })
	// i1 and i3 have handed them over: after one more check by i4, nothing
	// but i4 over two more.
	checkedAgain(t, f, sources(f), dc9, src4, 1, 3*c.interval)
	base = sources(f)
	checkedAgain(t, f, base, dc9, src4, 2, 4*c.interval)
	after = sources(f)
	for _, name := range dc9 {
		for src, v := range after[name] {
			if src != src4 && v > base[name][src] {
				t.Errorf("%s (zone dc9) checked by %s", name, srcOf[src])
			}
		}
	}
	crash(i4)
	until(t, c.lease+2*c.interval, func() bool {
		evs, err := srvs[0].Store.Events(ctx, time.Time{}, "fleet.zone_unwatched", 10)
		return err == nil && len(evs) == 1 && evs[0].Source == "zone:dc9"
	}, func() string { return "no fleet.zone_unwatched for dc9" })
	for _, s := range []*server.Server{srvs[0], srvs[2]} {
		until(t, 2*c.interval, func() bool {
			for _, name := range dc9 {
				mv, err := s.Manager.Machine(ctx, name)
				if err != nil || len(mv.Channels) != 1 || mv.Channels[0].StaleSince == nil {
					return false
				}
			}
			return true
		}, func() string { return s.Node.Name() + " does not show dc9's channels stale" })
	}
}

// apiOf is the API handler of s, as lightsout server builds it.
func apiOf(s *server.Server) http.Handler {
	return api.New(api.Config{Manager: s.Manager, Store: s.Store, Registry: s.Registry, Logger: s.Config.Logger,
		Events: s.Events, Agents: s.Agents, AgentAddr: s.AgentAddr, Self: s.Node.Name(), Cluster: s.Node, PeerKey: s.PeerKey})
}
