package manager

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/lightsout/lightsout/internal/agent"
	"github.com/lightsout/lightsout/internal/power"
	"github.com/lightsout/lightsout/internal/store"
)

// The agent fallback of a soft-off: the seed's "OS graceful shutdown
// through the agent, the fallback when IPMI soft-off is ignored". An OS
// may ignore the ACPI power button (hung, or set to do nothing); the BMC
// still accepts the soft-off. With PowerRequest.AgentFallback the manager
// watches the power through the same channel and, if it still reads on
// when the fallback time is up, asks the machine's agent — the agent
// enrolled under the same name as the machine — to run os-shutdown, then
// watches as long again.

// AgentOps is what the manager needs of the agent hub (agent.Hub): run an
// allowlisted op on an agent by node ID or name.
type AgentOps interface {
	Do(ctx context.Context, ref, op string) (agent.Result, error)
}

// MaxAgentFallback bounds PowerRequest.AgentFallback.
const MaxAgentFallback = 30 * time.Minute

// DefaultFallbackPoll is how often the fallback reads the power state.
const DefaultFallbackPoll = 2 * time.Second

// softOffRequested is the detail of a soft-off without a fallback that
// still reads on.
const softOffRequested = "soft-off requested, power still on: the OS shuts down if it honours the ACPI power button (agent_fallback follows it up)"

// Causes of a failed agent fallback (power.Result.Cause, FallbackError).
const (
	CauseNoAgent         = "no_agent"            // no agent enrolled under the machine's name (or no agent hub)
	CauseAgentNotUp      = "agent_not_up"        // the agent is Down or PendingUp (agent.NotUpError)
	CauseAgentNoShutdown = "agent_no_capability" // the agent has no os-shutdown (agent.CapabilityError: no shutdown command)
	CauseAgentOpFailed   = "agent_op_failed"     // the agent ran os-shutdown and it failed, or did not answer
	CauseStillOn         = "still_on"            // os-shutdown ran, the power still reads on
)

// FallbackError is a soft-off whose agent fallback did not get the machine
// off. Kind is one of the Cause* constants; Err, when set, is the agent
// hub's typed error (errors.Is agent.ErrAgentNotUp, agent.ErrNoCapability,
// store.ErrNotFound ...).
type FallbackError struct {
	Machine string
	Kind    string
	// Story is what happened before the failure ("soft-off ignored for
	// 2m0s; ...").
	Story string
	Err   error
}

