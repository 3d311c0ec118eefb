package manager_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/lightsout/lightsout/internal/poll"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/agent"
	"github.com/lightsout/lightsout/internal/manager"
	"github.com/lightsout/lightsout/internal/power"
	"github.com/lightsout/lightsout/internal/server"
	"github.com/lightsout/lightsout/internal/sim"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
)

// powerOffEnv tells the test binary, run as an agent's shutdown command,
// which simulated host to power off: "CONTROL-URL|BMC-NAME".
const powerOffEnv = "LIGHTSOUT_TEST_SIM_POWER_OFF"

// simPowerOffChild is the shutdown command's side: the test binary re-run
// by the agent (argv, no shell) powers the host off through the
// simulator's control API on loopback, as an OS shutting down would.
func simPowerOffChild() (int, bool) {
	spec := os.Getenv(powerOffEnv)
	if spec == "" {
		return 0, false
	}
	url, name, _ := strings.Cut(spec, "|")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := sim.NewClient(url).SetPower(ctx, name, false); err != nil {
		fmt.Fprintln(os.Stderr, "power off:", err)
		return 1, true
	}
	fmt.Println("shutting down", name)
	return 0, true
}

// TestSoftOffAgentFallback: power soft with agent_fallback against real
// simulated BMCs over UDP and real agents over mutual TLS on loopback.
// bmc-00001 has an agent whose shutdown command powers its simulated host
// off; bmc-00002 has no agent; bmc-00003's agent has no shutdown command.
func TestSoftOffAgentFallback(t *testing.T) {
	ctx := context.Background()
	f := fleet(t, 3)
	cs, err := f.ServeControl("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	t.Setenv(powerOffEnv, cs.URL()+"|bmc-00001")

	sch := state.Schedule{Interval: 300 * time.Millisecond, Jitter: 0.1, Confirm: 100 * time.Millisecond,
		MaxBackoff: time.Second, AuthRetry: time.Hour}
	srv, err := server.New(ctx, server.Config{DataDir: t.TempDir(), Schedule: sch, Damping: state.Damping{Consecutive: 2},
		Timeout: 400 * time.Millisecond, AgentListen: "127.0.0.1:0", Agents: agent.HubConfig{Interval: 100 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	m := srv.Manager
	m.FallbackPoll = 500 * time.Millisecond
	importFleet(t, srv, f)

	startAgent := func(name string, shutdown []string) {
		tok, _, err := srv.Agents.CreateJoinToken(ctx, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		actx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			agent.Run(actx, agent.Config{Manager: srv.AgentAddr.String(), DataDir: filepath.Join(t.TempDir(), name),
				JoinToken: tok, Name: name, ShutdownCommand: shutdown, Rediscover: -1,
				MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
		}()
		t.Cleanup(func() { cancel(); <-done })
	}
	startAgent("bmc-00001", []string{os.Args[0], "-test.run=^$"})
	startAgent("bmc-00003", nil)
	for _, n := range []string{"bmc-00001", "bmc-00003"} {
		if !poll.Wait(10*time.Second, func() bool {
			up := false
			for _, st := range srv.Agents.List() {
				up = up || (st.Name == n && st.State == agent.Up)
			}
			return up
		}) {
			t.Fatalf("agent %s not Up: %+v", n, srv.Agents.List())
		}
	}
	for _, b := range f.BMCs() {
		waitState(t, srv, b.Name(), state.Connectable)
	}
	on := func(name string, faults sim.Faults) *sim.BMC {
		t.Helper()
		if err := f.SetFaults(name, faults); err != nil {
			t.Fatal(err)
		}
		if err := f.SetPower(name, true); err != nil {
			t.Fatal(err)
		}
		b, _ := f.BMC(name)
		return b
	}
	soft := func(name string, fallback time.Duration) power.Result {
		t.Helper()
		res, err := m.Power(ctx, admin, manager.PowerRequest{Action: power.SoftOff, Machines: []string{name}, AgentFallback: fallback}, nil)
		if err != nil || len(res) != 1 {
			t.Fatalf("power soft %s: %+v %v", name, res, err)
		}
		return res[0]
	}
	agentOps := func() []store.AuditEntry {
		log, err := srv.Store.AuditLog(ctx, "", 1000)
		if err != nil {
			t.Fatal(err)
		}
		var out []store.AuditEntry
		for _, e := range log {
			if e.Action == "agent.op" {
				out = append(out, e)
			}
		}
		return out
	}
	ignored := sim.Faults{SoftOffIgnored: true}

	t.Run("refused up front: role, action, bounds", func(t *testing.T) {
		_, err := m.Power(ctx, operator, manager.PowerRequest{Action: power.SoftOff, Machines: []string{"bmc-00001"}, AgentFallback: 3 * time.Second}, nil)
		if !errors.Is(err, manager.ErrForbidden) {
			t.Errorf("operator: %v", err)
		}
		for _, req := range []manager.PowerRequest{
			{Action: power.Off, Machines: []string{"bmc-00001"}, AgentFallback: 3 * time.Second},
			{Action: power.SoftOff, Machines: []string{"bmc-00001"}, AgentFallback: 31 * time.Minute},
			{Action: power.SoftOff, Machines: []string{"bmc-00001"}, AgentFallback: -time.Second},
		} {
			_, err := m.Power(ctx, admin, req, nil)
			var fe *store.FieldError
			if !errors.As(err, &fe) || fe.Field != "agent_fallback" {
				t.Errorf("%+v: %v", req, err)
			}
		}
	})

	t.Run("a: soft-off honoured, no agent op", func(t *testing.T) {
		b := on("bmc-00001", sim.Faults{})
		r := soft("bmc-00001", 3*time.Second)
		if r.Result != power.ResultOK || r.Power != "off" || !strings.HasPrefix(r.Detail, "off after soft-off (") || b.PowerOn() {
			t.Fatalf("%+v (on %v)", r, b.PowerOn())
		}
		if ops := agentOps(); len(ops) != 0 {
			t.Fatalf("agent ops %+v", ops)
		}
		log, _ := srv.Store.AuditLog(ctx, "bmc-00001", 1)
		if len(log) != 1 || log[0].Action != "power.soft" || log[0].Result != "ok" || !strings.Contains(log[0].Detail, "agent fallback 3s") {
			t.Fatalf("audit %+v", log)
		}
	})

	t.Run("b: soft-off ignored, the agent shuts the OS down", func(t *testing.T) {
		b := on("bmc-00001", ignored)
		t0 := time.Now()
		r := soft("bmc-00001", 3*time.Second)
		if r.Result != power.ResultOK || r.Power != "off" || b.PowerOn() ||
			!strings.HasPrefix(r.Detail, "soft-off ignored for 3s; agent os-shutdown sent; off after ") {
			t.Fatalf("%+v (on %v)", r, b.PowerOn())
		}
		t.Logf("%s: %s", r.Machine, r.Detail)
		if el := time.Since(t0); el < 3*time.Second {
			t.Errorf("the agent was asked after %v, before the fallback time", el)
		}
		ops := agentOps()
		if len(ops) != 1 || ops[0].Result != "ok" || ops[0].Actor != admin.Name ||
			!strings.Contains(ops[0].Detail, "op os-shutdown on bmc-00001") || !strings.Contains(ops[0].Detail, "agent fallback") {
			t.Fatalf("agent.op audit %+v", ops)
		}
		log, _ := srv.Store.AuditLog(ctx, "bmc-00001", 1)
		if len(log) != 1 || log[0].Action != "power.soft" || !strings.Contains(log[0].Detail, "agent fallback 3s") ||
			!strings.Contains(log[0].Detail, "agent os-shutdown sent") {
			t.Fatalf("power.soft audit %+v", log)
		}
	})

	t.Run("c: soft-off ignored, no agent of that name", func(t *testing.T) {
		b := on("bmc-00002", ignored)
		r := soft("bmc-00002", time.Second)
		if r.Result != power.ResultFailed || r.Cause != manager.CauseNoAgent || r.Power != "on" || !b.PowerOn() ||
			!strings.Contains(r.Message, `no agent named "bmc-00002"`) || !strings.Contains(r.Message, "soft-off ignored for 1s") {
			t.Fatalf("%+v", r)
		}
		t.Logf("%s: %s", r.Machine, r.Message)
	})

	t.Run("soft-off ignored, the agent has no shutdown command", func(t *testing.T) {
		b := on("bmc-00003", ignored)
		r := soft("bmc-00003", time.Second)
		if r.Result != power.ResultFailed || r.Cause != manager.CauseAgentNoShutdown || !b.PowerOn() ||
			!strings.Contains(r.Message, `lacks capability "os-shutdown"`) {
			t.Fatalf("%+v", r)
		}
		ops := agentOps()
		// Every request is audited, refused or not (c's too), as the API does.
		if len(ops) != 3 || ops[0].Result != "failed" || !strings.Contains(ops[0].Detail, "on bmc-00003") ||
			ops[1].Result != "failed" || ops[1].Target != "bmc-00002" {
			t.Fatalf("agent.op audit %+v", ops)
		}
	})

	t.Run("d: no fallback: soft-off only requested", func(t *testing.T) {
		b := on("bmc-00001", ignored)
		n := len(agentOps())
		r := soft("bmc-00001", 0)
		if r.Result != power.ResultOK || r.Power != "on" || !b.PowerOn() || !strings.HasPrefix(r.Detail, "soft-off requested, power still on") || r.Cause != "" {
			t.Fatalf("%+v (on %v)", r, b.PowerOn())
		}
		if len(agentOps()) != n {
			t.Fatal("an agent op without a fallback")
		}
		log, _ := srv.Store.AuditLog(ctx, "bmc-00001", 1)
		if len(log) != 1 || log[0].Action != "power.soft" || strings.Contains(log[0].Detail, "fallback") {
			t.Fatalf("audit %+v", log)
		}
	})

	t.Run("soft-off ignored, the agent is not Up", func(t *testing.T) {
		var id int64
		for _, st := range srv.Agents.List() {
			if st.Name == "bmc-00003" {
				id = st.ID
			}
		}
		if _, err := srv.Agents.Revoke(ctx, id); err != nil {
			t.Fatal(err)
		}
		b := on("bmc-00003", ignored)
		r := soft("bmc-00003", time.Second)
		if r.Result != power.ResultFailed || r.Cause != manager.CauseAgentNotUp || !b.PowerOn() ||
			!strings.Contains(r.Message, "PendingUp") || !strings.Contains(r.Message, agent.ReasonRevoked) {
			t.Fatalf("%+v", r)
		}
		t.Logf("%s: %s", r.Machine, r.Message)
	})
}
