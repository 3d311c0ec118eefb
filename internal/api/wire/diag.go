package wire

import "github.com/lightsout/lightsout/internal/manager"

// DiagRequest selects the machines to diagnose (names, a group, or all)
// and what the diagnosis may change: autocorrect (operator) applies the
// safe fixes, adopt (admin) also re-pins a replaced motherboard's GUID.
type DiagRequest = manager.DiagRequest

// DiagLine is one line of a diagnosis stream: a channel's diagnosis, or,
// last, the summary (exactly one of the two is set).
type DiagLine struct {
	*manager.DiagResult
	Summary *manager.DiagSummary `json:"summary,omitempty"`
}
