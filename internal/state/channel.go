package state

import (
	"slices"
	"time"
)

// Observed is one check's verdict, as the channel state machine sees it.
type Observed struct {
	State      OOB
	Reason     Reason
	Conditions []Condition
	At         time.Time
}

// Damping says how many consecutive observations of a new state it takes
// before the change is declared. Invalid and NotAuthenticated are declared
// at once whatever the setting: Invalid because acting on the wrong machine
// is worse than a false alarm, NotAuthenticated because confirming it costs
// a failed login on the BMC's lockout counter. The first observation of a
// channel (from Unknown) is declared at once too.
type Damping struct {
	// Consecutive observations before a change is declared; values < 1
	// mean 1 (no damping).
	Consecutive int
}

// DefaultDamping declares a change after two consecutive observations.
var DefaultDamping = Damping{Consecutive: 2}

// Channel is the declared state of one channel plus the pending change
// being confirmed. The zero Channel is Unknown. It is a value type with no
// I/O: feed it observations with Observe.
type Channel struct {
	State      OOB         `json:"state"`
	Reason     Reason      `json:"reason,omitempty"`
	Conditions []Condition `json:"conditions,omitempty"`
	Since      time.Time   `json:"since"`

	// Pending is the undeclared state seen in the last Count consecutive
	// observations; empty when the last observation agreed with State.
	Pending      OOB       `json:"pending,omitempty"`
	PendingCount int       `json:"pending_count,omitempty"`
	PendingSince time.Time `json:"pending_since,omitempty"`

	// Streak counts consecutive observations of the current observed state
	// (declared or pending); the scheduler backs off on it.
	Streak int `json:"streak"`
}

// Change is what one observation did to a channel.
type Change int

const (
	// NoChange: nothing to store (same state, reason and conditions, or
	// a pending change not yet confirmed).
	NoChange Change = iota
	// Updated: same state, but the reason or conditions changed; store the
	// new detail, it is not a transition.
	Updated
	// Declared: the state changed; store a transition.
	Declared
)

func (c Change) String() string {
	switch c {
	case NoChange:
		return "none"
	case Updated:
		return "updated"
	case Declared:
		return "declared"
	}
	return "Change(?)"
}

// Transition is a declared state change.
type Transition struct {
	From, To   OOB
	Reason     Reason
	Conditions []Condition
	At         time.Time
}

// Observe feeds one observation and returns the new channel, what changed,
// and the transition when the change is Declared.
func (c Channel) Observe(o Observed, d Damping) (Channel, Change, Transition) {
	if o.State == "" {
		o.State = Unknown
	}
	if c.State == "" {
		c.State = Unknown
	}
	need := d.Consecutive
	if need < 1 {
		need = 1
	}

	observed := o.State
	// Streak of the observed state, across declared and pending.
	last := c.State
	if c.Pending != "" {
		last = c.Pending
	}
	if observed == last {
		c.Streak++
	} else {
		c.Streak = 1
	}

	if observed == c.State {
		c.Pending, c.PendingCount, c.PendingSince = "", 0, time.Time{}
		if c.Reason != o.Reason || !slices.Equal(c.Conditions, o.Conditions) {
			c.Reason, c.Conditions = o.Reason, slices.Clone(o.Conditions)
			return c, Updated, Transition{}
		}
		return c, NoChange, Transition{}
	}

	if c.Pending == observed {
		c.PendingCount++
	} else {
		c.Pending, c.PendingCount, c.PendingSince = observed, 1, o.At
	}
	immediate := c.State == Unknown || observed == Invalid || observed == NotAuthenticated
	if !immediate && c.PendingCount < need {
		return c, NoChange, Transition{}
	}
	t := Transition{From: c.State, To: observed, Reason: o.Reason, Conditions: slices.Clone(o.Conditions), At: o.At}
	c.State, c.Reason, c.Conditions, c.Since = observed, o.Reason, slices.Clone(o.Conditions), o.At
	c.Pending, c.PendingCount, c.PendingSince = "", 0, time.Time{}
	return c, Declared, t
}

// Observing is the state the last observation saw: Pending when a change is
// being confirmed, State otherwise.
func (c Channel) Observing() OOB {
	if c.Pending != "" {
		return c.Pending
	}
	if c.State == "" {
		return Unknown
	}
	return c.State
}
