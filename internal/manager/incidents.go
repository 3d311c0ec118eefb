package manager

import (
	"context"
	"errors"
	"slices"
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
	mvs, err := m.incidentMachines(ctx)
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

// brokenMax bounds the broken channels read one by one for incidents; a
// larger outage reads the whole fleet in one listing instead.
const brokenMax = 2000

// incidentMachines lists the machines incidents are made of, with their
// channels. When the monitor checks the whole fleet (WholeFleet) those are
// the machines of its broken channels and every blade of their
// enclosures (a dead enclosure is one whose every blade is down): a
// healthy fleet of 100,000 costs nothing, where a listing read every
// machine and account from the store each time (bench/monitor at 100,000:
// 22% of the server's CPU). Otherwise, or past brokenMax, the listing.
func (m *Manager) incidentMachines(ctx context.Context) ([]MachineView, error) {
	if m.WholeFleet == nil || !m.WholeFleet() {
		return m.Machines(ctx, store.MachineFilter{}, store.Page{})
	}
	var ids []int64
	for _, cs := range m.Monitor.Broken() {
		ids = append(ids, cs.AccountID)
	}
	if m.Security != nil {
		ids = append(ids, m.Security.Flagged()...) // Insecure (mergeSecurity)
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	if len(ids) > brokenMax {
		return m.Machines(ctx, store.MachineFilter{}, store.Page{})
	}
	if len(ids) == 0 {
		return nil, nil
	}
	names := map[string]bool{}
	enclosures := map[string]bool{}
	byID := map[int64]store.Machine{}
	for _, id := range ids {
		a, err := m.Store.Account(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			continue // deleted since
		}
		if err != nil {
			return nil, err
		}
		mc, ok := byID[a.MachineID]
		if !ok {
			if mc, err = m.Store.MachineByID(ctx, a.MachineID); errors.Is(err, store.ErrNotFound) {
				continue
			} else if err != nil {
				return nil, err
			}
			byID[a.MachineID] = mc
		}
		names[mc.Name] = true
		if mc.Enclosure != "" {
			enclosures[mc.Enclosure] = true
		}
	}
	for e := range enclosures {
		blades, err := m.Store.Machines(ctx, store.MachineFilter{Enclosure: e}, store.Page{})
		if err != nil {
			return nil, err
		}
		for _, b := range blades {
			names[b.Name] = true
		}
	}
	if len(names) == 0 {
		return nil, nil
	}
	f := store.MachineFilter{Names: make([]string, 0, len(names))}
	for n := range names {
		f.Names = append(f.Names, n)
	}
	slices.Sort(f.Names)
	return m.Machines(ctx, f, store.Page{Limit: len(f.Names)})
}
