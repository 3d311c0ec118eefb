package server

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/cluster"
	"github.com/lightsout/lightsout/internal/inventory"
	"github.com/lightsout/lightsout/internal/ipmi"
	"github.com/lightsout/lightsout/internal/manager"
	"github.com/lightsout/lightsout/internal/sim"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
	"github.com/lightsout/lightsout/internal/store/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

var scaleAdmin = manager.Actor{Name: "test", Role: store.RoleAdmin}

// scaleFleet starts n simulated BMCs, one loopback address each as root
// (127.70.x.y:623), else consecutive ports on 127.0.0.1.
func scaleFleet(t *testing.T, n int) *sim.Fleet {
	t.Helper()
	cfg := sim.Config{Count: n, Seed: 17, Password: "scale-out-pass1", SessionSlots: 4}
	if os.Geteuid() == 0 {
		cfg.BaseAddr = "127.70.0.1"
	} else {
		cfg.BaseAddr, cfg.BasePort = "127.0.0.1", 20000+(os.Getpid()*13)%30000
	}
	f, err := sim.New(cfg)
	if err != nil {
		t.Fatalf("simulator: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// scaleCluster starts instances on one PostgreSQL database: each named
// iN, sending from 127.0.7.N, sharing the first one's key.
type scaleCluster struct {
	t        *testing.T
	dsn      string
	key      string
	interval time.Duration
	lease    time.Duration
}

func (c *scaleCluster) start(i int, zones ...string) *Server {
	c.t.Helper()
	dir := c.t.TempDir()
	if c.key == "" {
		c.key = filepath.Join(dir, "secret.key")
	}
	sch := state.Schedule{Interval: c.interval, Jitter: 0.1, Confirm: c.interval / 4, MaxBackoff: 2 * c.interval, AuthRetry: time.Hour}
	src := netip.AddrFrom4([4]byte{127, 0, 7, byte(i)})
	s, err := New(context.Background(), Config{DataDir: dir, DB: c.dsn, KeyFile: c.key, Schedule: sch,
		Damping: state.Damping{Consecutive: 1}, Timeout: 500 * time.Millisecond,
		Engine:  ipmi.Config{Source: src},
		Cluster: cluster.Config{Name: fmt.Sprintf("i%d", i), Zones: zones, Lease: c.lease, Every: c.lease / 6, Fence: c.lease / 2}})
	if err != nil {
		c.t.Fatalf("instance %d: %v", i, err)
	}
	c.t.Cleanup(func() { s.Close() })
	return s
}

// crash stops an instance as kill -9 would leave it: its checks end but it
// does not leave the instances table; the others wait for its lease.
func crash(s *Server) {
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

// until waits (bounded) for cond, failing with what() at the deadline.
func until(t *testing.T, d time.Duration, cond func() bool, what func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func importInto(t *testing.T, s *Server, f *sim.Fleet) {
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
func listing(t *testing.T, s *Server) []string {
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
	c := &scaleCluster{t: t, dsn: pgtest.DSN(t), interval: 2 * time.Second, lease: 1500 * time.Millisecond}
	f := scaleFleet(t, n)
	extra := f.BMCs()[n-1] // imported later, through a non-owner
	srvs := []*Server{c.start(1), c.start(2), c.start(3)}
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
	until(t, 3*c.interval+5*time.Second, func() bool {
		for name, m := range sources(f) {
			if name != extra.Name() && checked(m) == 0 {
				return false
			}
		}
		return true
	}, func() string { return "not every BMC was checked" })

	// Three intervals: each BMC's sessions come from one instance only,
	// never two at once.
	before := sources(f)
	time.Sleep(3 * c.interval)
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
	until(t, 2*c.interval+time.Second, func() bool {
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
	for _, b := range f.BMCs() {
		if c := b.Counters(); c.MaxSessionsOpen > 1 {
			t.Errorf("%s had %d sessions open at once", b.Name(), c.MaxSessionsOpen)
		}
	}
}
