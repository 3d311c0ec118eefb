package events

import "time"

// The Recorder holds the figures the diagnosis asks for (internal/events/
// figures turns them into diag's): the flood detector's window holds
// every check the monitor made of a channel (requests, retransmissions,
// exchanges that gave up), and the correlator knows every channel's
// firmware, enclosure and subnet and which codes each raises.

// TroubleCodes are what counts as "the same trouble" when a degraded
// channel is compared with its groups: a degraded BMC, a timeout flood, or
// a BMC declared not responding.
var TroubleCodes = []string{OOBDegraded, OOBTimeoutFlood, OOBNotResponding}

// ChannelTotals sums the monitor's checks of account accountID over the
// flood window (window); ok is false when the monitor made none in it.
func (r *Recorder) ChannelTotals(accountID int64) (t Totals, window time.Duration, ok bool) {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	window = r.w.Flood.Config().Window
	src, known := r.w.SourceOf(accountID)
	if known {
		t, known = r.w.Flood.Totals(src, now)
	}
	return t, window, known && t.Checks > 0
}

// ChannelSpread compares account accountID's machine with the other
// machines of its firmware, enclosure and subnet: which of them are
// degraded, flooding or not responding now (TroubleCodes); ok is false when
// the monitor has not reported the account to the correlator.
func (r *Recorder) ChannelSpread(accountID int64) ([]GroupSpread, bool) {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	src, known := r.w.SourceOf(accountID)
	if !known {
		return nil, false
	}
	return r.w.Correlate.Spread(src, TroubleCodes, now)
}
