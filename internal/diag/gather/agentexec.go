package gather

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/lightsout/lightsout/internal/agent"
	"github.com/lightsout/lightsout/internal/store"
)

// AgentActions is what the agent executor needs from the manager: the
// agent hub (*agent.Hub) satisfies it.
type AgentActions interface {
	Do(ctx context.Context, agentRef, op string) (agent.Result, error)
	RestartSession(ctx context.Context, agentRef string) error
	CreateJoinToken(ctx context.Context, ttl time.Duration) (string, time.Time, error)
	Get(id int64) (agent.Status, bool)
}

// Applied is one fix autocorrect tried: OK, or Error saying why not.
type Applied struct {
	Action Action `json:"action"`
	OK     bool   `json:"ok"`
	Error  string `json:"error,omitempty"`
	// Result is the agent's answer to the op, when it gave one.
	Result json.RawMessage `json:"result,omitempty"`
}

// AgentReport is one agent's diagnosis and what autocorrect did about it.
type AgentReport struct {
	Agent     string    `json:"agent"`
	ID        int64     `json:"id"`
	Diagnosis Diagnosis `json:"diagnosis"`
	Applied   []Applied `json:"applied,omitempty"`
	// Token and Command: a re-enrollment's fresh join token and the
	// command to run on the host (ActReEnroll, admin). The token goes into
	// a file of mode 0600 on the host (never a command-line flag, which
	// other users and the shell history see): the file given as the agent's
	// --join-token-file, which a running agent re-reads whenever a manager
	// refuses its certificate, enrolling again with a new key under the
	// same node. Command is for an agent started without that flag;
	// ReEnrollManager, ReEnrollData and ReEnrollTokenFile in it are
	// placeholders (the API replaces ReEnrollManager when it knows its
	// agent listener).
	Token        string    `json:"token,omitempty"`
	TokenExpires time.Time `json:"token_expires,omitzero"`
	Command      string    `json:"command,omitempty"`
	// After is the diagnosis once the fixes were applied, from the status
	// read again.
	After *Diagnosis `json:"after,omitempty"`
}

// Placeholders in AgentReport.Command.
const (
	ReEnrollManager   = "ADDR" // the manager's agent listener, HOST:PORT
	ReEnrollData      = "DIR"  // the agent's data directory (its old key may stay: a refused agent enrolls again with a new key)
	ReEnrollTokenFile = "FILE" // the 0600 file holding Token: the agent's --join-token-file
)

// ReEnrollTTL is the validity of a join token minted by ActReEnroll.
const ReEnrollTTL = time.Hour

// How long DiagnoseAgent waits for an agent to come back Up after its
// session was restarted, and how often it looks.
var (
	agentReconnectWait = 15 * time.Second
	agentReconnectPoll = 250 * time.Millisecond
)

