package gather

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"path/filepath"
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

// TestRedfishCensusTree: a Degraded Redfish channel's census names the
// other client by its Redfish session, user and address, and counts the
// manager's own kept session (same address, same user) as ours.
func TestRedfishCensusTree(t *testing.T) {
	f := base(state.Connectable, "", state.Degraded)
	f.Account.Address, f.Account.Protocol, f.Account.User = "10.0.4.17:443", "redfish", "admin"
	f.Rates, f.Fleet = &Rates{Requests: 8, Retransmits: 1, Source: "sampled"}, &Fleet{}
	f.Sessions = &SessionsFacts{Got: true, Active: 3, Self: HeldSession{ID: "7", User: "admin", Console: "10.0.0.2", Ours: true, SameHost: true, SameUser: true},
		Others: []HeldSession{{ID: "5", User: "admin", Console: "10.0.0.2", SameHost: true, SameUser: true},
			{ID: "6", User: "nagios", Console: "10.0.7.7"}}}
	d := Decide(f).Diagnosis
	text := strings.Join(append([]string{d.Summary, d.Remedy}, d.Evidence...), "\n")
	if d.Cause != CauseCompetingPollers || !strings.Contains(text, "Redfish session 6 held by another console: user nagios, from 10.0.7.7") ||
		!strings.Contains(text, "1 other session(s) are this manager's") || !strings.Contains(d.Remedy, "10.0.7.7") || strings.Contains(text, "privilege") {
		t.Fatalf("%s\n%s", d.Cause, text)
	}
}

// TestExecutorRedfishCensus: the executor reads a simulated Redfish BMC's
// SessionService over real HTTPS: its own census session is marked ours, a
// session kept by this manager's address under the account's user is not
// another console's, and a client from another loopback address
// (127.0.0.2) is named by address and user. A certificate other than the
// pinned one gets no credentials.
func TestExecutorRedfishCensus(t *testing.T) {
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
		fleet, err = sim.New(sim.Config{Count: 1, Seed: 2, Password: "census-pw-1", BaseAddr: "127.0.0.1", BasePort: udp, Redfish: true, RedfishBasePort: tcp})
		if err != nil && try == 2 {
			t.Fatalf("simulator: %v", err)
		}
	}
	defer fleet.Close()
	b := fleet.BMCs()[0]
	ctx := context.Background()

	box, _ := secret.NewRandomBox()
	st, err := sqlstore.Open(ctx, sqlstore.Options{DSN: filepath.Join(t.TempDir(), "c.db"), Box: box})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	mc := store.Machine{Name: b.Name()}
	if err := st.AddMachine(ctx, &mc); err != nil {
		t.Fatal(err)
	}
	ap := b.RedfishAddr()
	a := store.Account{MachineID: mc.ID, Protocol: "redfish", Address: ap.Addr().String(), Port: int(ap.Port()), User: sim.AdminUser, Password: []byte("census-pw-1")}
	if err := st.AddAccount(ctx, &a); err != nil {
		t.Fatal(err)
	}

	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // pinned by fingerprint below
	defer tr.CloseIdleConnections()
	pins := &probe.MemPins{}
	rp := probe.NewRedfishProber(tr, pins)
	x := &Executor{Store: st, Timeout: 5 * time.Second, Probers: probe.NewRegistry(nil, rp.Check), RedfishCensus: rp.Census}

	// Without a pinned certificate: no credentials, no census.
	if sf := x.redfishSessions(ctx, mc, a); sf.Got || !strings.Contains(sf.Err, "not the pinned one") {
		t.Fatalf("unpinned: %+v", sf)
	}
	// A check pins the certificate on first use.
	tg, err := x.target(ctx, mc, a)
	if err != nil {
		t.Fatal(err)
	}
	if o := rp.Check(ctx, tg); o.State != state.Connectable {
		t.Fatalf("check: %s/%s %s", o.State, o.Reason, o.Message)
	}

	// The manager's kept session (same address and user) and another
	// console's from 127.0.0.2.
	client := func(local net.IP) *redfish.Client {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: local}}
		t := &http.Transport{DialContext: d.DialContext, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // test service
		return &redfish.Client{HTTP: &http.Client{Transport: t}, Base: "https://" + ap.String(), User: sim.AdminUser, Password: []byte("census-pw-1"), Timeout: 5 * time.Second}
	}
	kept, other := client(net.IPv4(127, 0, 0, 1)), client(net.IPv4(127, 0, 0, 2))
	for _, c := range []*redfish.Client{kept, other} {
		if err := c.Login(ctx, redfish.DefaultSessions); err != nil {
			t.Fatal(err)
		}
		defer c.Logout(ctx)
	}

	sf := x.redfishSessions(ctx, mc, a)
	if !sf.Got || sf.Err != "" || sf.Active != 3 || len(sf.Others) != 2 || !sf.Self.Ours || sf.Self.Console != "127.0.0.1" {
		t.Fatalf("census: %+v", sf)
	}
	var foreign []HeldSession
	for _, o := range sf.Others {
		if o.Foreign() {
			foreign = append(foreign, o)
		}
	}
	if len(foreign) != 1 || foreign[0].Console != "127.0.0.2" || foreign[0].User != sim.AdminUser || foreign[0].ID == "" {
		t.Fatalf("foreign sessions %+v of %+v", foreign, sf.Others)
	}
	// The census logged out: the next one sees the same two others.
	es, total, _, err := rp.Census(ctx, tg)
	if err != nil || total != 3 {
		t.Fatalf("second census: %d %+v %v", total, es, err)
	}
	if _, _, _, err := rp.Census(ctx, probe.Target{Name: "someone-else", Addr: tg.Addr, User: tg.User, Password: tg.Password}); !errors.Is(err, probe.ErrCertNotPinned) {
		t.Fatalf("another machine's pin (none): %v", err)
	}
}
