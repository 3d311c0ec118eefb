package api_test

import (
	"context"
	"encoding/json"
	"github.com/lightsout/lightsout/internal/poll"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/agent"
	"github.com/lightsout/lightsout/internal/api"
	"github.com/lightsout/lightsout/internal/api/apitest"
	"github.com/lightsout/lightsout/internal/api/wire"
	"github.com/lightsout/lightsout/internal/diag"
	"github.com/lightsout/lightsout/internal/server"
	"github.com/lightsout/lightsout/internal/store"
	"github.com/lightsout/lightsout/internal/store/pgtest"
)

func TestAgentDiagSQLite(t *testing.T) { agentDiagSuite(t, "") }

func TestAgentDiagPostgres(t *testing.T) { agentDiagSuite(t, pgtest.DSN(t)) }

// agentDiagSuite: POST /api/v1/agents/{id}/diag on a real agent over TLS
// on loopback. Up: healthy (viewer, by name or ID). Revoked:
// agent_cert_revoked; viewer autocorrect 403; operator autocorrect lists
// the re-enrollment as not applied (needs an admin), no token; admin
// autocorrect mints a usable token, and the agent, finding it in its
// --join-token-file, enrolls again and is diagnosed healthy. Every
// autocorrect is audited.
func agentDiagSuite(t *testing.T, dsn string) {
	e := apitest.Start(t, apitest.Options{DSN: dsn, Configure: func(c *server.Config) {
		c.AgentListen = "127.0.0.1:0"
		c.Agents.Interval = 100 * time.Millisecond
	}})
	jt, err := e.Client(t, store.RoleAdmin).CreateJoinToken(ctx(t), "1h")
	if err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(e.Dir, "join.token")
	actx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		agent.Run(actx, agent.Config{Manager: e.Server.AgentAddr.String(), DataDir: filepath.Join(e.Dir, "agent"),
			JoinToken: jt.Token, TokenFile: tokenFile, Name: "web-1",
			MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	}()
	t.Cleanup(func() { cancel(); <-done })
	waitAgent := func(state string) agent.Status {
		t.Helper()
		var as wire.Agents
		var got agent.Status
		if !poll.Wait(10*time.Second, func() bool {
			var err error
			if as, err = e.Client(t, store.RoleViewer).Agents(ctx(t)); err != nil {
				t.Fatal(err)
			}
			for _, a := range as.Agents {
				if a.Name == "web-1" && a.State == state {
					got = a
					return true
				}
			}
			return false
		}) {
			t.Fatalf("web-1 not %s: %+v", state, as.Agents)
		}
		return got
	}
	st := waitAgent(agent.Up)
	viewer, op, adm := e.Client(t, store.RoleViewer), e.Client(t, store.RoleOperator), e.Client(t, store.RoleAdmin)

	// Healthy, by name and by ID, as a viewer.
	for _, ref := range []string{"web-1", "1"} {
		rep, err := viewer.DiagnoseAgent(ctx(t), ref, false)
		if err != nil || rep.Diagnosis.Cause != diag.CauseHealthy || rep.Agent != "web-1" || rep.ID != st.ID || len(rep.Applied) != 0 || rep.Token != "" {
			t.Fatalf("healthy by %q: %+v %v", ref, rep, err)
		}
	}
	// Errors: unknown agent, unknown field, viewer autocorrect.
	status, body := raw(t, e, store.RoleViewer, "POST", "/api/v1/agents/nope/diag", "")
	wantError(t, "unknown agent", status, body, http.StatusNotFound, wire.CodeNotFound, "id")
	status, body = raw(t, e, store.RoleViewer, "POST", "/api/v1/agents/1/diag", `{"autocorect":true}`)
	wantError(t, "unknown field", status, body, http.StatusBadRequest, wire.CodeBadRequest, "autocorect")
	status, body = raw(t, e, store.RoleViewer, "POST", "/api/v1/agents/1/diag", `{"autocorrect":true}`)
	wantError(t, "viewer autocorrect", status, body, http.StatusForbidden, wire.CodeForbidden, "")
	// Healthy with autocorrect: nothing to apply, still audited.
	if rep, err := op.DiagnoseAgent(ctx(t), "web-1", true); err != nil || rep.Diagnosis.Cause != diag.CauseHealthy || len(rep.Applied) != 0 {
		t.Fatalf("healthy autocorrect: %+v %v", rep, err)
	}

	// Revoked.
	if _, err := adm.RevokeAgent(ctx(t), st.ID); err != nil {
		t.Fatal(err)
	}
	waitAgent(agent.PendingUp)
	rep, err := viewer.DiagnoseAgent(ctx(t), "web-1", false)
	if err != nil || rep.Diagnosis.Cause != diag.CauseAgentCertRevoked || len(rep.Diagnosis.Actions) != 1 ||
		rep.Diagnosis.Actions[0].Kind != diag.ActReEnroll || len(rep.Applied) != 0 || rep.Token != "" {
		t.Fatalf("revoked: %+v %v", rep, err)
	}
	if !strings.Contains(rep.Diagnosis.Remedy, "--join-token-file") {
		t.Errorf("revoked remedy: %s", rep.Diagnosis.Remedy)
	}
	rep, err = op.DiagnoseAgent(ctx(t), "web-1", true)
	if err != nil || len(rep.Applied) != 1 || rep.Applied[0].OK || !strings.Contains(rep.Applied[0].Error, "needs an admin") ||
		rep.Token != "" || rep.Command != "" {
		t.Fatalf("revoked, operator autocorrect: %+v %v", rep, err)
	}
	rep, err = adm.DiagnoseAgent(ctx(t), "1", true)
	if err != nil || len(rep.Applied) != 1 || !rep.Applied[0].OK || rep.Token == "" || rep.TokenExpires.Before(time.Now().Add(50*time.Minute)) {
		t.Fatalf("revoked, admin autocorrect: %+v %v", rep, err)
	}
	if _, fp, err := agent.ParseJoinToken(rep.Token); err != nil || fp != e.Server.CA.Fingerprint {
		t.Fatalf("minted token %q: fingerprint %q, %v", rep.Token, fp, err)
	}
	wantCmd := "lightsout agent run --manager " + e.Server.AgentAddr.String() + " --data DIR --join-token-file FILE"
	if rep.Command != wantCmd {
		t.Errorf("command %q, want %q", rep.Command, wantCmd)
	}

	// Audited: the admin's autocorrect (ok), the operator's (failed,
	// needs an admin), the healthy one; never the token.
	status, body = raw(t, e, store.RoleAdmin, "GET", "/api/v1/audit?target=1", "")
	var log wire.Audit
	if err := json.Unmarshal(body, &log); err != nil || status != http.StatusOK {
		t.Fatalf("audit: %d %s", status, body)
	}
	var diags []store.AuditEntry
	for _, a := range log.Entries {
		if a.Action == "agent.diag" {
			diags = append(diags, a)
		}
	}
	if len(diags) != 4 || diags[0].Result != "ok" || !strings.Contains(diags[0].Detail, "changed agent web-1's enrollment from certificate revoked") ||
		diags[1].Result != "failed" || !strings.Contains(diags[1].Error, "needs an admin") ||
		diags[2].Result != "ok" || !strings.Contains(diags[2].Detail, "nothing to apply") ||
		diags[3].Result != "failed" || strings.Contains(string(body), rep.Token) {
		t.Errorf("agent.diag audit: %+v", diags)
	}

	// The token, written to the agent's --join-token-file, enrolls it again.
	if err := os.WriteFile(tokenFile, []byte(rep.Token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Just Up, it may still be answering the manager (ops queued).
	waitAgent(agent.Up)
	if !poll.Wait(5*time.Second, func() bool {
		rep, err = viewer.DiagnoseAgent(ctx(t), "web-1", false)
		return err == nil && rep.Diagnosis.Cause == diag.CauseHealthy && rep.ID == st.ID
	}) {
		t.Fatalf("after re-enrollment: %+v %v", rep, err)
	}
}

// TestAgentDiagNoHub: without an agent hub the route answers 503.
func TestAgentDiagNoHub(t *testing.T) {
	e := apitest.Start(t, apitest.Options{})
	hs := httptest.NewServer(api.NewHandler(api.Config{Manager: e.Server.Manager, Store: e.Server.Store}))
	t.Cleanup(hs.Close)
	req, _ := http.NewRequest("POST", hs.URL+"/api/v1/agents/1/diag", nil)
	req.Header.Set("Authorization", "Bearer "+e.Tokens[store.RoleViewer])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	wantError(t, "no hub", resp.StatusCode, body, http.StatusServiceUnavailable, wire.CodeUnavailable, "")
}