func (e *FallbackError) Error() string {
	s := e.Machine + ": " + e.Story
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Cause names the kind of failure (power.Causer).
func (e *FallbackError) Cause() string { return e.Kind }

func (e *FallbackError) Unwrap() error { return e.Err }

// ErrNoAgent: no agent is enrolled under the machine's name.
var ErrNoAgent = errors.New("no agent")

// noAgentError: no agent enrolled under the machine's name; it is
// ErrNoAgent and the hub's store.ErrNotFound.
type noAgentError struct {
	name string
	err  error
}

func (e *noAgentError) Error() string {
	return fmt.Sprintf("no agent named %q (the fallback asks the agent enrolled under the machine's name)", e.name)
}

func (e *noAgentError) Unwrap() []error { return []error{ErrNoAgent, e.err} }

// ErrStillOn: the machine still reads on after the agent's os-shutdown.
var ErrStillOn = errors.New("still on")

// checkFallback validates PowerRequest.AgentFallback.
func checkFallback(req PowerRequest) error {
	d := req.AgentFallback
	switch {
	case d == 0:
		return nil
	case d < 0 || d > MaxAgentFallback:
		return fieldErr("agent_fallback", fmt.Sprintf("%v: must be a duration from 1s to %v (0: no fallback)", d, MaxAgentFallback))
	case req.Action != power.SoftOff:
		return fieldErr("agent_fallback", fmt.Sprintf("only with action soft, not %q", req.Action))
	}
	return nil
}

// short formats an elapsed time for a result: whole seconds from 10s,
// tenths below.
func short(d time.Duration) string {
	if d >= 10*time.Second {
		return d.Round(time.Second).String()
	}
	return d.Round(100 * time.Millisecond).String()
}

// softOffWithFallback is power() for action soft with an agent fallback.
func (m *Manager) softOffWithFallback(ctx context.Context, actor Actor, ms []store.Machine, s power.Stagger, fallback time.Duration, progress func(power.Result)) []power.Result {
	items := make([]power.Item, len(ms))
	for i, mc := range ms {
		items[i] = power.Item{Machine: mc.Name, Op: func(ctx context.Context) (o power.Outcome, err error) {
			defer func() {
				detail := fmt.Sprintf("agent fallback %v", fallback)
				if o.Power != "" {
					detail = "power " + o.Power + "; " + detail
				}
				if o.Detail != "" {
					detail += ": " + o.Detail
				}
				m.audit(ctx, actor, "power."+string(power.SoftOff), mc.Name, detail, err)
			}()
			ch, acct, err := m.channelOf(ctx, mc)
			if err != nil {
				return o, err
			}
			octx, cancel := context.WithTimeout(ctx, m.OpTimeout)
			p, err := power.Do(octx, ch, power.SoftOff)
			cancel()
			if err != nil {
				return o, err
			}
			o, err = m.followSoftOff(ctx, actor, mc.Name, ch, p, fallback)
			if m.Monitor != nil && o.Power != "" {
				m.Monitor.NotePower(acct, o.Power)
			}
			return o, err
		}}
	}
	return power.Run(ctx, power.SoftOff, items, s, progress)
}

// followSoftOff watches a machine the BMC accepted a soft-off for (p is
// the power read back right after) and runs the agent fallback.
func (m *Manager) followSoftOff(ctx context.Context, actor Actor, machine string, ch power.Channel, p string, fallback time.Duration) (power.Outcome, error) {
	start := time.Now()
	p, perr := m.waitOff(ctx, ch, p, start.Add(fallback))
	if p == "off" {
		return power.Outcome{Power: "off", Detail: fmt.Sprintf("off after soft-off (%s)", short(time.Since(start)))}, nil
	}
	if ctx.Err() != nil {
		return power.Outcome{Power: p}, fmt.Errorf("%s: soft-off accepted, watching the power stopped after %s: %w", machine, short(time.Since(start)), ctx.Err())
	}
	story := fmt.Sprintf("soft-off ignored for %v", fallback)
	if p == "" && perr != nil {
		story = fmt.Sprintf("soft-off not confirmed in %v (power unreadable: %v)", fallback, perr)
	}
	fail := func(cause, what string, err error) (power.Outcome, error) {
		return power.Outcome{Power: p, Detail: story + "; " + what},
			&FallbackError{Machine: machine, Kind: cause, Story: story + "; " + what, Err: err}
	}

	// The agent: enrolled under the machine's name.
	if m.Agents == nil {
		return fail(CauseNoAgent, "agent os-shutdown not sent", fmt.Errorf("%w: this server has no agent hub", ErrNoAgent))
	}
	if _, nerr := strconv.ParseInt(machine, 10, 64); nerr == nil {
		// The hub takes a number for a node ID first: never shut down
		// whichever agent has that ID.
		return fail(CauseNoAgent, "agent os-shutdown not sent", fmt.Errorf("%w: machine name %q is a number, which the agent hub takes for a node ID", ErrNoAgent, machine))
	}
	res, err := m.Agents.Do(ctx, machine, agent.OpOSShutdown)
	m.auditAgentOp(ctx, actor, machine, fallback, res, err)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fail(CauseNoAgent, "agent os-shutdown not sent", &noAgentError{name: machine, err: err})
	case errors.Is(err, agent.ErrAgentNotUp):
		return fail(CauseAgentNotUp, "agent os-shutdown refused", err)
	case errors.Is(err, agent.ErrNoCapability):
		return fail(CauseAgentNoShutdown, "agent os-shutdown refused (the agent runs it only with --shutdown-command)", err)
	case err != nil:
		return fail(CauseAgentOpFailed, "agent os-shutdown sent, no answer", err)
	case !res.OK:
		return fail(CauseAgentOpFailed, "agent os-shutdown failed", errors.New(res.Error))
	}

	sent := time.Now()
	p2, perr := m.waitOff(ctx, ch, "", sent.Add(fallback))
	if p2 != "" {
		p = p2
	}
	if p2 == "off" {
		return power.Outcome{Power: "off", Detail: fmt.Sprintf("%s; agent os-shutdown sent; off after %s", story, short(time.Since(sent)))}, nil
	}
	if ctx.Err() != nil {
		return fail(CauseStillOn, fmt.Sprintf("agent os-shutdown sent; watching the power stopped after %s", short(time.Since(sent))), ctx.Err())
	}
	why := fmt.Errorf("%w %v after the agent's os-shutdown", ErrStillOn, fallback)
	if p2 == "" && perr != nil {
		why = fmt.Errorf("%w? the power was unreadable for %v after the agent's os-shutdown: %v", ErrStillOn, fallback, perr)
	}
	return fail(CauseStillOn, "agent os-shutdown sent", why)
}

// waitOff reads the power every FallbackPoll until it is off, the deadline
// passes (one last read at the deadline) or ctx ends. It returns the last
// power read ("" if none) and the last read's error. p is a reading
// already taken.
func (m *Manager) waitOff(ctx context.Context, ch power.Channel, p string, deadline time.Time) (string, error) {
	if p == "off" {
		return p, nil
	}
	every := m.FallbackPoll
	if every <= 0 {
		every = DefaultFallbackPoll
	}
	var lastErr error
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return p, lastErr
		}
		t := time.NewTimer(min(every, left))
		select {
		case <-ctx.Done():
			t.Stop()
			return p, lastErr
		case <-t.C:
		}
		octx, cancel := context.WithTimeout(ctx, m.OpTimeout)
		got, err := power.Do(octx, ch, power.Status)
		cancel()
		if err != nil {
			lastErr = err
			continue
		}
		p, lastErr = got, nil
		if p == "off" {
			return p, nil
		}
	}
}

// auditAgentOp records the fallback's os-shutdown as the API records an
// agent op: action agent.op, the agent's node ID as target, "op OP on
// NAME" as detail (here with what it was for).
func (m *Manager) auditAgentOp(ctx context.Context, actor Actor, machine string, fallback time.Duration, res agent.Result, err error) {
	target := machine
	if res.AgentID > 0 {
		target = strconv.FormatInt(res.AgentID, 10)
	}
	detail := "op " + agent.OpOSShutdown
	if res.Agent != "" {
		detail += " on " + res.Agent
	}
	detail += fmt.Sprintf(" (agent fallback: power soft of %s ignored for %v)", machine, fallback)
	if err == nil && !res.OK {
		err = errors.New(res.Error)
	}
	m.audit(ctx, actor, "agent.op", target, detail, err)
}
