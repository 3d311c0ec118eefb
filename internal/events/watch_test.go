package events

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/monitor"
	"github.com/lightsout/lightsout/internal/probe"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
)

func codes(evs []store.Event) string {
	var s []string
	for _, e := range evs {
		s = append(s, e.Code+"@"+e.Source)
	}
	return strings.Join(s, " ")
}

func TestSampleOf(t *testing.T) {
	o := monitor.Outcome{AccountID: 12, Machine: "web-1", Enclosure: "encl-1", Address: "bmc-web-1.example", Declared: state.Connectable,
		Observation: probe.Observation{Host: "10.0.4.17:623", State: state.Connectable, At: t0,
			Conditions: []state.Condition{state.Degraded},
			Evidence:   probe.Evidence{Manufacturer: "Dell", Firmware: "4.40", Requests: 9, Retransmits: 3}}}
	s := SampleOf(o)
	if s.Source != "web-1" || s.AccountID != 12 || s.Enclosure != "encl-1" || s.Address != "10.0.4.17:623" || !s.At.Equal(t0) ||
		s.Lost != 3 || s.Requests != 9 || s.Retransmits != 3 || s.Timeouts != 0 ||
		s.Firmware != "Dell 4.40" || s.Declared != state.Connectable || len(s.Conditions) != 1 {
		t.Fatalf("sample %+v", s)
	}
	// Without a resolved host, the account's address.
	o.Observation.Host = ""
	o.Address = "10.0.4.17"
	if s := SampleOf(o); s.Address != "10.0.4.17" {
		t.Fatalf("address %q", s.Address)
	}
}

func TestWatcher(t *testing.T) {
	w := NewWatcher(FloodConfig{Window: time.Minute, Threshold: 10}, CorrelateConfig{})
	conn := func(src, fw string, at float64, lost int, degraded bool) []store.Event {
		s := Sample{Source: src, Address: "10.1.1.1", At: sec(at), Declared: state.Connectable, Observed: state.Connectable,
			Lost: lost, Firmware: fw}
		if degraded {
			s.Conditions = []state.Condition{state.Degraded}
		}
		return w.Observe(s)
	}
	// A fleet: three BMCs on firmware X (in three subnets), three on Y.
	for i := 1; i <= 3; i++ {
		for _, fw := range []string{"X 1.0", "Y 2.0"} {
			src := fmt.Sprintf("%c-%d", fw[0]+32, i)
			if evs := w.Observe(Sample{Source: src, Address: fmt.Sprintf("10.%d.0.%d", i, fw[0]), At: t0,
				Declared: state.Connectable, Observed: state.Connectable, Firmware: fw}); len(evs) != 0 {
				t.Fatalf("healthy check: %s", codes(evs))
			}
		}
	}
	// Degraded: reported on the edge only.
	if got := codes(conn("x-1", "X 1.0", 1, 2, true)); got != "oob.degraded@x-1" {
		t.Fatalf("degraded edge: %q", got)
	}
	if got := codes(conn("x-1", "X 1.0", 2, 2, true)); got != "" {
		t.Fatalf("degraded again: %q", got)
	}
	// x-2 degraded too: 2 of 3 X → a fleet finding for oob.degraded.
	got := codes(conn("x-2", "", 3, 3, true))
	if got != "oob.degraded@x-2 fleet.correlated@fleet:oob.degraded:firmware=X 1.0" {
		t.Fatalf("fleet degraded: %q", got)
	}
	// A clean check ends x-1's Degraded; x-1 degraded later is news again.
	conn("x-1", "", 4, 0, false)
	if got := codes(conn("x-1", "", 5, 2, true)); !strings.HasPrefix(got, "oob.degraded@x-1") {
		t.Fatalf("degraded after recovery: %q", got)
	}
	// Floods on y-1 and y-2 (firmware Y): one flood each, one finding.
	got = codes(conn("y-1", "", 10, 12, false)) + " " + codes(conn("y-2", "", 11, 11, false))
	if got != "oob.timeout_flood@y-1 oob.timeout_flood@y-2 fleet.correlated@fleet:oob.timeout_flood:firmware=Y 2.0" {
		t.Fatalf("floods: %q", got)
	}
	// Declared states are held while the monitor says so.
	nr := func(src string, at float64, declared state.OOB) []store.Event {
		return w.Observe(Sample{Source: src, Address: "10.9.9.9", At: sec(at), Declared: declared, Observed: declared, Lost: 1})
	}
	nr("x-3", 12, state.NotResponding)
	if !w.Correlate.raised[OOBNotResponding]["x-3"].held {
		t.Fatal("NotResponding not held")
	}
	nr("x-3", 13, state.Connectable)
	if _, ok := w.Correlate.raised[OOBNotResponding]["x-3"]; ok {
		t.Fatal("NotResponding still held after recovery")
	}
	// The flood ends on a tick: the correlator's hold is released with it.
	evs := w.Tick(sec(80))
	if got := codes(evs); got != "oob.timeout_flood_cleared@y-1 oob.timeout_flood_cleared@y-2" &&
		got != "oob.timeout_flood_cleared@y-2 oob.timeout_flood_cleared@y-1" {
		t.Fatalf("tick: %q", got)
	}
	if len(w.Correlate.raised[OOBTimeoutFlood]) != 0 {
		t.Fatalf("flood holds kept: %v", w.Correlate.raised[OOBTimeoutFlood])
	}
	// Recorded one-shot codes are raised; held codes and fleet events are not.
	if evs := w.Recorded(store.Event{Code: AuditCipher0Enabled, Source: "y-1", At: sec(81)}); len(evs) != 0 {
		t.Fatal(codes(evs))
	}
	evs = w.Recorded(store.Event{Code: AuditCipher0Enabled, Source: "y-3", At: sec(82)})
	if got := codes(evs); got != "fleet.correlated@fleet:audit.cipher0_enabled:firmware=Y 2.0" {
		t.Fatalf("audit finding: %q", got)
	}
	w.Recorded(store.Event{Code: OOBNotResponding, Source: "x-1", At: sec(83)})
	w.Recorded(store.Event{Code: FleetCorrelated, Source: "fleet:x", At: sec(83)})
	w.Recorded(store.Event{Code: "vendor.unknown", Source: "x-1", At: sec(83)})
	if len(w.Correlate.raised[OOBNotResponding]) != 0 || len(w.Correlate.raised[FleetCorrelated]) != 0 ||
		len(w.Correlate.raised["vendor.unknown"]) != 0 {
		t.Fatalf("raised %v", w.Correlate.raised)
	}
	if evs := w.Observe(Sample{}); evs != nil {
		t.Fatal("a sample without a source")
	}
}

