package server

import (
	"context"
	"encoding/json"
	"fmt"
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
		gen := s.Monitor.Changes()
		incs, err := s.Manager.Incidents(ctx)
		if err != nil {
			if ctx.Err() == nil {
				s.Config.Logger.Warn("incidents", "err", err)
			}
			continue
		}
		now := time.Now()
		s.incidents.Publish(incs, now, gen) // /metrics reports it
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
