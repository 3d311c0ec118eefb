package probe

import (
	"context"
	"errors"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/poll"

	"github.com/lightsout/lightsout/internal/guid"
	"github.com/lightsout/lightsout/internal/ipmi"
	"github.com/lightsout/lightsout/internal/sim"
	"github.com/lightsout/lightsout/internal/state"
)

const quirkPass = "quirk-pass-1"

// quirkFleet starts n simulated BMCs with the given quirks (by index) on
// loopback: one address each when root, else consecutive free ports.
func quirkFleet(t *testing.T, quirks ...sim.QuirkSet) *sim.Fleet {
	t.Helper()
	cfg := sim.Config{Count: len(quirks), Seed: 12, Password: quirkPass, Faults: map[string]sim.Faults{}}
	for attempt := 0; ; attempt++ {
		if os.Geteuid() == 0 {
			cfg.BaseAddr = "127.63." + itoa(uint32(os.Getpid()%200+attempt)) + ".1" // 127.63: no other package's range
		} else {
			// A free port from the kernel; the next ones are very likely
			// free too (retried when not).
			c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			cfg.BaseAddr, cfg.BasePort = "127.0.0.1", c.LocalAddr().(*net.UDPAddr).Port
			c.Close()
		}
		f, err := sim.New(cfg)
		if err != nil && strings.Contains(err.Error(), "in use") && attempt < 10 {
			continue
		}
		if err != nil {
			t.Fatalf("simulator: %v", err)
		}
		t.Cleanup(func() { f.Close() })
		for i, b := range f.BMCs() {
			if quirks[i] != 0 {
				if err := f.SetFaults(b.Name(), sim.Faults{Quirk: quirks[i]}); err != nil {
					t.Fatal(err)
				}
			}
		}
		return f
	}
}

func quirkTarget(b *sim.BMC) Target {
	return Target{Name: b.Name(), Addr: b.Addr(), User: sim.AdminUser, Password: []byte(quirkPass),
		Expected: b.RegisteredGUID(), Timeout: time.Second}
}

func hasQuirk(o Observation, name string) bool { return slices.Contains(o.Evidence.Quirks, name) }

// learnedRAKP2GUID: the profile after o says RAKP 2 carries the System
// GUID (a learned fact, not a quirk the check met: not in Evidence.Quirks).
func learnedRAKP2GUID(o Observation) bool {
	return o.Evidence.Profile != nil && o.Evidence.Profile.Quirks&ipmi.QuirkRAKP2GUID != 0 && !hasQuirk(o, "rakp2_guid_is_system_guid")
}

// TestQuirkNoPing: a BMC that never answers the presence ping (ipmiping:
// Intel M50FCP, Windmill, pyghmi) is Connectable and not Degraded on first
// contact; it is learned as "no ping", and later checks send no ping.
func TestQuirkNoPing(t *testing.T) {
	f := quirkFleet(t, sim.QuirkNoPing)
	b := f.BMCs()[0]
	eng := newEngine(t)
	check := IPMI(eng)
	ctx := context.Background()
	o := check(ctx, quirkTarget(b))
	if o.State != state.Connectable || slices.Contains(o.Conditions, state.Degraded) || o.Evidence.PingAnswered {
		t.Fatalf("first check: %s/%s %v ping %v: %s", o.State, o.Reason, o.Conditions, o.Evidence.PingAnswered, o.Message)
	}
	if !hasQuirk(o, "no_presence_ping") || o.Evidence.Profile == nil || !o.Evidence.Profile.NoPing() {
		t.Fatalf("not learned as no ping: %+v", o.Evidence.Profile)
	}
	// The profile alone (as the store gives it to a restarted monitor)
	// makes a fresh engine skip the ping too.
	eng2 := newEngine(t)
	tg := quirkTarget(b)
	tg.Profile = o.Evidence.Profile
	for i, e := range []*ipmi.Engine{eng, eng2} {
		before := e.Stats().Sent
		o := IPMI(e)(ctx, tg)
		if o.State != state.Connectable || slices.Contains(o.Conditions, state.Degraded) || !o.Evidence.PingSkipped {
			t.Errorf("check %d: %s %v skipped %v: %s", i, o.State, o.Conditions, o.Evidence.PingSkipped, o.Message)
		}
		if _, ok := o.Evidence.RTTMS[string(ipmi.StagePing)]; ok || o.Evidence.Retransmits != 0 {
			t.Errorf("check %d pinged: %+v", i, o.Evidence)
		}
		// auth caps, open, RAKP 1, RAKP 3, device ID, GUID, chassis, close:
		// no ping, and no Get Channel Cipher Suites (the profile names the
		// suite that worked).
		want := uint64(8)
		if sent := e.Stats().Sent - before; sent != want {
			t.Errorf("check %d sent %d datagrams, want %d (no ping)", i, sent, want)
		}
	}
	// A silent BMC learned as "no ping" is still NotResponding/silent.
	f.SetFaults(b.Name(), sim.Faults{Quirk: sim.QuirkNoPing, Silent: true})
	if o := check(ctx, quirkTarget(b)); o.State != state.NotResponding || o.Reason != state.ReasonSilent {
		t.Errorf("silent no-ping BMC: %s/%s", o.State, o.Reason)
	}
}

