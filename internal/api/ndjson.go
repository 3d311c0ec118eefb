package api

import (
	"encoding/json"
	"net/http"
)

// ndjson is a stream of newline-delimited JSON lines, each flushed as it is
// written (a proxy in front is told not to buffer). The 200 and the
// content type go out with the first line, so an error before it is still
// an ordinary error reply. The diagnosis and the bulk power operations
// stream through it.
type ndjson struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	started bool
}

func newNDJSON(w http.ResponseWriter) *ndjson {
	return &ndjson{w: w, rc: http.NewResponseController(w)}
}

// line writes v as one line, starting the stream if need be.
func (s *ndjson) line(v any) {
	if !s.started {
		s.started = true
		s.w.Header().Set("Content-Type", "application/x-ndjson")
		s.w.Header().Set("X-Accel-Buffering", "no")
		s.w.WriteHeader(http.StatusOK)
	}
	b, _ := json.Marshal(v)
	_, _ = s.w.Write(append(b, '\n'))
	_ = s.rc.Flush()
}

// end closes a stream whose run returned err with the summary line: an
// error before the first line is returned (an ordinary error reply); one
// after it is logged — at debug when the client went away — and the
// summary still ends the stream.
func (a *API) endStream(s *ndjson, r *http.Request, what string, err error, summary any) error {
	if err != nil && !s.started {
		return err
	}
	if err != nil && clientGone(r, err) {
		a.log.Debug("api: "+what+" failed after it started: client gone", "err", err)
	} else if err != nil {
		a.log.Error("api: "+what+" failed after it started", "err", err)
	}
	s.line(summary)
	return nil
}
