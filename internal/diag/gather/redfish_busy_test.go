package gather

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/probe"
	"github.com/lightsout/lightsout/internal/redfish"
	"github.com/lightsout/lightsout/internal/secret"
	"github.com/lightsout/lightsout/internal/sim"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
	"github.com/lightsout/lightsout/internal/store/sqlstore"
)

// TestRedfishBusyTree: the Busy (HTTP 503) branch of a Redfish channel
// reads the SessionService's census; sessions this host left under the
// account's user are deleted by URI, never another client's, and the
// confidence drops while other clients hold sessions too.
func TestRedfishBusyTree(t *testing.T) {
	stale := HeldSession{ID: "5", URI: "/redfish/v1/SessionService/Sessions/5", User: "admin", Console: "10.0.0.5", SameHost: true, SameUser: true}
	other := HeldSession{ID: "6", URI: "/redfish/v1/SessionService/Sessions/6", User: "nagios", Console: "10.0.7.7"}
	sameHostOtherUser := HeldSession{ID: "7", URI: "/redfish/v1/SessionService/Sessions/7", User: "operator", Console: "10.0.0.5", SameHost: true}
	for _, c := range []struct {
		name     string
		sessions *SessionsFacts
		limit    bool
		cause    Cause
		conf     Confidence
		close    []string
		text     []string
	}{
		{"stale only", &SessionsFacts{Got: true, Active: 1, Others: []HeldSession{stale}}, true, CauseStaleOwnSessions, High,
			[]string{stale.URI}, []string{"Redfish session 5 left open by this host as admin: user admin, from 10.0.0.5", "DELETE"}},
		{"stale and another client", &SessionsFacts{Got: true, Active: 3, Others: []HeldSession{stale, other, sameHostOtherUser}}, true, CauseStaleOwnSessions, Medium,
			[]string{stale.URI}, []string{"Redfish session 6 held by another client: user nagios, from 10.0.7.7", "live alternative"}},
		{"other clients", &SessionsFacts{Got: true, Active: 2, Others: []HeldSession{other, sameHostOtherUser}}, false, CauseCompetingConsoles, High,
			nil, []string{"find the clients at 10.0.7.7, 10.0.0.5", "SessionTimeout"}},
		{"census failed", &SessionsFacts{Attempts: 1, Err: "reading the Redfish sessions: HTTP 503"}, true, CauseSessionTableFull, Medium,
			nil, []string{"session limit is reached (SessionLimitExceeded)", "the session census failed (reading the Redfish sessions: HTTP 503)", "/redfish/v1/SessionService/Sessions"}},
		{"nobody holds any", &SessionsFacts{Got: true}, false, CauseSessionTableFull, Low,
			nil, []string{"busy rather than out of sessions", "Manager.Reset"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := base(state.Connectable, state.ReasonBusy, state.Busy)
			f.Account.Address, f.Account.Protocol = "10.0.4.17:443", "redfish"
			f.Message = "the Redfish service answers HTTP 503 to POST /redfish/v1/SessionService/Sessions"
			if c.limit {
				f.Evidence.Redfish = &probe.RedfishEvidence{HTTPStatus: 503, MessageIDs: []string{"Base.1.8.SessionLimitExceeded"}}
			}
			if r := Decide(f); len(r.Need) != 1 || r.Need[0] != NeedSessions {
				t.Fatalf("first step: %+v", r)
			}
			f.Sessions = c.sessions
			d := Decide(f).Diagnosis
			text := strings.Join(append(append([]string{d.Summary, d.Remedy}, d.Evidence...), d.RuledOut...), "\n")
			if d.Cause != c.cause || d.Confidence != c.conf {
				t.Fatalf("%s (%s), want %s (%s)\n%s", d.Cause, d.Confidence, c.cause, c.conf, text)
			}
			for _, w := range c.text {
				if !strings.Contains(text, w) {
					t.Fatalf("lacks %q:\n%s", w, text)
				}
			}
			var closed []string
			for _, a := range d.Actions {
				closed = append(closed, a.Sessions...)
				if len(a.Handles) != 0 {
					t.Fatalf("IPMI handles in a Redfish action: %+v", a)
				}
			}
			if !slices.Equal(closed, c.close) {
				t.Fatalf("closes %v, want %v", closed, c.close)
			}
		})
	}
}

