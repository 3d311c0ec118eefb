package agent_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/agent"
	"github.com/lightsout/lightsout/internal/agentstate"
	"github.com/lightsout/lightsout/internal/hostlink"
	"github.com/lightsout/lightsout/internal/poll"
	"github.com/lightsout/lightsout/internal/server"
	"github.com/lightsout/lightsout/internal/store"
	"github.com/lightsout/lightsout/internal/store/pgtest"
)

func TestMain(m *testing.M) {
	// As a child of TestKilledAgentProcessIsDown: be an agent until killed.
	if spec := os.Getenv("LIGHTSOUT_TEST_AGENT_CHILD"); spec != "" {
		manager, dir, _ := strings.Cut(spec, "|")
		agent.Run(context.Background(), agent.Config{Manager: manager, DataDir: dir, JoinToken: os.Getenv("LIGHTSOUT_TEST_AGENT_TOKEN"),
			Name: "child", MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
		os.Exit(0)
	}
	os.Exit(pgtest.Main(m))
}

// TestKilledAgentProcessIsDown: an agent process killed with SIGKILL (no
// goodbye) is Down within 3 heartbeat intervals.
func TestKilledAgentProcessIsDown(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, dir, "127.0.0.1:0")
	defer srv.Close()
	tok, _, _ := srv.Agents.CreateJoinToken(context.Background(), 0)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "LIGHTSOUT_TEST_AGENT_CHILD="+srv.AgentAddr.String()+"|"+filepath.Join(dir, "child"),
		"LIGHTSOUT_TEST_AGENT_TOKEN="+tok) // the token is no secret here: a test manager's, one-time
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	waitState(t, srv.Agents, "child", agent.Up, "", 10*time.Second)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	waitState(t, srv.Agents, "child", agent.Down, "", 3*hb)
	t.Logf("killed agent process Down %s after SIGKILL (3 intervals = %s)", time.Since(killed).Round(time.Millisecond), 3*hb)
}

// TestTwoManagersRediscovery: two managers share a PostgreSQL database
// and the agent CA (several instances splitting a fleet). An agent that
// knows only the first rediscovers the second, keeps a connection to
// each, and stays Up on the second when the first stops; its own status
// file says which managers it reaches.
func TestTwoManagersRediscovery(t *testing.T) {
	dsn := pgtest.DSN(t)
	dirA, dirB := t.TempDir(), t.TempDir()
	start := func(dir string) *server.Server {
		srv, err := server.New(context.Background(), server.Config{DataDir: dir, DB: dsn, KeyFile: filepath.Join(dirA, "secret.key"),
			AgentListen: "127.0.0.1:0", Agents: agent.HubConfig{Interval: hb}})
		if err != nil {
			t.Fatal(err)
		}
		return srv
	}
	a := start(dirA)
	aClosed := false
	defer func() {
		if !aClosed {
			a.Close()
		}
	}()
	for _, f := range []string{"agent-ca.pem", "agent-ca.key"} {
		b, err := os.ReadFile(filepath.Join(dirA, f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dirB, f), b, 0o600)
	}
	b := start(dirB)
	defer b.Close()
	var got []string
	if !poll.Wait(3*time.Second, func() bool {
		got = a.Agents.Managers(context.Background())
		return slices.Contains(got, b.AgentAddr.String()) && got[0] == a.AgentAddr.String()
	}) {
		t.Fatalf("managers listed by A: %v", got)
	}

	tok, _, _ := a.Agents.CreateJoinToken(context.Background(), 0)
	adir := filepath.Join(dirA, "host")
	startAgent(t, agent.Config{Manager: a.AgentAddr.String(), DataDir: adir, JoinToken: tok, Name: "db-1",
		Rediscover: 50 * time.Millisecond})
	waitState(t, a.Agents, "db-1", agent.Up, "", 5*time.Second)
	waitState(t, b.Agents, "db-1", agent.Up, "", 5*time.Second)
	if !auditHas(t, adir, "managers rediscovered", b.AgentAddr.String()) {
		t.Error("the rediscovery is not in the agent's audit log")
	}

	a.Close()
	aClosed = true
	waitState(t, a.Agents, "db-1", agent.Down, "", time.Second)
	heartbeats(t, b.Agents, "db-1", 5) // five heartbeat intervals
	if st, _ := findStatus(b.Agents, "db-1"); st.State != agent.Up {
		t.Fatalf("on B after A stopped: %+v", st)
	}
	var st agent.LocalStatus
	if !poll.Wait(3*time.Second, func() bool {
		st = readStatus(t, adir)
		var up, down []string
		for _, m := range st.Managers {
			if m.State == agent.MgrUp {
				up = append(up, m.Address)
			} else if m.State == agent.MgrUnreachable {
				down = append(down, m.Address)
			}
		}
		return slices.Equal(up, []string{b.AgentAddr.String()}) && slices.Equal(down, []string{a.AgentAddr.String()})
	}) {
		t.Fatalf("agent's view of its managers: %+v", st.Managers)
	}
}

