package ipmi

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/peertest"
)

// startEnclosureSim is peertest.StartEnclosureSim with this package's
// engine pinging for readiness.
func startEnclosureSim(t *testing.T, slots int) (peertest.IPMISim, netip.AddrPort) {
	t.Helper()
	eng, err := New(Config{Sockets: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	return peertest.StartEnclosureSim(t, slots, func(a netip.AddrPort) bool {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_, err := eng.Ping(ctx, a)
		return err == nil
	})
}

// TestBridgeOpenIPMISim: standard bridging (Send Message with response
// tracking) to blade controllers on ipmi_sim's IPMB, as ipmitool -b 0 -t
// ADDR does: Get Device ID through the enclosure manager, the NAK of a
// stopped controller, a refused request, and the PICMG lamp test with
// read-back.
func TestBridgeOpenIPMISim(t *testing.T) {
	sim, console := startEnclosureSim(t, 2)
	eng, err := New(Config{Sockets: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	ctx := context.Background()
	s, err := eng.Open(ctx, sim.Addr, Credentials{User: "admin", Password: []byte("em-pass-1"), Privilege: PrivilegeOperator})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	step := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 2*time.Second) }
	// An RMCP+ session starts at User privilege; driving LEDs needs
	// Operator (ipmi_sim refuses the bridged request with 0xD4 otherwise).
	c, cancel := step()
	err = s.SetPrivilege(c, PrivilegeOperator)
	cancel()
	if err != nil {
		t.Fatal(err)
	}

	c, cancel = step()
	d, err := s.BridgedDeviceID(c, Bridge{Target: 0x84})
	cancel()
	if err != nil || d.DeviceID.DeviceID != 2 || d.ManufacturerID != 0x1291 || d.ProductID != 0xf03 || d.Chassis || d.Firmware() != "2.03" {
		t.Fatalf("bridged Get Device ID: %+v %v", d, err)
	}
	// The lamp test: the shelf manager overrides the blade's blue LED on,
	// reads it back lit, and gives it back to local control.
	c, cancel = step()
	before, err := s.FRULEDState(c, Bridge{Target: 0x82}, 0, 0)
	cancel()
	if err != nil || before.Lit || before.Override {
		t.Fatalf("LED before: %+v %v", before, err)
	}
	c, cancel = step()
	err = s.SetFRULED(c, Bridge{Target: 0x82}, 0, 0, true)
	cancel()
	if err != nil {
		t.Fatalf("LED on: %v", err)
	}
	c, cancel = step()
	lit, err := s.FRULEDState(c, Bridge{Target: 0x82}, 0, 0)
	cancel()
	if err != nil || !lit.Lit || !lit.Override {
		t.Fatalf("LED read back: %+v %v", lit, err)
	}
	c, cancel = step()
	err = s.SetFRULED(c, Bridge{Target: 0x82}, 0, 0, false)
	cancel()
	if err != nil {
		t.Fatalf("LED back to local control: %v", err)
	}
	c, cancel = step()
	after, err := s.FRULEDState(c, Bridge{Target: 0x82}, 0, 0)
	cancel()
	if err != nil || after.Lit || after.Override {
		t.Fatalf("LED after: %+v %v", after, err)
	}

	// A controller stopped from outside: the IPMB NAKs its address.
	if out, err := peertest.IPMISimCommand(console, "mc_disable 0x84"); err != nil {
		t.Fatalf("mc_disable: %v %q", err, out)
	}
	c, cancel = step()
	_, err = s.BridgedDeviceID(c, Bridge{Target: 0x84})
	cancel()
	var be *BridgeError
	if !errors.As(err, &be) || !be.NAK() || be.Refused() || !strings.Contains(err.Error(), "NAK on write") {
		t.Fatalf("stopped controller: %v", err)
	}
	// An address nobody has: the same NAK. A request the blade does not
	// know: its own completion code, not a bridge error.
	c, cancel = step()
	_, err = s.Bridged(c, Bridge{Target: 0x82}, 0x06, 0x04, nil)
	cancel()
	var ce *CompletionError
	if !errors.As(err, &ce) || ce.Code != 0xc1 || errors.As(err, &be) {
		t.Fatalf("unknown command on the blade: %v", err)
	}
	// The session still works after all that.
	c, cancel = step()
	if _, err := s.GetDeviceID(c); err != nil {
		t.Fatalf("the enclosure manager's own Get Device ID: %v", err)
	}
	cancel()
}
