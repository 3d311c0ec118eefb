package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lightsout/lightsout/internal/agentstate"
	"github.com/lightsout/lightsout/internal/hostlink"
	"github.com/lightsout/lightsout/internal/store"
)

// Remote operations the manager may ask of an agent. Each is also the
// capability an agent reports when it supports it (agentstate's names).
const (
	OpCollectInventory = agentstate.OpCollectInventory
	OpBMCCheck         = agentstate.OpBMCCheck
	OpOSShutdown       = agentstate.OpOSShutdown
	OpRestartLink      = agentstate.OpRestartLink
	OpRenewCerts       = agentstate.OpRenewCerts
	OpRefreshTrust     = agentstate.OpRefreshTrust
)

// Ops is the allowlist: the manager sends no other op, the agent runs no
// other.
var Ops = []string{OpCollectInventory, OpBMCCheck, OpOSShutdown, OpRestartLink, OpRenewCerts, OpRefreshTrust}

// IsOp tells whether op is in the allowlist.
func IsOp(op string) bool { return slices.Contains(Ops, op) }

// ErrAgentNotUp: the agent is not Up (see NotUpError for its state).
var ErrAgentNotUp = errors.New("agent not Up")

// ErrNoCapability: the agent does not report the op among its capabilities.
var ErrNoCapability = errors.New("agent lacks the capability")

// ErrUnknownOp: the op is not in the allowlist.
var ErrUnknownOp = errors.New("unknown op")

// ErrOpTimeout: the agent did not answer in time.
var ErrOpTimeout = errors.New("agent did not answer in time")

// NotUpError is an op refused because the agent is Down or PendingUp.
type NotUpError struct {
	Agent  string
	ID     int64
	State  string
	Reason string
}

func (e *NotUpError) Error() string {
	s := fmt.Sprintf("agent %d (%s) is %s", e.ID, e.Agent, e.State)
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	return s
}

func (e *NotUpError) Is(t error) bool { return t == ErrAgentNotUp }

// CapabilityError is an op refused because the agent does not report it.
type CapabilityError struct {
	Agent        string
	ID           int64
	Op           string
	Capabilities []string
}

func (e *CapabilityError) Error() string {
	return fmt.Sprintf("agent %d (%s) lacks capability %q (it reports %s)", e.ID, e.Agent, e.Op, strings.Join(e.Capabilities, ", "))
}

func (e *CapabilityError) Is(t error) bool { return t == ErrNoCapability }

