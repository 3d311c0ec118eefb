package events

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/lightsout/lightsout/internal/probe"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
)

// FloodConfig tunes timeout-flood detection. Zero fields take defaults.
type FloodConfig struct {
	// Window is the sliding window the rate is measured over (default
	// 5m). The rate is always given per minute.
	Window time.Duration `json:"window"`
	// Threshold is the rate (unanswered requests a minute) that starts a
	// flood (default 10). A flood ends when the rate falls below half of
	// it, so a rate hovering at the threshold does not flap.
	Threshold float64 `json:"threshold"`
	// Refresh: while a flood lasts it is reported again (the stored event
	// is counted up, with the current rate) at most this often (default:
	// Window).
	Refresh time.Duration `json:"refresh"`
}

// DefaultFlood is the default flood configuration.
var DefaultFlood = FloodConfig{Window: 5 * time.Minute, Threshold: 10, Refresh: 5 * time.Minute}

func (c FloodConfig) withDefaults() FloodConfig {
	if c.Window <= 0 {
		c.Window = DefaultFlood.Window
	}
	if c.Threshold <= 0 {
		c.Threshold = DefaultFlood.Threshold
	}
	if c.Refresh <= 0 {
		c.Refresh = c.Window
	}
	return c
}

// Lost is how many requests of one check went unanswered: every
// retransmission was preceded by a request that timed out, every exchange
// that gave up ended with one; a NotResponding check counts at least one
// (one failed check, however many retries it took, as a host driver would
// log one timeout per failed operation). A refused port or a name that does
// not resolve is not a timeout.
func Lost(o probe.Observation) int {
	n := int(o.Evidence.Retransmits) + int(o.Evidence.Timeouts)
	if o.State == state.NotResponding {
		switch o.Reason {
		case state.ReasonPortRefused, state.ReasonUnreachable:
			return 0
		}
		// One failed check is one timeout from the operator's point of
		// view: its internal retries are how we were gentle, not how
		// often the BMC failed.
		return 1
	}
	return n
}

// Flood detects timeout floods per source. It is pure: time comes in with
// every call. Not safe for concurrent use.
//
// Besides the unanswered requests it keeps, per check, the exchanges it
// made, their retransmissions and the exchanges that gave up, so that a
// source's loss over the window can be read back (Totals: the diagnosis's
// rates).
type Flood struct {
	cfg FloodConfig
	src map[string]*floodSource
}

type floodSource struct {
	samples []floodSample // oldest first; checks that made requests or lost some
	seen    int64         // the latest observation, Unix nanoseconds
	on      *floodOn      // while the source floods; nil on nearly every source (48 bytes, not 112)
}

// floodOn is an ongoing flood.
type floodOn struct {
	since      time.Time
	peak       float64
	lastReport time.Time
}

// floodSample is one check: 16 bytes, about five of them per source with
// the default window and the monitor's default interval.
type floodSample struct {
	at                                int64 // Unix nanoseconds
	lost, requests, retrans, timeouts uint16
}

// Check is what one check of a source contributes to its window.
type Check struct {
	// Lost: its unanswered requests (see Lost); what the flood rate counts.
	Lost int
	// Requests, Retransmits and Timeouts: the engine's counters over the
	// check (probe.Evidence).
	Requests, Retransmits, Timeouts int
}

func (c Check) zero() bool { return c == Check{} }

// NewFlood returns a detector.
func NewFlood(cfg FloodConfig) *Flood {
	return &Flood{cfg: cfg.withDefaults(), src: map[string]*floodSource{}}
}

// Config is the detector's effective configuration.
func (f *Flood) Config() FloodConfig { return f.cfg }

// Observe records lost unanswered requests on source at at, and returns
// the events this causes: oob.timeout_flood when the rate reaches the
// threshold (again every Refresh while it lasts), oob.timeout_flood_cleared
// when it falls below half of it.
func (f *Flood) Observe(source string, at time.Time, lost int) []store.Event {
	return f.ObserveCheck(source, at, Check{Lost: lost})
}

