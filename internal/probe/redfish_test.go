package probe

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/redfish"
	"github.com/lightsout/lightsout/internal/sim"
	"github.com/lightsout/lightsout/internal/state"
)

const rfPass = "redfish-test-pw1"

// rfFleet starts n simulated BMCs serving Redfish over HTTPS on loopback.
func rfFleet(t *testing.T, n int) *sim.Fleet {
	t.Helper()
	cfg := sim.Config{Count: n, Seed: 11, Password: rfPass, Redfish: true}
	// Another test binary (another checkout's tests) may hold a range:
	// move on to the next one, a bounded number of times.
	for attempt := 0; ; attempt++ {
		if os.Geteuid() == 0 { // 127.64: no other package's range
			cfg.BaseAddr = fmt.Sprintf("127.64.%d.1", (os.Getpid()+attempt)%200+1)
		} else {
			cfg.BaseAddr, cfg.BasePort = "127.0.0.1", 21000+(os.Getpid()+attempt*97)%20000
		}
		f, err := sim.New(cfg)
		if err != nil && strings.Contains(err.Error(), "address already in use") && attempt < 20 {
			continue
		}
		if err != nil {
			t.Fatalf("simulator: %v", err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
}

func rfTarget(b *sim.BMC, pw string) Target {
	return Target{Name: b.Name(), Protocol: "redfish", Addr: b.RedfishAddr(), User: sim.AdminUser,
		Password: []byte(pw), Expected: b.RegisteredGUID(), Timeout: 700 * time.Millisecond}
}

func TestRedfishSim(t *testing.T) {
	f := rfFleet(t, 10)
	tr := NewRedfishTransport()
	defer tr.CloseIdleConnections()
	pins := &MemPins{}
	check := Redfish(tr, pins)
	ctx := context.Background()
	bmcs := f.BMCs()

	want := func(t *testing.T, o Observation, st state.OOB, r state.Reason) {
		t.Helper()
		if o.State != st || o.Reason != r {
			t.Fatalf("state %s/%s, want %s/%s: %s (evidence %+v)", o.State, o.Reason, st, r, o.Message, o.Evidence.Redfish)
		}
	}

	t.Run("connectable", func(t *testing.T) {
		b := bmcs[0]
		o := check(ctx, rfTarget(b, rfPass))
		want(t, o, state.Connectable, state.ReasonOK)
		ev := o.Evidence.Redfish
		if ev.CertSHA256 == "" || ev.TLSVersion == "" || ev.UUID == "" || ev.PowerState == "" {
			t.Fatalf("evidence incomplete: %+v", ev)
		}
		// One P-256 key share, not Go's default X25519 (NewRedfishTransport).
		if ev.TLSGroup != "CurveP256" {
			t.Fatalf("key exchange %q, want CurveP256", ev.TLSGroup)
		}
		// A check that keeps no session uses HTTP Basic on an auto
		// account although sessions are offered: three requests, no
		// session opened.
		if ev.Auth != "basic" || !strings.Contains(ev.AuthWhy, "keeps no session") || len(ev.Statuses) != 3 || ev.LoggedOut {
			t.Fatalf("auto account, no kept session: evidence %+v", ev)
		}
		if c := b.RedfishCounters(); c.SessionsOpened != 0 || c.Requests != 3 {
			t.Fatalf("Basic check: counters %+v, want 3 requests and no session", c)
		}
		// A forced session is opened and logged out.
		tg := rfTarget(b, rfPass)
		tg.RedfishAuth = redfish.AuthSession
		o = check(ctx, tg)
		want(t, o, state.Connectable, state.ReasonOK)
		if ev := o.Evidence.Redfish; ev.Auth != "session" || !ev.LoggedOut || len(ev.Statuses) != 5 {
			t.Fatalf("forced session: evidence %+v", ev)
		}
		c := b.RedfishCounters()
		if c.SessionsOpened != 1 || c.SessionsClosed != 1 || c.SessionsOpen != 0 {
			t.Fatalf("sessions not logged out: %+v", c)
		}
		// The control API's status carries the same counters.
		if st := b.Status().Redfish; st == nil || *st != c || st.MaxSessionsOpen != 1 {
			t.Fatalf("status's Redfish counters %+v, want %+v with max_sessions_open 1", st, c)
		}
		if fp := b.Status().RedfishCertSHA256; fp != ev.CertSHA256 {
			t.Fatalf("status's certificate fingerprint %q, the probe saw %q", fp, ev.CertSHA256)
		}
	})
	t.Run("wrong_password", func(t *testing.T) {
		o := check(ctx, rfTarget(bmcs[1], "not-the-password"))
		want(t, o, state.NotAuthenticated, state.ReasonAuthRejected)
		// Basic's 401 carries a Basic challenge: the password was refused,
		// and no session login is tried with it as well (one failed
		// attempt per check, as with a session login).
		if ev := o.Evidence.Redfish; ev.Auth != "basic" || len(ev.Statuses) != 2 || ev.HTTPStatus != 401 {
			t.Fatalf("evidence %+v", ev)
		}
		if err := f.SetFaults(bmcs[1].Name(), sim.Faults{UserRemoved: true}); err != nil {
			t.Fatal(err)
		}
		o = check(ctx, rfTarget(bmcs[1], rfPass))
		want(t, o, state.NotAuthenticated, state.ReasonAuthRejected)
	})
	t.Run("silent", func(t *testing.T) {
		f.SetFaults(bmcs[2].Name(), sim.Faults{Silent: true})
		o := check(ctx, rfTarget(bmcs[2], rfPass))
		want(t, o, state.NotResponding, state.ReasonSilent)
	})
	t.Run("port_closed", func(t *testing.T) {
		f.SetFaults(bmcs[3].Name(), sim.Faults{PortClosed: true})
		o := check(ctx, rfTarget(bmcs[3], rfPass))
		want(t, o, state.NotResponding, state.ReasonPortRefused)
		f.ClearFaults(bmcs[3].Name())
		want(t, check(ctx, rfTarget(bmcs[3], rfPass)), state.Connectable, state.ReasonOK)
	})
	t.Run("guid_replaced", func(t *testing.T) {
		f.SetFaults(bmcs[4].Name(), sim.Faults{GUIDReplaced: true})
		o := check(ctx, rfTarget(bmcs[4], rfPass))
		want(t, o, state.Invalid, state.ReasonGUIDMismatch)
		if c := bmcs[4].RedfishCounters(); c.SessionsOpen != 0 {
			t.Fatalf("session left open: %+v", c)
		}
	})
	t.Run("cert_replaced", func(t *testing.T) {
		b := bmcs[5]
		want(t, check(ctx, rfTarget(b, rfPass)), state.Connectable, state.ReasonOK)
		before := b.RedfishCounters().SessionsOpened
		f.SetFaults(b.Name(), sim.Faults{CertReplaced: true})
		o := check(ctx, rfTarget(b, rfPass))
		want(t, o, state.Invalid, state.ReasonCertChanged)
		if !strings.Contains(o.Message, "certificate changed") || o.Evidence.Redfish.PinnedSHA256 == "" {
			t.Fatalf("message %q evidence %+v", o.Message, o.Evidence.Redfish)
		}
		if b.RedfishCounters().SessionsOpened != before || len(o.Evidence.Redfish.Statuses) != 1 {
			t.Fatalf("credentials were sent to a BMC with a changed certificate: %v", o.Evidence.Redfish.Statuses)
		}
	})
	t.Run("busy_503", func(t *testing.T) {
		f.SetFaults(bmcs[6].Name(), sim.Faults{Busy503: true})
		o := check(ctx, rfTarget(bmcs[6], rfPass))
		want(t, o, state.Connectable, state.ReasonBusy)
		if len(o.Conditions) != 1 || o.Conditions[0] != state.Busy {
			t.Fatalf("conditions %v", o.Conditions)
		}
	})
	t.Run("no_sessions_basic", func(t *testing.T) {
		b := bmcs[7]
		f.SetFaults(b.Name(), sim.Faults{RedfishNoSessions: true})
		o := check(ctx, rfTarget(b, rfPass))
		want(t, o, state.Connectable, state.ReasonOK)
		if ev := o.Evidence.Redfish; ev.Auth != "basic" || ev.AuthWhy != "service root links no SessionService" {
			t.Fatalf("evidence %+v", ev)
		}
		tg := rfTarget(b, rfPass)
		tg.RedfishAuth = redfish.AuthSession
		want(t, check(ctx, tg), state.NotResponding, state.ReasonProtocol)
		if c := b.RedfishCounters(); c.SessionsOpened != 0 {
			t.Fatalf("a session was opened on a service without sessions: %+v", c)
		}
	})
	t.Run("no_basic_session", func(t *testing.T) {
		b := bmcs[8]
		f.SetFaults(b.Name(), sim.Faults{RedfishNoBasic: true})
		o := check(ctx, rfTarget(b, rfPass))
		want(t, o, state.Connectable, state.ReasonOK)
		// Basic first, refused without a Basic challenge: a session.
		if ev := o.Evidence.Redfish; ev.Auth != "session" || !strings.Contains(ev.AuthWhy, "without a Basic challenge") || !ev.LoggedOut ||
			strings.Join(ev.Statuses, ",") != "GET /redfish/v1/ 200,GET /redfish/v1/Systems 401,POST /redfish/v1/SessionService/Sessions 201,GET /redfish/v1/Systems 200,GET /redfish/v1/Systems/1 200,DELETE "+strings.TrimPrefix(ev.Statuses[len(ev.Statuses)-1], "DELETE ") {
			t.Fatalf("evidence %+v", o.Evidence.Redfish)
		}
		tg := rfTarget(b, rfPass)
		tg.RedfishAuth = redfish.AuthBasic
		want(t, check(ctx, tg), state.NotAuthenticated, state.ReasonAuthRejected)
	})
	t.Run("basic_auth_and_logout_count", func(t *testing.T) {
		for _, b := range bmcs {
			if c := b.RedfishCounters(); c.SessionsOpen != 0 {
				t.Fatalf("%s: %d sessions left open", b.Name(), c.SessionsOpen)
			}
		}
	})
}

// countingPins counts the pin reads.
type countingPins struct {
	MemPins
	reads int
}

func (c *countingPins) CertPin(ctx context.Context, name string) (string, error) {
	c.reads++
	return c.MemPins.CertPin(ctx, name)
}

// TestRedfishPinReads: the store's pin is read at first contact and when
// the certificate changes, not at every check of an unchanged one.
func TestRedfishPinReads(t *testing.T) {
	f := rfFleet(t, 1)
	b := f.BMCs()[0]
	tr := NewRedfishTransport()
	defer tr.CloseIdleConnections()
	pins := &countingPins{}
	pr := NewRedfishProber(tr, pins)
	pr.KeepSessions = true
	defer pr.Close(context.Background())
	ctx := context.Background()
	light := rfTarget(b, rfPass)
	light.Light = true
	for i := 0; i < 4; i++ {
		if o := pr.Check(ctx, light); o.State != state.Connectable {
			t.Fatalf("check %d: %s/%s %s", i, o.State, o.Reason, o.Message)
		}
	}
	if pins.reads != 1 {
		t.Fatalf("%d pin reads for 4 light checks of one certificate, want 1", pins.reads)
	}
	// A full check reads it (an admin may have pinned another one).
	if o := pr.Check(ctx, rfTarget(b, rfPass)); o.State != state.Connectable || pins.reads != 2 {
		t.Fatalf("full check: %s, %d pin reads", o.State, pins.reads)
	}
	orig, _ := pins.MemPins.CertPin(ctx, b.Name())
	_ = pins.PinCert(ctx, b.Name(), strings.Repeat("ab", 32))
	if o := pr.Check(ctx, rfTarget(b, rfPass)); o.Reason != state.ReasonCertChanged {
		t.Fatalf("another pin, full check: %s/%s", o.State, o.Reason)
	}
	_ = pins.PinCert(ctx, b.Name(), orig)
	if o := pr.Check(ctx, light); o.State != state.Connectable {
		t.Fatalf("pin restored: %s/%s", o.State, o.Reason)
	}
	pins.reads = 1
	if err := f.SetFaults(b.Name(), sim.Faults{CertReplaced: true}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if o := pr.Check(ctx, light); o.State != state.Invalid || o.Reason != state.ReasonCertChanged {
			t.Fatalf("replaced certificate, check %d: %s/%s", i, o.State, o.Reason)
		}
	}
	if pins.reads != 3 {
		t.Fatalf("%d pin reads, want 3: a changed certificate is compared with the store every time", pins.reads)
	}
}
