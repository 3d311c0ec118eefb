package wire

import "github.com/lightsout/lightsout/internal/manager"

// DiagRequest selects the machines to diagnose (names, a group, or all)
// and what the diagnosis may change: autocorrect (operator) applies the
// safe fixes, adopt (admin) also re-pins a replaced motherboard's GUID.
// The API's own type (schema DiagRequest), not the manager's: the handler
// converts it.
type DiagRequest struct {
	Machines    []string `json:"machines,omitempty"`
	Group       string   `json:"group,omitempty"`
	All         bool     `json:"all,omitempty"`
	Autocorrect bool     `json:"autocorrect,omitempty"`
	Adopt       bool     `json:"adopt,omitempty"`
}

// DiagLine is one line of a diagnosis stream: a channel's diagnosis, or,
// last, the summary (exactly one of the two is set).
type DiagLine struct {
	*manager.DiagResult
	Summary *manager.DiagSummary `json:"summary,omitempty"`
}
