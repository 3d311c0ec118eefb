package gather

import (
	"context"
	"crypto/tls"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/probe"
	"github.com/lightsout/lightsout/internal/sim"
)

// TestExecutorEnclosureRedfish: an enclosure manager of kind redfish —
// the simulator's, serving its Chassis over HTTPS (the enclosure's
// Links.Contains, a Blade chassis per slot with Location.PartLocation,
// PowerState, Status and LocationIndicatorActive) — is asked about a
// silent blade the Redfish way: a blade whose network path drops
// everything while its BMC answers the manager is blade_lan; a broken
// EM↔BMC link whose lamp still lights is em_bmc_path; a dead BMC whose lamp
// stays dark is bmc_failed; the manager and every blade down is
// enclosure_down. The manager's certificate is pinned on first contact: a
// changed one gets no credentials.
func TestExecutorEnclosureRedfish(t *testing.T) {
	e := newEnvWith(t, sim.Config{Count: 4, Seed: 9, Password: "gather-pass", Redfish: true,
		Enclosures: []sim.EnclosureConfig{{Name: "enc-r", Blades: 3}}})
	ctx := context.Background()
	encl, ok := e.fleet.Enclosure("enc-r")
	if !ok {
		t.Fatal("no enclosure enc-r")
	}
	// The inventory records the enclosure as a Redfish one.
	se, err := e.st.Enclosure(ctx, "enc-r")
	if err != nil {
		t.Fatal(err)
	}
	ap := encl.Manager().RedfishAddr()
	se.Kind, se.Protocol, se.Address, se.Port = "redfish", "redfish", ap.Addr().String(), int(ap.Port())
	if err := e.st.UpdateEnclosure(ctx, &se); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.st.Enclosure(ctx, "enc-r"); got.Kind != "redfish" || got.Protocol != "redfish" {
		t.Fatalf("stored %+v", got)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // pinned by fingerprint (EMPins)
	defer tr.CloseIdleConnections()
	pins := &probe.MemPins{}
	e.x.RedfishTransport, e.x.EMPins, e.x.IdentifyWait = tr, pins, 50*time.Millisecond

	blades := encl.Blades()
	// The blades' own channels are IPMI (the fleet's inventory gives the
	// Redfish endpoints of a Redfish fleet).
	for _, b := range blades {
		_, a := e.machine(t, b.Name())
		a.Protocol, a.Address, a.Port = "ipmi", b.HomeAddr().Addr().String(), int(b.HomeAddr().Port())
		if err := e.st.UpdateAccount(ctx, &a); err != nil {
			t.Fatal(err)
		}
	}
	run := func(slot int, f sim.Faults) Report {
		t.Helper()
		b := blades[slot-1]
		if err := e.fleet.SetFaults(b.Name(), f); err != nil {
			t.Fatal(err)
		}
		defer e.fleet.SetFaults(b.Name(), sim.Faults{})
		m, a := e.machine(t, b.Name())
		return e.x.Run(ctx, m, a)
	}
	want := func(rep Report, c Cause, conf Confidence, text ...string) {
		t.Helper()
		d := rep.Diagnosis
		all := strings.Join(append(append([]string{d.Summary, d.Remedy}, d.Evidence...), d.RuledOut...), "\n")
		if d.Cause != c || d.Confidence != conf {
			t.Fatalf("%s (%s) after %v, want %s (%s)\n%s", d.Cause, d.Confidence, rep.Steps, c, conf, all)
		}
		for _, w := range text {
			if !strings.Contains(all, w) {
				t.Fatalf("%s lacks %q:\n%s", c, w, all)
			}
		}
	}

	rep := run(1, sim.Faults{Lossy: 1})
	want(rep, CauseBladeLAN, High, "answers a ping over HTTPS (its Redfish service root)",
		"the enclosure manager's Redfish Chassis /redfish/v1/Chassis/Blade1 (Status Enabled/OK, PowerState On) reports the BMC in slot 1 answering")
	if !slices.Equal(rep.Steps, []Need{NeedEM, NeedSiblings, NeedBladeView}) {
		t.Fatalf("steps %v", rep.Steps)
	}
	if p, _ := pins.CertPin(ctx, "enclosure/enc-r"); len(p) != 64 {
		t.Fatalf("the manager's certificate was not pinned: %q", p)
	}

	rep = run(2, sim.Faults{EMLink: true})
	want(rep, CauseEMBMCPath, High, "Chassis /redfish/v1/Chassis/Blade2 (Status UnavailableOffline/Critical, PowerState not reported)", "identify lamp lit")
	if !slices.Equal(rep.Steps, []Need{NeedEM, NeedSiblings, NeedBladeView, NeedIdentify}) {
		t.Fatalf("steps %v", rep.Steps)
	}
	if blades[1].Status().Identify {
		t.Fatal("the lamp was left on")
	}
	want(run(3, sim.Faults{Silent: true}), CauseBMCFailed, High, "stayed dark")

	// Blades monitored over Redfish are isolated through the Redfish
	// enclosure manager too (their silence is a TCP one).
	rp := probe.NewRedfishProber(tr, &probe.MemPins{})
	e.x.Probers = probe.NewRegistry(e.eng, rp.Check)
	for _, c := range []struct {
		slot  int
		fault sim.Faults
		cause Cause
		text  string
	}{{2, sim.Faults{EMLink: true}, CauseEMBMCPath, "identify lamp lit"}, {3, sim.Faults{Silent: true}, CauseBMCFailed, "stayed dark"}} {
		b := blades[c.slot-1]
		m, a := e.machine(t, b.Name())
		ra := b.RedfishAddr()
		a.Protocol, a.Address, a.Port = "redfish", ra.Addr().String(), int(ra.Port())
		if err := e.fleet.SetFaults(b.Name(), c.fault); err != nil {
			t.Fatal(err)
		}
		rep := e.x.Run(ctx, m, a)
		_ = e.fleet.SetFaults(b.Name(), sim.Faults{})
		want(rep, c.cause, High, c.text, "over HTTPS")
		if !slices.Equal(rep.Steps[:3], []Need{NeedEM, NeedSiblings, NeedBladeView}) {
			t.Fatalf("redfish blade %d: steps %v", c.slot, rep.Steps)
		}
	}

	// A replaced certificate on the manager: no credentials, the blade is
	// not confirmed through it.
	if err := e.fleet.SetFaults(encl.Manager().Name(), sim.Faults{CertReplaced: true}); err != nil {
		t.Fatal(err)
	}
	want(run(3, sim.Faults{Silent: true}), CauseBladeBMC, Low, "presents another certificate", "no credentials sent")
	if err := e.fleet.SetFaults(encl.Manager().Name(), sim.Faults{}); err != nil {
		t.Fatal(err)
	}

	e.x.Timeout = 300 * time.Millisecond
	if err := e.fleet.SetEnclosureDown("enc-r", true); err != nil {
		t.Fatal(err)
	}
	m, a := e.machine(t, blades[0].Name())
	want(e.x.Run(ctx, m, a), CauseEnclosureDown, High, "does not answer a ping over HTTPS")
}
