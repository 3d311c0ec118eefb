// Package figures is the event recorder as the diagnosis's rate and fleet
// source (gather.RateSource, gather.FleetSource): it turns the Recorder's
// totals and group spreads into diag's figures. Its own package, so that
// internal/events does not import internal/diag (the consumer declares the
// interface; the composition root, internal/server, plugs this in).
package figures

import (
	"context"
	"fmt"

	"github.com/lightsout/lightsout/internal/diag"
	"github.com/lightsout/lightsout/internal/diag/gather"
	"github.com/lightsout/lightsout/internal/events"
)

// Source answers the diagnosis from a Recorder. A channel the monitor has
// not checked since the server started (or not within the flood window)
// is gather.ErrNoFigures: the executor then measures it itself.
type Source struct{ Recorder *events.Recorder }

var (
	_ gather.RateSource  = Source{}
	_ gather.FleetSource = Source{}
)

// ChannelRates sums the monitor's checks of account accountID over the
// flood window (gather.RateSource).
func (s Source) ChannelRates(_ context.Context, accountID int64) (diag.Rates, error) {
	t, window, ok := s.Recorder.ChannelTotals(accountID)
	if !ok {
		return diag.Rates{Window: window}, fmt.Errorf("%w: the monitor made no check of account %d in the last %s", gather.ErrNoFigures, accountID, window)
	}
	return diag.Rates{Window: t.Window, Requests: t.Requests, Timeouts: t.Timeouts, Retransmits: t.Retransmits,
		Source: fmt.Sprintf("the monitor's checks over the last %s (%d %s, %.1f unanswered requests a minute)",
			t.Window, t.Checks, plural(t.Checks, "check", "checks"), t.Rate)}, nil
}

// Spread compares account accountID's machine with the other machines of
// its firmware, enclosure and subnet: how many of them are degraded,
// flooding or not responding now (gather.FleetSource).
func (s Source) Spread(_ context.Context, accountID int64) ([]diag.Spread, error) {
	gs, ok := s.Recorder.ChannelSpread(accountID)
	if !ok {
		return nil, fmt.Errorf("%w: the monitor has not reported account %d to the correlator", gather.ErrNoFigures, accountID)
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
