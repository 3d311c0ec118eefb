package main

import (
	"context"
	"github.com/lightsout/lightsout/internal/poll"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/agent"
	"github.com/lightsout/lightsout/internal/api/apitest"
	"github.com/lightsout/lightsout/internal/hostlink"
	"github.com/lightsout/lightsout/internal/server"
	"github.com/lightsout/lightsout/internal/store"
)

// TestCLIAgentRunStatusDomain runs 'lightsout agent run' (the command, its
// flags) against a real server and a BMC link endpoint on loopback, then
// reads the agent's view with 'agent status' and the manager's with
// 'domain status'.
func TestCLIAgentRunStatusDomain(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("LIGHTSOUT_SERVER", "")
	t.Setenv("LIGHTSOUT_TOKEN", "")
	e := apitest.Start(t, apitest.Options{Configure: func(c *server.Config) {
		c.AgentListen = "127.0.0.1:0"
		c.Agents.Interval = 200 * time.Millisecond
	}})
	cert, err := hostlink.SelfSigned([]string{"127.0.0.1"}, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ep, err := hostlink.NewEndpoint(hostlink.EndpointConfig{Addr: "127.0.0.1:0", Cert: cert, ClientCAs: e.Server.CA.Pool(), UUID: "u", Firmware: "1.0"})
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()

	tokFile := filepath.Join(e.Dir, "join.token")
	out, code, err := as(t, e, store.RoleAdmin, "agent", "token", "create", "--out", tokFile)
	wantExit(t, "token create", out, code, err, 0, "join token written to")
	data := filepath.Join(e.Dir, "agent")

	// Bad flags are usage errors naming the flag, before anything runs.
	for _, c := range []struct{ flag, value, want string }{
		{"--link-timeout", "0s", "--link-timeout"},
		{"--link-retries", "11", "--link-retries"},
		{"--link-ipv4", "169.254.0.1", "--link-ipv4"},
	} {
		out, code, err := runCLI(t, "agent", "run", "--manager", e.Server.AgentAddr.String(), "--data", data, "--join-token-file", tokFile, c.flag, c.value)
		wantExit(t, "agent run "+c.flag, out, code, err, 2, c.want)
	}
	if _, err := os.Stat(filepath.Join(data, agent.KeyFile)); err == nil {
		t.Fatal("a refused command line enrolled the agent")
	}

	ctx, cancel := context.WithCancel(context.Background())
	root := newRoot()
	var agentOut syncBuffer
	root.SetOut(&agentOut)
	root.SetErr(&agentOut)
	root.SetArgs([]string{"agent", "run", "--manager", e.Server.AgentAddr.String(), "--data", data, "--join-token-file", tokFile,
		"--name", "web-1", "--no-inband", "--no-ipv6", "--link-ipv4", ep.Addr(), "--link-timeout", "500ms", "--link-interval", "1s", "--log-level", "error"})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("agent run did not stop")
		}
	})

	// The manager's view: Up, link over IPv4, a year of certificate.
	var dom string
	if !poll.Wait(10*time.Second, func() bool {
		dom, code, err = as(t, e, store.RoleViewer, "domain", "status")
		return code == 0 && strings.Contains(dom, "link:ipv4")
	}) {
		t.Fatalf("domain status: exit %d %v\n%s\nagent output:\n%s", code, err, dom, agentOut.String())
	}
	if !strings.Contains(dom, "I A 0x0001") || !strings.Contains(dom, "web-1") || !strings.Contains(dom, "cert:36") ||
		!strings.Contains(dom, "S V NODE") || !strings.Contains(dom, "I Up, O Down") {
		t.Fatalf("domain status:\n%s", dom)
	}

	// The agent's view.
	var st string
	if !poll.Wait(5*time.Second, func() bool {
		st, code, err = runCLI(t, "agent", "status", "--data", data)
		return code == 0
	}) {
		t.Fatalf("agent status: exit %d %v\n%s", code, err, st)
	}
	for _, want := range []string{"Agent web-1", "running (pid", "Up", e.Server.AgentAddr.String(), "node 0x0001",
		"Host link: Up over ipv4 at " + ep.Addr(), "agent  ok", "link   ok", "host link path"} {
		if !strings.Contains(st, want) {
			t.Errorf("agent status lacks %q:\n%s", want, st)
		}
	}

	// The BMC's link stops answering: both views say so, with the remedy.
	ep.SetFault(hostlink.FaultSilent)
	if !poll.Wait(10*time.Second, func() bool {
		st, code, _ = runCLI(t, "agent", "status", "--data", data)
		return code == 1 && strings.Contains(st, "Host link: Down") && strings.Contains(st, "remedy:") && strings.Contains(st, "timeouts")
	}) {
		t.Fatalf("agent status with a silent link: exit %d\n%s", code, st)
	}
	if !poll.Wait(5*time.Second, func() bool {
		dom, _, _ = as(t, e, store.RoleViewer, "domain", "status")
		return strings.Contains(dom, "link:Down")
	}) {
		t.Fatalf("domain status with a silent link:\n%s", dom)
	}

	out, code, err = runCLI(t, "agent", "status", "--data", data, "-o", "json")
	if code != 1 || !strings.Contains(out, `"running":true`) || !strings.Contains(out, `"state":"Down"`) {
		t.Errorf("agent status -o json: exit %d %v\n%s", code, err, out)
	}
	out, code, err = runCLI(t, "agent", "status", "--data", data, "-o", "yaml")
	if code != 1 || !strings.Contains(out, "running: true") || !strings.Contains(out, "state: Down") {
		t.Errorf("agent status -o yaml: exit %d %v\n%s", code, err, out)
	}
	out, code, err = runCLI(t, "agent", "status", "--data", data, "-o", "xml")
	wantExit(t, "agent status -o xml", out, code, err, 2, "--output")

	// Not an agent's directory.
	out, code, err = runCLI(t, "agent", "status", "--data", t.TempDir())
	wantExit(t, "agent status elsewhere", out, code, err, 1, "no agent status")
	out, code, err = runCLI(t, "agent", "status")
	wantExit(t, "agent status without --data", out, code, err, 2, "--data")
}
