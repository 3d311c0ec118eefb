package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/sim"
	"github.com/lightsout/lightsout/internal/sim/simtest"
)

// TestCheckFleetWithEveryFault drives `lightsout check --inventory` through
// the real path — inventory file, password file, UDP to the simulator —
// with one BMC per fault kind, and asserts each is classified as the fault
// implies.
func TestCheckFleetWithEveryFault(t *testing.T) {
	cfg := sim.Config{
		Count: 16, Seed: 42,
		Password:   "fleet-pass-123",
		Enclosures: []sim.EnclosureConfig{{Name: "enc-a", Blades: 4}},
		Faults: map[string]sim.Faults{
			"bmc-00006": {Silent: true},
			"bmc-00007": {PortClosed: true},
			"bmc-00008": {WrongPassword: true},
			"bmc-00009": {UserRemoved: true},
			"bmc-00010": {GUIDReplaced: true},
			"bmc-00011": {SlotsFull: true},
			"bmc-00012": {Slow: sim.Duration(200 * time.Millisecond)},
			"bmc-00013": {Insecure: true},
			"enc-a":     {Silent: true}, // its blades bmc-00001..4 stay up: only the EM is dead
		},
		Swaps: [][]string{{"bmc-00014", "bmc-00015"}},
	}
	// As root: one loopback address per BMC on port 623, like a real
	// fleet. Otherwise consecutive ports on 127.0.0.1.
	fleet := simtest.Start(t, cfg, 74)
	dir := t.TempDir()
	inv := filepath.Join(dir, "fleet.yaml")
	if err := fleet.WritePasswordFile(filepath.Join(dir, "pw")); err != nil {
		t.Fatal(err)
	}
	if err := fleet.ExportInventory(inv, filepath.Join(dir, "pw")); err != nil {
		t.Fatal(err)
	}
	if err := fleet.SetEnclosureDown("enc-a", true); err != nil { // now its blades go silent too
		t.Fatal(err)
	}

	start := time.Now()
	out, code, err := runCLI(t, "check", "--inventory", inv, "--timeout", "2s", "-o", "json")
	if code == 2 {
		t.Fatalf("bad input: %v", err)
	}
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if el := time.Since(start); el > 6*time.Second { // timeout 2s; generous under load
		t.Errorf("fleet classified in %v, want about the 2s timeout", el)
	}
	want := map[string]string{
		"bmc-00001": "NotResponding/silent", // blade behind the dead enclosure
		"bmc-00005": "Connectable/",
		"bmc-00006": "NotResponding/silent",
		"bmc-00007": "NotResponding/port_refused",
		"bmc-00008": "NotAuthenticated/wrong_password",
		"bmc-00009": "NotAuthenticated/unknown_user",
		"bmc-00010": "Invalid/guid_mismatch",
		"bmc-00011": "Connectable/busy",
		"bmc-00012": "Connectable/",
		"bmc-00013": "Connectable/",
		"bmc-00014": "Invalid/guid_mismatch",
		"bmc-00015": "Invalid/guid_mismatch",
		"bmc-00016": "Connectable/",
	}
	got := map[string]map[string]any{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var o map[string]any
		if err := json.Unmarshal([]byte(line), &o); err != nil {
			t.Fatalf("bad JSON line %q: %v", line, err)
		}
		got[o["name"].(string)] = o
	}
	if len(got) != 16 {
		t.Errorf("%d results, want 16", len(got))
	}
	for name, w := range want {
		o := got[name]
		if o == nil {
			t.Errorf("%s: no result", name)
			continue
		}
		r, _ := o["reason"].(string)
		if g := o["state"].(string) + "/" + r; g != w {
			t.Errorf("%s: %s (%s), want %s", name, g, o["message"], w)
		}
	}
	conds := func(name string) string {
		c, _ := got[name]["conditions"].([]any)
		var s []string
		for _, x := range c {
			s = append(s, x.(string))
		}
		return strings.Join(s, ",")
	}
	if c := conds("bmc-00011"); c != "Busy" {
		t.Errorf("slots_full conditions = %q", c)
	}
	if c := conds("bmc-00013"); !strings.Contains(c, "Insecure") {
		t.Errorf("insecure BMC conditions = %q", c)
	}
	// The swapped pair answers with each other's registered GUID.
	if b, _ := fleet.BMC("bmc-00015"); got["bmc-00014"]["guid"] != b.RegisteredGUID().String() {
		t.Errorf("bmc-00014 answered %v", got["bmc-00014"]["guid"])
	}
}

// --timeout is a silence limit, not a whole-check budget: a BMC that
// answers every message in 400 ms is Connectable with --timeout 1s even
// though its nine exchanges take ~3.6 s, while a silent one is declared
// NotResponding after ~1 s.
func TestTimeoutIsSilenceNotTotal(t *testing.T) {
	cfg := sim.Config{Count: 2, Seed: 7, Password: "fleet-pass-123",
		Faults: map[string]sim.Faults{
			"bmc-00001": {Slow: sim.Duration(400 * time.Millisecond)},
			"bmc-00002": {Silent: true},
		}}
	fleet := simtest.Start(t, cfg, 78)
	dir := t.TempDir()
	fleet.WritePasswordFile(filepath.Join(dir, "pw"))
	inv := filepath.Join(dir, "fleet.yaml")
	if err := fleet.ExportInventory(inv, filepath.Join(dir, "pw")); err != nil {
		t.Fatal(err)
	}
	out, _, err := runCLI(t, "check", "--inventory", inv, "--timeout", "1s", "-o", "json")
	got := map[string]map[string]any{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var o map[string]any
		if json.Unmarshal([]byte(line), &o) != nil {
			t.Fatalf("bad line %q (%v)", line, err)
		}
		got[o["name"].(string)] = o
	}
	slow, silent := got["bmc-00001"], got["bmc-00002"]
	if slow["state"] != "Connectable" || slow["elapsed_ms"].(float64) < 1500 {
		t.Errorf("slow BMC: %v after %v ms (%v)", slow["state"], slow["elapsed_ms"], slow["message"])
	}
	if silent["state"] != "NotResponding" || silent["reason"] != "silent" || silent["elapsed_ms"].(float64) > 2000 {
		t.Errorf("silent BMC: %v/%v after %v ms", silent["state"], silent["reason"], silent["elapsed_ms"])
	}
}
