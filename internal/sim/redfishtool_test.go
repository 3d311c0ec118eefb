package sim

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lightsout/lightsout/internal/peertest"
)

// TestRedfishtool runs DMTF's redfishtool (Debian package redfishtool) with
// the commands docs/redfish.md shows against a simulated BMC: the service
// root, Systems, one property, power off and on through
// #ComputerSystem.Reset (checked in the simulator's power state), a
// session login instead of Basic (logged out after), Managers, the
// sessions, the accounts and $metadata. The credentials go in a 0600 file
// (-c), never on the command line.
func TestRedfishtool(t *testing.T) {
	bin := peertest.Need(t, "redfishtool")[0]
	f := newTestFleet(t, Config{Count: 1, Seed: 7, Redfish: true, Password: "redfishtool-pw-1"}, false)
	b := f.BMCs()[0]
	creds := filepath.Join(t.TempDir(), "creds.json")
	cj, _ := json.Marshal(map[string]string{"user": AdminUser, "password": f.Password()})
	if err := os.WriteFile(creds, cj, 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		t.Helper()
		argv := append([]string{"-r", b.RedfishAddr().String(), "-S", "Always", "-c", creds, "-T", "10"}, args...)
		out, err := exec.Command(bin, argv...).CombinedOutput()
		if err != nil || strings.Contains(string(out), "redfishtool:") || strings.Contains(string(out), "Traceback") {
			t.Fatalf("redfishtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	prop := func(out, name string) string {
		t.Helper()
		var m map[string]any
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			t.Fatalf("not JSON (%v):\n%s", err, out)
		}
		s, _ := m[name].(string)
		return s
	}

	if out := run("root"); prop(out, "@odata.id") != "/redfish/v1" || !strings.Contains(out, `"Systems"`) {
		t.Errorf("root:\n%s", out)
	}
	if out := run("Systems", "list"); !strings.Contains(out, `"/redfish/v1/Systems/1"`) {
		t.Errorf("Systems list:\n%s", out)
	}
	if out := run("Systems", "-F", "get"); !strings.EqualFold(prop(out, "UUID"), b.GUID().String()) {
		t.Errorf("Systems -F get: UUID %q, the BMC's GUID is %s\n%s", prop(out, "UUID"), b.GUID(), out)
	}
	b.SetPower(true)
	if out := run("Systems", "-F", "get", "-P", "PowerState"); prop(out, "PowerState") != "On" {
		t.Errorf("PowerState:\n%s", out)
	}
	run("Systems", "-F", "reset", "ForceOff")
	if b.PowerOn() {
		t.Error("reset ForceOff: the simulated BMC is still on")
	}
	if out := run("Systems", "-F", "get", "-P", "PowerState"); prop(out, "PowerState") != "Off" {
		t.Errorf("PowerState after ForceOff:\n%s", out)
	}
	run("Systems", "-F", "reset", "On")
	if !b.PowerOn() {
		t.Error("reset On: the simulated BMC is still off")
	}
	before := b.RedfishCounters()
	if out := run("-A", "Session", "Systems", "-F", "get", "-P", "UUID"); !strings.EqualFold(prop(out, "UUID"), b.GUID().String()) {
		t.Errorf("with a session:\n%s", out)
	}
	if c := b.RedfishCounters(); c.SessionsOpened != before.SessionsOpened+1 || c.SessionsOpen != 0 {
		t.Errorf("-A Session: sessions %+v (before %+v): want one opened and logged out", c, before)
	}
	if out := run("Managers", "list"); !strings.Contains(out, `"/redfish/v1/Managers/1"`) {
		t.Errorf("Managers list:\n%s", out)
	}
	if out := run("SessionService", "Sessions"); !strings.Contains(out, "SessionCollection") {
		t.Errorf("SessionService Sessions:\n%s", out)
	}
	if out := run("AccountService", "Accounts"); !strings.Contains(out, "/redfish/v1/AccountService/Accounts/") {
		t.Errorf("AccountService Accounts:\n%s", out)
	}
	if out := run("metadata"); !strings.Contains(out, "<edmx:Edmx") {
		t.Errorf("metadata:\n%s", out)
	}
	if out := run("odata"); !strings.Contains(out, `"Systems"`) {
		t.Errorf("odata:\n%s", out)
	}
}