// TestQuirkSuite3Only: a BMC that lists only suite 3 and answers suite 3's
// algorithms to a suite 17 proposal (pyghmi) is Connectable with suite 3,
// whether negotiated from its list or met with a stale learned profile
// naming 17; an allow-list without 3 is NotAuthenticated/no_cipher_suite
// naming what the BMC offers.
func TestQuirkSuite3Only(t *testing.T) {
	f := quirkFleet(t, sim.QuirkSuite3Only)
	b := f.BMCs()[0]
	ctx := context.Background()

	// First contact: 17 proposed, suite 3's algorithms answered, 3 is
	// allowed: the session goes on with 3, no extra round trip.
	o := IPMI(newEngine(t))(ctx, quirkTarget(b))
	if o.State != state.Connectable || o.Evidence.CipherSuite != 3 || !hasQuirk(o, "counter_proposal") {
		t.Fatalf("first contact: %s/%s suite %d quirks %v: %s", o.State, o.Reason, o.Evidence.CipherSuite, o.Evidence.Quirks, o.Message)
	}
	if !strings.Contains(o.Evidence.SuiteWhy, "proposed cipher suite 17, the BMC answered with cipher suite 3's algorithms") {
		t.Errorf("why: %q", o.Evidence.SuiteWhy)
	}

	// A profile that says 17 (the BMC was downgraded since): 17 is
	// proposed, the BMC answers suite 3's algorithms, 3 is allowed: the
	// session goes on with 3 and the profile is re-learned.
	tg := quirkTarget(b)
	tg.Profile = &ipmi.Profile{Suite: 17, Known: true}
	eng := newEngine(t)
	o = IPMI(eng)(ctx, tg)
	if o.State != state.Connectable || o.Evidence.CipherSuite != 3 || !hasQuirk(o, "counter_proposal") {
		t.Fatalf("counter-proposal: %s/%s suite %d quirks %v: %s", o.State, o.Reason, o.Evidence.CipherSuite, o.Evidence.Quirks, o.Message)
	}
	if p := eng.Profile(b.Addr()); !p.Known || p.Suite != 3 {
		t.Errorf("re-learned profile: %v", p)
	}

	// Only 17 allowed: no suite in common, with the offer and the remedy.
	tg = quirkTarget(b)
	tg.Suites = []ipmi.CipherSuite{17, 16}
	o = IPMI(newEngine(t))(ctx, tg)
	if o.State != state.NotAuthenticated || o.Reason != state.ReasonNoCipherSuite {
		t.Fatalf("allow 17,16: %s/%s: %s", o.State, o.Reason, o.Message)
	}
	if !strings.Contains(o.Message, "offers cipher suites 3, none of the allowed 17, 16") || !strings.Contains(o.Message, "enable suite 17") {
		t.Errorf("message: %s", o.Message)
	}
	if n := o.Evidence.Negotiation; n == nil || !slices.Equal(n.Offered, []ipmi.CipherSuite{3}) {
		t.Errorf("evidence: %+v", n)
	}
	if n := b.Counters().SessionsOpen; n != 0 {
		t.Errorf("BMC holds %d sessions", n)
	}
}