// redfishSim starts one simulated BMC with a Redfish service, a store
// holding its machine and account, and an executor whose Redfish prober
// pins certificates in memory.
func redfishSim(t *testing.T, pw string) (*sim.Fleet, *Executor, *probe.RedfishProber, store.Machine, store.Account) {
	t.Helper()
	var fleet *sim.Fleet
	for try := 0; fleet == nil; try++ {
		u, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		udp, tcp := u.LocalAddr().(*net.UDPAddr).Port, l.Addr().(*net.TCPAddr).Port
		u.Close()
		l.Close()
		fleet, err = sim.New(sim.Config{Count: 1, Seed: 3, Password: pw, BaseAddr: "127.0.0.1", BasePort: udp, Redfish: true, RedfishBasePort: tcp})
		if err != nil && try == 2 {
			t.Fatalf("simulator: %v", err)
		}
	}
	t.Cleanup(func() { fleet.Close() })
	b := fleet.BMCs()[0]
	ctx := context.Background()
	box, _ := secret.NewRandomBox()
	st, err := sqlstore.Open(ctx, sqlstore.Options{DSN: filepath.Join(t.TempDir(), "rf.db"), Box: box})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	mc := store.Machine{Name: b.Name()}
	if err := st.AddMachine(ctx, &mc); err != nil {
		t.Fatal(err)
	}
	ap := b.RedfishAddr()
	a := store.Account{MachineID: mc.ID, Protocol: "redfish", Address: ap.Addr().String(), Port: int(ap.Port()), User: sim.AdminUser, Password: []byte(pw)}
	if err := st.AddAccount(ctx, &a); err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // pinned by fingerprint
	t.Cleanup(tr.CloseIdleConnections)
	rp := probe.NewRedfishProber(tr, &probe.MemPins{})
	x := &Executor{Store: st, Timeout: 5 * time.Second, Probers: probe.NewRegistry(nil, rp.Check), RedfishCensus: rp.Census, RedfishClose: rp.CloseSessions}
	return fleet, x, rp, mc, a
}

// rfClient is a Redfish client of the simulated BMC at ap bound to the
// loopback address local (another console when not 127.0.0.1).
func rfClient(ap string, local net.IP, user, pw string) *redfish.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: local}}
	tr := &http.Transport{DialContext: d.DialContext, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // test service
	return &redfish.Client{HTTP: &http.Client{Transport: tr}, Base: "https://" + ap, User: user, Password: []byte(pw), Timeout: 5 * time.Second}
}

