package main

import (
	"encoding/json"
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
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, code, err = as(t, e, store.RoleViewer, "incidents")
		if strings.Contains(out, "2 BMCs refuse") || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
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