// TestRefusedProposal: a BMC that refuses suite 17 (go-ipmi's BMC answers
// RMCP+ status 0x04 when it offers only suite 3). With the default list
// (17, 3) suite 3 is proposed next: one extra round trip. With a longer
// list the BMC is asked what it offers (Get Channel Cipher Suites) and the
// strongest allowed suite offered is used; the evidence says what was
// offered and refused. The next check proposes 3 at once.
func TestRefusedProposal(t *testing.T) {
	f := quirkFleet(t, 0)
	b := f.BMCs()[0]
	if err := f.SetFaults(b.Name(), sim.Faults{CipherSuites: sim.Suites(3)}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	eng := newEngine(t)
	before := eng.Stats().Sent
	o := IPMI(eng)(ctx, quirkTarget(b))
	n := o.Evidence.Negotiation
	if o.State != state.Connectable || o.Evidence.CipherSuite != 3 || n == nil || n.Asked || len(n.Tried) != 1 || n.Tried[0].Suite != 17 || n.Tried[0].Status != 0x04 {
		t.Fatalf("default list: %s/%s suite %d negotiation %+v: %s", o.State, o.Reason, o.Evidence.CipherSuite, n, o.Message)
	}
	if sent := eng.Stats().Sent - before; sent != 10 {
		t.Errorf("first check sent %d datagrams, want 10 (a full check's 9 and the refused Open Session)", sent)
	}
	before = eng.Stats().Sent
	o = IPMI(eng)(ctx, quirkTarget(b))
	if o.State != state.Connectable || o.Evidence.Negotiation != nil || !strings.Contains(o.Evidence.SuiteWhy, "worked last time") {
		t.Errorf("second check: %s why %q %+v", o.State, o.Evidence.SuiteWhy, o.Evidence.Negotiation)
	}
	if sent := eng.Stats().Sent - before; sent != 9 {
		t.Errorf("second check sent %d datagrams, want the 9 of a full check", sent)
	}

	tg := quirkTarget(b)
	tg.Suites = []ipmi.CipherSuite{17, 16, 3}
	o = IPMI(newEngine(t))(ctx, tg)
	n = o.Evidence.Negotiation
	if o.State != state.Connectable || o.Evidence.CipherSuite != 3 || n == nil || !n.Asked || !slices.Equal(n.Offered, []ipmi.CipherSuite{3}) ||
		len(n.Tried) != 1 || n.Tried[0].Suite != 17 {
		t.Fatalf("list 17, 16, 3: %s/%s suite %d negotiation %+v: %s", o.State, o.Reason, o.Evidence.CipherSuite, n, o.Message)
	}
	if !strings.Contains(o.Evidence.SuiteWhy, "the BMC offers [3]; cipher suite 3 is the strongest of them in the allow-list [17, 16, 3]; refused before: 17 (status 0x04)") {
		t.Errorf("why: %q", o.Evidence.SuiteWhy)
	}
}

// TestQuirkOpenSession01: a BMC that answers Open Session status 0x01
// ("insufficient resources") for every suite but 17 (Intel M50CYP, LAN Auth
// #28) is not Busy: with an allow-list that tries 3 first, 3 is refused,
// 17 is tried and works. Busy only when every allowed suite said 0x01.
func TestQuirkOpenSession01(t *testing.T) {
	f := quirkFleet(t, sim.QuirkOpenSess01)
	b := f.BMCs()[0]
	ctx := context.Background()
	if o := IPMI(newEngine(t))(ctx, quirkTarget(b)); o.State != state.Connectable || o.Evidence.CipherSuite != 17 {
		t.Fatalf("default: %s/%s suite %d: %s", o.State, o.Reason, o.Evidence.CipherSuite, o.Message)
	}
	tg := quirkTarget(b)
	tg.Suites = []ipmi.CipherSuite{3, 17}
	o := IPMI(newEngine(t))(ctx, tg)
	if o.State != state.Connectable || slices.Contains(o.Conditions, state.Busy) || o.Evidence.CipherSuite != 17 {
		t.Fatalf("allow 3,17: %s/%s %v suite %d: %s", o.State, o.Reason, o.Conditions, o.Evidence.CipherSuite, o.Message)
	}
	n := o.Evidence.Negotiation
	if n == nil || len(n.Tried) != 1 || n.Tried[0].Suite != 3 || n.Tried[0].Status != 0x01 || !hasQuirk(o, "open_session_0x01_for_suite") {
		t.Errorf("evidence: %+v quirks %v", n, o.Evidence.Quirks)
	}
	tg.Suites = []ipmi.CipherSuite{3}
	o = IPMI(newEngine(t))(ctx, tg)
	if o.State != state.Connectable || o.Reason != state.ReasonBusy {
		t.Errorf("allow 3 only, offered (every allowed suite said 0x01): %s/%s", o.State, o.Reason)
	}
	// The same BMC listing only suite 17: its 0x01 to suite 3 means "not
	// this suite", whatever the allow-list.
	if err := f.SetFaults(b.Name(), sim.Faults{Quirk: sim.QuirkOpenSess01, CipherSuites: sim.Suites(17)}); err != nil {
		t.Fatal(err)
	}
	for _, allow := range [][]ipmi.CipherSuite{{3}, {3, 2}} {
		tg.Suites = allow
		o = IPMI(newEngine(t))(ctx, tg)
		if o.State != state.NotAuthenticated || o.Reason != state.ReasonNoCipherSuite || !strings.Contains(o.Message, "offers cipher suites 17") {
			t.Errorf("allow %v, BMC offers 17: %s/%s: %s", allow, o.State, o.Reason, o.Message)
		}
	}
}

// TestQuirkOptionalCommand0xD4: a BMC that answers Get System GUID with
// 0xD4 (insufficient privilege) whatever the privilege — Supermicro and
// Windmill do so for optional commands (FreeIPMI bugs doc Misc #2/#5/#6) —
// is Connectable, not NotAuthenticated: the GUID comes from RAKP 2 and is
// still compared, and the quirk is named and learned (the next check does
// not ask again).
func TestQuirkOptionalCommand0xD4(t *testing.T) {
	f := quirkFleet(t, sim.QuirkGUID0xD4)
	b := f.BMCs()[0]
	eng := newEngine(t)
	ctx := context.Background()
	o := IPMI(eng)(ctx, quirkTarget(b))
	if o.State != state.Connectable || o.Evidence.GUIDSource != "rakp2" || !hasQuirk(o, "no_get_system_guid") || o.GUID == "" || o.GUID != o.Expected {
		t.Fatalf("%s/%s guid %s (%s) quirks %v: %s", o.State, o.Reason, o.GUID, o.Evidence.GUIDSource, o.Evidence.Quirks, o.Message)
	}
	before := eng.Stats().Sent
	if o := IPMI(eng)(ctx, quirkTarget(b)); o.State != state.Connectable || o.Evidence.GUIDSource != "rakp2" {
		t.Errorf("second check: %s (%s)", o.State, o.Evidence.GUIDSource)
	}
	if sent := eng.Stats().Sent - before; sent != 8 {
		t.Errorf("second check sent %d datagrams, want 8 (no Get System GUID)", sent)
	}
	tg := quirkTarget(b)
	tg.Expected, _ = guid.Parse("11111111-2222-3333-4444-555555555555")
	if o := IPMI(eng)(ctx, tg); o.State != state.Invalid {
		t.Errorf("another GUID registered: %s/%s", o.State, o.Reason)
	}
}

// TestQuirkAuthCaps: a BMC whose Get Channel Authentication Capabilities
// misreport (FreeIPMI "authcap": no authentication types, K_g set, no
// named users, IPMI 1.5 only) while RMCP+ works is Connectable: the claims
// never decide, the session does; what it contradicted is named. Without
// the workaround the check stopped at the capabilities: protocol_error.
func TestQuirkAuthCaps(t *testing.T) {
	f := quirkFleet(t, sim.QuirkAuthCaps)
	b := f.BMCs()[0]
	eng := newEngine(t)
	for i := 0; i < 2; i++ {
		o := IPMI(eng)(context.Background(), quirkTarget(b))
		if o.State != state.Connectable || slices.Contains(o.Conditions, state.Degraded) || !hasQuirk(o, "auth_caps_misreported") {
			t.Fatalf("check %d: %s/%s %v quirks %v: %s", i, o.State, o.Reason, o.Conditions, o.Evidence.Quirks, o.Message)
		}
		if c := o.Evidence.AuthCapsContradicted; len(c) != 3 {
			t.Errorf("check %d: contradicted %q, want IPMI 2.0, K_g and named users", i, c)
		}
	}
}

// TestQuirkIPMI15Only: a BMC that speaks IPMI 1.5 only (capabilities
// without IPMI 2.0, RMCP+ ignored) is NotResponding/ipmi15_only with the
// cause and remedy in words — not protocol_error — after a third of the
// timeout of Open Session silence.
func TestQuirkIPMI15Only(t *testing.T) {
	f := quirkFleet(t, sim.QuirkIPMI15Only)
	o := IPMI(newEngine(t))(context.Background(), quirkTarget(f.BMCs()[0]))
	if o.State != state.NotResponding || o.Reason != state.ReasonIPMI15Only || !errors.Is(o.Err, ipmi.ErrNoIPMI20) {
		t.Fatalf("%s/%s: %s", o.State, o.Reason, o.Message)
	}
	if !strings.Contains(o.Message, "IPMI 1.5 only, lightsout needs 2.0") || state.Remedy(o.State, o.Reason) == "" {
		t.Errorf("message %q", o.Message)
	}
	if !o.Evidence.PingAnswered || o.Evidence.AuthCaps == nil || o.Evidence.AuthCaps.IPMI20 {
		t.Errorf("evidence: ping %v caps %+v", o.Evidence.PingAnswered, o.Evidence.AuthCaps)
	}
}

// TestQuirkRAKP2Length: a RAKP 2 whose header claims one payload byte more
// than the datagram holds (FreeIPMI "supermicro20": Supermicro H8QME) is
// read as the bytes present and verified as usual: Connectable, the quirk
// named. Without it every RAKP 2 was garbage: protocol_error. A wrong
// password is still wrong_password.
func TestQuirkRAKP2Length(t *testing.T) {
	f := quirkFleet(t, sim.QuirkRAKP2Len)
	b := f.BMCs()[0]
	o := IPMI(newEngine(t))(context.Background(), quirkTarget(b))
	if o.State != state.Connectable || !hasQuirk(o, "rakp2_length_off_by_one") {
		t.Fatalf("%s/%s quirks %v: %s", o.State, o.Reason, o.Evidence.Quirks, o.Message)
	}
	tg := quirkTarget(b)
	tg.Password = []byte("not-the-password")
	if o := IPMI(newEngine(t))(context.Background(), tg); o.Reason != state.ReasonWrongPassword {
		t.Errorf("wrong password: %s/%s", o.State, o.Reason)
	}
}

// TestQuirkCipherTags: Get Channel Cipher Suites records with wrong
// algorithm tag bits (FreeIPMI "sun20": Sun Fire 4100 ILOM) are read as
// fixed-size records: the BMC's offer is known (suite 3), so the
// negotiation goes straight to it — without, the list was unreadable and
// every allowed suite was tried blind (no_cipher_suite_list).
func TestQuirkCipherTags(t *testing.T) {
	f := quirkFleet(t, 0)
	b := f.BMCs()[0]
	if err := f.SetFaults(b.Name(), sim.Faults{Quirk: sim.QuirkCipherTags, CipherSuites: sim.Suites(3)}); err != nil {
		t.Fatal(err)
	}
	tg := quirkTarget(b)
	tg.Suites = []ipmi.CipherSuite{17, 16, 3}
	o := IPMI(newEngine(t))(context.Background(), tg)
	n := o.Evidence.Negotiation
	if o.State != state.Connectable || o.Evidence.CipherSuite != 3 || n == nil || !slices.Equal(n.Offered, []ipmi.CipherSuite{3}) {
		t.Fatalf("%s/%s suite %d negotiation %+v: %s", o.State, o.Reason, o.Evidence.CipherSuite, n, o.Message)
	}
	if !hasQuirk(o, "cipher_record_tags") || hasQuirk(o, "no_cipher_suite_list") || len(n.Tried) != 1 {
		t.Errorf("quirks %v tried %+v", o.Evidence.Quirks, n.Tried)
	}
}

// TestQuirkDisabledSuiteStatus: a suite the BMC does not do refused with
// RMCP+ status 0x0A or 0x12 instead of 0x11 (FreeIPMI bugs doc LAN Auth
// #19/#20) is a refused suite, not a privilege verdict: the next allowed
// suite is tried, and with no other allowed suite the verdict is
// no_cipher_suite naming what the BMC offers, never privilege_too_low.
func TestQuirkDisabledSuiteStatus(t *testing.T) {
	for _, c := range []struct {
		q      sim.QuirkSet
		status byte
	}{{sim.QuirkOpenSess0x0A, 0x0a}, {sim.QuirkOpenSess0x12, 0x12}} {
		f := quirkFleet(t, 0)
		b := f.BMCs()[0]
		if err := f.SetFaults(b.Name(), sim.Faults{Quirk: c.q, CipherSuites: sim.Suites(3)}); err != nil {
			t.Fatal(err)
		}
		o := IPMI(newEngine(t))(context.Background(), quirkTarget(b))
		n := o.Evidence.Negotiation
		if o.State != state.Connectable || o.Evidence.CipherSuite != 3 || n == nil || len(n.Tried) != 1 || n.Tried[0].Status != c.status {
			t.Errorf("%v: %s/%s suite %d negotiation %+v: %s", c.q, o.State, o.Reason, o.Evidence.CipherSuite, n, o.Message)
		}
		tg := quirkTarget(b)
		tg.Suites = []ipmi.CipherSuite{17}
		if o := IPMI(newEngine(t))(context.Background(), tg); o.Reason != state.ReasonNoCipherSuite || !strings.Contains(o.Message, "offers cipher suites 3") {
			t.Errorf("%v, only 17 allowed: %s/%s: %s", c.q, o.State, o.Reason, o.Message)
		}
	}
}

// TestQuirkListedRefused: a BMC that lists suite 17 but refuses it (LAN
// Auth #22: Intel S2600JF advertises a suite it rejects) is Connectable
// with the next suite, whether the default list proposes 3 next or a
// longer list reads the offer (which names 17) and falls back through it.
func TestQuirkListedRefused(t *testing.T) {
	f := quirkFleet(t, sim.QuirkListedRefused)
	b := f.BMCs()[0]
	eng := newEngine(t)
	if o := IPMI(eng)(context.Background(), quirkTarget(b)); o.State != state.Connectable || o.Evidence.CipherSuite != 3 {
		t.Fatalf("default list: %s/%s suite %d: %s", o.State, o.Reason, o.Evidence.CipherSuite, o.Message)
	}
	tg := quirkTarget(b)
	tg.Suites = []ipmi.CipherSuite{17, 16, 3}
	o := IPMI(newEngine(t))(context.Background(), tg)
	n := o.Evidence.Negotiation
	if o.State != state.Connectable || o.Evidence.CipherSuite != 3 || n == nil || !slices.Contains(n.Offered, 17) ||
		len(n.Tried) != 1 || n.Tried[0].Suite != 17 || n.Tried[0].Status != 0x11 {
		t.Fatalf("list 17, 16, 3: %s/%s suite %d negotiation %+v: %s", o.State, o.Reason, o.Evidence.CipherSuite, n, o.Message)
	}
	// Learned: the next check proposes 3 at once.
	if o := IPMI(eng)(context.Background(), quirkTarget(b)); o.Evidence.Negotiation != nil || !strings.Contains(o.Evidence.SuiteWhy, "worked last time") {
		t.Errorf("second check: why %q negotiation %+v", o.Evidence.SuiteWhy, o.Evidence.Negotiation)
	}
}

// TestQuirkExactPrivilege: a BMC that refuses RAKP 1 (status 0x0A) unless
// the maximum privilege asked is exactly the user's limit (LAN Auth #24:
// Xyratex) is Connectable for an account configured below that limit: the
// next levels up are asked (RAKP 1 carries no password proof), the level
// that worked is learned, and the next check asks it at once. An account
// asking above its limit is still privilege_too_low.
func TestQuirkExactPrivilege(t *testing.T) {
	f := quirkFleet(t, sim.QuirkExactPrivilege)
	b := f.BMCs()[0]
	eng := newEngine(t)
	tg := quirkTarget(b)
	tg.Privilege = ipmi.PrivilegeOperator
	o := IPMI(eng)(context.Background(), tg)
	if o.State != state.Connectable || !hasQuirk(o, "exact_privilege") || o.Evidence.Profile == nil || o.Evidence.Profile.Privilege() != ipmi.PrivilegeAdministrator {
		t.Fatalf("%s/%s quirks %v profile %+v: %s", o.State, o.Reason, o.Evidence.Quirks, o.Evidence.Profile, o.Message)
	}
	if b.Counters().AuthFailures != 1 {
		t.Errorf("auth failures %d, want the one refused RAKP 1", b.Counters().AuthFailures)
	}
	before := b.Counters().AuthAttempts
	if o := IPMI(eng)(context.Background(), tg); o.State != state.Connectable {
		t.Fatalf("second check: %s/%s", o.State, o.Reason)
	}
	if n := b.Counters().AuthAttempts - before; n != 1 {
		t.Errorf("second check made %d RAKP 1, want 1 (the learned privilege)", n)
	}
	// The quirk names alone (as the store keeps them) carry the
	// privilege: a fresh engine seeded with them asks it at once.
	names := eng.Profile(b.Addr()).Quirks.Names()
	if !slices.Contains(names, "privilege_administrator") {
		t.Errorf("quirk names %v", names)
	}
	tg.Profile = &ipmi.Profile{Quirks: ipmi.ParseQuirks(names)}
	before = b.Counters().AuthAttempts
	if o := IPMI(newEngine(t))(context.Background(), tg); o.State != state.Connectable || b.Counters().AuthAttempts-before != 1 {
		t.Errorf("seeded from the names: %s, %d RAKP 1", o.State, b.Counters().AuthAttempts-before)
	}

	// A BMC without the quirk: an account asking above its user's limit
	// (operator for a user-level account) is still privilege_too_low —
	// asking higher is refused too — at the cost of one more refused
	// RAKP 1, which carries no password proof.
	cfg := sim.Config{Count: 1, Seed: 13, Password: quirkPass, Accounts: sim.Accounts{User: true}, BaseAddr: "127.0.0.1"}
	for attempt := 0; ; attempt++ {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		cfg.BasePort = c.LocalAddr().(*net.UDPAddr).Port
		c.Close()
		f2, err := sim.New(cfg)
		if err != nil && attempt < 10 {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f2.Close() })
		b2 := f2.BMCs()[0]
		tg := quirkTarget(b2)
		tg.User, tg.Privilege = sim.PlainUser, ipmi.PrivilegeOperator
		o := IPMI(newEngine(t))(context.Background(), tg)
		if o.State != state.NotAuthenticated || o.Reason != state.ReasonPrivilege || hasQuirk(o, "exact_privilege") {
			t.Errorf("above the limit: %s/%s quirks %v: %s", o.State, o.Reason, o.Evidence.Quirks, o.Message)
		}
		if c := b2.Counters(); c.AuthAttempts != 2 || c.SessionsOpen != 0 {
			t.Errorf("above the limit: %d RAKP 1, %d sessions open; want 2 (operator, administrator), 0", c.AuthAttempts, c.SessionsOpen)
		}
		break
	}
}

