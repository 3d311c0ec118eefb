package monitor

import "github.com/lightsout/lightsout/internal/monitor/outcome"

// Outcome, Sink and SinkFunc live in internal/monitor/outcome, so that the
// sink (internal/events) need not import the monitor; package outcome is
// canonical and these are its aliases.
type (
	Outcome  = outcome.Outcome
	Sink     = outcome.Sink
	SinkFunc = outcome.SinkFunc
)