// ObserveCheck is Observe with the check's request counters, which Totals
// reads back.
func (f *Flood) ObserveCheck(source string, at time.Time, c Check) []store.Event {
	s := f.src[source]
	if s == nil {
		s = &floodSource{}
		f.src[source] = s
	}
	if ns := at.UnixNano(); ns > s.seen {
		s.seen = ns
	}
	if !c.zero() {
		// Keep samples in time order even if observations arrive a
		// little out of order.
		ns := at.UnixNano()
		i := len(s.samples)
		for i > 0 && s.samples[i-1].at > ns {
			i--
		}
		s.samples = append(s.samples, floodSample{})
		copy(s.samples[i+1:], s.samples[i:])
		s.samples[i] = floodSample{at: ns, lost: clamp16(c.Lost), requests: clamp16(c.Requests),
			retrans: clamp16(c.Retransmits), timeouts: clamp16(c.Timeouts)}
	}
	return f.step(source, s, at, true)
}

// clamp16 fits a per-check count in 16 bits (a check makes a handful of
// requests; 65,535 is saturation, not a realistic figure).
func clamp16(n int) uint16 {
	switch {
	case n < 0:
		return 0
	case n > 1<<16-1:
		return 1<<16 - 1
	}
	return uint16(n)
}

// Tick ages every source's window to now: floods on sources that went
// quiet (or stopped being checked) end, and idle sources are forgotten.
func (f *Flood) Tick(now time.Time) []store.Event {
	var out []store.Event
	for name, s := range f.src {
		out = append(out, f.step(name, s, now, false)...)
		if s.on == nil && len(s.samples) == 0 && now.UnixNano()-s.seen > int64(f.cfg.Window) {
			delete(f.src, name)
		}
	}
	return out
}

// Flooding reports whether source is in a flood now.
func (f *Flood) Flooding(source string) bool {
	s := f.src[source]
	return s != nil && s.on != nil
}

// Rate is source's rate (per minute) over the window ending at now.
func (f *Flood) Rate(source string, now time.Time) float64 {
	s := f.src[source]
	if s == nil {
		return 0
	}
	f.prune(s, now)
	return f.rate(s)
}

// Totals are a source's checks summed over the window ending at now.
type Totals struct {
	Window time.Duration
	// Checks counted (those that made requests or lost some).
	Checks int
	// Lost and Rate: unanswered requests, and per minute (the flood rate).
	Lost int
	Rate float64
	// The engine's counters summed over the checks.
	Requests, Retransmits, Timeouts int
	Flooding                        bool
}

// Totals sums source's checks over the window ending at now; ok is false
// for a source the detector does not know (never observed, or forgotten).
func (f *Flood) Totals(source string, now time.Time) (t Totals, ok bool) {
	t.Window = f.cfg.Window
	s := f.src[source]
	if s == nil {
		return t, false
	}
	f.prune(s, now)
	for _, x := range s.samples {
		t.Checks++
		t.Lost += int(x.lost)
		t.Requests += int(x.requests)
		t.Retransmits += int(x.retrans)
		t.Timeouts += int(x.timeouts)
	}
	t.Rate, t.Flooding = f.rate(s), s.on != nil
	return t, true
}

func (f *Flood) prune(s *floodSource, now time.Time) {
	cut := now.Add(-f.cfg.Window).UnixNano()
	i := 0
	for i < len(s.samples) && s.samples[i].at <= cut {
		i++
	}
	if i > 0 {
		s.samples = append(s.samples[:0], s.samples[i:]...)
	}
}

func (f *Flood) rate(s *floodSource) float64 {
	return float64(f.lostInWindow(s)) * float64(time.Minute) / float64(f.cfg.Window)
}

func (f *Flood) lostInWindow(s *floodSource) int {
	n := 0
	for _, x := range s.samples {
		n += int(x.lost)
	}
	return n
}

