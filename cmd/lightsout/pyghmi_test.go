package main

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/lightsout/lightsout/internal/manager"
	"github.com/lightsout/lightsout/internal/poll"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/api/apitest"
	"github.com/lightsout/lightsout/internal/peertest"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
)

// Interop with pyghmi's BMC (pyghmi.ipmi.bmc.Bmc, the IPMI server inside
// OpenStack virtualbmc), a peer nobody here wrote, with its DEFAULT
// settings: it answers suite 3's algorithms whatever is proposed, never
// answers the RMCP presence ping and does not implement Get System GUID.

const (
	pyghmiUser = "admin"
	pyghmiPass = "pyghmi-pw-7"
	pyghmiGUID = "5ad1c1c2-7e0b-4bb8-9e2f-3c4d5e6f7a8b"
)

// checkJSON runs `lightsout check --host` against addr and decodes its one
// JSON line.
func checkJSON(t *testing.T, host, pwFile, guid string, extra ...string) (map[string]any, int, string) {
	t.Helper()
	args := append([]string{"check", "--host", host, "--user", pyghmiUser, "--password-file", pwFile, "--timeout", "1s", "-o", "json"}, extra...)
	if guid != "" {
		args = append(args, "--guid", guid)
	}
	out, code, err := runCLI(t, args...)
	var o map[string]any
	if jerr := json.Unmarshal([]byte(strings.TrimSpace(out)), &o); jerr != nil {
		t.Fatalf("check output is not one JSON object (exit %d, %v): %s", code, err, out)
	}
	return o, code, out
}

func verdict(o map[string]any) string { return o["state"].(string) + "/" + str(o["reason"]) }

func str(v any) string {
	s, _ := v.(string)
	return s
}

// TestCheckPyghmi drives `lightsout check` (the real path: flags, password
// file, engine, UDP) against a default pyghmi BMC to every verdict it can
// produce.
func TestCheckPyghmi(t *testing.T) {
	bmc := peertest.StartPyghmi(t, pyghmiUser, pyghmiPass, pyghmiGUID)
	host := bmc.Addr.String()
	pw := writeFile(t, "pw", pyghmiPass+"\n")

	o, code, out := checkJSON(t, host, pw, pyghmiGUID)
	ev, _ := o["evidence"].(map[string]any)
	if code != 0 || verdict(o) != "Connectable/" || o["conditions"] != nil {
		t.Fatalf("healthy pyghmi: exit %d: %s", code, out)
	}
	// The GUID prints exactly as registered (pyghmi sends it in RFC 4122
	// byte order, which layout detection would have read otherwise).
	if o["guid"] != pyghmiGUID || o["expected_guid"] != pyghmiGUID {
		t.Errorf("guid %v, expected_guid %v, registered %s", o["guid"], o["expected_guid"], pyghmiGUID)
	}
	if ev["cipher_suite"] != 3.0 || ev["guid_source"] != "rakp2" || ev["ping_answered"] != false || !strings.Contains(str(ev["cipher_suite_why"]), "the BMC answered with cipher suite 3's algorithms") {
		t.Errorf("evidence: %s", out)
	}
	// The table says so too, without Degraded.
	tab, code, _ := runCLI(t, "check", "--host", host, "--user", pyghmiUser, "--password-file", pw, "--guid", pyghmiGUID, "--timeout", "1s")
	if code != 0 || !strings.Contains(tab, "Connectable") || strings.Contains(tab, "Degraded") {
		t.Errorf("table (exit %d): %s", code, tab)
	}

	// An allow-list without suite 3: nothing in common, with the offer and
	// the remedy.
	if o, code, out := checkJSON(t, host, pw, pyghmiGUID, "--cipher-suites", "17"); code != 1 || verdict(o) != "NotAuthenticated/no_cipher_suite" ||
		!strings.Contains(str(o["message"]), "offers cipher suites 3, none of the allowed 17") {
		t.Errorf("--cipher-suites 17: exit %d: %s", code, out)
	}

	bad := writeFile(t, "bad", "not-the-password\n")
	if o, code, out := checkJSON(t, host, bad, pyghmiGUID); code != 1 || verdict(o) != "NotAuthenticated/wrong_password" {
		t.Errorf("wrong password: exit %d: %s", code, out)
	}
	if o, code, out := checkJSON(t, host, pw, "11111111-2222-3333-4444-555555555555"); code != 1 || verdict(o) != "Invalid/guid_mismatch" {
		t.Errorf("other GUID: exit %d: %s", code, out)
	}

	if err := bmc.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	o, code, out = checkJSON(t, host, pw, pyghmiGUID)
	bmc.Process.Signal(syscall.SIGCONT)
	if code != 1 || verdict(o) != "NotResponding/silent" {
		t.Errorf("stopped: exit %d: %s", code, out)
	}
	if o, code, out := checkJSON(t, host, pw, pyghmiGUID); code != 0 || verdict(o) != "Connectable/" {
		t.Errorf("continued: exit %d: %s", code, out)
	}

	if err := bmc.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	bmc.Process.Wait()
	if o, code, out := checkJSON(t, host, pw, pyghmiGUID); code != 1 || verdict(o) != "NotResponding/port_refused" {
		t.Errorf("killed: exit %d: %s", code, out)
	}
}

