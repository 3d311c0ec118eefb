package gather

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/ipmi"
	"github.com/lightsout/lightsout/internal/peertest"
	"github.com/lightsout/lightsout/internal/sim"
	"github.com/lightsout/lightsout/internal/store"
)

// emSim runs OpenIPMI's ipmi_sim as a standard enclosure manager with
// one blade controller per slot (peertest.StartEnclosureSim).
func emSim(t *testing.T, slots int) (peertest.IPMISim, netip.AddrPort) {
	t.Helper()
	eng, err := ipmi.New(ipmi.Config{Sockets: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	return peertest.StartEnclosureSim(t, slots, func(a netip.AddrPort) bool {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_, err := eng.Ping(ctx, a)
		return err == nil
	})
}

// TestExecutorEnclosureIPMISim: enclosure isolation through standard IPMI
// against a third-party enclosure manager. The blades' network side is the
// simulator's BMCs; their controllers behind the enclosure manager are
// ipmi_sim's MCs on its IPMB. Every fault is made from outside: a blade's
// LAN silenced, its controller stopped on ipmi_sim's console, the
// enclosure manager's process stopped.
func TestExecutorEnclosureIPMISim(t *testing.T) {
	em, console := emSim(t, 3)
	e := newEnvWith(t, sim.Config{Count: 4, Seed: 11, Password: "gather-pass"})
	ctx := context.Background()
	enc := store.Enclosure{Name: "shelf-1", Address: em.Addr.Addr().String(), Port: int(em.Addr.Port()), User: "admin",
		Password: []byte("em-pass-1"), Slots: 3, Kind: "ipmb", IPMB: "0x82+2"}
	if err := e.st.AddEnclosure(ctx, &enc); err != nil {
		t.Fatal(err)
	}
	for slot := 1; slot <= 3; slot++ {
		m, _ := e.machine(t, fmt.Sprintf("bmc-%05d", slot))
		m.Enclosure, m.Slot = "shelf-1", slot
		if err := e.st.UpdateMachine(ctx, &m); err != nil {
			t.Fatal(err)
		}
	}
	run := func(name string, cause Cause, conf Confidence, words ...string) Report {
		t.Helper()
		m, a := e.machine(t, name)
		rep := e.x.Run(ctx, m, a)
		d := rep.Diagnosis
		text := strings.Join(append(append([]string{d.Summary, d.Remedy}, d.Evidence...), d.RuledOut...), "\n")
		if d.Cause != cause || d.Confidence != conf {
			t.Fatalf("%s: %s (%s) via %v, want %s (%s)\n%s", name, d.Cause, d.Confidence, rep.Steps, cause, conf, text)
		}
		for _, w := range words {
			if !strings.Contains(text, w) {
				t.Errorf("%s: %s lacks %q\n%s", name, cause, w, text)
			}
		}
		return rep
	}

	mcCmd := func(cmd string) {
		t.Helper()
		if out, err := peertest.IPMISimCommand(console, cmd); err != nil {
			t.Fatalf("ipmi_sim %s: %v %q", cmd, err, out)
		}
	}
	// The case: a standard enclosure manager recorded as kind oem
	// (the default) refuses lightsout's own commands (ipmi_sim: 0xD4).
	// Standard bridging at the default addresses reaches its blades, so
	// the blade is asked that way, and the evidence says to set the kind.
	if err := e.fleet.SetFaults("bmc-00002", sim.Faults{Silent: true}); err != nil {
		t.Fatal(err)
	}
	enc.Kind, enc.IPMB = "oem", ""
	if err := e.st.UpdateEnclosure(ctx, &enc); err != nil {
		t.Fatal(err)
	}
	rep := run("bmc-00002", CauseBladeLAN, High, "refused lightsout's Get Blade Status (NetFn 0x30) for slot 2 with completion code 0xd4", "asked instead by standard IPMI bridging", "set the enclosure's kind to ipmb")
	// No controller answers that way either: the refusal stands, about
	// the request — the remedy is the kind, not the account.
	for _, a := range []string{"0x82", "0x84", "0x86"} {
		mcCmd("mc_disable " + a)
	}
	rep = run("bmc-00002", CauseBladeBMC, Low, "refused lightsout's Get Blade Status (NetFn 0x30)", "not the account", "set the enclosure's kind to ipmb")
	if strings.Contains(rep.Diagnosis.Remedy, "lightsout enclosures set") {
		t.Errorf("the remedy blames the account: %s", rep.Diagnosis.Remedy)
	}
	for _, a := range []string{"0x82", "0x84", "0x86"} {
		mcCmd("mc_enable " + a)
	}
	enc.Kind, enc.IPMB = "ipmb", "0x82+2"
	if err := e.st.UpdateEnclosure(ctx, &enc); err != nil {
		t.Fatal(err)
	}

	// blade_lan: slot 2's network side is silent, its controller answers
	// the enclosure manager over the IPMB.
	rep = run("bmc-00002", CauseBladeLAN, High, "Send Message to IPMB address 0x84", "device 2, firmware 2.03", "not a chassis device", "LAN settings")
	if v := rep.Facts.BladeView; v == nil || !v.Status.BMCAnswers || v.PowerKnown {
		t.Errorf("blade view %+v", v)
	}

	// bmc_failed: its controller stopped too; the enclosure manager still
	// reaches slots 1 and 3 over the same IPMB.
	mcCmd("mc_disable 0x84")
	run("bmc-00002", CauseBMCFailed, Medium, "NAK on write", "2 of the 2 other blades' controllers answer", "reseat the blade in slot 2")

	// em_bmc_path: the enclosure manager reaches no blade controller,
	// while the other blades answer on the network.
	mcCmd("mc_disable 0x82")
	mcCmd("mc_disable 0x86")
	run("bmc-00002", CauseEMBMCPath, Medium, "none of the 2 other blades' controllers answers", "reseat the enclosure manager of enclosure shelf-1")
	for _, a := range []string{"0x82", "0x84", "0x86"} {
		mcCmd("mc_enable " + a)
	}
	run("bmc-00002", CauseBladeLAN, High) // and back

	// enclosure_down / em_card: the enclosure manager's process stopped.
	if err := em.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer em.Process.Signal(syscall.SIGCONT)
	run("bmc-00002", CauseEMCard, Medium, "does not answer a ping", "2 of the 2 other blades")
	for _, b := range []string{"bmc-00001", "bmc-00003"} {
		if err := e.fleet.SetFaults(b, sim.Faults{Silent: true}); err != nil {
			t.Fatal(err)
		}
	}
	run("bmc-00002", CauseEnclosureDown, High, "0 of the 2 other blades of enclosure shelf-1 answer")
	if err := em.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}

	// enclosure_tray: the enclosure manager answers, its blades do not.
	run("bmc-00002", CauseEnclosureTray, High, "answers a ping")
}

// TestExecutorEnclosureBridgingSim: the simulator's enclosure manager
// recorded as kind ipmb answers standard bridging inside its Send Message
// response (the other form BMCs use; ipmi_sim sends a second message):
// blade_lan with the blade's power (its controller is a chassis device),
// bmc_failed when the blade's BMC is dead. An "enclosure manager" that is
// a plain BMC logs in and refuses Send Message (0xC1): a finding about
// the request, naming the kind, never the account.
func TestExecutorEnclosureBridgingSim(t *testing.T) {
	e := newEnvWith(t, sim.Config{Count: 4, Seed: 9, Password: "gather-pass", Enclosures: []sim.EnclosureConfig{{Name: "enc-r", Blades: 3}}})
	ctx := context.Background()
	enc, err := e.st.Enclosure(ctx, "enc-r")
	if err != nil {
		t.Fatal(err)
	}
	enc.Kind, enc.IPMB = "ipmb", "0x82+2"
	if err := e.st.UpdateEnclosure(ctx, &enc); err != nil {
		t.Fatal(err)
	}
	m, a := e.machine(t, "bmc-00002")
	run := func(cause Cause, conf Confidence, words ...string) Report {
		t.Helper()
		rep := e.x.Run(ctx, m, a)
		d := rep.Diagnosis
		text := strings.Join(append(append([]string{d.Summary, d.Remedy}, d.Evidence...), d.RuledOut...), "\n")
		if d.Cause != cause || d.Confidence != conf {
			t.Fatalf("%s (%s) via %v %+v, want %s (%s)\n%s", d.Cause, d.Confidence, rep.Steps, rep.Facts.BladeView, cause, conf, text)
		}
		for _, w := range words {
			if !strings.Contains(text, w) {
				t.Errorf("%s lacks %q\n%s", cause, w, text)
			}
		}
		return rep
	}
	if err := e.fleet.SetFaults("bmc-00002", sim.Faults{Lossy: 1}); err != nil {
		t.Fatal(err)
	}
	rep := run(CauseBladeLAN, High, "Send Message to IPMB address 0x84", "device 2", "(power on)")
	if !rep.Facts.BladeView.PowerKnown {
		t.Errorf("power not read from a chassis device: %+v", rep.Facts.BladeView)
	}
	if err := e.fleet.SetFaults("bmc-00002", sim.Faults{Silent: true}); err != nil {
		t.Fatal(err)
	}
	run(CauseBMCFailed, Medium, "completion code 0x83", "2 of the 2 other blades' controllers answer")

	// The enclosure's address points at a plain BMC (bmc-00004's).
	_, other := e.machine(t, "bmc-00004")
	enc.Address, enc.Port = other.Address, other.Port
	if err := e.st.UpdateEnclosure(ctx, &enc); err != nil {
		t.Fatal(err)
	}
	rep = run(CauseBladeBMC, Low, "refused Send Message to IPMB address 0x84", "not the account", "set the enclosure's kind to oem")
	if rep.Facts.BladeView.RefusedCode != 0xc1 || strings.Contains(rep.Diagnosis.Remedy, "lightsout enclosures set") {
		t.Errorf("refusal: %+v\n%s", rep.Facts.BladeView, rep.Diagnosis.Remedy)
	}
}
