package api_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/lightsout/lightsout/internal/api/apitest"
	"github.com/lightsout/lightsout/internal/api/client"
	"github.com/lightsout/lightsout/internal/sim"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
)

// TestAcceptCertificate: a Redfish BMC's certificate is replaced (the
// sim's cert_replaced) → Invalid / cert_changed; an operator may not
// accept it (403); an admin cannot accept without a changed certificate
// unless the fingerprint is explicit; the admin accepts the presented
// one → Connectable at once, audited.
func TestAcceptCertificate(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, apitest.Options{Subnet: 86, Fleet: sim.Config{Count: 2, Seed: 5, Redfish: true}})
	e.ImportFleet(t)
	adm, op := e.Client(t, store.RoleAdmin), e.Client(t, store.RoleOperator)
	const name = "bmc-00001"
	res, err := op.Check(ctx(t), []string{name}, "")
	if err != nil || res[0].State.State != state.Connectable {
		t.Fatalf("first check: %+v %v", res, err)
	}
	first, err := e.Server.Store.CertPin(ctx(t), name)
	if err != nil || len(first) != 64 {
		t.Fatalf("pin after first contact: %q %v", first, err)
	}
	// Nothing changed: nothing to accept without an explicit fingerprint.
	st, b := raw(t, e, store.RoleAdmin, "POST", "/api/v1/machines/"+name+"/accept-certificate", `{"fingerprint":""}`)
	wantError(t, "accept unchanged", st, b, 400, "invalid_field", "fingerprint")

	if err := e.Fleet.SetFaults(name, sim.Faults{CertReplaced: true}); err != nil {
		t.Fatal(err)
	}
	res, err = op.Check(ctx(t), []string{name}, "")
	if err != nil || res[0].State.State != state.Invalid || res[0].State.Reason != state.ReasonCertChanged {
		t.Fatalf("after cert replaced: %+v %v", res, err)
	}
	var ce *client.Error
	if _, err := op.AcceptCertificate(ctx(t), name, ""); !errors.As(err, &ce) || ce.Status != 403 {
		t.Fatalf("operator accept: %v", err)
	}
	if pin, _ := e.Server.Store.CertPin(ctx(t), name); pin != first {
		t.Fatalf("pin changed by a refused request: %s", pin)
	}
	st, b = raw(t, e, store.RoleAdmin, "POST", "/api/v1/machines/"+name+"/accept-certificate", `{"fingerprint":"abc"}`)
	wantError(t, "bad fingerprint", st, b, 400, "invalid_field", "fingerprint")

	mv, err := adm.AcceptCertificate(ctx(t), name, "")
	if err != nil || len(mv.Channels) == 0 || mv.Channels[0].State.State != state.Connectable {
		t.Fatalf("admin accept: %+v %v", mv, err)
	}
	now, err := e.Server.Store.CertPin(ctx(t), name)
	if err != nil || len(now) != 64 || now == first {
		t.Fatalf("pin after accept: %q (was %q) %v", now, first, err)
	}
	log, err := adm.Audit(ctx(t), name, 20)
	if err != nil {
		t.Fatal(err)
	}
	ok := false
	for _, a := range log {
		if a.Action != "machine.accept_certificate" {
			continue
		}
		if a.Result == "ok" && a.Actor != "" && strings.Contains(a.Detail, "changed certificate pin from "+first+" to "+now+" because an admin accepted it") {
			ok = true
		}
	}
	if !ok {
		t.Fatalf("no audit entry for the accepted certificate: %+v", log)
	}
	// An explicit fingerprint is pinned whatever the state (here the one
	// pinned before): the channel turns Invalid again.
	if _, err := adm.AcceptCertificate(ctx(t), name, strings.ToUpper(first)); err != nil {
		t.Fatal(err)
	}
	res, err = op.Check(ctx(t), []string{name}, "")
	if err != nil || res[0].State.Reason != state.ReasonCertChanged {
		t.Fatalf("explicit old pin: %+v %v", res, err)
	}
}
