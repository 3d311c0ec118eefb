package main

import (
	"context"
	"github.com/lightsout/lightsout/internal/api/wire"
	"github.com/lightsout/lightsout/internal/poll"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/api/apitest"
	"github.com/lightsout/lightsout/internal/api/client"
	"github.com/lightsout/lightsout/internal/sim"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
)

func TestCLISecurity(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("LIGHTSOUT_SERVER", "")
	t.Setenv("LIGHTSOUT_TOKEN", "")
	e := apitest.Start(t, apitest.Options{Subnet: 98,
		Fleet: sim.Config{Count: 2, Seed: 3, Faults: map[string]sim.Faults{"bmc-00002": {Cipher0: true}}}})
	e.ImportFleet(t)
	view := e.Client(t, store.RoleViewer)
	var ms wire.Machines
	if !poll.Wait(10*time.Second, func() bool {
		var err error
		ms, err = view.Machines(context.Background(), client.MachineQuery{})
		if err != nil {
			t.Fatal(err)
		}
		up := 0
		for _, m := range ms.Machines {
			if len(m.Channels) == 1 && m.Channels[0].State.State == state.Connectable {
				up++
			}
		}
		return up == 2
	}) {
		t.Fatalf("machines not Connectable: %+v", ms)
	}

	out, code, err := as(t, e, store.RoleViewer, "security")
	wantExit(t, "never audited", out, code, err, 0, "not_audited")
	out, code, err = as(t, e, store.RoleViewer, "security", "--run", "bmc-00001")
	wantExit(t, "viewer --run", out, code, err, 1, "operator")
	out, code, err = as(t, e, store.RoleOperator, "security", "--run")
	wantExit(t, "--run without names", out, code, err, 2, "name the machines")
	out, code, err = as(t, e, store.RoleOperator, "security", "--history", "101")
	wantExit(t, "bad --history", out, code, err, 2, "--history")

	out, code, err = as(t, e, store.RoleOperator, "security", "--run", "bmc-00001", "bmc-00002")
	wantExit(t, "audit now", out, code, err, 1, "bmc-00001", "clean", "bmc-00002", "insecure", "cipher0_enabled", "remedy: disable cipher suite 0 on the BMC")
	out, code, err = as(t, e, store.RoleViewer, "security", "bmc-00001")
	wantExit(t, "clean machine", out, code, err, 0, "clean")
	out, code, err = as(t, e, store.RoleViewer, "security", "--history", "5")
	wantExit(t, "all, with history", out, code, err, 1, "insecure", "added cipher0_enabled", "first audit: no findings")
	out, code, err = as(t, e, store.RoleViewer, "security", "bmc-00002", "-o", "json")
	wantExit(t, "json", out, code, err, 1, `"status":"insecure"`, `"code":"cipher0_enabled"`)
	out, code, err = as(t, e, store.RoleOperator, "security", "--run", "bmc-00002")
	wantExit(t, "again within the gap", out, code, err, 0, "skipped: audited")
}
