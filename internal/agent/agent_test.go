package agent_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/agent"
	"github.com/lightsout/lightsout/internal/agentstate"
	"github.com/lightsout/lightsout/internal/poll"
	"github.com/lightsout/lightsout/internal/server"
)

const hb = 100 * time.Millisecond

func startServer(t *testing.T, dir, listen string) *server.Server {
	t.Helper()
	srv, err := server.New(context.Background(), server.Config{DataDir: dir, AgentListen: listen,
		Agents: agent.HubConfig{Interval: hb, Version: "1.2.0"}, Logger: dbgLogger()})
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

type runningAgent struct {
	name   string
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

func startAgent(t *testing.T, cfg agent.Config) *runningAgent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff, cfg.MaxBackoff = 20*time.Millisecond, 200*time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = dbgLogger().With("side", "agent")
	}
	a := &runningAgent{name: cfg.Name, cancel: cancel, done: make(chan struct{})}
	go func() { a.err = agent.Run(ctx, cfg); close(a.done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-a.done:
		case <-time.After(15 * time.Second):
			buf := make([]byte, 1<<20)
			t.Errorf("agent %s did not stop within 15s of cancellation; goroutines:\n%s", cfg.Name, buf[:runtime.Stack(buf, true)])
		}
	})
	return a
}

// enrollOnly runs an agent until it has enrolled (its key, certificate
// and the manager's CA in dir), then stops it.
func enrollOnly(t *testing.T, manager, dir, token, name string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return agent.Run(ctx, agent.Config{Manager: manager, DataDir: dir, JoinToken: token, Name: name,
		OnEvent: func(e string) {
			if e == "enrolled" {
				cancel()
			}
		}})
}

// reasonCodes: the code the hub gives with each of its reason messages
// (the diagnosis decides on the code).
var reasonCodes = map[string]agentstate.ReasonCode{
	agent.ReasonRevoked: agentstate.Revoked, agent.ReasonClockSkew: agentstate.ClockSkew, agent.ReasonUnknownCert: agentstate.UnknownCert,
	agent.ReasonNotTrusted: agentstate.NotTrusted, agent.ReasonExpired: agentstate.CertExpired, "no heartbeat": agentstate.NoHeartbeat,
}

// waitState waits until the named agent has state (and a reason
// containing reason), returning how long it took.
func waitState(t *testing.T, h *agent.Hub, name, state, reason string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	var last agent.Status
	if !poll.Wait(within, func() bool {
		last = agent.Status{}
		for _, s := range h.List() {
			if s.Name == name {
				last = s
			}
		}
		return last.State == state && strings.Contains(last.Reason, reason)
	}) {
		t.Fatalf("%s: state %s (%q) after %s, want %s (%q)", name, last.State, last.Reason, within, state, reason)
	}
	for prefix, code := range reasonCodes {
		if strings.HasPrefix(reason, prefix) && last.Code != code {
			t.Fatalf("%s: %s (%q) with reason code %q, want %q", name, last.State, last.Reason, last.Code, code)
		}
	}
	return time.Since(start)
}

// heartbeats waits (bounded) until the hub has seen n more heartbeats from
// the agent name: n heartbeat intervals have passed.
func heartbeats(t *testing.T, h *agent.Hub, name string, n int) {
	t.Helper()
	var last time.Time
	seen := -1
	poll.Until(t, 10*time.Second, fmt.Sprintf("%d more heartbeats from %s", n, name), func() bool {
		for _, s := range h.List() {
			if s.Name == name && !s.LastHeartbeat.Equal(last) {
				last = s.LastHeartbeat
				seen++
			}
		}
		return seen >= n
	})
}

func TestManagerAndThreeAgents(t *testing.T) {
	for _, host := range []string{"127.0.0.1", "::1"} {
		t.Run(host, func(t *testing.T) {
			if host == "::1" {
				if ln, err := net.Listen("tcp", "[::1]:0"); err != nil {
					t.Skip("no IPv6 loopback:", err)
				} else {
					ln.Close()
				}
			}
			testFleet(t, host)
		})
	}
}

