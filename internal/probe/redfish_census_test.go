package probe

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/peertest"
)

// TestCensusMockup: the Redfish session census through RedfishProber.Census
// against DMTF's Redfish-Mockup-Server over HTTPS: with the peer's
// certificate pinned it lists the mockup's own session (user
// Administrator, not ours); for a machine with no pin nothing is read and
// no credentials are sent.
func TestCensusMockup(t *testing.T) {
	p := peertest.StartMockup(t)
	ctx := context.Background()
	u, err := url.Parse(p.URL)
	if err != nil {
		t.Fatal(err)
	}
	addr, err := netip.ParseAddrPort(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	// The peer's certificate, pinned as a first check would.
	conn, err := tls.Dial("tcp", u.Host, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // fingerprint taken to pin
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(conn.ConnectionState().PeerCertificates[0].Raw)
	conn.Close()
	pins := &MemPins{}
	if err := pins.PinCert(ctx, "mockup", hex.EncodeToString(sum[:])); err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // pinned by fingerprint
	defer tr.CloseIdleConnections()
	rp := NewRedfishProber(tr, pins)
	tg := Target{Name: "mockup", Addr: addr, User: "admin", Password: []byte("any"), Timeout: 10 * time.Second}
	es, total, _, err := rp.Census(ctx, tg)
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
	tg.Name = "unpinned"
	if _, _, _, err := rp.Census(ctx, tg); !errors.Is(err, ErrCertNotPinned) {
		t.Fatalf("unpinned: %v", err)
	}
}

func TestSameClient(t *testing.T) {
	for _, c := range []struct {
		a, b string
		same bool
	}{
		{"10.0.0.5", "10.0.0.5", true},
		{"::ffff:10.0.0.5", "10.0.0.5", true},
		{"fe80::1%eth0", "fe80::1", true},
		{"10.0.0.5", "10.0.0.6", false},
		{"", "", false},
		{"10.0.0.5", "", false},
		{"bmc-host", "BMC-HOST", true},
	} {
		if got := SameClient(c.a, c.b); got != c.same {
			t.Errorf("SameClient(%q, %q) = %v", c.a, c.b, got)
		}
	}
}
