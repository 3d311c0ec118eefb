// Package power runs power and identify operations on machines, alone or in
// staggered batches. Callers depend on the small capability interfaces
// (Setter, StateGetter, Identifier); IPMI implements them over the shared
// engine. An operation on a channel that is not Connectable is refused up
// front with the state, since when and the remedy (Gate), never left to
// time out.
package power

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
)

// Action is a power or identify operation.
type Action string

const (
	On          Action = "on"
	Off         Action = "off"
	SoftOff     Action = "soft"
	Cycle       Action = "cycle"
	Reset       Action = "reset"
	Status      Action = "status"
	IdentifyOn  Action = "identify-on"
	IdentifyOff Action = "identify-off"
	// IdentifyStatus reads the identify lamp (Result.Detail: "identify
	// on", "identify off" or "identify timed").
	IdentifyStatus Action = "identify-status"
)

// Actions lists every action in help order.
var Actions = []Action{On, Off, SoftOff, Cycle, Reset, Status, IdentifyOn, IdentifyOff, IdentifyStatus}

// ParseAction reads an action name (also "soft-off", "softoff").
func ParseAction(s string) (Action, error) {
	switch strings.ToLower(s) {
	case "soft-off", "softoff":
		return SoftOff, nil
	}
	for _, a := range Actions {
		if string(a) == strings.ToLower(s) {
			return a, nil
		}
	}
	names := make([]string, len(Actions))
	var near []string // "identify" → identify-on, identify-off
	for i, a := range Actions {
		names[i] = string(a)
		if len(s) >= 2 && strings.HasPrefix(string(a), strings.ToLower(s)) {
			near = append(near, string(a))
		}
	}
	if len(near) > 0 {
		return "", fmt.Errorf("unknown power action %q: did you mean %s?", s, strings.Join(near, " or "))
	}
	return "", fmt.Errorf("unknown power action %q; want one of %s", s, strings.Join(names, ", "))
}

// ReadOnly reports whether the action changes nothing on the machine.
func (a Action) ReadOnly() bool { return a == Status || a == IdentifyStatus }

// Setter changes a machine's power.
type Setter interface {
	SetPower(ctx context.Context, a Action) error
}

// StateGetter reads a machine's power state ("on" or "off").
type StateGetter interface {
	PowerState(ctx context.Context) (string, error)
}

// Identifier turns the identify LED on or off.
type Identifier interface {
	Identify(ctx context.Context, on bool) error
}

// IdentifyGetter reads the identify lamp: "on", "off" or "timed" (on for
// a while, IPMI's temporary identify).
type IdentifyGetter interface {
	IdentifyState(ctx context.Context) (string, error)
}

// IdentifyState reads ch's identify lamp, or says (ErrUnsupported) that
// the channel cannot.
func IdentifyState(ctx context.Context, ch Channel) (string, error) {
	g, ok := ch.(IdentifyGetter)
	if !ok {
		return "", fmt.Errorf("identify status: %w", ErrUnsupported)
	}
	return g.IdentifyState(ctx)
}

// ErrRefused: the operation was not attempted because the channel is not
// usable. errors.As a *RefusedError for the details.
var ErrRefused = errors.New("refused")

// ErrUnsupported: the channel cannot do this action.
var ErrUnsupported = errors.New("not supported by this channel")

// RefusedError says why an operation was not attempted.
type RefusedError struct {
	Machine string
	State   state.OOB
	Reason  state.Reason
	Since   time.Time
	Remedy  string
	// Detail is set for refusals that are not about the channel state
	// (no OOB account, a spare machine, ...).
	Detail string
}

func (e *RefusedError) Error() string {
	if e.Detail != "" {
		return fmt.Sprintf("%s: refused: %s", e.Machine, e.Detail)
	}
	s := fmt.Sprintf("%s: refused: the OOB channel is %s", e.Machine, e.State)
	if e.Reason != "" {
		s += " (" + string(e.Reason) + ")"
	}
	if !e.Since.IsZero() {
		s += " since " + e.Since.UTC().Format(time.RFC3339)
	}
	if e.Remedy != "" {
		s += "; " + e.Remedy
	}
	return s
}

func (e *RefusedError) Is(target error) bool { return target == ErrRefused }

// Gate refuses an operation on a channel that is not Connectable. A Busy
// channel is refused too: the operation needs a session slot.
func Gate(machine string, cs store.ChannelState) error {
	st := cs.State
	if st == "" {
		st = state.Unknown
	}
	if st == state.Connectable && cs.Reason != state.ReasonBusy {
		return nil
	}
	return &RefusedError{Machine: machine, State: st, Reason: cs.Reason, Since: cs.Since, Remedy: state.RemedyFor(st, cs.Reason, machine, cs.AccountID)}
}

// Channel is everything power needs from one machine's channel.
type Channel interface {
	Setter
	StateGetter
	Identifier
}

// Do runs a on ch and returns the power state afterwards when it is known
// ("on", "off" or "").
func Do(ctx context.Context, ch Channel, a Action) (string, error) {
	switch a {
	case Status:
		return ch.PowerState(ctx)
	case IdentifyOn, IdentifyOff:
		return "", ch.Identify(ctx, a == IdentifyOn)
	case On, Off, SoftOff, Cycle, Reset:
		if err := ch.SetPower(ctx, a); err != nil {
			return "", err
		}
		// Read back: on/off are immediate on most BMCs; soft off waits
		// for the OS, so "on" right after it is expected.
		p, err := ch.PowerState(ctx)
		if err != nil {
			return "", nil // the action was accepted; the read-back is best effort
		}
		return p, nil
	}
	return "", fmt.Errorf("power action %q: %w", a, ErrUnsupported)
}
