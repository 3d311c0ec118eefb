package web

import (
	"fmt"
	"strings"

	"github.com/lightsout/lightsout/internal/state"
)

// Verdict is the enclosure page's isolation verdict: where a fault among an
// enclosure's blades most likely sits, from their channel states alone
// (pure; the identify-lamp step needs `lightsout diag` on a blade).
type Verdict struct {
	Level   string // ok | partial | shared | none
	Summary string
}

// isolate reads the blades' states: every blade silent points at what they
// share (the enclosure manager, its path or the tray); some silent points
// at those blades' BMCs or their link to the manager.
func isolate(blades []row) Verdict {
	if len(blades) == 0 {
		return Verdict{Level: "none", Summary: "no blade of this enclosure is registered"}
	}
	var silent []string
	for _, b := range blades {
		if b.State == state.NotResponding {
			silent = append(silent, b.Name)
		}
	}
	switch {
	case len(silent) == 0:
		return Verdict{Level: "ok", Summary: "no blade is silent: the enclosure's management path works"}
	case len(silent) == len(blades) && len(blades) > 1:
		return Verdict{Level: "shared", Summary: fmt.Sprintf("all %d blades are silent: the fault is in what they share — the enclosure manager (EM card), its network path, or the enclosure tray; "+
			"diagnose one blade (lightsout diag %s) to ping the EM and run the identify-lamp step", len(blades), silent[0])}
	default:
		names := silent
		if len(names) > 5 {
			names = append(names[:5:5], fmt.Sprintf("and %d more", len(silent)-5))
		}
		return Verdict{Level: "partial", Summary: fmt.Sprintf("%d of %d blades are silent (%s): their siblings answer, so the enclosure path works; "+
			"suspect those blades' BMCs or their link to the enclosure manager — diagnose one (lightsout diag %s) for the identify-lamp step",
			len(silent), len(blades), strings.Join(names, ", "), silent[0])}
	}
}
