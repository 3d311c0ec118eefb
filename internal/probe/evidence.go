package probe

import "github.com/lightsout/lightsout/internal/evidence"

// Observation, Evidence, Loss and RedfishEvidence live in internal/evidence
// (pure, for the diagnosis and the monitor's outcome); these aliases keep
// the probers' and callers' names.
type (
	Observation     = evidence.Observation
	Evidence        = evidence.Evidence
	Loss            = evidence.Loss
	RedfishEvidence = evidence.RedfishEvidence
)
