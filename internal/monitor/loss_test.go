package monitor

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/probe"
	"github.com/lightsout/lightsout/internal/state"
)

// TestStepLoss: the channel's pure core measures the datagram loss over
// its recent checks from the engine's counters. A BMC that answers but
// loses 10% or more is Connectable+Degraded with the rate (whatever the
// single check said); a stalled check on such a path names the loss; one
// check or a clean path decides nothing; excused retransmissions (a Close
// Session the BMC never answers) and silent checks are not loss.
func TestStepLoss(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	obs := func(st state.OOB, r state.Reason, req, re, to, ex uint32) probe.Observation {
		o := probe.Observation{State: st, Reason: r, At: at, GUID: "g-1", Message: "session opened"}
		o.Evidence.Requests, o.Evidence.Retransmits, o.Evidence.Timeouts, o.Evidence.Excused = req, re, to, ex
		return o
	}
	conn := func(req, re, to, ex uint32) probe.Observation { return obs(state.Connectable, "", req, re, to, ex) }
	// run feeds the observations in order and returns the last outcome.
	run := func(os ...probe.Observation) (known, Outcome) {
		in := stepInput{accountID: 4, machine: "web-1", address: "10.0.0.4", port: 623, damping: state.Damping{Consecutive: 2}}
		var o Outcome
		for _, x := range os {
			in.obs = x
			in.known, o = step(in)
		}
		return in.known, o
	}
	rep := func(n int, o probe.Observation) []probe.Observation {
		out := make([]probe.Observation, n)
		for i := range out {
			out[i] = o
		}
		return out
	}
	for _, c := range []struct {
		name     string
		obs      []probe.Observation
		rate     float64 // 0: no loss reported
		degraded bool
	}{
		{"clean path", rep(8, conn(8, 0, 0, 0)), 0, false},
		{"one lossy check is too few datagrams", []probe.Observation{conn(8, 4, 0, 0)}, 0, false},
		// 8 requests, 4 retransmissions: 4 of 12 datagrams lost, but the
		// probe's own rule (two retransmissions in one check) is not what
		// marks it: one retransmission a check over 8 checks does.
		{"a third lost over three checks", rep(3, conn(8, 4, 0, 0)), 4.0 / 12, true},
		{"one retransmission a check is 11%", rep(4, conn(8, 1, 0, 0)), 1.0 / 9, true},
		{"one in twenty is not Degraded", rep(8, conn(19, 1, 0, 0)), 0, false},
		{"exchanges that gave up count", rep(3, conn(8, 2, 2, 0)), 4.0 / 10, true},
		{"an unanswered Close Session is excused", rep(8, conn(8, 3, 1, 4)), 0, false},
		{"silence is not loss", append(rep(7, conn(8, 0, 0, 0)), rep(3, obs(state.NotResponding, state.ReasonSilent, 2, 6, 2, 0))...), 0, false},
		// 1 of 12 (8%) after a third: still shown (below 5% it goes).
		{"hysteresis", append(rep(8, conn(8, 4, 0, 0)), rep(8, conn(11, 1, 0, 0))...), 8.0 / 96, true},
		{"the window forgets", append(rep(8, conn(8, 4, 0, 0)), rep(8, conn(8, 0, 0, 0))...), 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			k, o := run(c.obs...)
			l := o.Observation.Evidence.Loss
			if c.rate == 0 {
				if l != nil {
					t.Fatalf("loss %+v, want none", *l)
				}
			} else if l == nil || l.Rate < c.rate-1e-9 || l.Rate > c.rate+1e-9 || !strings.Contains(o.Observation.Message, "datagrams lost over the last") {
				t.Fatalf("loss %+v (%q), want rate %.3f", l, o.Observation.Message, c.rate)
			}
			if got := slices.Contains(o.Observation.Conditions, state.Degraded); got != c.degraded || slices.Contains(k.ch.Conditions, state.Degraded) != c.degraded {
				t.Fatalf("Degraded %v (channel %v), want %v", got, k.ch.Conditions, c.degraded)
			}
		})
	}

	// A stalled check on a lossy path stays a failed check (it could not
	// finish), and says the path loses packets.
	_, o := run(append(rep(3, conn(8, 4, 0, 0)), obs(state.NotResponding, state.ReasonStalled, 5, 6, 1, 0))...)
	if o.Observation.State != state.NotResponding || o.Observation.Evidence.Loss == nil || !strings.Contains(o.Observation.Message, "packet loss, not necessarily a hung BMC") {
		t.Fatalf("stalled: %s %+v %q", o.Observation.State, o.Observation.Evidence.Loss, o.Observation.Message)
	}
	// The rate reaches the stored state and the transition's evidence.
	_, o = run(rep(2, conn(8, 4, 0, 0))...)
	if o.State == nil || !strings.Contains(string(o.State.Evidence), `"loss":{"sent":24,"lost":8,"checks":2`) {
		t.Fatalf("stored evidence: %+v", o.State)
	}
}
