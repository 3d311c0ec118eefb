package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/api/client"
	"github.com/lightsout/lightsout/internal/sim"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
)

// TestCLIDiag runs lightsout diag through a real server on a simulated
// fleet: the printed block names the cause, evidence and remedy; the
// autocorrect lines say what changed; the exit status follows the result.
func TestCLIDiag(t *testing.T) {
	e := cliEnv(t)
	e.ImportFleet(t)
	cl := e.Client(t, store.RoleAdmin)
	deadline := time.Now().Add(20 * time.Second)
	for {
		ms, err := cl.Machines(context.Background(), client.MachineQuery{})
		n := 0
		for _, m := range ms.Machines {
			if len(m.Channels) > 0 && m.Channels[0].State.State == state.Connectable {
				n++
			}
		}
		if err == nil && n == 8 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 8 Connectable (%v)", n, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	e.Fleet.SetFaults("bmc-00003", sim.Faults{WrongPassword: true})
	e.Fleet.Swap("bmc-00005", "bmc-00006")

	out, code, err := as(t, e, store.RoleOperator, "diag")
	wantExit(t, "no machine", out, code, err, 2, "--group G or --all")
	out, code, err = as(t, e, store.RoleOperator, "diag", "--all", "bmc-00001")
	wantExit(t, "--all with a name", out, code, err, 2, "--all")
	out, code, err = as(t, e, store.RoleViewer, "diag", "bmc-00001")
	wantExit(t, "viewer", out, code, err, 1, "needs role operator")
	out, code, err = as(t, e, store.RoleOperator, "diag", "nope")
	wantExit(t, "unknown machine", out, code, err, 2, "nope")

	out, code, err = as(t, e, store.RoleOperator, "diag", "bmc-00001")
	wantExit(t, "healthy", out, code, err, 0, "bmc-00001", "cause:     healthy", "1 healthy, 0 corrected, 0 failing")

	out, code, err = as(t, e, store.RoleOperator, "diag", "bmc-00003")
	wantExit(t, "wrong password", out, code, err, 1, "NotAuthenticated/wrong_password", "cause:     password_changed_on_bmc (high confidence)",
		"evidence:", "ruled out:", "remedy:    find who changed it", "1 failing")

	out, code, err = as(t, e, store.RoleOperator, "diag", "bmc-00005")
	wantExit(t, "swap without autocorrect", out, code, err, 1, "cause:     addresses_swapped",
		"with --autocorrect: would have changed the addresses of bmc-00005 and bmc-00006 from")
	if testing.Verbose() {
		t.Log(out)
	}
	out, code, err = as(t, e, store.RoleOperator, "diag", "bmc-00005", "bmc-00006", "--autocorrect")
	if testing.Verbose() {
		t.Log(out)
	}
	wantExit(t, "swap autocorrect", out, code, err, 0, "changed the addresses of bmc-0000", "now:       Connectable", "corrected, 0 failing")

	out, code, err = as(t, e, store.RoleOperator, "diag", "bmc-00002", "bmc-00003", "-o", "json")
	if code != 1 || err == nil {
		t.Fatalf("json: exit %d %v\n%s", code, err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("json: %d lines\n%s", len(lines), out)
	}
	causes := map[string]string{}
	for _, l := range lines[:2] {
		var r struct {
			Machine   string `json:"machine"`
			Diagnosis struct {
				Cause string `json:"cause"`
			} `json:"diagnosis"`
		}
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("json line %q: %v", l, err)
		}
		causes[r.Machine] = r.Diagnosis.Cause
	}
	if causes["bmc-00002"] != "healthy" || causes["bmc-00003"] != "password_changed_on_bmc" || !strings.Contains(lines[2], `"summary":{"diagnosed":2,"healthy":1,"corrected":0,"failing":1}`) {
		t.Errorf("json: %v\n%s", causes, out)
	}
}
