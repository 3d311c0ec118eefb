package sim

import (
	"time"

	"github.com/bougou/go-ipmi/pkg/bmc"
	"github.com/bougou/go-ipmi/pkg/clock"
)

// fleetClock is every simulated BMC's clock: the real one, except that the
// ticker go-ipmi's server starts per BMC to evict idle sessions never
// ticks. One sweeper per fleet evicts them instead (sweepSessions): 100,000
// BMCs each waking every 3 s cost about a quarter of a core doing nothing.
// (Tests move the fleet's clock on with skew.)
type fleetClock struct{ f *Fleet }

func (c fleetClock) Now() time.Time {
	return time.Now().Add(time.Duration(c.f.skew.Load()))
}
func (fleetClock) NewTimer(d time.Duration) clock.Timer   { return clock.Real.NewTimer(d) }
func (fleetClock) NewTicker(d time.Duration) clock.Ticker { return idleTicker{} }

// idleTicker never ticks.
type idleTicker struct{}

func (idleTicker) C() <-chan time.Time { return nil }
func (idleTicker) Stop()               {}

// sweepSessions evicts every BMC's expired sessions (inactive for go-ipmi's
// 60 s, or half-open) each bmc.DefaultSessionEvictInterval, as go-ipmi's
// per-server ticker would, until the fleet closes.
func (f *Fleet) sweepSessions() {
	t := time.NewTicker(bmc.DefaultSessionEvictInterval)
	defer t.Stop()
	for {
		select {
		case <-f.ctx.Done():
			return
		case <-t.C:
		}
		f.evictSessions()
	}
}

// evictSessions is one sweep.
func (f *Fleet) evictSessions() {
	for _, b := range f.all {
		if co := b.cur.Load(); co != nil {
			co.bmc.Sessions.EvictExpired()
			co.bmc.V15Sessions.EvictExpired()
		}
	}
}
