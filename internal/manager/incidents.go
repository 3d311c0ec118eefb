package manager

import (
	"context"
	"time"

	"github.com/lightsout/lightsout/internal/agent"
	"github.com/lightsout/lightsout/internal/events"
	"github.com/lightsout/lightsout/internal/incident"
	"github.com/lightsout/lightsout/internal/store"
)

// FleetDetectors is what incidents need of the event detectors
// (events.Recorder): the fleet findings that hold and the timeout floods.
type FleetDetectors interface {
	Fleet() (findings []events.ActiveFinding, flooding []string, floodSince time.Time)
}

// AgentLister lists the host agents' states (agent.Hub).
type AgentLister interface {
	List() []agent.Status
}

// IncidentInput gathers what incident.Group looks at: every channel's
// state (conditions with the security audit's Insecure merged), the
// enclosures, the fleet findings and floods (Detectors) and the agents
// (AgentList); a nil source contributes nothing.
func (m *Manager) IncidentInput(ctx context.Context) (incident.Input, error) {
	var in incident.Input
	mvs, err := m.Machines(ctx, store.MachineFilter{}, store.Page{})
	if err != nil {
		return in, err
	}
	for _, mv := range mvs {
		for _, cv := range mv.Channels {
			cs := cv.State
			in.Channels = append(in.Channels, incident.Channel{
				Machine: mv.Name, Group: mv.Group, Enclosure: mv.Enclosure, AccountID: cv.Account.ID,
				User: cv.Account.User, Address: hostPort(cv.Account.Address, cv.Account.Port),
				State: cs.State, Reason: cs.Reason, Conditions: cs.Conditions, Since: cs.Since,
				GUID: cs.GUID, Registered: mv.GUID,
			})
		}
	}
	encs, err := m.Store.Enclosures(ctx)
	if err != nil {
		return in, err
	}
	for _, e := range encs {
		in.Enclosures = append(in.Enclosures, incident.Enclosure{Name: e.Name, Address: e.Address})
	}
	if m.Detectors != nil {
		fs, flooding, since := m.Detectors.Fleet()
		for _, f := range fs {
			in.Correlations = append(in.Correlations, incident.Correlation{Code: f.Code, Factor: string(f.Factor), Value: f.Value,
				GroupSize: f.GroupSize, Members: f.Members, Since: f.Since})
		}
		in.Flooding, in.FloodSince = flooding, since
	}
	if m.AgentList != nil {
		for _, a := range m.AgentList.List() {
			ia := incident.Agent{Name: a.Name, State: a.State, Reason: a.Reason, Since: a.Since}
			if a.Link != nil {
				ia.Link, ia.LinkReason, ia.LinkRemedy = a.Link.State, a.Link.Reason, a.Link.Remedy
			}
			in.Agents = append(in.Agents, ia)
		}
	}
	return in, nil
}

// Incidents groups the fleet's broken channels into incidents, worst first.
func (m *Manager) Incidents(ctx context.Context) ([]incident.Incident, error) {
	in, err := m.IncidentInput(ctx)
	if err != nil {
		return nil, err
	}
	return incident.Group(in), nil
}
