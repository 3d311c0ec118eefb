package api

import (
	"encoding/json"
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
	rc := http.NewResponseController(w)
	started := false
	begin := func() {
		if !started {
			started = true
			w.Header().Set("Content-Type", "application/x-ndjson")
			w.Header().Set("X-Accel-Buffering", "no")
			w.WriteHeader(http.StatusOK)
		}
	}
	line := func(v wire.DiagLine) {
		b, _ := json.Marshal(v)
		_, _ = w.Write(append(b, '\n'))
		_ = rc.Flush()
	}
	var sum manager.DiagSummary
	_, err := a.m.Diagnose(r.Context(), actor, in, func(res manager.DiagResult) {
		begin()
		sum.Add(res)
		line(wire.DiagLine{DiagResult: &res})
	})
	if err != nil && !started {
		return err
	}
	if err != nil && clientGone(r, err) {
		a.log.Debug("api: diagnosis failed after it started: client gone", "err", err)
	} else if err != nil {
		a.log.Error("api: diagnosis failed after it started", "err", err)
	}
	begin()
	line(wire.DiagLine{Summary: &sum})
	return nil
}
