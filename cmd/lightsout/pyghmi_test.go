package main

import (
	"encoding/json"
	"strings"
	"syscall"
	"testing"

	"github.com/lightsout/lightsout/internal/peertest"
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
	if ev["cipher_suite"] != 3.0 || ev["guid_source"] != "rakp2" || ev["ping_answered"] != false || !strings.Contains(str(ev["cipher_suite_why"]), "offers [3]") {
		t.Errorf("evidence: %s", out)
	}
	// The table says so too, without Degraded.
	tab, code, _ := runCLI(t, "check", "--host", host, "--user", pyghmiUser, "--password-file", pw, "--guid", pyghmiGUID, "--timeout", "1s")
	if code != 0 || !strings.Contains(tab, "Connectable") || strings.Contains(tab, "Degraded") {
		t.Errorf("table (exit %d): %s", code, tab)
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
