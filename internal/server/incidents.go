package server

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"reflect"
	"strings"
	"time"

	"github.com/lightsout/lightsout/internal/events"
	"github.com/lightsout/lightsout/internal/incident"
	"github.com/lightsout/lightsout/internal/store"
)

// DefaultIncidentEvery is how often incidents are regrouped for events.
const DefaultIncidentEvery = 15 * time.Second

// watchIncidents regroups incidents every Config.IncidentEvery and raises
// incident.opened and incident.closed events (source incident:ID, the
// incident as data) until ctx ends; with several instances, only the
// leader (cluster.Node.Leader) does.
func (s *Server) watchIncidents(ctx context.Context) {
	every := s.Config.IncidentEvery
	if every <= 0 {
		every = DefaultIncidentEvery
	}
	tr := &incident.Tracker{Grace: s.Config.IncidentGrace, Hold: s.Config.IncidentHold}
	t := time.NewTicker(every)
	defer t.Stop()
	// The last grouping and what it was made from: grouping reads every
	// channel from the store (a second of CPU at 100,000 channels), so
	// while no channel changed (Monitor.Changes) and the fleet findings
	// and agents are the same, the last one is used again — at most
	// incidentReuse long.
	var last []incident.Incident
	var lastKey incidentKey
	var lastAt time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if s.Node != nil && !s.Node.Leader() {
			// Several instances see the same fleet: one raises the
			// incident events (docs/scale-out.md).
			continue
		}
		now := time.Now()
		key := s.incidentKey()
		incs := last
		reuse := incidentReuse
		if key.gen&(1<<63) != 0 {
			// Beside other instances the generation counts every change
			// a grouping is made of but enclosure edits through a peer.
			reuse = incidentReuseCluster
		}
		if regroup(lastAt, now, lastKey, key, reuse) {
			var err error
			incs, err = s.Manager.Incidents(ctx)
			if err != nil {
				if ctx.Err() == nil {
					s.Config.Logger.Warn("incidents", "err", err)
				}
				continue
			}
			last, lastKey, lastAt = incs, key, now
		}
		s.incidents.Publish(incs, now, key.hash()) // /metrics reports it
		ch := tr.Update(now, incs)
		var evs []store.Event
		for _, inc := range ch.Opened {
			evs = append(evs, IncidentEvent(events.IncidentOpened, inc))
		}
		for _, inc := range ch.Closed {
			evs = append(evs, IncidentEvent(events.IncidentClosed, inc))
		}
		if len(evs) > 0 {
			s.Events.Enqueue(evs...)
		}
	}
}

// incidentReuse bounds how long watchIncidents uses a grouping again
// while nothing it knows of changed; incidentReuseCluster beside other
// instances, where a grouping lists the whole fleet and the node's
// generation says when anything but an enclosure edited through a peer
// changed (docs/scale-out.md).
const (
	incidentReuse        = time.Minute
	incidentReuseCluster = 10 * time.Minute
)

// incidentKey is what a grouping is made from besides the store's
// machines and enclosures: the monitor's change count, the fleet
// detectors' findings and floods, the agents' states.
type incidentKey struct {
	gen        uint64
	audit      uint64 // the security audit's findings (audit.Auditor.Changes)
	findings   []events.ActiveFinding
	flooding   []string
	floodSince time.Time
	agents     []incident.Agent // what a grouping reads of them (not heartbeats)
}

// fleetChanges is Monitor.Changes while this instance watches the whole
// fleet; beside other instances, the node's Generation: it moves with this
// monitor's changes, the peers' announced state changes (at their
// heartbeat after the write), edits through any instance and membership
// changes — so an idle fleet is not read again (docs/scale-out.md).
func (s *Server) fleetChanges() uint64 {
	if s.Node != nil && len(s.Node.Members().All) > 1 {
		return 1<<63 | s.Node.Generation()
	}
	return s.Monitor.Changes()
}

// regroup says whether watchIncidents groups again: never grouped, the
// last grouping reuse old, or made from something else.
func regroup(lastAt, now time.Time, last, cur incidentKey, reuse time.Duration) bool {
	return lastAt.IsZero() || now.Sub(lastAt) >= reuse || !reflect.DeepEqual(last, cur)
}

// hash sums k up in one number (the /metrics collector's Changes).
func (k incidentKey) hash() uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%d|%d|%v|%v|%d|", k.gen, k.audit, k.flooding, k.floodSince.UnixNano(), len(k.findings))
	for _, f := range k.findings {
		fmt.Fprintf(h, "%s|%s|%s|%d|%v|%d;", f.Code, f.Factor, f.Value, f.GroupSize, f.Members, f.Since.UnixNano())
	}
	for _, a := range k.agents {
		fmt.Fprintf(h, "%+v;", a)
	}
	return h.Sum64()
}

func (s *Server) incidentKey() incidentKey {
	k := incidentKey{gen: s.fleetChanges()}
	if s.Audit != nil {
		k.audit = s.Audit.Changes()
	}
	if s.Events != nil {
		k.findings, k.flooding, k.floodSince = s.Events.Fleet()
	}
	if s.Agents != nil {
		for _, a := range s.Agents.List() {
			ia := incident.Agent{Name: a.Name, State: a.State, Reason: a.Reason, Since: a.Since}
			if a.Link != nil {
				ia.Link, ia.LinkReason, ia.LinkRemedy = a.Link.State, a.Link.Reason, a.Link.Remedy
			}
			k.agents = append(k.agents, ia)
		}
	}
	return k
}

// IncidentEvent is the event of an incident opening (its own severity) or
// closing (info).
func IncidentEvent(code string, inc incident.Incident) store.Event {
	data, _ := json.Marshal(inc)
	e := store.Event{At: time.Now(), Code: code, Source: "incident:" + inc.ID, Data: data}
	members := inc.Members
	more := ""
	if len(members) > 10 {
		members, more = members[:10], fmt.Sprintf(" and %d more", len(inc.Members)-10)
	}
	if code == events.IncidentOpened {
		e.Severity = inc.Severity
		e.Message = fmt.Sprintf("incident opened: %s (%s%s); %s; diagnose: %s", inc.Title, strings.Join(members, ", "), more, inc.Remedy, inc.Diagnose)
	} else {
		e.Severity = store.SeverityInfo
		e.Message = fmt.Sprintf("incident closed: %s (%s%s)", inc.Title, strings.Join(members, ", "), more)
	}
	return e
}