// TestQuirkNoCloseReply: a BMC that closes the session but does not answer
// Close Session (LAN Session #1: Intel SR870BN4) is Connectable and not
// Degraded for the unanswered Close's retransmissions; learned, the next
// check sends Close once and does not wait (8 datagrams, no retransmission),
// and the BMC's session is closed all the same.
func TestQuirkNoCloseReply(t *testing.T) {
	f := quirkFleet(t, sim.QuirkNoCloseReply)
	b := f.BMCs()[0]
	eng := newEngine(t)
	o := IPMI(eng)(context.Background(), quirkTarget(b))
	if o.State != state.Connectable || slices.Contains(o.Conditions, state.Degraded) || !hasQuirk(o, "no_close_reply") {
		t.Fatalf("%s/%s %v quirks %v retransmits %d: %s", o.State, o.Reason, o.Conditions, o.Evidence.Quirks, o.Evidence.Retransmits, o.Message)
	}
	before := eng.Stats().Sent
	o = IPMI(eng)(context.Background(), quirkTarget(b))
	if o.State != state.Connectable || o.Evidence.Retransmits != 0 {
		t.Fatalf("second check: %s %v retransmits %d", o.State, o.Conditions, o.Evidence.Retransmits)
	}
	if sent := eng.Stats().Sent - before; sent != 9 {
		t.Errorf("second check sent %d datagrams, want 9 (ping … close, once each)", sent)
	}
	// The Close was sent without waiting: give the BMC up to a second to
	// act on it.
	var c sim.Counters
	poll.Wait(time.Second, func() bool {
		c = b.Counters()
		return c.SessionsOpen == 0 && c.SessionsClosedByClient == 2
	})
	if c.SessionsOpen != 0 || c.SessionsClosedByClient != 2 {
		t.Errorf("BMC: %d open, %d closed by us", c.SessionsOpen, c.SessionsClosedByClient)
	}
}