// TestServerPyghmi: the server's monitor classifies a default pyghmi BMC
// Connectable (not Degraded, learned: suite 3, no ping), and `lightsout
// power` status / off / on through the server change pyghmi's power state.
func TestServerPyghmi(t *testing.T) {
	bmc := peertest.StartPyghmi(t, pyghmiUser, pyghmiPass, pyghmiGUID)
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("LIGHTSOUT_SERVER", "")
	t.Setenv("LIGHTSOUT_TOKEN", "")
	t.Setenv("LIGHTSOUT_PASSWORD", "")
	e := apitest.Start(t, apitest.Options{Subnet: 71})
	dir := t.TempDir()
	writeAt(t, filepath.Join(dir, "pw"), pyghmiPass+"\n")
	inv := filepath.Join(dir, "pyghmi.yaml")
	writeAt(t, inv, fmt.Sprintf(`machines:
  - name: pyg-1
    address: 127.0.0.1
    port: %d
    user: %s
    password_file: pw
    guid: %s
`, bmc.Addr.Port(), pyghmiUser, pyghmiGUID))
	out, code, err := as(t, e, store.RoleOperator, "import", inv)
	wantExit(t, "import", out, code, err, 0, "imported 1 machines")

	adm := e.Client(t, store.RoleAdmin)
	var res []manager.CheckResult
	if !poll.Wait(15*time.Second, func() bool {
		res, err = adm.Check(context.Background(), []string{"pyg-1"}, "")
		return err == nil && len(res) == 1 && res[0].State.State == state.Connectable
	}) {
		t.Fatalf("pyg-1 not Connectable: %+v %v", res, err)
	}
	if slices.Contains(res[0].State.Conditions, state.Degraded) {
		t.Errorf("pyghmi Degraded: %+v", res[0].State)
	}
	out, code, err = as(t, e, store.RoleViewer, "machines", "show", "pyg-1")
	wantExit(t, "show", out, code, err, 0, "Connectable")
	if strings.Contains(out, "Degraded") {
		t.Errorf("machines show: Degraded:\n%s", out)
	}

	out, code, err = as(t, e, store.RoleViewer, "power", "status", "pyg-1")
	wantExit(t, "power status", out, code, err, 0, "pyg-1", "on")
	out, code, err = as(t, e, store.RoleOperator, "power", "off", "pyg-1")
	wantExit(t, "power off", out, code, err, 0, "pyg-1", "1 ok")
	if p, err := bmc.Power(); p != "off" {
		t.Errorf("pyghmi power after off: %q %v", p, err)
	}
	out, code, err = as(t, e, store.RoleViewer, "power", "status", "pyg-1")
	wantExit(t, "power status after off", out, code, err, 0, "off")
	out, code, err = as(t, e, store.RoleOperator, "power", "on", "pyg-1")
	wantExit(t, "power on", out, code, err, 0, "pyg-1", "1 ok")
	if p, err := bmc.Power(); p != "on" {
		t.Errorf("pyghmi power after on: %q %v", p, err)
	}
}

func writeAt(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