// TestExecutorRedfishBusy: a simulated Redfish BMC whose SessionService
// holds at most three sessions (login beyond: HTTP 503
// SessionLimitExceeded, as bmcweb) is filled by two sessions an earlier
// run of this host left open as the account's user and one of another
// console (127.0.0.2). The diagnosis, over real HTTPS, reads the census
// with HTTP Basic, names both kinds, and proposes deleting only the two
// stale URIs; applying it deletes those, refuses the other console's, and
// the channel is Connectable again. Every request answered 503 (busy_503)
// leaves the census unread: session_table_full, medium.
func TestExecutorRedfishBusy(t *testing.T) {
	const pw = "busy-pw-1"
	fleet, x, rp, mc, a := redfishSim(t, pw)
	ctx := context.Background()
	b := fleet.BMCs()[0]
	ap := b.RedfishAddr().String()
	// A first check pins the certificate.
	if o := x.Check(ctx, mc, a); o.State != state.Connectable {
		t.Fatalf("check: %s/%s %s", o.State, o.Reason, o.Message)
	}
	if err := fleet.SetFaults(b.Name(), sim.Faults{RedfishSessionLimit: 3}); err != nil {
		t.Fatal(err)
	}
	var staleURIs []string
	for range 2 {
		c := rfClient(ap, net.IPv4(127, 0, 0, 1), sim.AdminUser, pw)
		if err := c.Login(ctx, redfish.DefaultSessions); err != nil {
			t.Fatal(err)
		}
		staleURIs = append(staleURIs, c.Session().Location) // never logged out: a killed run
	}
	other := rfClient(ap, net.IPv4(127, 0, 0, 2), sim.AdminUser, pw)
	if err := other.Login(ctx, redfish.DefaultSessions); err != nil {
		t.Fatal(err)
	}
	otherURI := other.Session().Location

	rep := x.Run(ctx, mc, a)
	d := rep.Diagnosis
	text := strings.Join(append(append([]string{d.Summary, d.Remedy}, d.Evidence...), d.RuledOut...), "\n")
	if rep.Facts.State != state.Connectable || !slices.Contains(rep.Facts.Conditions, state.Busy) || !slices.Contains(rep.Steps, NeedSessions) {
		t.Fatalf("facts %s %v steps %v: %s", rep.Facts.State, rep.Facts.Conditions, rep.Steps, rep.Facts.Message)
	}
	if d.Cause != CauseStaleOwnSessions || d.Confidence != Medium || len(d.Actions) != 1 ||
		!strings.Contains(text, "SessionLimitExceeded") || !strings.Contains(text, "held by another client: user admin, from 127.0.0.2") {
		t.Fatalf("%s (%s) %+v\n%s", d.Cause, d.Confidence, d.Actions, text)
	}
	act := d.Actions[0]
	slices.Sort(act.Sessions)
	slices.Sort(staleURIs)
	if !slices.Equal(act.Sessions, staleURIs) || act.Kind != ActCloseSessions {
		t.Fatalf("closes %v, want %v", act.Sessions, staleURIs)
	}
	// The other console's session is refused even when asked for.
	if n, err := x.CloseRedfishSessions(ctx, mc, a, []string{otherURI}); n != 0 || !errors.Is(err, probe.ErrNotStale) {
		t.Fatalf("closing another console's session: %d %v", n, err)
	}
	if n, err := x.CloseRedfishSessions(ctx, mc, a, act.Sessions); n != 2 || err != nil {
		t.Fatalf("close: %d %v", n, err)
	}
	tg, err := x.target(ctx, mc, a)
	if err != nil {
		t.Fatal(err)
	}
	es, total, _, err := rp.Census(ctx, tg)
	if err != nil || total != 2 { // the other console's and the census's own
		t.Fatalf("after: %d %+v %v", total, es, err)
	}
	for _, e := range es {
		if !e.Ours && !redfish.SameSession(e.URI, otherURI) {
			t.Fatalf("left %+v", e)
		}
	}
	if o := x.Check(ctx, mc, a); o.State != state.Connectable || slices.Contains(o.Conditions, state.Busy) {
		t.Fatalf("after the fix: %s/%s %v %s", o.State, o.Reason, o.Conditions, o.Message)
	}

	t.Run("busy_503", func(t *testing.T) {
		if err := fleet.SetFaults(b.Name(), sim.Faults{Busy503: true}); err != nil {
			t.Fatal(err)
		}
		d := x.Run(ctx, mc, a).Diagnosis
		text := strings.Join(append([]string{d.Summary, d.Remedy}, d.Evidence...), "\n")
		if d.Cause != CauseSessionTableFull || d.Confidence != Medium || len(d.Actions) != 0 ||
			!strings.Contains(text, "the session census failed") || !strings.Contains(text, "SessionTimeout") {
			t.Fatalf("%s (%s)\n%s", d.Cause, d.Confidence, text)
		}
	})
}

// TestExecutorRedfishTLSLegacy: a simulated BMC whose Redfish service
// speaks TLS 1.0 only (old firmware) answers the handshake with a
// protocol_version alert: tls_error with high confidence, and the remedy
// is to enable TLS 1.2 on its HTTPS service.
func TestExecutorRedfishTLSLegacy(t *testing.T) {
	fleet, x, _, mc, a := redfishSim(t, "tls-pw-1")
	if err := fleet.SetFaults(fleet.BMCs()[0].Name(), sim.Faults{RedfishTLSLegacy: true}); err != nil {
		t.Fatal(err)
	}
	rep := x.Run(context.Background(), mc, a)
	d := rep.Diagnosis
	text := strings.Join(append([]string{d.Summary, d.Remedy}, d.Evidence...), "\n")
	if rep.Facts.State != state.NotResponding || rep.Facts.Reason != state.ReasonTLS || d.Cause != CauseTLSError || d.Confidence != High ||
		!strings.Contains(text, "protocol_version alert") || !strings.Contains(d.Remedy, "enable TLS 1.2") {
		t.Fatalf("%s/%s → %s (%s)\n%s", rep.Facts.State, rep.Facts.Reason, d.Cause, d.Confidence, text)
	}
}
