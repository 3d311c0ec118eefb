package probe

import (
	"context"
	"testing"

	"github.com/lightsout/lightsout/internal/state"
)

func TestRegistry(t *testing.T) {
	seen := ""
	fake := func(name string) Prober {
		return func(ctx context.Context, t Target) Observation {
			seen = name
			return Observation{State: state.Connectable}
		}
	}
	r := Registry{"ipmi": fake("ipmi"), "redfish": fake("redfish")}
	for _, c := range []struct{ proto, want string }{{"ipmi", "ipmi"}, {"", "ipmi"}, {"redfish", "redfish"}} {
		seen = ""
		if o := r.Check(context.Background(), Target{Protocol: c.proto}); o.State != state.Connectable || seen != c.want {
			t.Errorf("%q: %s by %q", c.proto, o.State, seen)
		}
	}
	o := r.Check(context.Background(), Target{Name: "x", Protocol: "snmp"})
	if o.State != state.Unknown || o.Message != `protocol "snmp" is not supported by this manager` {
		t.Errorf("unsupported: %+v", o)
	}
	if NewRegistry(nil, nil).For("redfish") != nil || NewRegistry(nil, nil).For("ipmi") == nil {
		t.Error("NewRegistry without Redfish")
	}
}