func testFleet(t *testing.T, host string) {
	dir := t.TempDir()
	srv := startServer(t, dir, net.JoinHostPort(host, "0"))
	addr := srv.AgentAddr.String()
	defer func() { srv.Close() }()

	if fi, err := os.Stat(filepath.Join(dir, "agent-ca.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("CA key: %v %v", fi, err)
	}
	agents := map[string]*runningAgent{}
	for i := 1; i <= 3; i++ {
		tok, exp, err := srv.Agents.CreateJoinToken(context.Background(), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if time.Until(exp) < 59*time.Minute {
			t.Fatalf("expiry %s", exp)
		}
		name := fmt.Sprintf("node-%d", i)
		version := "1.2.0"
		if i == 3 {
			version = "1.1.0"
		}
		agents[name] = startAgent(t, agent.Config{Manager: addr, DataDir: filepath.Join(dir, name), JoinToken: tok,
			Name: name, Version: version, Capabilities: []string{"heartbeat", "power"}})
	}
	for name := range agents {
		d := waitState(t, srv.Agents, name, agent.Up, "", 5*time.Second)
		t.Logf("%s Up after %s", name, d)
	}
	for _, s := range srv.Agents.List() {
		if s.VersionSkew != (s.Name == "node-3") || len(s.Capabilities) != 2 || s.Address != host {
			t.Errorf("%+v", s)
		}
	}

	// A join token is spent by its enrollment.
	tok, _, _ := srv.Agents.CreateJoinToken(context.Background(), 0)
	if err := enrollOnly(t, addr, filepath.Join(dir, "again-1"), tok, "again"); err != nil {
		t.Fatalf("fresh token: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	err := agent.Run(ctx, agent.Config{Manager: addr, DataDir: filepath.Join(dir, "again-2"), JoinToken: tok, Name: "again2"})
	cancel()
	if err == nil || !strings.Contains(err.Error(), "already used") {
		t.Fatalf("reused token: %v", err)
	}
	// A wrong pinned fingerprint: the agent refuses the manager.
	tok, _, _ = srv.Agents.CreateJoinToken(context.Background(), 0)
	ctx, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
	err = agent.Run(ctx, agent.Config{Manager: addr, DataDir: filepath.Join(dir, "pin"), JoinToken: tok, Name: "pin",
		CAFingerprint: strings.Repeat("ab", 32)})
	cancel()
	if err == nil || !strings.Contains(err.Error(), "differs") {
		t.Fatalf("pin: %v", err)
	}

	// Killed agent: Down within 3 heartbeats.
	agents["node-1"].cancel()
	<-agents["node-1"].done
	d := waitState(t, srv.Agents, "node-1", agent.Down, "", 3*hb)
	t.Logf("node-1 Down %s after its agent stopped", d)

	// Revoked: PendingUp with the reason, and it stays so while the agent retries.
	var id2 int64
	for _, s := range srv.Agents.List() {
		if s.Name == "node-2" {
			id2 = s.ID
		}
	}
	if _, err := srv.Agents.Revoke(context.Background(), id2); err != nil {
		t.Fatal(err)
	}
	waitState(t, srv.Agents, "node-2", agent.PendingUp, agent.ReasonRevoked, time.Second)
	heartbeats(t, srv.Agents, "node-3", 5) // five heartbeat intervals
	waitState(t, srv.Agents, "node-2", agent.PendingUp, agent.ReasonRevoked, 0)

	// Manager restart on the same data dir and address: node-3 comes
	// back Up with its certificate, node-1 is restarted from its dir.
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	waitGone := time.Now()
	srv = startServer(t, dir, addr)
	s3 := waitState(t, srv.Agents, "node-3", agent.Up, "", 5*time.Second)
	t.Logf("node-3 Up %s after the manager restarted (%s since it stopped)", s3, time.Since(waitGone))
	startAgent(t, agent.Config{Manager: addr, DataDir: filepath.Join(dir, "node-1"), Name: "node-1", Version: "1.2.0"})
	waitState(t, srv.Agents, "node-1", agent.Up, "", 5*time.Second)
	waitState(t, srv.Agents, "node-2", agent.PendingUp, agent.ReasonRevoked, 2*time.Second)
}

func TestClockSkewIsPendingUp(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, dir, "127.0.0.1:0")
	defer srv.Close()
	tok, _, err := srv.Agents.CreateJoinToken(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	skew := time.Duration(0)
	startAgent(t, agent.Config{Manager: srv.AgentAddr.String(), DataDir: filepath.Join(dir, "a"), JoinToken: tok, Name: "a",
		Clock: func() time.Time { mu.Lock(); defer mu.Unlock(); return time.Now().Add(skew) }})
	waitState(t, srv.Agents, "a", agent.Up, "", 5*time.Second)
	mu.Lock()
	skew = -2 * time.Minute
	mu.Unlock()
	waitState(t, srv.Agents, "a", agent.PendingUp, agent.ReasonClockSkew, time.Second)
	mu.Lock()
	skew = 0
	mu.Unlock()
	waitState(t, srv.Agents, "a", agent.Up, "", 5*time.Second)
}

func TestUnknownCertificateIsPendingUp(t *testing.T) {
	dirA, dirB := t.TempDir(), t.TempDir()
	a := startServer(t, dirA, "127.0.0.1:0")
	tok, _, _ := a.Agents.CreateJoinToken(context.Background(), 0)
	if err := enrollOnly(t, a.AgentAddr.String(), filepath.Join(dirA, "x"), tok, "x"); err != nil {
		t.Fatal(err)
	}
	a.Close()
	// Another manager (another CA): the agent's TLS fails to verify the
	// server, so the agent never gets as far as a hello. Its own CA file
	// replaced by B's: TLS completes, B does not know the certificate.
	b := startServer(t, dirB, "127.0.0.1:0")
	defer b.Close()
	os.Remove(filepath.Join(dirA, "x", agent.CAFile))
	ca, _ := os.ReadFile(filepath.Join(dirB, "agent-ca.pem"))
	os.WriteFile(filepath.Join(dirA, "x", agent.CAFile), ca, 0o644)
	startAgent(t, agent.Config{Manager: b.AgentAddr.String(), DataDir: filepath.Join(dirA, "x"), Name: "x"})
	waitState(t, b.Agents, "?", agent.PendingUp, agent.ReasonUnknownCert, 5*time.Second)
}
