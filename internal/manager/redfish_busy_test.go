package manager_test

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/diag"
	"github.com/lightsout/lightsout/internal/manager"
	"github.com/lightsout/lightsout/internal/redfish"
	"github.com/lightsout/lightsout/internal/sim"
	"github.com/lightsout/lightsout/internal/state"
)

// TestDiagRedfishBusyAutocorrect: through the manager (the monitor's
// prober, which keeps a session per BMC), a simulated Redfish BMC whose
// SessionService is full (redfish_session_limit 3: two sessions an earlier
// run of this host left as the account's user, one of another console on
// 127.0.0.2) answers the re-login after its kept session expired with 503.
// Diagnose with autocorrect deletes exactly the two stale sessions (audited
// as a change), the channel is Connectable without Busy again, and the
// other console's session is still there.
func TestDiagRedfishBusyAutocorrect(t *testing.T) {
	ctx := context.Background()
	const pw = "busy-redfish-pw1"
	cfg := sim.Config{Count: 1, Seed: 13, Password: pw, Redfish: true}
	if os.Geteuid() == 0 {
		cfg.BaseAddr = "127.83.0.1"
	} else {
		cfg.BaseAddr, cfg.BasePort = "127.0.0.1", 26000+os.Getpid()%20000
	}
	f, err := sim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	srv := fastServer(t, "")
	importFleet(t, srv, f)
	b := f.BMCs()[0]
	waitState(t, srv, b.Name(), state.Connectable) // pinned, a session kept
	base := "https://" + b.RedfishAddr().String()
	client := func(local net.IP) *redfish.Client {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: local}}
		tr := &http.Transport{DialContext: d.DialContext, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // test service
		return &redfish.Client{HTTP: &http.Client{Transport: tr}, Base: base, User: sim.AdminUser, Password: []byte(pw), Timeout: 5 * time.Second}
	}
	var stale []string
	for range 2 {
		c := client(net.IPv4(127, 0, 0, 1))
		if err := c.Login(ctx, redfish.DefaultSessions); err != nil {
			t.Fatal(err)
		}
		stale = append(stale, c.Session().Location)
	}
	other := client(net.IPv4(127, 0, 0, 2))
	if err := other.Login(ctx, redfish.DefaultSessions); err != nil {
		t.Fatal(err)
	}
	otherURI := other.Session().Location
	if err := f.SetFaults(b.Name(), sim.Faults{RedfishSessionLimit: 3}); err != nil {
		t.Fatal(err)
	}
	// The monitor's kept session expires on the BMC: the table is full.
	admin := client(net.IPv4(127, 0, 0, 1))
	admin.UseBasic()
	es, _, err := admin.Sessions(ctx, redfish.DefaultSessions)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if !slices.Contains(stale, e.URI) && e.URI != otherURI {
			if _, err := admin.Do(ctx, http.MethodDelete, e.URI, nil); err != nil {
				t.Fatal(err)
			}
		}
	}

	res, err := srv.Manager.Diagnose(ctx, operator, manager.DiagRequest{Machines: []string{b.Name()}, Autocorrect: true}, nil)
	if err != nil || len(res) != 1 {
		t.Fatalf("%+v %v", res, err)
	}
	r := res[0]
	d := r.Diagnosis
	text := strings.Join(append([]string{d.Summary, d.Remedy}, d.Evidence...), "\n")
	if d.Cause != diag.CauseStaleOwnSessions || d.Confidence != diag.Medium || !slices.Contains(r.Steps, diag.NeedSessions) ||
		!strings.Contains(text, "held by another client: user "+sim.AdminUser+", from 127.0.0.2") {
		t.Fatalf("%s (%s) steps %v\n%s", d.Cause, d.Confidence, r.Steps, text)
	}
	if len(r.Changes) != 1 || r.Changes[0].Kind != diag.ActCloseSessions || r.Changes[0].Result != "ok" {
		t.Fatalf("changes %+v", r.Changes)
	}
	if r.After == nil || r.After.State != state.Connectable || slices.Contains(r.After.Conditions, state.Busy) {
		t.Fatalf("after %+v", r.After)
	}
	es, _, err = admin.Sessions(ctx, redfish.DefaultSessions)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, e := range es {
		left = append(left, e.URI)
		if slices.Contains(stale, e.URI) {
			t.Fatalf("stale session %s not deleted: %v", e.URI, es)
		}
	}
	if !slices.Contains(left, otherURI) {
		t.Fatalf("the other console's session %s was deleted: %v", otherURI, left)
	}
}
