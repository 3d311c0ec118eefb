package probe

import "github.com/lightsout/lightsout/internal/evidence"

// Evidence, Loss and RedfishEvidence live in internal/evidence (pure, for
// the diagnosis); these aliases keep the probers' and callers' names.
type (
	Evidence        = evidence.Evidence
	Loss            = evidence.Loss
	RedfishEvidence = evidence.RedfishEvidence
)
