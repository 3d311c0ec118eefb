package sim

import (
	"context"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/ipmi"
)

// TestSoftOffIgnored: with soft_off_ignored, Chassis Control soft shutdown
// is accepted but the power stays on; hard off still works; without the
// fault soft off powers off. Set through the control API's decoder too.
func TestSoftOffIgnored(t *testing.T) {
	f := newTestFleet(t, Config{Count: 2, Seed: 31}, false)
	eng, err := ipmi.New(ipmi.Config{Sockets: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	control := func(b *BMC, a ipmi.ChassisAction) {
		t.Helper()
		s, err := eng.Open(ctx, b.Addr(), ipmi.Credentials{User: AdminUser, Password: []byte(f.Password())})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close(ctx)
		if err := s.ChassisControl(ctx, a); err != nil {
			t.Fatalf("%s chassis control %#x: %v", b.Name(), a, err)
		}
		st, err := s.ChassisStatus(ctx)
		if err != nil || st.PowerOn != b.PowerOn() {
			t.Fatalf("chassis status %+v %v, simulator says on=%v", st, err, b.PowerOn())
		}
	}

	ignoring, _ := f.BMC("bmc-00001")
	healthy, _ := f.BMC("bmc-00002")
	for _, b := range []*BMC{ignoring, healthy} {
		if err := f.SetPower(b.Name(), true); err != nil {
			t.Fatal(err)
		}
	}
	cs, err := f.ServeControl("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	st, err := NewClient(cs.URL()).SetFaults(ctx, ignoring.Name(), Faults{SoftOffIgnored: true})
	if err != nil || !st.Faults.SoftOffIgnored {
		t.Fatalf("set soft_off_ignored through the API: %+v %v", st.Faults, err)
	}
	if got := ignoring.Faults().Names(); len(got) != 1 || got[0] != "soft_off_ignored" {
		t.Fatalf("names %v", got)
	}

	control(ignoring, ipmi.SoftOff)
	if !ignoring.PowerOn() {
		t.Fatal("soft_off_ignored: soft off powered the host off")
	}
	control(healthy, ipmi.SoftOff)
	if healthy.PowerOn() {
		t.Fatal("healthy BMC: soft off left the host on")
	}
	control(ignoring, ipmi.PowerOff)
	if ignoring.PowerOn() {
		t.Fatal("soft_off_ignored: hard power off left the host on")
	}
	// Cleared: soft off works again.
	if err := f.SetPower(ignoring.Name(), true); err != nil {
		t.Fatal(err)
	}
	if err := f.ClearFaults(ignoring.Name()); err != nil {
		t.Fatal(err)
	}
	control(ignoring, ipmi.SoftOff)
	if ignoring.PowerOn() {
		t.Fatal("faults cleared: soft off left the host on")
	}
}
