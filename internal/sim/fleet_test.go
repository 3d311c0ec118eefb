package sim

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bougou/go-ipmi/pkg/client"

	"github.com/lightsout/lightsout/internal/guid"
)

func TestPlanAddrs(t *testing.T) {
	p, err := planAddrs("127.1.0.253", 0, 5)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range p.addrs {
		got = append(got, a.String())
	}
	want := "127.1.0.253:623 127.1.0.254:623 127.1.1.1:623 127.1.1.2:623 127.1.1.3:623"
	if strings.Join(got, " ") != want {
		t.Errorf("got %v, want %s", got, want)
	}
	// 127.0.0.0 and 127.0.0.1 are never handed out.
	p, err = planAddrs("127.0.0.0", 0, 2)
	if err != nil || p.addrs[0].Addr().String() != "127.0.0.2" {
		t.Errorf("from 127.0.0.0: %v %v", p.addrs, err)
	}
	p, err = planAddrs("", 16230, 3)
	if err != nil || p.addrs[2].String() != "127.0.0.1:16232" || p.perAddr {
		t.Errorf("base port: %v %v", p.addrs, err)
	}
	p, err = planAddrs("::1", 16230, 1)
	if err != nil || p.addrs[0].String() != "[::1]:16230" {
		t.Errorf("::1: %v %v", p.addrs, err)
	}
	for _, c := range []struct {
		base  string
		port  int
		n     int
		field string
		text  string
	}{
		{"10.0.0.1", 0, 1, "base_addr", "not a loopback"},
		{"bogus", 0, 1, "base_addr", "not an IP"},
		{"::1", 0, 1, "base_addr", "IPv4"},
		{"127.255.255.250", 0, 10, "base_addr", "run past"},
		{"127.0.0.1", 65530, 10, "base_port", "run past 65535"},
	} {
		_, err := planAddrs(c.base, c.port, c.n)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != c.field || !strings.Contains(fe.Reason, c.text) {
			t.Errorf("planAddrs(%q, %d, %d) = %v, want %s error containing %q", c.base, c.port, c.n, err, c.field, c.text)
		}
	}
}

func TestIdentityDeterministic(t *testing.T) {
	a := newTestFleet(t, Config{Count: 30, Seed: 42}, false)
	b := newTestFleet(t, Config{Count: 30, Seed: 42}, false)
	c := newTestFleet(t, Config{Count: 30, Seed: 43}, false)
	guids := map[guid.GUID]bool{}
	vendors := map[string]bool{}
	for i, x := range a.BMCs() {
		y, z := b.BMCs()[i], c.BMCs()[i]
		if x.GUID() != y.GUID() || x.Vendor() != y.Vendor() || x.PowerOn() != y.PowerOn() {
			t.Errorf("%s differs between two fleets with the same seed", x.Name())
		}
		if x.GUID() == z.GUID() {
			t.Errorf("%s has the same GUID under another seed", x.Name())
		}
		guids[x.GUID()] = true
		vendors[x.Vendor().Name+" "+x.Vendor().Firmware] = true
	}
	if len(guids) != 30 {
		t.Errorf("%d distinct GUIDs for 30 BMCs", len(guids))
	}
	if len(vendors) < 3 {
		t.Errorf("only %d vendor/firmware combinations in 30 BMCs: %v", len(vendors), vendors)
	}
	if a.BMCs()[0].Name() != "bmc-00001" {
		t.Errorf("first BMC is %q", a.BMCs()[0].Name())
	}
}