// step re-evaluates s at now; observed says a new check came in (only
// those refresh an ongoing flood's report: a tick brings no news).
func (f *Flood) step(source string, s *floodSource, now time.Time, observed bool) []store.Event {
	f.prune(s, now)
	rate := f.rate(s)
	switch {
	case s.on == nil && rate >= f.cfg.Threshold:
		s.on = &floodOn{since: now, peak: rate, lastReport: now}
		return []store.Event{f.floodEvent(source, s, now, rate)}
	case s.on != nil && rate < f.cfg.Threshold/2:
		ev := f.clearedEvent(source, s, now, rate)
		s.on = nil
		return []store.Event{ev}
	case s.on != nil:
		if rate > s.on.peak {
			s.on.peak = rate
		}
		if observed && now.Sub(s.on.lastReport) >= f.cfg.Refresh {
			s.on.lastReport = now
			return []store.Event{f.floodEvent(source, s, now, rate)}
		}
	}
	return nil
}

func (f *Flood) floodEvent(source string, s *floodSource, now time.Time, rate float64) store.Event {
	data, _ := json.Marshal(map[string]any{
		"rate_per_minute": round1(rate), "threshold": f.cfg.Threshold, "window": f.cfg.Window.String(),
		"unanswered": f.lostInWindow(s), "since": s.on.since, "peak_per_minute": round1(s.on.peak),
	})
	level := fmt.Sprintf("threshold %g", f.cfg.Threshold)
	if rate < f.cfg.Threshold {
		// Still a flood until the rate falls below half the threshold.
		level = fmt.Sprintf("peak %.1f; a flood starts at %g and ends below %g", s.on.peak, f.cfg.Threshold, f.cfg.Threshold/2)
	}
	return store.Event{At: now, Code: OOBTimeoutFlood, Severity: store.SeverityWarning, Source: source, Data: data,
		Message: fmt.Sprintf("%s: %.1f unanswered requests a minute over the last %s (%s) since %s: %s",
			source, rate, f.cfg.Window, level, s.on.since.UTC().Format(time.RFC3339), floodCause(s))}
}

// floodCause reads the window's exchanges: a BMC that answered none of
// them is down or cut off, not slow.
func floodCause(s *floodSource) string {
	var req, timeouts int
	for _, x := range s.samples {
		req, timeouts = req+int(x.requests), timeouts+int(x.timeouts)
	}
	switch {
	case req > 0 && timeouts >= req:
		return "none of the requests in that time was answered: the BMC or the path to it is down (see the channel's state and diagnosis)"
	case req == 0:
		// Timeouts a host agent reported for its own link: no counts of
		// what did answer.
		return "requests time out: if this is a host agent's link to its BMC, see 'lightsout domain status' and the agent's diagnosis; " +
			"otherwise look for other agents polling the BMC or a congested management network"
	}
	return "the BMC answers only after retries; look for other agents polling it, a leaking BMC firmware " +
		"(other BMCs with the same firmware: see fleet.correlated) or a congested management network"
}

func (f *Flood) clearedEvent(source string, s *floodSource, now time.Time, rate float64) store.Event {
	data, _ := json.Marshal(map[string]any{
		"rate_per_minute": round1(rate), "threshold": f.cfg.Threshold, "window": f.cfg.Window.String(),
		"since": s.on.since, "duration": now.Sub(s.on.since).Round(time.Second).String(), "peak_per_minute": round1(s.on.peak),
	})
	return store.Event{At: now, Code: OOBTimeoutFloodCleared, Severity: store.SeverityInfo, Source: source, Data: data,
		Message: fmt.Sprintf("%s: timeout flood over after %s (peak %.1f a minute, now %.1f)",
			source, now.Sub(s.on.since).Round(time.Second), s.on.peak, rate)}
}

func round1(x float64) float64 { return float64(int64(x*10+0.5)) / 10 }

// FloodingNow is every source in a flood now, sorted, and when the oldest
// of those floods began.
func (f *Flood) FloodingNow() (sources []string, since time.Time) {
	for name, s := range f.src {
		if s.on != nil {
			sources = append(sources, name)
			if since.IsZero() || s.on.since.Before(since) {
				since = s.on.since
			}
		}
	}
	sort.Strings(sources)
	return sources, since
}