// Result is an agent's answer to an op.
type Result struct {
	AgentID int64           `json:"agent_id"`
	Agent   string          `json:"agent"`
	Op      string          `json:"op"`
	OK      bool            `json:"ok"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   string          `json:"error,omitempty"`
}

// ReEnrollArgs are the arguments of re-enroll.
type ReEnrollArgs struct {
	Token string `json:"token"`
}

// Inventory is the result of collect-inventory.
type Inventory struct {
	Hostname    string `json:"hostname"`
	OS          string `json:"os"`
	Kernel      string `json:"kernel,omitempty"`
	Arch        string `json:"arch"`
	CPUs        int    `json:"cpus"`
	MemoryBytes uint64 `json:"memory_bytes,omitempty"`
}

// BMCCheck is the result of bmc-check.
type BMCCheck struct {
	Device  string `json:"device"`
	Present bool   `json:"present"`
	// Link is a fresh check of the host link (in-band device first, then
	// the OS-to-BMC network), when the agent has one configured.
	Link *hostlink.Observation `json:"link,omitempty"`
}

// IPMIDevice is the in-band IPMI device bmc-check looks for.
var IPMIDevice = "/dev/ipmi0"

// agentOps is the agent's allowlist: the ops among its capabilities that
// it can run (os-shutdown only with a command).
func agentOps(cfg Config) []string {
	var out []string
	for _, op := range Ops {
		if !canRun(cfg, op) {
			continue
		}
		if slices.Contains(cfg.Capabilities, op) {
			out = append(out, op)
		}
	}
	return out
}

// defaultCapabilities: heartbeat and every op this agent can run.
func defaultCapabilities(cfg Config) []string {
	out := slices.Clone(DefaultCapabilities)
	for _, op := range Ops {
		if canRun(cfg, op) {
			out = append(out, op)
		}
	}
	return out
}

// canRun: os-shutdown needs a command, restart-link a host link.
func canRun(cfg Config, op string) bool {
	switch op {
	case OpOSShutdown:
		return len(cfg.ShutdownCommand) > 0
	case OpRestartLink:
		return cfg.Link != nil
	}
	return true
}

// runOp runs one allowlisted op on the agent's host.
func (a *agentd) runOp(ctx context.Context, allowed []string, op string) (any, error) {
	cfg := a.cfg
	if !slices.Contains(allowed, op) {
		return nil, fmt.Errorf("op %q not allowed on this agent (it allows %s)", op, strings.Join(allowed, ", "))
	}
	switch op {
	case OpCollectInventory:
		return collectInventory(), nil
	case OpBMCCheck:
		_, err := os.Stat(IPMIDevice)
		res := BMCCheck{Device: IPMIDevice, Present: err == nil}
		if cfg.Link != nil {
			o := a.checkLink(ctx)
			res.Link = &o
		}
		return res, nil
	case OpRestartLink:
		if cfg.Link == nil {
			return nil, errors.New("this agent has no host link configured")
		}
		// A fresh start: every path tried again in order, IPv4 first.
		o := a.checkLink(ctx)
		return map[string]any{"state": o.State, "path": o.Path, "address": o.Address, "reason": o.Reason}, nil
	case OpRenewCerts:
		did := a.checkCerts(ctx, true)
		a.mu.Lock()
		var views []CertView
		for _, k := range []string{"agent", "link"} {
			if v := a.certs[k]; v != nil {
				views = append(views, *v)
			}
		}
		a.mu.Unlock()
		res := map[string]any{"renewed": did, "certs": views}
		if len(did) < 2 {
			var errs []string
			for _, v := range views {
				if v.RenewError != "" {
					errs = append(errs, v.Kind+": "+v.RenewError)
				}
			}
			if len(errs) > 0 {
				return res, errors.New(strings.Join(errs, "; "))
			}
		}
		return res, nil
	case OpRefreshTrust:
		if _, err := loadIdentity(cfg.DataDir); err != nil {
			return nil, fmt.Errorf("trusted CA: %w", err)
		}
		ms, err := a.discover(ctx)
		if err != nil {
			return nil, fmt.Errorf("rediscovering managers: %w", err)
		}
		return map[string]any{"managers": ms}, nil
	case OpOSShutdown:
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, cfg.ShutdownCommand[0], cfg.ShutdownCommand[1:]...).CombinedOutput()
		res := map[string]any{"command": cfg.ShutdownCommand, "output": strings.TrimSpace(string(truncate(out, 4096)))}
		if err != nil {
			return res, fmt.Errorf("%s: %w", cfg.ShutdownCommand[0], err)
		}
		return res, nil
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownOp, op)
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

func collectInventory() Inventory {
	inv := Inventory{OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU()}
	inv.Hostname, _ = os.Hostname()
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		inv.Kernel = strings.TrimSpace(string(b))
	}
	if f, err := os.Open("/etc/os-release"); err == nil {
		s := bufio.NewScanner(f)
		for s.Scan() {
			if v, ok := strings.CutPrefix(s.Text(), "PRETTY_NAME="); ok {
				inv.OS = runtime.GOOS + " (" + strings.Trim(v, `"`) + ")"
			}
		}
		f.Close()
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		s := bufio.NewScanner(f)
		for s.Scan() {
			if v, ok := strings.CutPrefix(s.Text(), "MemTotal:"); ok {
				fs := strings.Fields(v)
				if len(fs) > 0 {
					if kb, err := strconv.ParseUint(fs[0], 10, 64); err == nil {
						inv.MemoryBytes = kb * 1024
					}
				}
			}
		}
		f.Close()
	}
	return inv
}

// link is the manager's writing side of one agent connection: writes are
// serialized (acks and ops), op results are routed to their waiters.
type link struct {
	mu   sync.Mutex
	enc  *json.Encoder
	set  func(time.Time) error
	pend map[uint64]chan msg
	done chan struct{}
}

func (l *link) send(m msg) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.set(time.Now().Add(handshakeTimeout))
	return l.enc.Encode(m)
}

