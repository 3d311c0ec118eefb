package main

import (
	"context"
	"github.com/lightsout/lightsout/internal/manager"
	"github.com/lightsout/lightsout/internal/poll"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/api/apitest"
	"github.com/lightsout/lightsout/internal/sim"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
)

// TestCLIPowerAgentFallback: --agent-fallback is checked before any
// request, and a soft-off the BMC's host ignores with no agent of the
// machine's name fails with its cause; a soft-off without a fallback that
// still reads on says it was only requested.
func TestCLIPowerAgentFallback(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("LIGHTSOUT_SERVER", "")
	t.Setenv("LIGHTSOUT_TOKEN", "")
	t.Setenv("LIGHTSOUT_PASSWORD", "")
	e := apitest.Start(t, apitest.Options{Subnet: 78, Fleet: sim.Config{Count: 1, Seed: 43}})
	e.ImportFleet(t)

	out, code, err := as(t, e, store.RoleAdmin, "power", "off", "bmc-00001", "--agent-fallback", "1m")
	wantExit(t, "fallback with off", out, code, err, 2, "--agent-fallback works only with soft")
	out, code, err = as(t, e, store.RoleAdmin, "power", "soft", "bmc-00001", "--agent-fallback", "45m")
	wantExit(t, "fallback too long", out, code, err, 2, "--agent-fallback 45m0s: must be from 1s to 30m0s")
	out, code, err = as(t, e, store.RoleOperator, "power", "soft", "bmc-00001", "--agent-fallback", "1s")
	wantExit(t, "operator fallback", out, code, err, 1, "needs role admin")
	out, code, err = runCLI(t, "power", "--help")
	wantExit(t, "help", out, code, err, 0, "--agent-fallback", "enrolled under the same name as the machine")

	adm := e.Client(t, store.RoleAdmin)
	var res []manager.CheckResult
	if !poll.Wait(10*time.Second, func() bool {
		res, err = adm.Check(context.Background(), []string{"bmc-00001"}, "")
		return err == nil && len(res) == 1 && res[0].State.State == state.Connectable
	}) {
		t.Fatalf("bmc-00001 not Connectable: %+v %v", res, err)
	}
	if err := e.Fleet.SetFaults("bmc-00001", sim.Faults{SoftOffIgnored: true}); err != nil {
		t.Fatal(err)
	}
	if err := e.Fleet.SetPower("bmc-00001", true); err != nil {
		t.Fatal(err)
	}
	out, code, err = as(t, e, store.RoleAdmin, "power", "soft", "bmc-00001")
	wantExit(t, "soft, no fallback", out, code, err, 0, "soft-off requested, power still on", "1 ok")
	out, code, err = as(t, e, store.RoleAdmin, "power", "soft", "bmc-00001", "--agent-fallback", "1s")
	wantExit(t, "soft, fallback, no agent", out, code, err, 1, "[no_agent]", "soft-off ignored for 1s", `no agent named "bmc-00001"`, "1 failed")
	out, code, err = as(t, e, store.RoleAdmin, "power", "soft", "bmc-00001", "--agent-fallback", "1s", "-o", "json")
	wantExit(t, "soft, fallback, json", out, code, err, 1, `"cause":"no_agent"`, `"detail":"soft-off ignored for 1s`)
	if b, _ := e.Fleet.BMC("bmc-00001"); !b.PowerOn() {
		t.Error("the host went off although it ignores soft-off and has no agent")
	}
}
