package state

import "time"

// Schedule decides when a channel is checked next. It is pure: callers pass
// the randomness and the clock.
type Schedule struct {
	// Interval between checks of a settled channel.
	Interval time.Duration
	// Jitter spreads checks: each delay is scaled by a factor drawn from
	// [1-Jitter, 1+Jitter]. 0.1 means ±10 %.
	Jitter float64
	// Confirm is the delay before re-checking a channel whose state seems
	// to have changed (a pending change), capped by Interval.
	Confirm time.Duration
	// MaxBackoff caps the doubling interval of a NotResponding channel.
	MaxBackoff time.Duration
	// AuthRetry is the least time between two attempts on an account the
	// BMC refused, unless its credentials were edited since: BMCs lock
	// accounts after a few failures.
	AuthRetry time.Duration
}

// DefaultSchedule is the monitor's default.
var DefaultSchedule = Schedule{
	Interval:   60 * time.Second,
	Jitter:     0.1,
	Confirm:    10 * time.Second,
	MaxBackoff: 15 * time.Minute,
	AuthRetry:  10 * time.Minute,
}

// Next is the delay until the next check of c, given r drawn uniformly from
// [0, 1).
func (s Schedule) Next(c Channel, r float64) time.Duration {
	d := s.Interval
	switch {
	case c.Observing() == NotAuthenticated:
		// Never sooner than AuthRetry; jitter only later.
		return s.AuthRetry + time.Duration(float64(s.AuthRetry)*s.Jitter*r)
	case c.Pending != "":
		if s.Confirm > 0 && s.Confirm < d {
			d = s.Confirm
		}
	case c.State == NotResponding:
		// Back off: the n-th consecutive silent check after the one that
		// declared it waits 2^n intervals, up to MaxBackoff.
		for i := 1; i < c.Streak && d < s.MaxBackoff; i++ {
			d *= 2
		}
		if s.MaxBackoff > 0 && d > s.MaxBackoff {
			d = s.MaxBackoff
		}
	}
	return jitter(d, s.Jitter, r)
}

func jitter(d time.Duration, j, r float64) time.Duration {
	if j <= 0 {
		return d
	}
	return time.Duration(float64(d) * (1 + j*(2*r-1)))
}

// AuthAttempt says whether an attempt on an account may be made at now,
// given when the BMC last refused it (zero: never), when its credentials
// were last edited, and when an edit last earned an immediate attempt
// (lastEditRetry; zero: never). When not, it returns the earliest allowed
// time. An edit's attempt is spent once refused. edit reports that the
// attempt is allowed only because the credentials were edited since the
// refusal: the caller records now as the
// new lastEditRetry, so that edits earn at most one immediate attempt per
// AuthRetry, however many there are.
func (s Schedule) AuthAttempt(lastRefused, credentialsChanged, lastEditRetry, now time.Time) (ok bool, next time.Time, edit bool) {
	if lastRefused.IsZero() {
		return true, now, false
	}
	next = lastRefused.Add(s.AuthRetry)
	if !now.Before(next) {
		return true, now, false
	}
	if credentialsChanged.After(lastRefused) {
		// Allowed: no edit earned an attempt yet, or the one it earned
		// has not been refused yet (this is it), or that was AuthRetry ago.
		if lastEditRetry.IsZero() || lastRefused.Before(lastEditRetry) || !now.Before(lastEditRetry.Add(s.AuthRetry)) {
			return true, now, true
		}
		if n := lastEditRetry.Add(s.AuthRetry); n.Before(next) {
			next = n
		}
	}
	return false, next, false
}

// EditRetry says whether an edit of an account's credentials at now may
// make an immediate attempt, given when an edit last did (zero: never):
// at most one per AuthRetry. When not, it returns when the next may be.
func (s Schedule) EditRetry(lastEditRetry, now time.Time) (bool, time.Time) {
	if lastEditRetry.IsZero() || !now.Before(lastEditRetry.Add(s.AuthRetry)) {
		return true, now
	}
	return false, lastEditRetry.Add(s.AuthRetry)
}
