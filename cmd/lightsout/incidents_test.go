package main

import (
	"encoding/json"
	"github.com/lightsout/lightsout/internal/poll"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/api/apitest"
	"github.com/lightsout/lightsout/internal/incident"
	"github.com/lightsout/lightsout/internal/sim"
	"github.com/lightsout/lightsout/internal/store"
)

// TestIncidentsCLI: lightsout incidents against a real server whose fleet
// has two BMCs refusing the password: one incident naming both, its remedy
// and its diagnosis; -o json is one incident a line.
func TestIncidentsCLI(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("LIGHTSOUT_SERVER", "")
	t.Setenv("LIGHTSOUT_TOKEN", "")
	e := apitest.Start(t, apitest.Options{Subnet: 93,
		Fleet: sim.Config{Count: 5, Seed: 5, Faults: map[string]sim.Faults{"bmc-00002": {WrongPassword: true}, "bmc-00004": {WrongPassword: true}}}})
	out, code, err := as(t, e, store.RoleViewer, "incidents")
	wantExit(t, "no machines yet", out, code, err, 0, "no incidents")

	e.ImportFleet(t)
	poll.Wait(30*time.Second, func() bool {
		out, code, err = as(t, e, store.RoleViewer, "incidents")
		return strings.Contains(out, "2 BMCs refuse")
	})
	wantExit(t, "incidents", out, code, err, 0, "1 incident\n", "CRITICAL", `2 BMCs refuse the password of user "admin"`,
		"members:  bmc-00002, bmc-00004", "remedy:   the BMC refused the password", "diagnose: lightsout diag bmc-00002 bmc-00004")

	out, code, err = as(t, e, store.RoleViewer, "incidents", "-o", "json")
	wantExit(t, "incidents -o json", out, code, err, 0)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var inc incident.Incident
	if len(lines) != 1 || json.Unmarshal([]byte(lines[0]), &inc) != nil || inc.ID != "cause:NotAuthenticated/wrong_password/user=admin/group=" || len(inc.Members) != 2 {
		t.Errorf("json: %q → %+v", out, inc)
	}
	out, code, err = as(t, e, store.RoleViewer, "incidents", "stray")
	wantExit(t, "an argument", out, code, err, 2)
}

// TestMachinesListFilters: machines list --state/--reason/--condition/
// --enclosure through the API's filters; a misspelt name is refused with
// the field and the names there are. Then diag on a terminal prints only
// what is not healthy and names the failing machines.
func TestMachinesListFilters(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("LIGHTSOUT_SERVER", "")
	t.Setenv("LIGHTSOUT_TOKEN", "")
	e := apitest.Start(t, apitest.Options{Subnet: 94,
		Fleet: sim.Config{Count: 6, Seed: 5, Enclosures: []sim.EnclosureConfig{{Name: "enc-a", Blades: 2}},
			Faults: map[string]sim.Faults{"bmc-00004": {WrongPassword: true}, "bmc-00005": {SlotsFull: true}}}})
	e.ImportFleet(t)
	var out string
	var code int
	var err error
	// Until both faults are declared (each BMC's first check).
	poll.Wait(30*time.Second, func() bool {
		out, code, err = as(t, e, store.RoleViewer, "machines", "list", "--state", "Connectable", "--condition", "Busy")
		refused, _, _ := as(t, e, store.RoleViewer, "machines", "list", "--reason", "wrong_password")
		return strings.Contains(out, "bmc-00005") && strings.Contains(refused, "bmc-00004")
	})
	wantExit(t, "--condition Busy", out, code, err, 0, "bmc-00005", "Connectable+Busy")
	if strings.Contains(out, "bmc-00001") {
		t.Errorf("--condition Busy lists a healthy machine:\n%s", out)
	}
	out, code, err = as(t, e, store.RoleViewer, "machines", "list", "--state", "NotAuthenticated", "--reason", "wrong_password")
	wantExit(t, "--reason wrong_password", out, code, err, 0, "bmc-00004")
	if n := strings.Count(out, "bmc-"); n != 1 {
		t.Errorf("--reason wrong_password: %d machines\n%s", n, out)
	}
	out, code, err = as(t, e, store.RoleViewer, "machines", "list", "--enclosure", "enc-a", "-o", "json")
	wantExit(t, "--enclosure", out, code, err, 0, `"name":"bmc-00001"`, `"name":"bmc-00002"`)
	if n := strings.Count(strings.TrimSpace(out), "\n") + 1; n != 2 {
		t.Errorf("--enclosure enc-a: %d lines\n%s", n, out)
	}
	// Zones: an operator moves a machine; --zone keeps one zone's machines.
	out, code, err = as(t, e, store.RoleOperator, "machines", "set", "bmc-00003", "--zone", "dc2")
	wantExit(t, "set --zone", out, code, err, 0, "zone", "dc2")
	out, code, err = as(t, e, store.RoleViewer, "machines", "list", "--zone", "dc2", "-o", "wide")
	wantExit(t, "--zone dc2", out, code, err, 0, "bmc-00003", "ZONE", "dc2")
	if n := strings.Count(out, "bmc-"); n != 1 {
		t.Errorf("--zone dc2: %d machines\n%s", n, out)
	}
	out, code, err = as(t, e, store.RoleViewer, "machines", "list", "--zone", "default", "-o", "json")
	wantExit(t, "--zone default", out, code, err, 0, `"name":"bmc-00001"`)
	if strings.Contains(out, "bmc-00003") {
		t.Errorf("--zone default lists dc2's machine:\n%s", out)
	}
	out, code, err = as(t, e, store.RoleViewer, "machines", "list", "--state", "Invalid")
	wantExit(t, "no Invalid machine", out, code, err, 0, "no machine matches")
	out, code, err = as(t, e, store.RoleViewer, "machines", "list", "--reason", "wrong_pasword")
	wantExit(t, "misspelt reason", out, code, err, 2, "reason", `"wrong_pasword" is not a reason`, "wrong_password")
	out, code, err = as(t, e, store.RoleViewer, "machines", "list", "--condition", "degraded")
	wantExit(t, "lower-case condition", out, code, err, 2, "condition", "Busy, Degraded, Insecure")

	// diag on a terminal: only what is not healthy, then the failing
	// machines by name; --all-rows prints every diagnosis.
	prev := rowsTerminal
	rowsTerminal = func(io.Writer) bool { return true }
	defer func() { rowsTerminal = prev }()
	out, code, err = as(t, e, store.RoleOperator, "diag", "bmc-0000[1-4]")
	wantExit(t, "diag on a terminal", out, code, err, 1, "bmc-00004", "failing (1): bmc-00004", "3 healthy channels not shown")
	if strings.Contains(out, "bmc-00001 (") {
		t.Errorf("a healthy diagnosis is printed on a terminal:\n%s", out)
	}
	out, code, err = as(t, e, store.RoleOperator, "diag", "bmc-0000[1-4]", "--all-rows")
	wantExit(t, "diag --all-rows", out, code, err, 1, "bmc-00001 (", "failing (1): bmc-00004")
}
