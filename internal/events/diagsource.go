package events

import (
	"context"
	"fmt"

	"github.com/lightsout/lightsout/internal/diag"
)

// The Recorder is the diagnosis's rate and fleet source: the flood
// detector's window holds every check the monitor made of a channel
// (requests, retransmissions, exchanges that gave up), and the correlator
// knows every channel's firmware, enclosure and subnet and which codes
// each raises. A channel the monitor has not checked since the server
// started (or not within the window) is diag.ErrNoFigures: the executor
// then measures it itself.
var (
	_ diag.RateSource  = (*Recorder)(nil)
	_ diag.FleetSource = (*Recorder)(nil)
)

// TroubleCodes are what counts as "the same trouble" when a degraded
// channel is compared with its groups: a degraded BMC, a timeout flood, or
// a BMC declared not responding.
var TroubleCodes = []string{OOBDegraded, OOBTimeoutFlood, OOBNotResponding}

// ChannelRates sums the monitor's checks of account accountID over the
// flood window (diag.RateSource).
func (r *Recorder) ChannelRates(_ context.Context, accountID int64) (diag.Rates, error) {
	now := r.now()
	r.mu.Lock()
	src, known := r.w.SourceOf(accountID)
	var t Totals
	if known {
		t, known = r.w.Flood.Totals(src, now)
	}
	window := r.w.Flood.Config().Window
	r.mu.Unlock()
	if !known || t.Checks == 0 {
		return diag.Rates{Window: window}, fmt.Errorf("%w: the monitor made no check of account %d in the last %s", diag.ErrNoFigures, accountID, window)
	}
	return diag.Rates{Window: t.Window, Requests: t.Requests, Timeouts: t.Timeouts, Retransmits: t.Retransmits,
		Source: fmt.Sprintf("the monitor's checks over the last %s (%d %s, %.1f unanswered requests a minute)",
			t.Window, t.Checks, plural(t.Checks, "check", "checks"), t.Rate)}, nil
}

// Spread compares account accountID's machine with the other machines of
// its firmware, enclosure and subnet: how many of them are degraded,
// flooding or not responding now (diag.FleetSource).
func (r *Recorder) Spread(_ context.Context, accountID int64) ([]diag.Spread, error) {
	now := r.now()
	r.mu.Lock()
	src, known := r.w.SourceOf(accountID)
	var gs []GroupSpread
	if known {
		gs, known = r.w.Correlate.Spread(src, TroubleCodes, now)
	}
	r.mu.Unlock()
	if !known {
		return nil, fmt.Errorf("%w: the monitor has not reported account %d to the correlator", diag.ErrNoFigures, accountID)
	}
	out := make([]diag.Spread, 0, len(gs))
	for _, g := range gs {
		out = append(out, diag.Spread{Dimension: string(g.Factor), Value: g.Value, Peers: g.Peers, Affected: len(g.Affected)})
	}
	return out, nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
