package ipmi_test

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/ipmi"
	"github.com/lightsout/lightsout/internal/sim"
)

// The diagnosis commands against the simulator over real UDP: cipher
// suites, the session table, closing a session by handle, a locked
// account, and the enclosure manager's blade status and identify lamp.

func diagFleet(t *testing.T) *sim.Fleet {
	t.Helper()
	cfg := sim.Config{Count: 3, Seed: 3, Password: "diag-pass", SessionSlots: 4,
		Enclosures: []sim.EnclosureConfig{{Name: "enc-d", Blades: 2}}}
	for attempt := 0; ; attempt++ {
		if os.Geteuid() == 0 {
			cfg.BaseAddr = netip.AddrFrom4([4]byte{127, 77, byte(os.Getpid()%200 + attempt + 1), 1}).String()
		} else {
			cfg.BaseAddr, cfg.BasePort = "127.0.0.1", 21000+(os.Getpid()*7+attempt*11)%20000
		}
		f, err := sim.New(cfg)
		if err != nil && attempt < 10 {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
}

func engine(t *testing.T, src string) *ipmi.Engine {
	t.Helper()
	cfg := ipmi.Config{Sockets: 1}
	if src != "" {
		cfg.Source = netip.MustParseAddr(src)
	}
	e, err := ipmi.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func tctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

func login(t *testing.T, e *ipmi.Engine, addr netip.AddrPort) *ipmi.Session {
	t.Helper()
	s, err := e.Open(tctx(t), addr, ipmi.Credentials{User: sim.AdminUser, Password: []byte("diag-pass")})
	if err != nil {
		t.Fatalf("open %s: %v", addr, err)
	}
	return s
}

func TestDiagCommandsAgainstSim(t *testing.T) {
	f := diagFleet(t)
	ctx := tctx(t)
	eng := engine(t, "")
	b3, _ := f.BMC("bmc-00003")

	// Cipher suites: the default pair, then what a fault leaves.
	ss, err := eng.CipherSuites(ctx, b3.Addr())
	if err != nil || !slices.Equal(ss, []ipmi.CipherSuite{3, 17}) {
		t.Fatalf("cipher suites: %v %v", ss, err)
	}
	if err := f.SetFaults("bmc-00003", sim.Faults{CipherSuites: sim.Suites(17)}); err != nil {
		t.Fatal(err)
	}
	if ss, err = eng.CipherSuites(ctx, b3.Addr()); err != nil || !slices.Equal(ss, []ipmi.CipherSuite{17}) {
		t.Fatalf("cipher suites under the fault: %v %v", ss, err)
	}
	_, err = eng.Open(ctx, b3.Addr(), ipmi.Credentials{User: sim.AdminUser, Password: []byte("diag-pass"), Suites: []ipmi.CipherSuite{3}})
	if !errors.Is(err, ipmi.ErrNoCipherSuite) {
		t.Fatalf("suite 3 after the fault: %v", err)
	}
	f.ClearFaults("bmc-00003")

	// A locked account: RAKP 2 status 0x09, told apart from an unknown user.
	f.SetFaults("bmc-00003", sim.Faults{Locked: true})
	_, err = eng.Open(ctx, b3.Addr(), ipmi.Credentials{User: sim.AdminUser, Password: []byte("diag-pass")})
	var se *ipmi.StageError
	if !errors.Is(err, ipmi.ErrLocked) || !errors.As(err, &se) || se.Status != 0x09 {
		t.Fatalf("locked: %v", err)
	}
	f.ClearFaults("bmc-00003")
	s := login(t, eng, b3.Addr())
	s.Close(ctx)

	// The session table: two sessions of another console (127.0.0.2), one
	// of ours; ours is told apart by address and port.
	other1, other2 := engine(t, "127.0.0.2"), engine(t, "127.0.0.2")
	o1, o2 := login(t, other1, b3.Addr()), login(t, other2, b3.Addr())
	defer o1.Close(ctx)
	s = login(t, eng, b3.Addr())
	self, all, err := s.Sessions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if self.Handle == 0 || self.Slots != 4 || self.Active != 3 || len(all) != 3 || !self.IPMI20 ||
		self.Privilege != ipmi.PrivilegeAdministrator || self.UserID == 0 {
		t.Fatalf("self %+v, all %+v", self, all)
	}
	if !slices.Contains(eng.LocalPorts(), self.Remote.Port()) || self.Remote.Addr().String() != "127.0.0.1" {
		t.Errorf("our session's console %v, our ports %v", self.Remote, eng.LocalPorts())
	}
	others := 0
	var victim byte
	for _, si := range all {
		if si.Remote.Addr().String() == "127.0.0.2" {
			others++
			victim = si.Handle
		}
	}
	if others != 2 {
		t.Errorf("sessions of the other console: %d (%+v)", others, all)
	}
	if name, err := s.UserName(ctx, self.UserID); err != nil || name != sim.AdminUser {
		t.Errorf("user name: %q %v", name, err)
	}
	// Close one of them by handle; the table shrinks.
	if err := s.CloseHandle(ctx, victim); err != nil {
		t.Fatalf("close by handle: %v", err)
	}
	if self, _, err = s.Sessions(ctx); err != nil || self.Active != 2 {
		t.Errorf("after closing one: %+v %v", self, err)
	}
	var ce *ipmi.CompletionError
	if err := s.CloseHandle(ctx, 0xEE); !errors.As(err, &ce) {
		t.Errorf("closing a handle nobody holds: %v", err)
	}
	s.Close(ctx)
	_ = o2 // closed on the BMC by handle; its engine's close fails harmlessly

	// The enclosure manager's view of its blades.
	enc, _ := f.Enclosure("enc-d")
	em := login(t, eng, enc.Manager().Addr())
	defer em.Close(ctx)
	st, err := em.BladeStatus(ctx, 1)
	if err != nil || !st.Present || !st.BMCAnswers || st.Slot != 1 {
		t.Fatalf("blade 1: %+v %v", st, err)
	}
	if _, err := em.BladeStatus(ctx, 9); !errors.As(err, &ce) || ce.Code != 0xC9 {
		t.Errorf("slot 9: %v", err)
	}
	if _, err := s.BladeStatus(ctx, 1); err == nil {
		t.Error("a rack BMC answered an enclosure command")
	}
	// EM link broken: the BMC does not answer the EM, but its lamp lights.
	f.SetFaults("bmc-00001", sim.Faults{EMLink: true})
	if st, _ = em.BladeStatus(ctx, 1); st.BMCAnswers || st.PowerOn || !st.Present {
		t.Errorf("em_link: %+v", st)
	}
	if err := em.SetBladeIdentify(ctx, 1, true); err != nil {
		t.Fatal(err)
	}
	if on, err := em.BladeIdentify(ctx, 1); !on || err != nil {
		t.Errorf("identify under em_link: %v %v", on, err)
	}
	em.SetBladeIdentify(ctx, 1, false)
	if on, _ := em.BladeIdentify(ctx, 1); on {
		t.Error("identify stayed on")
	}
	// A dead BMC: not answering, and the lamp stays dark.
	f.SetFaults("bmc-00001", sim.Faults{Silent: true})
	em.SetBladeIdentify(ctx, 1, true)
	if on, _ := em.BladeIdentify(ctx, 1); on {
		t.Error("a dead BMC's lamp lit")
	}
	if err := f.SetFaults("bmc-00003", sim.Faults{EMLink: true}); err == nil {
		t.Error("em_link accepted on a rack server")
	}
}
