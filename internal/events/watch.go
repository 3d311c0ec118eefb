package events

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lightsout/lightsout/internal/ipmi"
	"github.com/lightsout/lightsout/internal/monitor/outcome"
	"github.com/lightsout/lightsout/internal/probe"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
)

// Sample is what the detectors need of one check.
type Sample struct {
	Source    string // machine name
	AccountID int64  // the channel checked (0: unknown)
	Enclosure string
	Address   string // BMC address (IP or IP:port; host names give no subnet)
	At        time.Time
	// Declared is the channel's declared state after the check; Observed
	// the check's own verdict and its conditions.
	Declared   state.OOB
	Observed   state.OOB
	Conditions []state.Condition
	// Lost is how many requests went unanswered (see Lost).
	Lost int
	// Requests, Retransmits and Timeouts are the engine's counters over
	// the check (probe.Evidence).
	Requests, Retransmits, Timeouts int
	// Firmware is FirmwareOf(manufacturer, revision), "" if not seen.
	Firmware string
	// Conflicts are login steps that drew an unauthenticated refusal and a
	// verified answer (probe.Evidence.ConflictingReplies).
	Conflicts []ipmi.Conflict
	// Loss is the channel's datagram loss over its recent checks, as the
	// monitor measured it (probe.Evidence.Loss; nil: not measured).
	Loss *probe.Loss
}

// SampleOf turns the monitor's outcome of one check into a Sample.
func SampleOf(o outcome.Outcome) Sample {
	addr := o.Observation.Host
	if SubnetOf(addr) == "" {
		addr = o.Address
	}
	at := o.Observation.At
	if at.IsZero() {
		at = time.Now()
	}
	ev := o.Observation.Evidence
	return Sample{
		Source: o.Machine, AccountID: o.AccountID, Enclosure: o.Enclosure, Address: addr, At: at,
		Declared: o.Declared, Observed: o.Observation.State, Conditions: o.Observation.Conditions,
		Lost:     Lost(o.Observation),
		Requests: int(ev.Requests), Retransmits: int(ev.Retransmits), Timeouts: int(ev.Timeouts),
		Firmware:  FirmwareOf(ev.Manufacturer, ev.Firmware),
		Conflicts: ev.ConflictingReplies,
		Loss:      ev.Loss,
	}
}

// heldCodes are the codes whose holding the Watcher follows from checks;
// recorded events of these codes do not also count as one-shot raises.
var heldCodes = []string{OOBNotResponding, OOBAuthRefused, OOBIdentityMismatch, OOBDegraded, OOBTimeoutFlood}

// Watcher runs the detectors over checks and recorded events: flood
// detection, Degraded edges and fleet correlation. It is pure (time comes
// in with the samples); not safe for concurrent use.
type Watcher struct {
	Flood     *Flood
	Correlate *Correlator
	degraded  map[string]bool // Degraded sources; true: oob.degraded gave the loss rate
	// accounts maps a checked channel (account ID) to its source, for the
	// diagnosis, which asks by account.
	accounts map[int64]string
}

// NewWatcher returns a watcher.
func NewWatcher(fc FloodConfig, cc CorrelateConfig) *Watcher {
	return &Watcher{Flood: NewFlood(fc), Correlate: NewCorrelator(cc), degraded: map[string]bool{}, accounts: map[int64]string{}}
}

// SourceOf is the source whose checks of account accountID the watcher
// has seen ("", false: none yet, or forgotten).
func (w *Watcher) SourceOf(accountID int64) (string, bool) {
	s, ok := w.accounts[accountID]
	return s, ok
}