// TestTrustedHostList: a manager whose trusted host list excludes the
// agent's address refuses it (enrollment too), and lists an enrolled one
// PendingUp with the reason.
func TestTrustedHostList(t *testing.T) {
	dir := t.TempDir()
	clk, sk := &fakeClock{}, &sink{}
	srv := startClockedServer(t, dir, "127.0.0.1:0", clk, sk, "127.0.0.0/8")
	addr := srv.AgentAddr.String()
	tok, _, _ := srv.Agents.CreateJoinToken(context.Background(), 0)
	startAgent(t, agent.Config{Manager: addr, DataDir: filepath.Join(dir, "h"), JoinToken: tok, Name: "h"})
	waitState(t, srv.Agents, "h", agent.Up, "", 5*time.Second)
	srv.Close()

	srv = startClockedServer(t, dir, addr, clk, sk, "10.0.0.0/8")
	defer srv.Close()
	waitState(t, srv.Agents, "h", agent.PendingUp, agent.ReasonNotTrusted+": 127.0.0.1", 5*time.Second)
	tok, _, _ = srv.Agents.CreateJoinToken(context.Background(), 0)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := agent.Run(ctx, agent.Config{Manager: addr, DataDir: filepath.Join(dir, "new"), JoinToken: tok, Name: "new"})
	if err == nil || !strings.Contains(err.Error(), agent.ReasonNotTrusted) {
		t.Fatalf("enrollment from an untrusted address: %v", err)
	}
}

