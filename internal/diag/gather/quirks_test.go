package gather

import (
	"context"
	"strings"
	"testing"

	"github.com/lightsout/lightsout/internal/sim"
)

// TestExecutorIPMI15Only: a BMC that speaks IPMI 1.5 only (sim quirk
// ipmi15_only), diagnosed end to end over real UDP: the fresh check says
// ipmi15_only and the diagnosis names it with high confidence and the
// remedy — not a silent or hung BMC.
func TestExecutorIPMI15Only(t *testing.T) {
	e := newEnvWith(t, sim.Config{Count: 1, Seed: 9, Password: "gather-pass",
		Faults: map[string]sim.Faults{"bmc-00001": {Quirk: sim.QuirkIPMI15Only}}})
	m, a := e.machine(t, "bmc-00001")
	rep := e.x.Run(context.Background(), m, a)
	d := rep.Diagnosis
	if d.Cause != CauseIPMI15Only || d.Confidence != High || !strings.Contains(d.Remedy, "enable IPMI 2.0") {
		t.Fatalf("%s (%s): %s / %s %v", d.Cause, d.Confidence, d.Summary, d.Remedy, d.Evidence)
	}
}
