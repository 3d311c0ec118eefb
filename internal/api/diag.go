package api

import (
	"net/http"

	"github.com/lightsout/lightsout/internal/api/wire"
	"github.com/lightsout/lightsout/internal/manager"
)

// diag runs the diagnosis and streams it as NDJSON: one line per channel
// as it completes (flushed), then the summary. Validation and role errors
// come before the stream as ordinary error replies.
func (a *API) diag(w http.ResponseWriter, r *http.Request, actor manager.Actor) error {
	if done, err := a.forwarded(w, r, actor, fwdDiag, a.diag); done {
		return err
	}
	var in wire.DiagRequest
	if err := decode(w, r, MaxBody, &in); err != nil {
		return err
	}
	st := newNDJSON(w)
	var sum manager.DiagSummary
	_, err := a.m.Diagnose(r.Context(), actor, manager.DiagRequest(in), func(res manager.DiagResult) {
		sum.Add(res)
		st.line(wire.DiagLine{DiagResult: &res})
	})
	return a.endStream(st, r, "diagnosis", err, wire.DiagLine{Summary: &sum})
}