// TestLinkTimeoutsFlood: a BMC whose link endpoint stops answering makes
// every link check time out; the agent counts each timeout and reports
// them, and the manager's flood detector raises oob.timeout_flood for the
// agent — the IPMIDRV 1004 flood seen from the manager.
func TestLinkTimeoutsFlood(t *testing.T) {
	dir := t.TempDir()
	clk, sk := &fakeClock{}, &sink{}
	srv := startClockedServer(t, dir, "127.0.0.1:0", clk, sk)
	defer srv.Close()
	ep := endpoint(t, "127.0.0.1:0", srv, clk)
	ep.SetFault(hostlink.FaultSilent)
	tok, _, _ := srv.Agents.CreateJoinToken(context.Background(), 0)
	adir := filepath.Join(dir, "h")
	startAgent(t, agent.Config{Manager: srv.AgentAddr.String(), DataDir: adir, JoinToken: tok, Name: "noisy",
		Link:         &hostlink.Config{DisableInBand: true, DisableIPv6: true, IPv4: ep.Addr(), Timeout: 30 * time.Millisecond, Retries: 2},
		LinkInterval: 20 * time.Millisecond})
	waitState(t, srv.Agents, "noisy", agent.Up, "", 5*time.Second)
	l := waitLink(t, srv.Agents, "noisy", agent.LinkDown, "", 5*time.Second)
	if !strings.Contains(l.Reason, "timed out") && !strings.Contains(l.Reason, "timeout") {
		t.Errorf("link down reason: %q", l.Reason)
	}
	var evs []store.Event
	if !poll.Wait(10*time.Second, func() bool {
		var err error
		if evs, err = srv.Store.ListEvents(context.Background(), store.EventFilter{Source: "agent:noisy", Limit: 100}); err != nil {
			t.Fatal(err)
		}
		var flood, timeouts bool
		for _, e := range evs {
			flood = flood || e.Code == "oob.timeout_flood"
			timeouts = timeouts || e.Code == agent.EvLinkTimeout
		}
		return flood && timeouts
	}) {
		t.Fatalf("no flood raised for the agent (events %+v)", evs)
	}
	st, _ := findStatus(srv.Agents, "noisy")
	if st.Link == nil || st.Link.Timeouts < 10 || st.Link.TimeoutRate <= 0 {
		t.Fatalf("timeouts not counted: %+v", st.Link)
	}
	// Within its first minute the rate is over that minute, not diluted
	// over five: every timeout so far counts.
	if st.Link.TimeoutRate != float64(st.Link.Timeouts) {
		t.Fatalf("rate %.1f/min after %d timeouts in less than a minute", st.Link.TimeoutRate, st.Link.Timeouts)
	}
	if n := sk.count(agent.EvLinkTimeout); n < 10 {
		t.Fatalf("%d timeouts reported", n)
	}
	// The server's metrics count agents and links by state.
	mfs, err := srv.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += "{" + l.GetName() + "=" + l.GetValue() + "}"
			}
			got[key] = m.GetGauge().GetValue()
		}
	}
	for k, v := range map[string]float64{"lightsout_agents{state=Up}": 1, "lightsout_agents{state=Down}": 0,
		"lightsout_agent_links{state=Down}": 1, "lightsout_agent_links{state=Up}": 0, "lightsout_agent_certs_expiring": 0} {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
}

// TestTrustMismatchIsPendingUp: an agent that pins another manager CA
// refuses this manager's certificate; the manager lists the peer PendingUp
// by address with the trust-mismatch reason, the agent's own view says it
// cannot verify the manager.
func TestTrustMismatchIsPendingUp(t *testing.T) {
	dirA, dirB := t.TempDir(), t.TempDir()
	a := startServer(t, dirA, "127.0.0.1:0")
	tok, _, _ := a.Agents.CreateJoinToken(context.Background(), 0)
	adir := filepath.Join(dirA, "h")
	if err := enrollOnly(t, a.AgentAddr.String(), adir, tok, "h"); err != nil {
		t.Fatal(err)
	}
	a.Close()
	// Another manager (another CA) at an address the agent is sent to.
	b := startServer(t, dirB, "127.0.0.1:0")
	defer b.Close()
	startAgent(t, agent.Config{Manager: b.AgentAddr.String(), DataDir: adir, Name: "h"})
	if !poll.Wait(5*time.Second, func() bool {
		for _, s := range b.Agents.List() {
			if s.ID == 0 && s.State == agent.PendingUp && strings.HasPrefix(s.Reason, agent.ReasonTrustMismatch) && s.Code == agentstate.TrustMismatch && s.Address == "127.0.0.1" {
				return true
			}
		}
		return false
	}) {
		t.Fatalf("no trust-mismatch peer: %+v", b.Agents.List())
	}
	var st agent.LocalStatus
	var err error
	if !poll.Wait(5*time.Second, func() bool {
		st, err = agent.ReadLocalStatus(adir)
		return err == nil && len(st.Managers) == 1 && st.Managers[0].State == agent.MgrUntrusted &&
			strings.Contains(st.Managers[0].Reason, "certificate signed by unknown authority")
	}) {
		t.Fatalf("agent's view: %+v %v", st, err)
	}
}
