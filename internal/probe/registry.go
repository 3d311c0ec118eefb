package probe

import (
	"context"
	"fmt"
	"time"

	"github.com/lightsout/lightsout/internal/ipmi"
	"github.com/lightsout/lightsout/internal/protocol"
	"github.com/lightsout/lightsout/internal/state"
)

// Registry is the probers by protocol: the one map from a target's
// protocol to what checks it (blackbox_exporter's prober registry), used
// by the server's monitor and diagnosis and by check. NewRegistry builds
// it.
type Registry map[string]Prober

// NewRegistry is the registry of the protocols lightsout speaks: IPMI over
// eng, and Redfish by redfish (nil: Redfish is not checked).
func NewRegistry(eng *ipmi.Engine, redfish Prober) Registry {
	r := Registry{string(protocol.IPMI): IPMI(eng)}
	if redfish != nil {
		r[string(protocol.Redfish)] = redfish
	}
	return r
}

// For is the prober of proto ("" is IPMI), or nil when none checks it.
func (r Registry) For(proto string) Prober {
	if proto == "" {
		proto = string(protocol.IPMI)
	}
	return r[proto]
}

// Check checks t with its protocol's prober (a Prober itself); a protocol
// without one is Unknown, saying so.
func (r Registry) Check(ctx context.Context, t Target) Observation {
	if p := r.For(t.Protocol); p != nil {
		return p(ctx, t)
	}
	return Observation{Name: t.Name, Protocol: t.Protocol, State: state.Unknown,
		Message: fmt.Sprintf("protocol %q is not supported by this manager", t.Protocol), At: time.Now()}
}
