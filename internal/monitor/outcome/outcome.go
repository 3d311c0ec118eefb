// Package outcome is what one check of one channel changes (Outcome) and
// who hears of it (Sink): the monitor computes and applies it,
// internal/events implements the Sink. It is its own package, over the
// pure evidence and store model, so that events need not import the
// monitor (internal/layers.TestImportDepth); package monitor keeps aliases
// (monitor.Outcome, monitor.Sink, monitor.SinkFunc), this package is
// canonical.
package outcome

import (
	"context"

	"github.com/lightsout/lightsout/internal/evidence"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
)

// Sink receives every check's Outcome after the monitor applied it. It is
// called on the check's goroutine with the check's context, which
// shutting down cancels: a sink that writes what the check found detaches
// from it (context.WithoutCancel) and bounds its own I/O. It must not
// block for long.
type Sink interface {
	Checked(ctx context.Context, o Outcome)
}

// SinkFunc is a function as a Sink.
type SinkFunc func(ctx context.Context, o Outcome)

// Checked calls f.
func (f SinkFunc) Checked(ctx context.Context, o Outcome) { f(ctx, o) }

// Outcome is one check of one channel and everything it changes: the
// channel's pure step (step) computes it, the monitor applies it (apply)
// in this order, each part only when present:
//
//  1. pin: the registering machine's System GUID (Pin), before anybody
//     sees the channel Connectable;
//  2. save: the BMC's learned profile (Profile), then the channel's state
//     with its declared transition in one transaction (State, Transition);
//  3. publish: the channel's in-memory state (Get, Snapshot, CheckNow's
//     result), then the Sink.
//
// The Sink sees Transition only when it was stored.
type Outcome struct {
	AccountID int64
	MachineID int64
	Machine   string
	Enclosure string
	Address   string
	// Declared is the channel's declared state after this observation.
	Declared    state.OOB
	Observation evidence.Observation
	// Change is what the observation did to the channel's state machine.
	Change state.Change
	// Transition is the declared transition (Change == state.Declared).
	Transition *store.Transition
	// Pin is the GUID to pin on a registering machine ("" none).
	Pin string
	// Profile is the BMC's learned profile to save (nil: unchanged).
	Profile *store.Profile
	// State is the channel's state to save (nil: nothing changed).
	State *store.ChannelState
}
