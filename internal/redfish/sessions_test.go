package redfish_test

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/peertest"
	"github.com/lightsout/lightsout/internal/redfish"
	"github.com/lightsout/lightsout/internal/sim"
)

func insecureClient() *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // test services, self-signed
}

// TestSessionCensusSim: the census of a simulated BMC lists every open
// session with its user and the address it came from, and marks the
// reading client's own; a session logged out is gone from the next one;
// read with Basic, none is ours.
func TestSessionCensusSim(t *testing.T) {
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
	client := func() *redfish.Client {
		return &redfish.Client{HTTP: insecureClient(), Base: "https://" + b.RedfishAddr().String(), User: sim.AdminUser,
			Password: []byte("census-pw-1"), Timeout: 5 * time.Second}
	}
	ours, other := client(), client()
	for _, c := range []*redfish.Client{ours, other} {
		if err := c.Login(ctx, redfish.DefaultSessions); err != nil {
			t.Fatal(err)
		}
	}
	es, total, err := ours.Sessions(ctx, "")
	if err != nil || total != 2 || len(es) != 2 {
		t.Fatalf("census: %+v, %d, %v", es, total, err)
	}
	n := 0
	for _, e := range es {
		if e.User != sim.AdminUser || e.Client != "127.0.0.1" || e.ID == "" || e.Err != "" {
			t.Errorf("entry %+v", e)
		}
		if e.Ours {
			n++
			if e.URI != ours.Session().Location {
				t.Errorf("ours is %s, our session is %s", e.URI, ours.Session().Location)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d sessions marked ours, want 1: %+v", n, es)
	}
	if err := other.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	if es, total, err = ours.Sessions(ctx, ""); err != nil || total != 1 || len(es) != 1 || !es[0].Ours {
		t.Fatalf("after the other's logout: %+v, %d, %v", es, total, err)
	}
	basic := client()
	basic.UseBasic()
	if es, _, err = basic.Sessions(ctx, ""); err != nil || len(es) != 1 || es[0].Ours {
		t.Fatalf("with Basic: %+v, %v", es, err)
	}
	_ = ours.Logout(ctx)
}

// TestSessionCensusMockup: against DMTF's mockup server (public-rackmount1,
// which lists a session of user Administrator), the census finds that
// session and does not take it for ours.
func TestSessionCensusMockup(t *testing.T) {
	p := peertest.StartMockup(t)
	ctx := context.Background()
	c := &redfish.Client{HTTP: insecureClient(), Base: p.URL, User: "admin", Password: []byte("any"), Timeout: 10 * time.Second}
	if err := c.Login(ctx, redfish.DefaultSessions); err != nil {
		t.Fatal(err)
	}
	es, total, err := c.Sessions(ctx, "")
	if err != nil || total < 1 {
		t.Fatalf("census: %+v, %d, %v", es, total, err)
	}
	found := false
	for _, e := range es {
		if e.ID == "1234567890ABCDEF" {
			found = true
			if e.User != "Administrator" || e.Ours {
				t.Errorf("the mockup's session: %+v", e)
			}
		}
	}
	if !found {
		t.Errorf("the mockup's session 1234567890ABCDEF not in the census: %+v", es)
	}
}
