package probe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/guid"
	"github.com/lightsout/lightsout/internal/ipmi"
	"github.com/lightsout/lightsout/internal/ipmi/ipmitest"
	"github.com/lightsout/lightsout/internal/state"
)

func TestClassifyTable(t *testing.T) {
	wrap := func(e error) error { return &ipmi.StageError{Stage: ipmi.StageRAKP1, Err: e} }
	cases := []struct {
		err      error
		answered bool
		st       state.OOB
		r        state.Reason
	}{
		{nil, true, state.Connectable, state.ReasonOK},
		{wrap(ipmi.ErrNoResponse), false, state.NotResponding, state.ReasonSilent},
		{wrap(ipmi.ErrNoResponse), true, state.NotResponding, state.ReasonStalled},
		{wrap(ipmi.ErrPortUnreachable), false, state.NotResponding, state.ReasonPortRefused},
		{wrap(ipmi.ErrHostUnreachable), false, state.NotResponding, state.ReasonUnreachable},
		{wrap(ipmi.ErrWrongPassword), true, state.NotAuthenticated, state.ReasonWrongPassword},
		{wrap(ipmi.ErrUnknownUser), true, state.NotAuthenticated, state.ReasonUnknownUser},
		{wrap(ipmi.ErrPrivilege), true, state.NotAuthenticated, state.ReasonPrivilege},
		{wrap(ipmi.ErrLocked), true, state.NotAuthenticated, state.ReasonLocked},
		{wrap(ipmi.ErrRejected), true, state.NotAuthenticated, state.ReasonAuthRejected},
		{wrap(ipmi.ErrNoSessionSlot), true, state.Connectable, state.ReasonBusy},
		{wrap(ipmi.ErrNoCipherSuite), true, state.NotAuthenticated, state.ReasonNoCipherSuite},
		{wrap(ipmi.ErrCipher0), false, state.NotAuthenticated, state.ReasonCipher0Refused},
		{wrap(ipmi.ErrNoIPMI20), true, state.NotResponding, state.ReasonProtocol},
		{fmt.Errorf("x: %w", ipmi.ErrMalformed), true, state.NotResponding, state.ReasonProtocol},
		{context.Canceled, false, state.NotResponding, state.ReasonSilent},
	}
	for _, c := range cases {
		st, r := Classify(c.err, c.answered)
		if st != c.st || r != c.r {
			t.Errorf("Classify(%v, %v) = %s/%s, want %s/%s", c.err, c.answered, st, r, c.st, c.r)
		}
	}
}

