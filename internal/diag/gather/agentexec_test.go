package gather

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/agent"
	"github.com/lightsout/lightsout/internal/agentstate"
	"github.com/lightsout/lightsout/internal/store"
)

// The agent hub is what the CLI and the API hand to DiagnoseAgent.
var _ AgentActions = (*agent.Hub)(nil)

// fakeActs records every call and answers as configured.
type fakeActs struct {
	calls      []string
	doErr      map[string]error
	doFail     map[string]string // op → the agent's own error (ran, not ok)
	restartErr error
	tokenErr   error
	ttl        time.Duration
	after      agent.Status // what Get returns once something was applied
	known      bool
}

func (f *fakeActs) Do(_ context.Context, ref, op string) (agent.Result, error) {
	f.calls = append(f.calls, "do "+ref+" "+op)
	res := agent.Result{Op: op, Agent: "web-1"}
	if err := f.doErr[op]; err != nil {
		return res, err
	}
	if e, ok := f.doFail[op]; ok {
		res.Error = e
		return res, nil
	}
	res.OK, res.Result = true, json.RawMessage(`{"done":true}`)
	return res, nil
}

func (f *fakeActs) RestartSession(_ context.Context, ref string) error {
	f.calls = append(f.calls, "restart-session "+ref)
	return f.restartErr
}

func (f *fakeActs) CreateJoinToken(_ context.Context, ttl time.Duration) (string, time.Time, error) {
	f.calls = append(f.calls, "token")
	f.ttl = ttl
	if f.tokenErr != nil {
		return "", time.Time{}, f.tokenErr
	}
	return "lsj_secret.abcdef", t0.Add(ttl), nil
}

func (f *fakeActs) Get(id int64) (agent.Status, bool) {
	f.calls = append(f.calls, fmt.Sprint("get ", id))
	return f.after, f.known
}

// mutations returns the calls that change something (not the reads).
func (f *fakeActs) mutations() []string {
	var out []string
	for _, c := range f.calls {
		if !strings.HasPrefix(c, "get ") {
			out = append(out, c)
		}
	}
	return out
}

func healthyAfter() *fakeActs { return &fakeActs{after: upAgent(), known: true} }

// everything: an Up agent whose certificate is due and whose link is down.
func everything() AgentFacts {
	return with(func(s *agent.Status) { s.CertNotAfter = t0.Add(10 * day); s.Link.State = agent.LinkDown })
}

func TestDiagnoseAgentWithoutAutocorrect(t *testing.T) {
	fa := healthyAfter()
	rep := DiagnoseAgent(context.Background(), fa, everything(), false, true)
	if len(fa.calls) != 0 || rep.Applied != nil || rep.After != nil {
		t.Fatalf("calls %v, applied %v, after %v", fa.calls, rep.Applied, rep.After)
	}
	if rep.Agent != "web-1" || rep.ID != 1 || len(rep.Diagnosis.Actions) != 3 {
		t.Errorf("report %+v", rep)
	}
}

func TestDiagnoseAgentAppliesInOrder(t *testing.T) {
	fa := healthyAfter()
	rep := DiagnoseAgent(context.Background(), fa, everything(), true, false)
	want := []string{"do 1 renew-certs", "do 1 restart-link", "restart-session 1"}
	if got := fa.mutations(); !slices.Equal(got, want) {
		t.Fatalf("calls %v, want %v", got, want)
	}
	if len(rep.Applied) != 3 {
		t.Fatalf("applied %+v", rep.Applied)
	}
	for i, k := range []ActionKind{ActRenewCerts, ActRestartLink, ActRestartSession} {
		if a := rep.Applied[i]; a.Action.Kind != k || !a.OK || a.Error != "" {
			t.Errorf("applied[%d] = %+v, want %s ok", i, a, k)
		}
	}
	if string(rep.Applied[0].Result) != `{"done":true}` {
		t.Errorf("result %s", rep.Applied[0].Result)
	}
	if rep.After == nil || rep.After.Cause != CauseHealthy {
		t.Fatalf("after %+v", rep.After)
	}
	if fa.calls[len(fa.calls)-1] != "get 1" {
		t.Errorf("status not read again last: %v", fa.calls)
	}
}

func TestDiagnoseAgentTrustThenLink(t *testing.T) {
	fa := healthyAfter()
	fa.after.Link.State = agent.LinkNotTrusted // still not trusted afterwards
	f := with(func(s *agent.Status) { s.Link.State = agent.LinkNotTrusted })
	rep := DiagnoseAgent(context.Background(), fa, f, true, false)
	if got, want := fa.mutations(), []string{"do 1 refresh-trust", "do 1 restart-link"}; !slices.Equal(got, want) {
		t.Fatalf("calls %v, want %v", got, want)
	}
	if rep.After == nil || rep.After.Cause != CauseAgentLinkNotTrusted {
		t.Errorf("after %+v: want it recomputed from the fake's status", rep.After)
	}
}