func (l *link) deliver(m msg) {
	l.mu.Lock()
	ch, ok := l.pend[m.OpID]
	delete(l.pend, m.OpID)
	l.mu.Unlock()
	if ok {
		ch <- m
	}
}

// Do asks an agent (by node ID or name) to run op and waits for its answer
// (at most HubConfig.OpTimeout). It is refused with ErrUnknownOp, a
// NotUpError (ErrAgentNotUp) or a CapabilityError (ErrNoCapability);
// store.ErrNotFound when no agent has that ID or name.
func (h *Hub) Do(ctx context.Context, agentRef, op string) (Result, error) {
	return h.DoArgs(ctx, agentRef, op, nil)
}

// DoArgs is Do with the op's arguments (re-enroll: ReEnrollArgs).
func (h *Hub) DoArgs(ctx context.Context, agentRef, op string, args any) (Result, error) {
	var raw json.RawMessage
	if args != nil {
		b, err := json.Marshal(args)
		if err != nil {
			return Result{Op: op}, err
		}
		raw = b
	}
	if !IsOp(op) {
		return Result{Op: op}, fmt.Errorf("%w %q (one of %s)", ErrUnknownOp, op, strings.Join(Ops, ", "))
	}
	h.mu.Lock()
	n := h.findLocked(agentRef)
	if n == nil {
		h.mu.Unlock()
		return Result{Op: op}, fmt.Errorf("agent %q: %w", agentRef, store.ErrNotFound)
	}
	res := Result{AgentID: n.st.ID, Agent: n.st.Name, Op: op}
	if n.st.State != Up || n.link == nil {
		e := &NotUpError{Agent: n.st.Name, ID: n.st.ID, State: n.st.State, Reason: n.st.Reason}
		h.mu.Unlock()
		return res, e
	}
	if !slices.Contains(n.st.Capabilities, op) {
		e := &CapabilityError{Agent: n.st.Name, ID: n.st.ID, Op: op, Capabilities: slices.Clone(n.st.Capabilities)}
		h.mu.Unlock()
		return res, e
	}
	l := n.link
	h.nextOp++
	id := h.nextOp
	h.mu.Unlock()

	ch := make(chan msg, 1)
	l.mu.Lock()
	l.pend[id] = ch
	l.mu.Unlock()
	defer func() { l.mu.Lock(); delete(l.pend, id); l.mu.Unlock() }()
	if err := l.send(msg{Type: "op", OpID: id, Op: op, Args: raw}); err != nil {
		return res, fmt.Errorf("sending op to agent %s: %w", res.Agent, err)
	}
	t := time.NewTimer(h.cfg.OpTimeout)
	defer t.Stop()
	select {
	case m := <-ch:
		res.OK, res.Result, res.Error = m.OK, m.Result, m.Error
		return res, nil
	case <-l.done:
		return res, fmt.Errorf("agent %s: connection lost before it answered", res.Agent)
	case <-t.C:
		return res, fmt.Errorf("agent %s, op %s: %w (%s)", res.Agent, op, ErrOpTimeout, h.cfg.OpTimeout)
	case <-ctx.Done():
		return res, ctx.Err()
	}
}

func (h *Hub) findLocked(ref string) *node {
	if id, err := strconv.ParseInt(ref, 10, 64); err == nil {
		if n, ok := h.nodes[id]; ok {
			return n
		}
	}
	var found *node
	for _, n := range h.nodes {
		if n.st.Name == ref && (found == nil || n.st.ID > found.ID()) {
			found = n
		}
	}
	return found
}

func (n *node) ID() int64 { return n.st.ID }

// RestartSession closes an agent's connection (by node ID or name): the
// agent reconnects at once with a fresh hello, as after a network blip.
// It is refused with a NotUpError when the agent has no connection.
func (h *Hub) RestartSession(ctx context.Context, agentRef string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := h.findLocked(agentRef)
	if n == nil {
		return fmt.Errorf("agent %q: %w", agentRef, store.ErrNotFound)
	}
	if n.conn == nil {
		return &NotUpError{Agent: n.st.Name, ID: n.st.ID, State: n.st.State, Reason: n.st.Reason}
	}
	n.conn.Close()
	n.conn = nil
	h.setLocked(n, Down, agentstate.Reason{Code: agentstate.SessionRestarted, Message: "session restarted by the manager"})
	return nil
}