// Observe feeds one check and returns the events it causes.
func (w *Watcher) Observe(s Sample) []store.Event {
	if s.Source == "" {
		return nil
	}
	if s.AccountID != 0 {
		w.accounts[s.AccountID] = s.Source
	}
	w.Correlate.SetMember(s.Source, Member{Firmware: s.Firmware, Enclosure: s.Enclosure, Subnet: SubnetOf(s.Address)}, s.At)
	out := w.Flood.ObserveCheck(s.Source, s.At, Check{Lost: s.Lost, Requests: s.Requests, Retransmits: s.Retransmits, Timeouts: s.Timeouts})

	if len(s.Conflicts) > 0 {
		out = append(out, conflictEvent(s))
	}

	deg := s.Observed == state.Connectable && slices.Contains(s.Conditions, state.Degraded)
	// Raised on the edge into Degraded, and again (merged into the same
	// event) when the loss rate is first measured for it.
	if rated, was := w.degraded[s.Source]; deg && (!was || (s.Loss != nil && !rated)) {
		out = append(out, degradedEvent(s))
	}
	if deg {
		w.degraded[s.Source] = w.degraded[s.Source] || s.Loss != nil
	} else if s.Observed == state.Connectable {
		delete(w.degraded, s.Source)
	}

	_, degraded := w.degraded[s.Source]
	hold := map[string]bool{
		OOBNotResponding:    s.Declared == state.NotResponding,
		OOBAuthRefused:      s.Declared == state.NotAuthenticated,
		OOBIdentityMismatch: s.Declared == state.Invalid,
		OOBDegraded:         degraded,
		OOBTimeoutFlood:     w.Flood.Flooding(s.Source),
	}
	for _, code := range heldCodes {
		out = append(out, w.Correlate.Hold(code, s.Source, hold[code], s.At)...)
	}
	return out
}

// degradedEvent is oob.degraded for a check that made s.Source Degraded:
// with the loss rate over the recent checks when the monitor measured one.
func degradedEvent(s Sample) store.Event {
	if l := s.Loss; l != nil {
		data, _ := json.Marshal(map[string]any{"unanswered": s.Lost, "loss": l})
		return store.Event{At: s.At, Code: OOBDegraded, Severity: store.SeverityWarning, Source: s.Source, Data: data,
			Message: fmt.Sprintf("%s: the BMC answers, but the path loses packets: %s; "+
				"look for a duplex mismatch, a congested or flapping switch port, a busy shared NIC, or competing pollers "+
				"(lightsout diag %s measures it again)", s.Source, l, s.Source)}
	}
	data, _ := json.Marshal(map[string]any{"unanswered": s.Lost})
	return store.Event{At: s.At, Code: OOBDegraded, Severity: store.SeverityWarning, Source: s.Source, Data: data,
		Message: fmt.Sprintf("%s: the BMC answers, but only after retransmissions (%d unanswered requests in one check); "+
			"if it persists look for competing agents, BMC firmware or network trouble", s.Source, s.Lost)}
}

// conflictEvent reports forged-looking handshake replies, with where each
// came from.
func conflictEvent(s Sample) store.Event {
	var parts []string
	for _, c := range s.Conflicts {
		parts = append(parts, fmt.Sprintf("%s: %q from %v, verified answer from %v", c.Stage, c.Refusal, c.From, c.Verified))
	}
	data, _ := json.Marshal(map[string]any{"conflicts": s.Conflicts})
	return store.Event{At: s.At, Code: OOBConflictingReplies, Severity: store.SeverityCritical, Source: s.Source, Data: data,
		Message: fmt.Sprintf("%s: a login step drew an unauthenticated refusal and a verified answer to the same request (%s); "+
			"the verified answer was taken. Someone on the management network may be forging BMC replies, or a device is mangling them: "+
			"capture the traffic to the BMC (UDP 623) and look for a second sender", s.Source, strings.Join(parts, "; "))}
}

// Recorded feeds an event that was stored: one-shot correlated codes
// (audit findings) count for the correlation window.
func (w *Watcher) Recorded(e store.Event) []store.Event {
	k, _ := Lookup(e.Code)
	if !k.Correlate || e.Source == "" || IsFleetSource(e.Source) || slices.Contains(heldCodes, e.Code) {
		return nil
	}
	at := e.LastAt
	if at.IsZero() {
		at = e.At
	}
	return w.Correlate.Raise(e.Code, e.Source, at)
}

// Tick ages the detectors to now.
func (w *Watcher) Tick(now time.Time) []store.Event {
	out := w.Flood.Tick(now)
	for _, e := range out {
		if e.Code == OOBTimeoutFloodCleared {
			out = append(out, w.Correlate.Hold(OOBTimeoutFlood, e.Source, false, now)...)
		}
	}
	out = append(out, w.Correlate.Tick(now)...)
	for src := range w.degraded {
		if _, ok := w.Correlate.members[src]; !ok {
			delete(w.degraded, src)
		}
	}
	for id, src := range w.accounts {
		if _, ok := w.Correlate.members[src]; !ok {
			delete(w.accounts, id)
		}
	}
	return out
}