func TestDiagnoseAgentFailures(t *testing.T) {
	for _, c := range []struct {
		name  string
		fa    *fakeActs
		first string // what applied[0].Error must hold
		calls []string
	}{
		{"not up", &fakeActs{doErr: map[string]error{agent.OpRenewCerts: &agent.NotUpError{Agent: "web-1", ID: 1, State: agent.Down, Reason: "connection closed"}}},
			"refused: the agent is Down (connection closed), ops need it Up", []string{"do 1 renew-certs"}},
		{"not up, wrapped", &fakeActs{doErr: map[string]error{agent.OpRenewCerts: fmt.Errorf("hub: %w", agent.ErrAgentNotUp)}},
			"refused: the agent is not Up", []string{"do 1 renew-certs"}},
		{"no capability", &fakeActs{doErr: map[string]error{agent.OpRenewCerts: &agent.CapabilityError{Agent: "web-1", ID: 1, Op: agent.OpRenewCerts, Capabilities: []string{"heartbeat"}}}},
			"refused: the agent does not offer renew-certs (it reports heartbeat): upgrade it", []string{"do 1 renew-certs"}},
		{"timeout", &fakeActs{doErr: map[string]error{agent.OpRenewCerts: fmt.Errorf("agent web-1, op renew-certs: %w (30s)", agent.ErrOpTimeout)}},
			"the agent did not answer renew-certs in time", []string{"do 1 renew-certs"}},
		{"unknown op", &fakeActs{doErr: map[string]error{agent.OpRenewCerts: fmt.Errorf("%w %q", agent.ErrUnknownOp, agent.OpRenewCerts)}},
			"this manager does not know the op renew-certs", []string{"do 1 renew-certs"}},
		{"gone", &fakeActs{doErr: map[string]error{agent.OpRenewCerts: fmt.Errorf("agent %q: %w", "1", store.ErrNotFound)}},
			"the manager no longer knows this agent", []string{"do 1 renew-certs"}},
		{"cancelled", &fakeActs{doErr: map[string]error{agent.OpRenewCerts: context.Canceled}},
			"cancelled", []string{"do 1 renew-certs"}},
		{"other", &fakeActs{doErr: map[string]error{agent.OpRenewCerts: errors.New("sending op to agent web-1: broken pipe")}},
			"renew-certs failed: sending op to agent web-1: broken pipe", []string{"do 1 renew-certs"}},
		{"ran and failed", &fakeActs{doFail: map[string]string{agent.OpRenewCerts: "CSR refused"}},
			"the agent ran renew-certs and it failed: CSR refused", []string{"do 1 renew-certs"}},
		{"link restart failed", &fakeActs{doFail: map[string]string{agent.OpRestartLink: "no path"}},
			"", []string{"do 1 renew-certs", "do 1 restart-link"}},
		{"session refused", &fakeActs{restartErr: &agent.NotUpError{Agent: "web-1", ID: 1, State: agent.Down, Reason: "connection closed"}},
			"", []string{"do 1 renew-certs", "do 1 restart-link", "restart-session 1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.fa.after, c.fa.known = upAgent(), true
			rep := DiagnoseAgent(context.Background(), c.fa, everything(), true, true)
			if got := c.fa.mutations(); !slices.Equal(got, c.calls) {
				t.Fatalf("calls %v, want %v", got, c.calls)
			}
			if len(rep.Applied) != 3 {
				t.Fatalf("applied %+v", rep.Applied)
			}
			failed := len(c.calls) - 1
			for i, a := range rep.Applied {
				switch {
				case i < failed && (!a.OK || a.Error != ""):
					t.Errorf("applied[%d] %+v: want ok", i, a)
				case i == failed && a.OK:
					t.Errorf("applied[%d] %+v: want failed", i, a)
				case i > failed && (a.OK || !strings.HasPrefix(a.Error, "not tried: ")):
					t.Errorf("applied[%d] %+v: want not tried", i, a)
				}
			}
			if c.first != "" && !strings.Contains(rep.Applied[0].Error, c.first) {
				t.Errorf("error %q, want %q", rep.Applied[0].Error, c.first)
			}
			if c.name == "link restart failed" && rep.Applied[1].Error != "the agent ran restart-link and it failed: no path" {
				t.Errorf("error %q", rep.Applied[1].Error)
			}
			if c.name == "session refused" && rep.Applied[2].Error != "refused: the agent has no connection: it is Down (connection closed)" {
				t.Errorf("error %q", rep.Applied[2].Error)
			}
			if rep.After == nil {
				t.Error("after not recomputed")
			}
		})
	}
}