func newEngine(t *testing.T) *ipmi.Engine {
	e, err := ipmi.New(ipmi.Config{InitialRTO: 100 * time.Millisecond, MaxRTO: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func target(addr netip.AddrPort, pass string) Target {
	return Target{Name: "node-1", Addr: addr, User: ipmitest.User, Password: []byte(pass), Timeout: time.Second}
}

func TestCheckAgainstRealUDP(t *testing.T) {
	bmc := ipmitest.Start(t, ipmitest.Options{})
	eng := newEngine(t)
	check := IPMI(eng)
	raw := guid.GUID(ipmitest.GUID)
	ctx := context.Background()

	o := check(ctx, target(bmc.Addr, ipmitest.Password))
	if o.State != state.Connectable || o.GUID != raw.String() || o.Evidence.Manufacturer != "Intel" || o.Evidence.Firmware != "2.45" || o.Evidence.Power == "" {
		t.Fatalf("healthy: %+v", o)
	}
	if !o.Evidence.PingAnswered || o.Evidence.CipherSuite == 0 || o.Evidence.GUID.IPMI != raw.IPMI() {
		t.Errorf("evidence: %+v", o.Evidence)
	}
	b, _ := json.Marshal(o)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	for _, k := range []string{"name", "host", "state", "guid", "elapsed_ms"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, b)
		}
	}

	// Expected GUID in each of the three layouts matches, and the GUID the
	// BMC gave prints exactly as registered (the layout it used is separate
	// evidence); another GUID does not match.
	for _, spelled := range []string{raw.RFC4122(), raw.SMBIOS(), raw.IPMI(), "{" + strings.ToUpper(raw.Hex()) + "}"} {
		tg := target(bmc.Addr, ipmitest.Password)
		tg.Expected, _ = guid.Parse(spelled)
		o := check(ctx, tg)
		if o.State != state.Connectable || o.GUID != o.Expected || o.Expected != tg.Expected.Spelling() {
			t.Errorf("expected %s: %s %s: guid %s, expected_guid %s", spelled, o.State, o.Message, o.GUID, o.Expected)
		}
		if o.Evidence.GUID.Layout != raw.Layout() || o.Evidence.GUIDMatch == nil || !*o.Evidence.GUIDMatch {
			t.Errorf("expected %s: evidence %+v", spelled, o.Evidence)
		}
	}
	tg := target(bmc.Addr, ipmitest.Password)
	tg.Expected, _ = guid.Parse("00000000-1111-2222-3333-444444444444")
	o = check(ctx, tg)
	if o.State != state.Invalid || o.Reason != state.ReasonGUIDMismatch || o.Evidence.GUIDMatch == nil || *o.Evidence.GUIDMatch {
		t.Errorf("mismatch: %+v", o)
	}
	if o.Expected != "00000000-1111-2222-3333-444444444444" || !strings.Contains(o.Message, o.Expected) || !strings.Contains(o.Message, raw.String()) {
		t.Errorf("mismatch names %q / %q: %s", o.Expected, o.GUID, o.Message)
	}
	// Where the registered GUID was last seen in another layout, the
	// stranger's GUID is shown in that one.
	tg.ExpectedLayout = guid.LayoutRFC4122
	if o = check(ctx, tg); o.GUID != raw.RFC4122() || o.Evidence.GUIDLayout != guid.LayoutRFC4122 || !strings.Contains(o.Message, raw.RFC4122()) {
		t.Errorf("mismatch in the operator's layout: %s (%s): %s", o.GUID, o.Evidence.GUIDLayout, o.Message)
	}

	o = check(ctx, target(bmc.Addr, "not-the-password"))
	if o.State != state.NotAuthenticated || o.Reason != state.ReasonWrongPassword || !errors.Is(o.Err, ipmi.ErrWrongPassword) {
		t.Errorf("wrong password: %s/%s %v", o.State, o.Reason, o.Err)
	}
	if n := bmc.Sessions.Count(); n != 0 {
		t.Errorf("BMC holds %d sessions after checks", n)
	}
}

func TestCheckSilentAndRefused(t *testing.T) {
	eng := newEngine(t)
	check := IPMI(eng)
	silent, _ := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	defer silent.Close()
	start := time.Now()
	o := check(context.Background(), target(silent.LocalAddr().(*net.UDPAddr).AddrPort(), "x"))
	if o.State != state.NotResponding || o.Reason != state.ReasonSilent || o.Evidence.PingAnswered {
		t.Errorf("silent: %+v", o)
	}
	if el := time.Since(start); el > 2500*time.Millisecond { // deadline 1s; generous under load
		t.Errorf("silent verdict after %v with a 1s timeout", el)
	}
	closed, _ := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	addr := closed.LocalAddr().(*net.UDPAddr).AddrPort()
	closed.Close()
	o = check(context.Background(), target(addr, "x"))
	if o.State != state.NotResponding || o.Reason != state.ReasonPortRefused {
		t.Errorf("refused: %+v", o)
	}
}

func TestCheckBusy(t *testing.T) {
	bmc := ipmitest.Start(t, ipmitest.Options{MaxSessions: 1})
	// Another manager (its own engine) holds the only slot.
	other := newEngine(t)
	s, err := other.Open(context.Background(), bmc.Addr, ipmi.Credentials{User: ipmitest.User, Password: []byte(ipmitest.Password)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	o := IPMI(newEngine(t))(context.Background(), target(bmc.Addr, ipmitest.Password))
	if o.State != state.Connectable || o.Reason != state.ReasonBusy || len(o.Conditions) == 0 || o.Conditions[0] != state.Busy {
		t.Errorf("busy: %+v", o)
	}
}

// A refused password from a BMC whose RAKP 2 GUID is not the registered one
// is an identity problem (another BMC at this address), not a password one.
func TestRefusedPasswordFromAnotherBMCIsInvalid(t *testing.T) {
	bmc := ipmitest.Start(t, ipmitest.Options{})
	check := IPMI(newEngine(t))
	raw := guid.GUID(ipmitest.GUID)

	tg := target(bmc.Addr, "other-bmcs-password")
	tg.Expected, _ = guid.Parse(raw.SMBIOS()) // registered GUID is this BMC's
	if o := check(context.Background(), tg); o.State != state.NotAuthenticated || o.Reason != state.ReasonWrongPassword {
		t.Errorf("same BMC, wrong password: %s/%s", o.State, o.Reason)
	}
	tg.Expected, _ = guid.Parse("11111111-2222-3333-4444-555555555555")
	o := check(context.Background(), tg)
	if o.State != state.Invalid || o.Reason != state.ReasonGUIDMismatch || o.GUID != raw.String() || o.Evidence.GUIDSource != "rakp2" {
		t.Errorf("other BMC at the address: %s/%s guid %s: %s", o.State, o.Reason, o.GUID, o.Message)
	}
}

// TestLightCheck: the monitor's routine re-check skips ping, auth caps and
// Get Device ID but still verifies identity and reads power; silence and
// refusals classify as in a full check.
func TestLightCheck(t *testing.T) {
	bmc := ipmitest.Start(t, ipmitest.Options{})
	eng := newEngine(t)
	check := IPMI(eng)
	ctx := context.Background()
	tg := target(bmc.Addr, ipmitest.Password)
	tg.Light = true
	tg.Expected = guid.GUID(ipmitest.GUID)
	// First contact proposes the strongest allowed suite, which go-ipmi's
	// BMC accepts: no Get Channel Cipher Suites, no extra round trip; it
	// asks Get System GUID, whose answer RAKP 2 carried too. The next
	// check proposes the suite learned and takes the GUID from RAKP 2.
	for i, why := range []string{"strongest of the allow-list [17, 3], and the BMC accepted it", "worked last time"} {
		before := eng.Stats().Sent
		o := check(ctx, tg)
		if sent := eng.Stats().Sent - before; sent != uint64(6-i) || o.State != state.Connectable || !strings.Contains(o.Evidence.SuiteWhy, why) {
			t.Errorf("light check %d: %s, %d datagrams (want %d), why %q (want %q)", i, o.State, sent, 6-i, o.Evidence.SuiteWhy, why)
		}
	}
	before := eng.Stats().Sent
	o := check(ctx, tg)
	sent := eng.Stats().Sent - before
	if o.State != state.Connectable || o.Evidence.Power == "" || o.GUID == "" {
		t.Fatalf("light check: %+v", o)
	}
	if o.Evidence.PingAnswered || o.Evidence.AuthCaps != nil || o.Evidence.Firmware != "" {
		t.Errorf("light check did the full sequence: %+v", o.Evidence)
	}
	if sent != 5 || o.Evidence.GUIDSource != "rakp2" {
		t.Errorf("light check sent %d datagrams, want 5 (open, RAKP 1, RAKP 3, chassis status, close; the GUID from RAKP 2), source %s: %+v", sent, o.Evidence.GUIDSource, o.Evidence.Negotiation)
	}
	tg.Expected, _ = guid.Parse("00000000-1111-2222-3333-444444444444")
	if o := check(ctx, tg); o.State != state.Invalid {
		t.Errorf("light mismatch: %s", o.State)
	}
	tg = target(bmc.Addr, "not-the-password")
	tg.Light = true
	if o := check(ctx, tg); o.State != state.NotAuthenticated || o.Reason != state.ReasonWrongPassword {
		t.Errorf("light wrong password: %s/%s", o.State, o.Reason)
	}
	silent, _ := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	defer silent.Close()
	tg = target(silent.LocalAddr().(*net.UDPAddr).AddrPort(), "x")
	tg.Light = true
	if o := check(ctx, tg); o.State != state.NotResponding || o.Reason != state.ReasonSilent {
		t.Errorf("light silent: %s/%s", o.State, o.Reason)
	}
	if n := bmc.Sessions.Count(); n != 0 {
		t.Errorf("BMC holds %d sessions after light checks", n)
	}
}