func TestHealthyAndSilent(t *testing.T) {
	f := newTestFleet(t, Config{Count: 3, Seed: 1}, true)
	b := f.BMCs()[1]
	if p, err := exchange(t, b.Addr(), asfPing(9), time.Second); err != nil || !isPong(p) {
		t.Fatalf("ping: %v % x", err, p)
	}
	if p, err := exchange(t, b.Addr(), authCaps(), time.Second); err != nil || !authCapsOK(p) {
		t.Fatalf("auth caps: %v % x", err, p)
	}
	if err := f.SetFaults(b.Name(), Faults{Silent: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := exchange(t, b.Addr(), authCaps(), 300*time.Millisecond); !isTimeout(err) {
		t.Fatalf("silent BMC: got %v, want a timeout", err)
	}
	if c := b.Counters(); c.DroppedIn == 0 {
		t.Errorf("silent BMC counted no dropped packet: %+v", c)
	}
	// Its neighbours are unaffected.
	if p, err := exchange(t, f.BMCs()[0].Addr(), authCaps(), time.Second); err != nil || !authCapsOK(p) {
		t.Fatalf("neighbour: %v", err)
	}
	if err := f.ClearFaults(b.Name()); err != nil {
		t.Fatal(err)
	}
	if p, err := exchange(t, b.Addr(), authCaps(), time.Second); err != nil || !authCapsOK(p) {
		t.Fatalf("after clear: %v", err)
	}
}

func isTimeout(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne) && ne.Timeout()
}

func TestPortClosed(t *testing.T) {
	f := newTestFleet(t, Config{Count: 2, Seed: 1, Faults: map[string]Faults{"bmc-00002": {PortClosed: true}}}, true)
	b := f.BMCs()[1]
	if _, err := exchange(t, b.Addr(), asfPing(1), time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("port closed at start: got %v, want connection refused (ICMP port unreachable)", err)
	}
	if err := f.ClearFaults(b.Name()); err != nil {
		t.Fatal(err)
	}
	if p, err := exchange(t, b.Addr(), asfPing(2), time.Second); err != nil || !isPong(p) {
		t.Fatalf("reopened: %v", err)
	}
	if err := f.SetFaults(b.Name(), Faults{PortClosed: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := exchange(t, b.Addr(), asfPing(3), time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("port closed at run time: got %v", err)
	}
	if err := f.ClearFaults(b.Name()); err != nil {
		t.Fatal(err)
	}
	if p, err := exchange(t, b.Addr(), authCaps(), time.Second); err != nil || !authCapsOK(p) {
		t.Fatalf("reopened again: %v", err)
	}
}

func TestEnclosureDown(t *testing.T) {
	f := newTestFleet(t, Config{Count: 5, Seed: 3, Enclosures: []EnclosureConfig{{Name: "enc-1", Blades: 3}}}, true)
	e, _ := f.Enclosure("enc-1")
	if e.Manager().Name() != "enc-1" || e.Manager().Kind() != KindEnclosureManager || len(e.Blades()) != 3 {
		t.Fatalf("enclosure: %+v", e.Status())
	}
	for i, b := range e.Blades() {
		if b.Enclosure() != "enc-1" || b.Slot() != i+1 {
			t.Errorf("%s: enclosure %q slot %d", b.Name(), b.Enclosure(), b.Slot())
		}
	}
	rack := f.BMCs()[4]
	if rack.Enclosure() != "" || rack.Slot() != 0 {
		t.Errorf("rack server %s in enclosure %q slot %d", rack.Name(), rack.Enclosure(), rack.Slot())
	}
	if p, err := exchange(t, e.Manager().Addr(), authCaps(), time.Second); err != nil || !authCapsOK(p) {
		t.Fatalf("EM: %v", err)
	}
	if err := f.SetEnclosureDown("enc-1", true); err != nil {
		t.Fatal(err)
	}
	for _, b := range append(e.Blades(), e.Manager()) {
		if _, err := exchange(t, b.Addr(), authCaps(), 200*time.Millisecond); !isTimeout(err) {
			t.Errorf("%s answers with its enclosure down: %v", b.Name(), err)
		}
	}
	if p, err := exchange(t, rack.Addr(), authCaps(), time.Second); err != nil || !authCapsOK(p) {
		t.Errorf("rack server silent: %v", err)
	}
	if err := f.SetEnclosureDown("enc-1", false); err != nil {
		t.Fatal(err)
	}
	if p, err := exchange(t, e.Blades()[2].Addr(), authCaps(), time.Second); err != nil || !authCapsOK(p) {
		t.Errorf("blade after EM back: %v", err)
	}
	if err := f.SetEnclosureDown("nope", true); !errors.Is(err, ErrUnknown) {
		t.Errorf("unknown enclosure: %v", err)
	}
}

func TestSlotsFullAndUnknownUser(t *testing.T) {
	f := newTestFleet(t, Config{Count: 1, Seed: 1}, true)
	b := f.BMCs()[0]
	st, g, err := handshake(t, b.Addr(), AdminUser)
	if err != nil || st != 0 || guid.GUID(g) != b.GUID() {
		t.Fatalf("handshake: status %#x guid %x err %v", st, g, err)
	}
	st, _, err = handshake(t, b.Addr(), "mallory")
	if err != nil || st != rmcpUnauthorizedName {
		t.Fatalf("unknown user: status %#x err %v, want 0x0d", st, err)
	}
	if err := f.SetFaults(b.Name(), Faults{SlotsFull: true}); err != nil {
		t.Fatal(err)
	}
	p, err := exchange(t, b.Addr(), openSession(7, 1), time.Second)
	if s, ok := openSessionStatus(p); err != nil || !ok || s != rmcpInsufficientResources {
		t.Fatalf("slots_full: status %#x ok %v err %v, want 0x01", s, ok, err)
	}
	if p[0+16] != 7 {
		t.Errorf("message tag not echoed: % x", p)
	}
	if c := b.Counters(); c.SessionsRefused != 1 || c.AuthFailures != 1 {
		t.Errorf("counters: %+v", c)
	}
	if err := f.SetFaults(b.Name(), Faults{UserRemoved: true}); err != nil {
		t.Fatal(err)
	}
	if st, _, err := handshake(t, b.Addr(), AdminUser); err != nil || st != rmcpUnauthorizedName {
		t.Fatalf("user_removed: status %#x err %v", st, err)
	}
	if err := f.ClearFaults(b.Name()); err != nil {
		t.Fatal(err)
	}
	if st, _, err := handshake(t, b.Addr(), AdminUser); err != nil || st != 0 {
		t.Fatalf("user back: status %#x err %v", st, err)
	}
}

func TestGUIDReplacedAndSwap(t *testing.T) {
	f := newTestFleet(t, Config{Count: 3, Seed: 5}, true)
	x, y := f.BMCs()[0], f.BMCs()[1]
	reg := x.RegisteredGUID()
	if err := f.SetFaults(x.Name(), Faults{GUIDReplaced: true}); err != nil {
		t.Fatal(err)
	}
	_, g, err := handshake(t, x.Addr(), AdminUser)
	if err != nil || guid.GUID(g) == reg || guid.GUID(g) != x.GUID() {
		t.Fatalf("guid_replaced: got %x (registered %x, now %x) err %v", g, reg, x.GUID(), err)
	}
	if x.Counters().Restarts != 1 {
		t.Errorf("restarts: %d", x.Counters().Restarts)
	}
	if err := f.ClearFaults(x.Name()); err != nil {
		t.Fatal(err)
	}
	if _, g, _ := handshake(t, x.Addr(), AdminUser); guid.GUID(g) != reg {
		t.Fatalf("cleared: got %x want %x", g, reg)
	}

	xa, ya := x.HomeAddr(), y.HomeAddr()
	if err := f.Swap(x.Name(), y.Name()); err != nil {
		t.Fatal(err)
	}
	if x.Addr() != ya || y.Addr() != xa {
		t.Fatalf("after swap %s at %s, %s at %s", x.Name(), x.Addr(), y.Name(), y.Addr())
	}
	if _, g, err := handshake(t, xa, AdminUser); err != nil || guid.GUID(g) != y.GUID() {
		t.Errorf("%s now answers with %x, want %s's %x (%v)", xa, g, y.Name(), y.GUID(), err)
	}
	if _, g, err := handshake(t, ya, AdminUser); err != nil || guid.GUID(g) != x.GUID() {
		t.Errorf("%s now answers with %x, want %s's %x (%v)", ya, g, x.Name(), x.GUID(), err)
	}
	if st := x.Status(); st.SwappedWith != y.Name() || st.HomeAddress != xa.Addr().String() {
		t.Errorf("status after swap: swapped_with %q home %s", st.SwappedWith, st.HomeAddress)
	}
	if err := f.Swap(y.Name(), x.Name()); err != nil {
		t.Fatal(err)
	}
	if _, g, _ := handshake(t, xa, AdminUser); guid.GUID(g) != x.GUID() {
		t.Errorf("swap back: %s answers with %x", xa, g)
	}
	if err := f.Swap(x.Name(), x.Name()); err == nil {
		t.Error("swap with itself accepted")
	}
	if err := f.Swap(x.Name(), "bmc-99999"); !errors.Is(err, ErrUnknown) {
		t.Errorf("swap with unknown: %v", err)
	}
}

// pattern sends n pings one after another and records which were answered.
func pattern(t *testing.T, addr netip.AddrPort, n int) string {
	var sb strings.Builder
	for i := 0; i < n; i++ {
		if _, err := exchange(t, addr, asfPing(byte(i)), 40*time.Millisecond); err == nil {
			sb.WriteByte('1')
		} else {
			sb.WriteByte('0')
		}
	}
	return sb.String()
}

func TestRateFaultsReproducible(t *testing.T) {
	run := func(faults Faults) string {
		f := newTestFleet(t, Config{Count: 2, Seed: 99}, false)
		b := f.BMCs()[1]
		if err := f.SetFaults(b.Name(), faults); err != nil {
			t.Fatal(err)
		}
		return pattern(t, b.Addr(), 40)
	}
	for _, fs := range []Faults{{Lossy: 0.5}, {TimeoutRate: 0.5}} {
		p1, p2 := run(fs), run(fs)
		if p1 != p2 {
			t.Errorf("%v: two runs differ:\n%s\n%s", fs.Names(), p1, p2)
		}
		if n := strings.Count(p1, "1"); n < 8 || n > 32 {
			t.Errorf("%v: %d of 40 answered: %s", fs.Names(), n, p1)
		}
	}
}

func TestMalformedAndSlow(t *testing.T) {
	f := newTestFleet(t, Config{Count: 1, Seed: 1}, false)
	b := f.BMCs()[0]
	good, err := exchange(t, b.Addr(), authCaps(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.SetFaults(b.Name(), Faults{Malformed: 1}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		p, err := exchange(t, b.Addr(), authCaps(), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if string(p) == string(good) {
			t.Errorf("malformed=1 sent an intact reply")
		}
	}
	if c := b.Counters(); c.Corrupted != 5 {
		t.Errorf("corrupted %d, want 5", c.Corrupted)
	}

	if err := f.SetFaults(b.Name(), Faults{Slow: Duration(300 * time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	// Three requests at once from three clients: all wait, all are in flight.
	start := time.Now()
	done := make(chan error, 3)
	for i := 0; i < 3; i++ {
		go func() {
			_, err := exchange(t, b.Addr(), asfPing(1), 2*time.Second)
			done <- err
		}()
	}
	for i := 0; i < 3; i++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if el := time.Since(start); el < 300*time.Millisecond {
		t.Errorf("slow=300ms answered in %v", el)
	}
	if c := b.Counters(); c.MaxInFlight < 2 || c.InFlight != 0 {
		t.Errorf("in flight %d, max %d; want 0 and at least 2", c.InFlight, c.MaxInFlight)
	}
}

// TestSessionsAndSlots opens real RMCP+ sessions with go-ipmi's client.
func TestSessionsAndSlots(t *testing.T) {
	f := newTestFleet(t, Config{Count: 1, Seed: 1, SessionSlots: 2}, false)
	b := f.BMCs()[0]
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	connect := func(pw string) (*client.Client, error) {
		c, err := client.NewClient(b.Addr().Addr().String(), int(b.Addr().Port()), AdminUser, pw)
		if err != nil {
			t.Fatal(err)
		}
		c.WithTimeout(time.Second).WithRetry(0)
		return c, c.Connect(ctx)
	}
	c1, err := connect(f.Password())
	if err != nil {
		t.Fatalf("session 1: %v", err)
	}
	rsp, err := c1.GetSystemGUID(ctx)
	if err != nil {
		t.Fatalf("Get System GUID: %v", err)
	}
	if guid.GUID(rsp.GUID) != b.GUID() {
		t.Errorf("Get System GUID: %x, want %x", rsp.GUID, b.GUID())
	}
	c2, err := connect(f.Password())
	if err != nil {
		t.Fatalf("session 2: %v", err)
	}
	if _, err := connect(f.Password()); err == nil {
		t.Fatal("third session opened with two slots")
	}
	c := b.Counters()
	if c.SessionsOpen != 2 || c.MaxSessionsOpen != 2 || c.MaxSessionsPerClient != 2 || c.SessionsRefused == 0 {
		t.Errorf("with two sessions: %+v", c)
	}
	_ = c1.Close(ctx)
	if c = b.Counters(); c.SessionsClosedByClient != 1 || c.SessionsOpen != 1 {
		t.Errorf("after one Close Session: %+v", c)
	}
	// A firmware restart (a motherboard swap and back) ends the other
	// session: closed, but not by its client.
	if err := f.SetFaults(b.Name(), Faults{GUIDReplaced: true}); err != nil {
		t.Fatal(err)
	}
	if err := f.SetFaults(b.Name(), Faults{}); err != nil {
		t.Fatal(err)
	}
	c = b.Counters()
	if c.SessionsOpen != 0 || c.SessionsOpened != 2 || c.SessionsClosed != 2 || c.SessionsClosedByClient != 1 {
		t.Errorf("after close and restart: %+v", c)
	}
	_ = c2.Close(ctx)
	if _, err := connect("wrong-password"); err == nil {
		t.Error("wrong password accepted")
	}
	if err := f.SetFaults(b.Name(), Faults{WrongPassword: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := connect(f.Password()); err == nil {
		t.Error("fleet password accepted under wrong_password")
	}
}

func TestIPv6Loopback(t *testing.T) {
	f, err := New(Config{Count: 2, Seed: 1, Password: "pw", BaseAddr: "::1", BasePort: 22500 + os.Getpid()%500})
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	defer f.Close()
	b := f.BMCs()[1]
	if !b.Addr().Addr().Is6() {
		t.Fatalf("address %s", b.Addr())
	}
	if p, err := exchange(t, b.Addr(), authCaps(), time.Second); err != nil || !authCapsOK(p) {
		t.Fatalf("over ::1: %v", err)
	}
	if st, g, err := handshake(t, b.Addr(), AdminUser); err != nil || st != 0 || guid.GUID(g) != b.GUID() {
		t.Fatalf("handshake over ::1: %#x %v", st, err)
	}
}

func TestClosedFleet(t *testing.T) {
	f := newTestFleet(t, Config{Count: 2, Seed: 1}, false)
	addr := f.BMCs()[0].Addr()
	f.Close()
	if err := f.SetFaults("bmc-00001", Faults{Silent: true}); !errors.Is(err, ErrClosed) {
		t.Errorf("set faults after close: %v", err)
	}
	if err := f.Swap("bmc-00001", "bmc-00002"); !errors.Is(err, ErrClosed) {
		t.Errorf("swap after close: %v", err)
	}
	if _, err := exchange(t, addr, asfPing(1), 300*time.Millisecond); err == nil {
		t.Error("a closed fleet answers")
	}
	// Its addresses are free again.
	base := Config{Count: 1, Seed: 1, Password: "pw", BaseAddr: addr.Addr().String(), BasePort: int(addr.Port())}
	if addr.Port() == IPMIPort {
		base.BasePort = 0
	}
	g, err := New(base)
	if err != nil {
		t.Fatalf("rebinding a closed fleet's address: %v", err)
	}
	g.Close()
}