func TestDiagnoseAgentSessionNotBack(t *testing.T) {
	w, p := agentReconnectWait, agentReconnectPoll
	agentReconnectWait, agentReconnectPoll = 20*time.Millisecond, time.Millisecond
	defer func() { agentReconnectWait, agentReconnectPoll = w, p }()
	fa := &fakeActs{after: agent.Status{ID: 1, Name: "web-1", State: agent.Down, Reason: "session restarted by the manager", Code: agentstate.SessionRestarted}, known: true}
	f := with(func(s *agent.Status) { s.CertNotAfter = t0.Add(day) })
	rep := DiagnoseAgent(context.Background(), fa, f, true, false)
	if len(rep.Applied) != 2 || !rep.Applied[1].OK || !strings.Contains(rep.Applied[1].Error, "not Up again within 20ms") {
		t.Fatalf("applied %+v", rep.Applied)
	}
	if rep.After == nil || rep.After.Cause != CauseAgentDown {
		t.Errorf("after %+v", rep.After)
	}
}

func TestDiagnoseAgentReEnrollAdminGate(t *testing.T) {
	for _, r := range []agentstate.Reason{{Code: agentstate.Revoked, Message: agent.ReasonRevoked},
		{Code: agentstate.UnknownCert, Message: agent.ReasonUnknownCert}, {Code: agentstate.CertExpired, Message: agent.ReasonExpired}} {
		reason := r.Message
		t.Run(reason, func(t *testing.T) {
			fa := &fakeActs{}
			rep := DiagnoseAgent(context.Background(), fa, pending(r.Code, reason), true, false)
			if len(fa.calls) != 0 || rep.Token != "" || rep.Command != "" {
				t.Fatalf("non-admin: calls %v, token %q, command %q", fa.calls, rep.Token, rep.Command)
			}
			if len(rep.Applied) != 1 || rep.Applied[0].OK || !strings.Contains(rep.Applied[0].Error, "needs an admin") {
				t.Fatalf("non-admin applied %+v", rep.Applied)
			}

			fa = &fakeActs{}
			rep = DiagnoseAgent(context.Background(), fa, pending(r.Code, reason), true, true)
			if !slices.Equal(fa.calls, []string{"token"}) || fa.ttl != time.Hour {
				t.Fatalf("admin: calls %v, ttl %s", fa.calls, fa.ttl)
			}
			if len(rep.Applied) != 1 || !rep.Applied[0].OK || rep.Token != "lsj_secret.abcdef" || !rep.TokenExpires.Equal(t0.Add(time.Hour)) {
				t.Fatalf("admin: %+v", rep)
			}
			if want := "lightsout agent run --manager ADDR --data DIR --join-token-file FILE"; rep.Command != want || strings.Contains(rep.Command, rep.Token) {
				t.Errorf("command %q, want %q (never the token itself)", rep.Command, want)
			}
			if rep.After != nil {
				t.Errorf("after %+v: nothing changed on the agent yet", rep.After)
			}
		})
	}
}

func TestDiagnoseAgentReEnrollTokenError(t *testing.T) {
	fa := &fakeActs{tokenErr: errors.New("database is locked")}
	rep := DiagnoseAgent(context.Background(), fa, pending(agentstate.Revoked, agent.ReasonRevoked), true, true)
	if rep.Token != "" || rep.Command != "" || len(rep.Applied) != 1 || rep.Applied[0].OK ||
		rep.Applied[0].Error != "could not mint a join token: database is locked" {
		t.Fatalf("%+v", rep)
	}
}

func TestDiagnoseAgentNothingToDo(t *testing.T) {
	for _, f := range []AgentFacts{facts(upAgent()), down(agentstate.ConnectionClosed, "connection closed", t0.Add(-time.Minute)), pending(agentstate.ClockSkew, agent.ReasonClockSkew+" 1m0s beyond 30s")} {
		fa := healthyAfter()
		rep := DiagnoseAgent(context.Background(), fa, f, true, true)
		if len(fa.calls) != 0 || rep.Applied != nil || rep.After != nil {
			t.Errorf("%s: calls %v, applied %v", rep.Diagnosis.Cause, fa.calls, rep.Applied)
		}
	}
}

func TestDiagnoseAgentUnknownAfter(t *testing.T) {
	fa := &fakeActs{} // Get: no such agent any more
	rep := DiagnoseAgent(context.Background(), fa, with(func(s *agent.Status) { s.Link.State = agent.LinkDown }), true, false)
	if len(rep.Applied) != 1 || !rep.Applied[0].OK || rep.After != nil {
		t.Fatalf("%+v", rep)
	}
}
