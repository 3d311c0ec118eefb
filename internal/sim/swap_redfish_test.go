package sim

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/guid"
)

// redfishUUID reads the service root's UUID at addr (no login: the root is
// public), "" when nothing answers.
func redfishUUID(t *testing.T, addr netip.AddrPort) string {
	t.Helper()
	c := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // the test reads the UUID, not the certificate
	defer c.CloseIdleConnections()
	resp, err := c.Get("https://" + addr.String() + "/redfish/v1/")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var root struct{ UUID string }
	if err := json.NewDecoder(resp.Body).Decode(&root); err != nil {
		t.Fatalf("service root at %s: %v", addr, err)
	}
	return root.UUID
}

// TestSwapMovesRedfishToo: with Redfish, a swap (at start or through Swap)
// exchanges the Redfish endpoints as well as the IPMI ones: each
// registered Redfish endpoint answers with the other BMC's UUID, and the
// inventory still names the registered endpoints. Swapping back restores
// them.
func TestSwapMovesRedfishToo(t *testing.T) {
	f := newTestFleet(t, Config{Count: 4, Seed: 5, Redfish: true, Swaps: [][]string{{"bmc-00003", "bmc-00004"}}}, true)
	bs := f.BMCs()
	x, y := bs[0], bs[1]
	hx, hy := x.RedfishAddr(), y.RedfishAddr()
	if got := redfishUUID(t, hx); got != x.GUID().String() {
		t.Fatalf("before the swap %s answers %q, want %s's %s", hx, got, x.Name(), x.GUID())
	}
	if err := f.Swap(x.Name(), y.Name()); err != nil {
		t.Fatal(err)
	}
	if x.RedfishAddr() != hy || y.RedfishAddr() != hx {
		t.Errorf("after the swap %s serves Redfish at %s, %s at %s", x.Name(), x.RedfishAddr(), y.Name(), y.RedfishAddr())
	}
	if got := redfishUUID(t, hx); got != y.GUID().String() {
		t.Errorf("after the swap %s answers %q, want %s's %s", hx, got, y.Name(), y.GUID())
	}
	if got := redfishUUID(t, hy); got != x.GUID().String() {
		t.Errorf("after the swap %s answers %q, want %s's %s", hy, got, x.Name(), x.GUID())
	}
	inv := f.Inventory("")
	if m := inv.Machines[0]; m.Protocol != "redfish" || m.Port != int(hx.Port()) || m.Address != hx.Addr().String() {
		t.Errorf("inventory names %s:%d (%s), want the registered %s", m.Address, m.Port, m.Protocol, hx)
	}
	if err := f.Swap(y.Name(), x.Name()); err != nil {
		t.Fatal(err)
	}
	if got := redfishUUID(t, hx); got != x.GUID().String() {
		t.Errorf("swapped back: %s answers %q", hx, got)
	}

	// Swapped from the start.
	z, w := bs[2], bs[3]
	zHome := netip.AddrPortFrom(netip.MustParseAddr(inv.Machines[2].Address), uint16(inv.Machines[2].Port))
	if got := redfishUUID(t, zHome); got != w.GUID().String() {
		t.Errorf("start-time swap: %s's registered endpoint answers %q, want %s's %s", z.Name(), got, w.Name(), w.GUID())
	}
}

// TestExportProtocol: a Redfish fleet's inventory names its Redfish
// accounts by default and its IPMI accounts when asked (every BMC answers
// both: a login over each succeeds at the exported endpoint); a Redfish
// export of a fleet without Redfish, or an unknown protocol, is refused
// before anything starts.
func TestExportProtocol(t *testing.T) {
	f := newTestFleet(t, Config{Count: 2, Seed: 5, Redfish: true}, true)
	b := f.BMCs()[1]
	rf, ip := f.InventoryAs("", "").Machines[1], f.InventoryAs("", "ipmi").Machines[1]
	if rf.Protocol != "redfish" || rf.Port != int(b.RedfishAddr().Port()) {
		t.Errorf("default export: %s port %d, want redfish %s", rf.Protocol, rf.Port, b.RedfishAddr())
	}
	if ip.Protocol != "ipmi" || ip.Port != int(b.HomeAddr().Port()) || ip.Address != b.HomeAddr().Addr().String() {
		t.Errorf("ipmi export: %s %s:%d, want ipmi %s", ip.Protocol, ip.Address, ip.Port, b.HomeAddr())
	}
	at := func(m string, port int) netip.AddrPort {
		return netip.AddrPortFrom(netip.MustParseAddr(m), uint16(port))
	}
	if _, g, err := handshake(t, at(ip.Address, ip.Port), AdminUser); err != nil || guid.GUID(g) != b.GUID() {
		t.Errorf("IPMI login at the exported endpoint: %x %v", g, err)
	}
	if got := redfishUUID(t, at(rf.Address, rf.Port)); got != b.GUID().String() {
		t.Errorf("Redfish at the exported endpoint: %q", got)
	}

	for _, c := range []struct {
		cfg   Config
		proto string
	}{
		{Config{Count: 1}, "redfish"},
		{Config{Count: 1, Redfish: true}, "snmp"},
	} {
		err := Run(context.Background(), c.cfg, RunOptions{ExportProtocol: c.proto}, io.Discard)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != "export-protocol" {
			t.Errorf("export %s of %+v: %v, want an export-protocol error", c.proto, c.cfg, err)
		}
	}
}