// TestQuirkSeqGaps: a BMC whose session sequence numbers skip (LAN Session
// #9: ASRock MT-C224 in shared-NIC mode) is Connectable, not Degraded: the
// window takes any newer number, and the gaps are named.
func TestQuirkSeqGaps(t *testing.T) {
	f := quirkFleet(t, sim.QuirkSeqGaps)
	o := IPMI(newEngine(t))(context.Background(), quirkTarget(f.BMCs()[0]))
	if o.State != state.Connectable || slices.Contains(o.Conditions, state.Degraded) || !hasQuirk(o, "sequence_gaps") {
		t.Fatalf("%s/%s %v quirks %v: %s", o.State, o.Reason, o.Conditions, o.Evidence.Quirks, o.Message)
	}
}

// TestQuirkBadChecksum: a BMC whose in-session replies carry wrong IPMI
// checksums, authenticated by the session's HMAC all the same (FreeIPMI
// "nochecksumcheck": Supermicro X9SCM-iiF, X9DRi-F), is Connectable with
// the quirk named: the HMAC is the stronger check. Without the workaround
// every reply was garbage: NotResponding/protocol_error.
func TestQuirkBadChecksum(t *testing.T) {
	f := quirkFleet(t, sim.QuirkBadChecksum)
	b := f.BMCs()[0]
	for _, suites := range [][]ipmi.CipherSuite{nil, {3}} {
		tg := quirkTarget(b)
		tg.Suites = suites
		o := IPMI(newEngine(t))(context.Background(), tg)
		if o.State != state.Connectable || slices.Contains(o.Conditions, state.Degraded) || !hasQuirk(o, "bad_ipmi_checksum") || o.GUID != o.Expected {
			t.Fatalf("suites %v: %s/%s %v quirks %v: %s", suites, o.State, o.Reason, o.Conditions, o.Evidence.Quirks, o.Message)
		}
	}
}

