package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/agent"
)

func TestRemoteOps(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, dir, "127.0.0.1:0")
	defer srv.Close()
	ctx := context.Background()
	tok, _, _ := srv.Agents.CreateJoinToken(ctx, 0)
	a := startAgent(t, agent.Config{Manager: srv.AgentAddr.String(), DataDir: filepath.Join(dir, "h1"), JoinToken: tok, Name: "h1",
		ShutdownCommand: []string{"true"}})
	tok, _, _ = srv.Agents.CreateJoinToken(ctx, 0)
	startAgent(t, agent.Config{Manager: srv.AgentAddr.String(), DataDir: filepath.Join(dir, "h2"), JoinToken: tok, Name: "h2"})
	waitState(t, srv.Agents, "h1", agent.Up, "", 5*time.Second)
	waitState(t, srv.Agents, "h2", agent.Up, "", 5*time.Second)

	res, err := srv.Agents.Do(ctx, "h1", agent.OpCollectInventory)
	if err != nil || !res.OK {
		t.Fatalf("collect-inventory: %+v %v", res, err)
	}
	var inv agent.Inventory
	json.Unmarshal(res.Result, &inv)
	host, _ := os.Hostname()
	if inv.Hostname != host || inv.CPUs != runtime.NumCPU() || inv.Arch != runtime.GOARCH {
		t.Errorf("inventory %+v", inv)
	}
	if runtime.GOOS == "linux" && (inv.MemoryBytes == 0 || inv.Kernel == "") {
		t.Errorf("inventory %+v", inv)
	}
	if res, err := srv.Agents.Do(ctx, "h1", agent.OpOSShutdown); err != nil || !res.OK {
		t.Fatalf("os-shutdown: %+v %v", res, err)
	}
	if res, err := srv.Agents.Do(ctx, "h1", agent.OpBMCCheck); err != nil || !res.OK {
		t.Fatalf("bmc-check: %+v %v", res, err)
	}
	// No host link configured: restart-link is not among its capabilities.
	if _, err := srv.Agents.Do(ctx, "h1", agent.OpRestartLink); !errors.Is(err, agent.ErrNoCapability) {
		t.Fatalf("restart-link without a host link: %v", err)
	}
	// h2 has no shutdown command: not capable.
	if _, err := srv.Agents.Do(ctx, "h2", agent.OpOSShutdown); !errors.Is(err, agent.ErrNoCapability) {
		t.Fatalf("h2 os-shutdown: %v", err)
	}
	if _, err := srv.Agents.Do(ctx, "h1", "rm-rf"); !errors.Is(err, agent.ErrUnknownOp) {
		t.Fatalf("unknown op: %v", err)
	}
	a.cancel()
	<-a.done
	waitState(t, srv.Agents, "h1", agent.Down, "", time.Second)
	_, err = srv.Agents.Do(ctx, "h1", agent.OpCollectInventory)
	var nu *agent.NotUpError
	if !errors.As(err, &nu) || nu.State != agent.Down || !errors.Is(err, agent.ErrAgentNotUp) {
		t.Fatalf("Down agent: %v", err)
	}
}
