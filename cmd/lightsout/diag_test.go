package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/api/wire"
	"github.com/lightsout/lightsout/internal/diag/gather"
	"github.com/lightsout/lightsout/internal/poll"

	"github.com/lightsout/lightsout/internal/agent"
	"github.com/lightsout/lightsout/internal/api/apitest"
	"github.com/lightsout/lightsout/internal/api/client"
	"github.com/lightsout/lightsout/internal/diag"
	"github.com/lightsout/lightsout/internal/server"
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
	var n int
	var err error
	if !poll.Wait(20*time.Second, func() bool {
		var ms wire.Machines
		ms, err = cl.Machines(context.Background(), client.MachineQuery{})
		n = 0
		for _, m := range ms.Machines {
			if len(m.Channels) > 0 && m.Channels[0].State.State == state.Connectable {
				n++
			}
		}
		return err == nil && n == 8
	}) {
		t.Fatalf("%d of 8 Connectable (%v)", n, err)
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

// TestCLIDiagAgent runs lightsout diag --agent through a real server with
// a real agent on loopback: healthy (viewer), usage errors, revoked
// (cause, remedy, what autocorrect would do), the re-enrollment token for
// an admin only, and the agent enrolling again from its --join-token-file.
func TestCLIDiagAgent(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("LIGHTSOUT_SERVER", "")
	t.Setenv("LIGHTSOUT_TOKEN", "")
	e := apitest.Start(t, apitest.Options{Configure: func(c *server.Config) {
		c.AgentListen = "127.0.0.1:0"
		c.Agents.Interval = 100 * time.Millisecond
	}})
	tok, _, err := e.Server.Agents.CreateJoinToken(context.Background(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(e.Dir, "join.token")
	actx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		agent.Run(actx, agent.Config{Manager: e.Server.AgentAddr.String(), DataDir: filepath.Join(e.Dir, "agent"),
			JoinToken: tok, TokenFile: tokenFile, Name: "web-1",
			MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	}()
	t.Cleanup(func() { cancel(); <-done })
	wait := func(state string) {
		t.Helper()
		if !poll.Wait(10*time.Second, func() bool {
			st, ok := e.Server.Agents.Get(1)
			return ok && st.State == state && st.Queued == 0
		}) {
			st, _ := e.Server.Agents.Get(1)
			t.Fatalf("agent not %s: %+v", state, st)
		}
	}
	wait(agent.Up)

	out, code, err := as(t, e, store.RoleViewer, "diag", "--agent", "web-1")
	wantExit(t, "healthy", out, code, err, 0, "agent web-1 (0x0001)", "cause:     healthy (high confidence)", "evidence:", "remedy:    nothing to fix")
	out, code, err = as(t, e, store.RoleViewer, "diag", "--agent", "web-1", "bmc-00001")
	wantExit(t, "--agent with a machine", out, code, err, 2, "--agent diagnoses one host agent")
	out, code, err = as(t, e, store.RoleViewer, "diag", "--agent", "web-1", "--all")
	wantExit(t, "--agent with --all", out, code, err, 2, "--agent")
	out, code, err = as(t, e, store.RoleAdmin, "diag", "--agent", "web-1", "--adopt")
	wantExit(t, "--agent with --adopt", out, code, err, 2, "--adopt")
	out, code, err = as(t, e, store.RoleViewer, "diag", "--agent", "nope")
	wantExit(t, "unknown agent", out, code, err, 2, "no agent \"nope\"")
	out, code, err = as(t, e, store.RoleViewer, "diag", "--agent", "web-1", "--autocorrect")
	wantExit(t, "viewer autocorrect", out, code, err, 1, "autocorrect needs role operator")

	if _, err := e.Server.Agents.Revoke(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	wait(agent.PendingUp)
	out, code, err = as(t, e, store.RoleViewer, "diag", "--agent", "1")
	wantExit(t, "revoked", out, code, err, 1, "cause:     agent_cert_revoked (high confidence)", "the agent is revoked in the store",
		"--join-token-file", "with --autocorrect (admin): would have changed agent web-1's enrollment from certificate revoked", "not healthy (agent_cert_revoked)")
	out, code, err = as(t, e, store.RoleOperator, "diag", "--agent", "web-1", "--autocorrect")
	wantExit(t, "revoked, operator", out, code, err, 1, "not applied (minting a join token needs an admin): changed agent web-1's enrollment")
	if strings.Contains(out, "lsj_") || strings.Contains(out, "would have") {
		t.Errorf("operator autocorrect:\n%s", out)
	}
	out, code, err = as(t, e, store.RoleAdmin, "diag", "--agent", "web-1", "--autocorrect")
	wantExit(t, "revoked, admin", out, code, err, 1, "changed agent web-1's enrollment from certificate revoked", "join token (one-time, valid until",
		"    lsj_", "mode 0600", "--join-token-file", "lightsout agent run --manager "+e.Server.AgentAddr.String()+" --data DIR --join-token-file FILE")
	if testing.Verbose() {
		t.Log(out)
	}

	// JSON: one report; its token, written to the agent's token file,
	// enrolls it again.
	out, code, err = as(t, e, store.RoleAdmin, "diag", "--agent", "web-1", "--autocorrect", "-o", "json")
	var rep gather.AgentReport
	if jerr := json.Unmarshal([]byte(out), &rep); code != 1 || err == nil || jerr != nil || rep.Diagnosis.Cause != diag.CauseAgentCertRevoked || rep.Token == "" {
		t.Fatalf("json: exit %d %v %v\n%s", code, err, jerr, out)
	}
	if err := os.WriteFile(tokenFile, []byte(rep.Token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wait(agent.Up)
	out, code, err = as(t, e, store.RoleViewer, "diag", "--agent", "web-1")
	wantExit(t, "re-enrolled", out, code, err, 0, "cause:     healthy")
}