// TestRAKP2GUIDLearned: a light check of a BMC whose RAKP 2 carried, on an
// earlier check, the same managed system GUID as Get System GUID's answer
// takes the GUID from RAKP 2 and sends one datagram fewer (5: open, RAKP 1,
// RAKP 3, chassis status, close). A BMC whose RAKP 2 carries zeros
// (rakp2_guid_zero) or another GUID (rakp2_guid_other) keeps the request
// and stays Connectable: taking RAKP 2's GUID unlearned would make them
// Invalid. A RAKP 2 GUID that stops matching — the BMC now sends another
// one, or the motherboard was swapped — makes the light check ask before
// any verdict: Connectable when the command's answer is the registered
// GUID, Invalid only on that answer.
func TestRAKP2GUIDLearned(t *testing.T) {
	f := quirkFleet(t, 0, sim.QuirkRAKP2GUIDZero, sim.QuirkRAKP2GUIDOther)
	eng := newEngine(t)
	check := IPMI(eng)
	ctx := context.Background()
	// run checks b and reports the observation and the datagrams it sent.
	run := func(b *sim.BMC, light bool) (Observation, uint64) {
		tg := quirkTarget(b)
		tg.Light = light
		before := eng.Stats().Sent
		o := check(ctx, tg)
		return o, eng.Stats().Sent - before
	}
	for i, b := range f.BMCs() {
		o, _ := run(b, false)
		learned := learnedRAKP2GUID(o)
		if o.State != state.Connectable || o.Evidence.GUIDSource != "get_system_guid" || learned != (i == 0) {
			t.Fatalf("%s full check: %s/%s source %s quirks %v: %s", b.Name(), o.State, o.Reason, o.Evidence.GUIDSource, o.Evidence.Quirks, o.Message)
		}
		wantSent, wantSource := uint64(6), "get_system_guid"
		if i == 0 {
			wantSent, wantSource = 5, "rakp2"
		}
		for k := 0; k < 2; k++ {
			o, sent := run(b, true)
			if o.State != state.Connectable || sent != wantSent || o.Evidence.GUIDSource != wantSource || o.GUID != o.Expected {
				t.Errorf("%s light check %d: %s/%s, %d datagrams (want %d), source %s (want %s), guid %s: %s",
					b.Name(), k, o.State, o.Reason, sent, wantSent, o.Evidence.GUIDSource, wantSource, o.GUID, o.Message)
			}
		}
	}

	// The learned BMC starts sending another GUID in RAKP 2: the light
	// check asks, is Connectable, and unlearns.
	b := f.BMCs()[0]
	if err := f.SetFaults(b.Name(), sim.Faults{Quirk: sim.QuirkRAKP2GUIDOther}); err != nil {
		t.Fatal(err)
	}
	o, sent := run(b, true)
	if o.State != state.Connectable || sent != 6 || o.Evidence.GUIDSource != "get_system_guid" || learnedRAKP2GUID(o) {
		t.Fatalf("RAKP 2 GUID changed: %s/%s, %d datagrams (want 6), source %s, quirks %v: %s", o.State, o.Reason, sent, o.Evidence.GUIDSource, o.Evidence.Quirks, o.Message)
	}
	if o, sent := run(b, true); o.State != state.Connectable || sent != 6 {
		t.Errorf("after unlearning: %s, %d datagrams (want 6)", o.State, sent)
	}

	// Learned again, then the motherboard is swapped: RAKP 2's new GUID
	// does not match; the verdict rests on Get System GUID's answer.
	if err := f.SetFaults(b.Name(), sim.Faults{}); err != nil {
		t.Fatal(err)
	}
	if o, _ := run(b, false); !learnedRAKP2GUID(o) {
		t.Fatalf("not learned again: %v", o.Evidence.Quirks)
	}
	if err := f.SetFaults(b.Name(), sim.Faults{GUIDReplaced: true}); err != nil {
		t.Fatal(err)
	}
	o, sent = run(b, true)
	if o.State != state.Invalid || o.Reason != state.ReasonGUIDMismatch || sent != 6 || o.Evidence.GUIDSource != "get_system_guid" || o.GUID != b.GUID().In(o.Evidence.GUIDLayout) {
		t.Errorf("swapped: %s/%s, %d datagrams (want 6), source %s, guid %s (BMC %s): %s", o.State, o.Reason, sent, o.Evidence.GUIDSource, o.GUID, b.GUID(), o.Message)
	}
	// A registration that differs while RAKP 2 matches the BMC: Invalid
	// on the command's answer too.
	if err := f.SetFaults(b.Name(), sim.Faults{}); err != nil {
		t.Fatal(err)
	}
	run(b, false)
	tg := quirkTarget(b)
	tg.Light = true
	tg.Expected, _ = guid.Parse("11111111-2222-3333-4444-555555555555")
	before := eng.Stats().Sent
	if o := check(ctx, tg); o.State != state.Invalid || o.Evidence.GUIDSource != "get_system_guid" || eng.Stats().Sent-before != 6 {
		t.Errorf("another GUID registered: %s/%s source %s, %d datagrams", o.State, o.Reason, o.Evidence.GUIDSource, eng.Stats().Sent-before)
	}
}
