package gather

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/peertest"
	"github.com/lightsout/lightsout/internal/probe"
	"github.com/lightsout/lightsout/internal/redfish"
	"github.com/lightsout/lightsout/internal/secret"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
	"github.com/lightsout/lightsout/internal/store/sqlstore"
)

// These tests produce the Redfish causes on services nobody here wrote:
// OpenStack's sushy-tools (HTTP Basic, one account) and DMTF's
// Redfish-Mockup-Server (public-rackmount1: sessions, no credential
// checks), and run the whole diagnosis (executor, trees) against them.

// peerDiag registers the peer as machine name (GUID: its first system's
// UUID) with a Redfish account, and returns an executor whose prober pins
// certificates in memory.
func peerDiag(t *testing.T, p *peertest.RedfishPeer, name, user, pw string) (*Executor, *probe.RedfishProber, store.Machine, store.Account) {
	t.Helper()
	ctx := context.Background()
	box, _ := secret.NewRandomBox()
	st, err := sqlstore.Open(ctx, sqlstore.Options{DSN: filepath.Join(t.TempDir(), "peer.db"), Box: box})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	mc := store.Machine{Name: name, GUID: p.UUIDs[0]}
	if err := st.AddMachine(ctx, &mc); err != nil {
		t.Fatal(err)
	}
	a := store.Account{MachineID: mc.ID, Protocol: "redfish", Address: p.Addr.Addr().String(), Port: int(p.Addr.Port()), User: user, Password: []byte(pw)}
	if err := st.AddAccount(ctx, &a); err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // pinned by fingerprint
	t.Cleanup(tr.CloseIdleConnections)
	rp := probe.NewRedfishProber(tr, &probe.MemPins{})
	x := &Executor{Store: st, Timeout: 10 * time.Second, Probers: probe.NewRegistry(nil, rp.Check), RedfishCensus: rp.Census, RedfishClose: rp.CloseSessions}
	return x, rp, mc, a
}

func diagText(d Diagnosis) string {
	return strings.Join(append(append([]string{d.Summary, d.Remedy}, d.Evidence...), d.RuledOut...), "\n")
}

func wantDiag(t *testing.T, rep Report, st state.OOB, c Cause, conf Confidence, text ...string) {
	t.Helper()
	d := rep.Diagnosis
	if rep.Facts.State != st || d.Cause != c || d.Confidence != conf {
		t.Fatalf("%s/%s → %s (%s), want %s → %s (%s)\n%s", rep.Facts.State, rep.Facts.Reason, d.Cause, d.Confidence, st, c, conf, diagText(d))
	}
	for _, w := range text {
		if !strings.Contains(diagText(d), w) {
			t.Fatalf("%s lacks %q:\n%s", d.Cause, w, diagText(d))
		}
	}
}

// TestDiagRedfishSushy: against sushy-tools, a wrong password is
// auth_rejected (medium: Redfish says 401 alike for every refusal) with the
// service's answer and an AccountService remedy; the emulator restarted
// with a new certificate is cert_changed (no credentials sent, accept-cert);
// stopped, it is redfish_service_down.
func TestDiagRedfishSushy(t *testing.T) {
	p := peertest.StartSushy(t, peertest.SushyOptions{User: "admin", Password: "sushy-pw-2"})
	x, _, mc, a := peerDiag(t, p, "sushy-1", "admin", "sushy-pw-2")
	ctx := context.Background()
	wantDiag(t, x.Run(ctx, mc, a), state.Connectable, CauseHealthy, High)

	wrong := a
	wrong.Password = []byte("not-the-password")
	wantDiag(t, x.Run(ctx, mc, wrong), state.NotAuthenticated, CauseAuthRejected, Medium,
		"HTTP 401 to /redfish/v1/Systems (authenticated by HTTP Basic", "/redfish/v1/AccountService/Accounts", "lightsout accounts set")

	p.Restart()
	rep := x.Run(ctx, mc, a)
	wantDiag(t, rep, state.Invalid, CauseCertChanged, High, "no credentials were sent", "lightsout accept-cert sushy-1", "/redfish/v1/Managers/ID/NetworkProtocol/HTTPS/Certificates")
	if rf := rep.Facts.Evidence.Redfish; rf == nil || rf.CertSHA256 == "" || rf.PinnedSHA256 == "" || strings.EqualFold(rf.CertSHA256, rf.PinnedSHA256) ||
		!strings.Contains(diagText(rep.Diagnosis), rf.CertSHA256) {
		t.Fatalf("fingerprints: %+v", rf)
	}

	p.Stop()
	wantDiag(t, x.Run(ctx, mc, a), state.NotResponding, CauseRedfishDown, High, "refused the TCP connection", "NetworkProtocol")
}

// TestDiagRedfishMockup: against DMTF's mockup server the census lists its
// own sample session (Administrator) as another client's and a session an
// earlier run left under the account's user as of unknown origin (the
// mockup reports no client address): given a 503 the tree names both and
// deletes nothing, and a close asked for that session is refused. The
// census deletes its own session each time (the mockup supports DELETE:
// the count stays the same). Restarted with a new certificate the mockup
// is cert_changed.
func TestDiagRedfishMockup(t *testing.T) {
	p := peertest.StartMockup(t)
	x, _, mc, a := peerDiag(t, p, "mockup-1", "lightsout", "any-pw")
	ctx := context.Background()
	wantDiag(t, x.Run(ctx, mc, a), state.Connectable, CauseHealthy, High)

	// An earlier run's session, never deleted.
	c := &redfish.Client{HTTP: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}, //nolint:gosec // test peer
		Base: p.URL, User: "lightsout", Password: []byte("any-pw"), Timeout: 10 * time.Second}
	if err := c.Login(ctx, redfish.DefaultSessions); err != nil {
		t.Fatal(err)
	}
	left := c.Session().Location

	sf := x.redfishSessions(ctx, mc, a)
	if !sf.Got || sf.Err != "" {
		t.Fatalf("census: %+v", sf)
	}
	again := x.redfishSessions(ctx, mc, a)
	if again.Active != sf.Active {
		t.Fatalf("the census's own session was not deleted: %d then %d sessions", sf.Active, again.Active)
	}
	f := base(state.Connectable, state.ReasonBusy, state.Busy)
	f.Account.Protocol, f.Account.User, f.Account.ID = "redfish", "lightsout", a.ID
	f.Sessions = sf
	d := Decide(f).Diagnosis
	if d.Cause != CauseCompetingConsoles || d.Confidence != Medium || len(d.Actions) != 0 ||
		!strings.Contains(diagText(*d), "held by another client: user Administrator") || !strings.Contains(diagText(*d), "under this account's user: user lightsout") {
		t.Fatalf("%s (%s) %+v\n%s", d.Cause, d.Confidence, d.Actions, diagText(*d))
	}
	if n, err := x.CloseRedfishSessions(ctx, mc, a, []string{left}); n != 0 || !errors.Is(err, probe.ErrNotStale) {
		t.Fatalf("closing a session of unknown origin: %d %v", n, err)
	}
	if after := x.redfishSessions(ctx, mc, a); after.Active != sf.Active {
		t.Fatalf("sessions %d → %d after a refused close", sf.Active, after.Active)
	}

	p.Restart()
	wantDiag(t, x.Run(ctx, mc, a), state.Invalid, CauseCertChanged, High, "lightsout accept-cert mockup-1")
}