// DiagnoseAgent diagnoses one agent (DecideAgent) and, with autocorrect,
// applies its fixes in order through acts: the ops renew-certs,
// refresh-trust and restart-link, then the session restart. It stops at
// the first fix that fails (the later ones depend on it) and records the
// rest as not tried. ActReEnroll only mints a join token (1h) and returns
// it with the command to run on the host, and only when admin is true.
// Afterwards the status is read again (Get) and decided into After.
func DiagnoseAgent(ctx context.Context, acts AgentActions, facts AgentFacts, autocorrect bool, admin bool) AgentReport {
	st := facts.Status
	d := DecideAgent(facts)
	rep := AgentReport{Agent: nonEmpty(st.Name, "?"), ID: st.ID, Diagnosis: d}
	if !autocorrect || len(d.Actions) == 0 {
		return rep
	}
	ref := strconv.FormatInt(st.ID, 10)
	failed := ""
	touched := false
	for _, a := range d.Actions {
		if failed != "" {
			rep.Applied = append(rep.Applied, Applied{Action: a, Error: "not tried: " + failed})
			continue
		}
		ap := Applied{Action: a}
		switch a.Kind {
		case ActReEnroll:
			if !admin {
				ap.Error = "not applied: minting a join token needs an admin"
				break
			}
			tok, exp, err := acts.CreateJoinToken(ctx, ReEnrollTTL)
			if err != nil {
				ap.Error = "could not mint a join token: " + err.Error()
				break
			}
			ap.OK = true
			rep.Token, rep.TokenExpires = tok, exp
			rep.Command = fmt.Sprintf("lightsout agent run --manager %s --data %s --join-token-file %s", ReEnrollManager, ReEnrollData, ReEnrollTokenFile)
		case ActRestartSession:
			touched = true
			if err := acts.RestartSession(ctx, ref); err != nil {
				ap.Error = sessionFailure(err)
				break
			}
			ap.OK = true
			if !waitUp(ctx, acts, st.ID) {
				ap.Error = fmt.Sprintf("the session was restarted, but the agent was not Up again within %s", agentReconnectWait)
			}
		default:
			op := opOf(a.Kind)
			if op == "" {
				ap.Error = "not applied: unknown fix " + string(a.Kind)
				break
			}
			touched = true
			res, err := acts.Do(ctx, ref, op)
			ap.Result = res.Result
			switch {
			case err != nil:
				ap.Error = opFailure(op, err)
			case !res.OK:
				ap.Error = fmt.Sprintf("the agent ran %s and it failed: %s", op, nonEmpty(res.Error, "no reason given"))
			default:
				ap.OK = true
			}
		}
		if !ap.OK && a.Kind != ActReEnroll {
			failed = string(a.Kind) + " failed"
		}
		rep.Applied = append(rep.Applied, ap)
	}
	if touched && st.ID != 0 {
		if now, ok := acts.Get(st.ID); ok {
			f := facts
			f.Status = now
			after := DecideAgent(f)
			rep.After = &after
		}
	}
	return rep
}

// opOf is the agent op an action runs.
func opOf(k ActionKind) string {
	switch k {
	case ActRenewCerts:
		return agent.OpRenewCerts
	case ActRefreshTrust:
		return agent.OpRefreshTrust
	case ActRestartLink:
		return agent.OpRestartLink
	}
	return ""
}

// waitUp waits for the agent to be Up again after a session restart.
func waitUp(ctx context.Context, acts AgentActions, id int64) bool {
	deadline := time.Now().Add(agentReconnectWait)
	for {
		if st, ok := acts.Get(id); ok && st.State == agent.Up {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		t := time.NewTimer(agentReconnectPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
	}
}

// opFailure words a refused or failed op by its typed cause.
func opFailure(op string, err error) string {
	var nu *agent.NotUpError
	var ce *agent.CapabilityError
	switch {
	case errors.As(err, &nu):
		return fmt.Sprintf("refused: the agent is %s%s, ops need it Up", nu.State, reasonSuffix(nu.Reason))
	case errors.Is(err, agent.ErrAgentNotUp):
		return "refused: the agent is not Up (" + err.Error() + ")"
	case errors.As(err, &ce):
		return fmt.Sprintf("refused: the agent does not offer %s (it reports %s): upgrade it", op, nonEmpty(strings.Join(ce.Capabilities, ", "), "none"))
	case errors.Is(err, agent.ErrNoCapability):
		return "refused: the agent does not offer " + op + ": upgrade it"
	case errors.Is(err, agent.ErrOpTimeout):
		return "the agent did not answer " + op + " in time"
	case errors.Is(err, agent.ErrUnknownOp):
		return "refused: this manager does not know the op " + op + " (upgrade the manager)"
	case errors.Is(err, store.ErrNotFound):
		return "the manager no longer knows this agent"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "cancelled: " + err.Error()
	}
	return op + " failed: " + err.Error()
}

// sessionFailure words a refused session restart.
func sessionFailure(err error) string {
	var nu *agent.NotUpError
	switch {
	case errors.As(err, &nu):
		return fmt.Sprintf("refused: the agent has no connection: it is %s%s", nu.State, reasonSuffix(nu.Reason))
	case errors.Is(err, store.ErrNotFound):
		return "the manager no longer knows this agent"
	}
	return "restarting the session failed: " + err.Error()
}
