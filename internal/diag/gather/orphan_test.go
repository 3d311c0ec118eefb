package gather

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/lightsout/lightsout/internal/diag"
	"github.com/lightsout/lightsout/internal/ipmi"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
)

// TestOrphanSessionOfADeadInstance: another lightsout instance, killed in
// the middle of a check (its engine gone, the session never closed),
// leaves a session on a BMC (docs/scale-out.md). The new owner's census
// names it as that instance's — not ours, not another console's —, the
// busy tree asks to close it by handle, and closing it through the
// executor frees the slot on the simulator.
func TestOrphanSessionOfADeadInstance(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	m, a := e.machine(t, "bmc-00002")
	b, _ := e.fleet.BMC("bmc-00002")
	deadSrc := netip.MustParseAddr("127.0.7.2")
	dead, err := ipmi.New(ipmi.Config{Sockets: 1, Source: deadSrc})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dead.Open(ctx, b.Addr(), ipmi.Credentials{User: a.User, Password: a.Password}); err != nil {
		t.Fatal(err)
	}
	dead.Close() // kill -9: the session stays open on the BMC
	if n := b.Counters().SessionsOpen; n != 1 {
		t.Fatalf("the simulator holds %d sessions, want the orphan", n)
	}
	e.x.Self = "i1"
	e.x.Instances = func() []store.Instance {
		return []store.Instance{{Name: "i1", Source: "127.0.0.1", Live: true}, {Name: "i2", Source: deadSrc.String(), Live: false}}
	}
	sf := e.x.sessions(ctx, m, a)
	if !sf.Got || len(sf.Others) != 1 {
		t.Fatalf("census %+v", sf)
	}
	o := sf.Others[0]
	if o.Instance != "i2" || o.InstanceLive || o.Ours || o.Foreign() || !strings.Contains(o.Whose(), "lightsout instance i2") {
		t.Fatalf("the orphan: %+v (%s)", o, o.Whose())
	}
	// The busy tree over that census: close it, by handle.
	r := diag.Decide(diag.Facts{Machine: m.Name, Account: diag.Account{ID: a.ID, User: a.User, Protocol: "ipmi"},
		State: state.Connectable, Conditions: []state.Condition{state.Busy}, Sessions: sf})
	d := r.Diagnosis
	if len(r.Need) != 0 || d == nil || len(d.Actions) != 1 || d.Actions[0].Kind != diag.ActCloseSessions ||
		len(d.Actions[0].Handles) != 1 || d.Actions[0].Handles[0] != int(o.Handle) || !strings.Contains(d.Summary, "lightsout instance i2") {
		t.Fatalf("diagnosis %+v need %v", d, r.Need)
	}
	n, err := e.x.CloseSessions(ctx, m, a, d.Actions[0].Handles)
	if err != nil || n != 1 {
		t.Fatalf("closing the orphan: %d %v", n, err)
	}
	if n := b.Counters().SessionsOpen; n != 0 {
		t.Fatalf("the simulator still holds %d sessions", n)
	}
	t.Logf("%s: %s", d.Cause, d.Summary)
}
