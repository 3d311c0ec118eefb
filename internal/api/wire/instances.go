package wire

import "github.com/lightsout/lightsout/internal/store"

// Instances is GET /api/v1/instances: every instance sharing the database
// (docs/scale-out.md), live or not, and which one answered.
type Instances struct {
	Self      string           `json:"self"`
	Instances []store.Instance `json:"instances"`
}
