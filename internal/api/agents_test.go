package api_test

import (
	"context"
	"encoding/json"
	"github.com/lightsout/lightsout/internal/poll"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/agent"
	"github.com/lightsout/lightsout/internal/api/apitest"
	"github.com/lightsout/lightsout/internal/api/wire"
	"github.com/lightsout/lightsout/internal/server"
	"github.com/lightsout/lightsout/internal/store"
)

// TestAgentsAPI: join token (admin only), an agent enrolls with it and is
// Up in GET /api/v1/agents (viewer), revoke (admin) → PendingUp.
func TestAgentsAPI(t *testing.T) {
	e := apitest.Start(t, apitest.Options{Configure: func(c *server.Config) {
		c.AgentListen = "127.0.0.1:0"
		c.Agents.Interval = 100 * time.Millisecond
	}})
	for _, r := range []store.Role{store.RoleViewer, store.RoleOperator} {
		st, body := raw(t, e, r, "POST", "/api/v1/agents/tokens", "")
		wantError(t, "join token as "+string(r), st, body, http.StatusForbidden, wire.CodeForbidden, "")
	}
	st, body := raw(t, e, store.RoleAdmin, "POST", "/api/v1/agents/tokens", `{"ttl":"forever"}`)
	wantError(t, "bad ttl", st, body, http.StatusBadRequest, wire.CodeInvalidField, "ttl")

	jt, err := e.Client(t, store.RoleAdmin).CreateJoinToken(ctx(t), "1h")
	if err != nil {
		t.Fatal(err)
	}
	if jt.CAFingerprint != e.Server.CA.Fingerprint || !strings.HasSuffix(jt.Token, "."+jt.CAFingerprint) {
		t.Fatalf("%+v", jt)
	}
	actx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		agent.Run(actx, agent.Config{Manager: e.Server.AgentAddr.String(), DataDir: filepath.Join(e.Dir, "agent"),
			JoinToken: jt.Token, Name: "web-1", MinBackoff: 20 * time.Millisecond, ShutdownCommand: []string{"true"}})
	}()
	t.Cleanup(func() { cancel(); <-done })

	viewer := e.Client(t, store.RoleViewer)
	var as wire.Agents
	if !poll.Wait(5*time.Second, func() bool {
		if as, err = viewer.Agents(ctx(t)); err != nil {
			t.Fatal(err)
		}
		return len(as.Agents) == 1 && as.Agents[0].State == agent.Up
	}) {
		t.Fatalf("agents: %+v", as)
	}
	// Remote ops: operator may collect, os-shutdown needs admin, audited.
	st, body = raw(t, e, store.RoleOperator, "POST", "/api/v1/agents/1/ops", `{"op":"collect-inventory"}`)
	var res agent.Result
	if err := json.Unmarshal(body, &res); st != http.StatusOK || err != nil || !res.OK || !strings.Contains(string(res.Result), `"hostname"`) {
		t.Fatalf("collect-inventory: %d %s", st, body)
	}
	st, body = raw(t, e, store.RoleOperator, "POST", "/api/v1/agents/1/ops", `{"op":"os-shutdown"}`)
	wantError(t, "os-shutdown as operator", st, body, http.StatusForbidden, wire.CodeForbidden, "")
	st, body = raw(t, e, store.RoleAdmin, "POST", "/api/v1/agents/1/ops", `{"op":"rm"}`)
	wantError(t, "unknown op", st, body, http.StatusBadRequest, wire.CodeInvalidField, "op")
	res, err = e.Client(t, store.RoleAdmin).AgentOp(ctx(t), 1, "os-shutdown")
	if err != nil || !res.OK || res.Agent != "web-1" {
		t.Fatalf("os-shutdown: %+v %v", res, err)
	}
	st, body = raw(t, e, store.RoleAdmin, "GET", "/api/v1/audit?target=1", "")
	var log wire.Audit
	json.Unmarshal(body, &log)
	if st != http.StatusOK || len(log.Entries) < 3 || log.Entries[0].Action != "agent.op" || log.Entries[0].Result != "ok" ||
		!strings.Contains(log.Entries[0].Detail, "os-shutdown on web-1") || log.Entries[0].Actor == "" {
		t.Fatalf("audit: %d %s", st, body)
	}

	st, body = raw(t, e, store.RoleOperator, "POST", "/api/v1/agents/1/revoke", "")
	wantError(t, "revoke as operator", st, body, http.StatusForbidden, wire.CodeForbidden, "")
	st, body = raw(t, e, store.RoleAdmin, "POST", "/api/v1/agents/99/revoke", "")
	wantError(t, "revoke unknown", st, body, http.StatusNotFound, wire.CodeNotFound, "id")
	st, body = raw(t, e, store.RoleAdmin, "POST", "/api/v1/agents/x/revoke", "")
	wantError(t, "revoke bad id", st, body, http.StatusBadRequest, wire.CodeInvalidField, "id")
	st, body = raw(t, e, store.RoleAdmin, "POST", "/api/v1/agents/1/revoke", "")
	var s agent.Status
	if err := json.Unmarshal(body, &s); st != http.StatusOK || err != nil || s.State != agent.PendingUp || s.Reason != agent.ReasonRevoked {
		t.Fatalf("revoke: %d %s", st, body)
	}
	st, body = raw(t, e, store.RoleOperator, "POST", "/api/v1/agents/1/ops", `{"op":"collect-inventory"}`)
	wantError(t, "op on a revoked agent", st, body, http.StatusConflict, wire.CodeRefused, "op")
	if !strings.Contains(string(body), "PendingUp") {
		t.Fatalf("refusal without the state: %s", body)
	}
}
