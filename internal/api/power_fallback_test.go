package api_test

import (
	"context"
	"errors"
	"github.com/lightsout/lightsout/internal/manager"
	"github.com/lightsout/lightsout/internal/poll"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/api/apitest"
	"github.com/lightsout/lightsout/internal/api/client"
	"github.com/lightsout/lightsout/internal/api/wire"
	"github.com/lightsout/lightsout/internal/power"
	"github.com/lightsout/lightsout/internal/sim"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
)

// TestPowerAgentFallback: agent_fallback is validated naming the field,
// needs an admin, and comes back through the client as the result's detail
// and cause (a BMC ignoring the soft-off, no agent of that name).
func TestPowerAgentFallback(t *testing.T) {
	e := apitest.Start(t, apitest.Options{Fleet: sim.Config{Count: 1, Seed: 41}, Subnet: 77})
	e.ImportFleet(t)
	adm := e.Client(t, store.RoleAdmin)
	for _, c := range []struct{ body, field string }{
		{`{"action":"soft","machines":["bmc-00001"],"agent_fallback":"soon"}`, "agent_fallback"},
		{`{"action":"soft","machines":["bmc-00001"],"agent_fallback":"500ms"}`, "agent_fallback"},
		{`{"action":"soft","machines":["bmc-00001"],"agent_fallback":"31m"}`, "agent_fallback"},
		{`{"action":"off","machines":["bmc-00001"],"agent_fallback":"2m"}`, "agent_fallback"},
	} {
		st, b := raw(t, e, store.RoleAdmin, "POST", "/api/v1/power", c.body)
		wantError(t, c.body, st, b, http.StatusBadRequest, wire.CodeInvalidField, c.field)
	}
	st, b := raw(t, e, store.RoleOperator, "POST", "/api/v1/power", `{"action":"soft","machines":["bmc-00001"],"agent_fallback":"2m"}`)
	wantError(t, "operator", st, b, http.StatusForbidden, wire.CodeForbidden, "")

	var res []manager.CheckResult
	var err error
	if !poll.Wait(10*time.Second, func() bool {
		res, err = adm.Check(ctx(t), []string{"bmc-00001"}, "")
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
	var got []power.Result
	sum, err := adm.Power(context.Background(), wire.PowerRequest{Action: "soft", Machines: []string{"bmc-00001"}, AgentFallback: "1s"},
		func(r power.Result) { got = append(got, r) })
	if err != nil || sum.Failed != 1 || len(got) != 1 {
		t.Fatalf("power soft: %+v %+v %v", sum, got, err)
	}
	r := got[0]
	if r.Result != power.ResultFailed || r.Cause != "no_agent" || r.Power != "on" ||
		!strings.HasPrefix(r.Detail, "soft-off ignored for 1s") || !strings.Contains(r.Message, `no agent named "bmc-00001"`) {
		t.Fatalf("%+v", r)
	}
	var ce *client.Error
	if _, err := adm.Power(ctx(t), wire.PowerRequest{Action: "on", Machines: []string{"bmc-00001"}, AgentFallback: "1m"}, nil); !errors.As(err, &ce) || ce.Field != "agent_fallback" {
		t.Fatalf("client, action on: %v", err)
	}
}