func TestCatalogue(t *testing.T) {
	cat := Catalogue()
	seen := map[string]bool{}
	for i, k := range cat {
		if i > 0 && cat[i-1].Code >= k.Code {
			t.Errorf("not sorted at %s", k.Code)
		}
		// evcode's severities are the store's words.
		if _, err := store.ParseSeverity(string(k.Severity)); seen[k.Code] || k.Summary == "" || err != nil {
			t.Errorf("bad kind %+v", k)
		}
		seen[k.Code] = true
	}
	for _, c := range []string{OOBStateChanged, OOBIdentityMismatch, OOBAuthRefused, OOBNotResponding, OOBTimeoutFlood,
		OOBDegraded, FleetCorrelated, AuditCipher0Enabled, AuditAnonymousLogin, AuditWeakAuth, AuditDefaultPassword, AuditDrift} {
		if !seen[c] {
			t.Errorf("%s not in the catalogue", c)
		}
	}
	doc, err := os.ReadFile("../../docs/events.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range cat {
		if !strings.Contains(string(doc), "| `"+k.Code+"` | "+string(k.Severity)) {
			t.Errorf("docs/events.md does not list %s with severity %s", k.Code, k.Severity)
		}
	}
	if k, ok := Lookup("x.y"); ok || store.Severity(k.Severity) != store.SeverityInfo || k.Dedup != 0 || k.Correlate {
		t.Errorf("unknown code: %+v", k)
	}
	for _, c := range heldCodes {
		if k, _ := Lookup(c); !k.Correlate {
			t.Errorf("held code %s is not correlated", c)
		}
	}
}
