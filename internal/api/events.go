package api

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/lightsout/lightsout/internal/api/wire"
	"github.com/lightsout/lightsout/internal/events"
	"github.com/lightsout/lightsout/internal/manager"
	"github.com/lightsout/lightsout/internal/store"
)

// eventFilter reads the filters shared by the event listing and stream:
// since, code (one code or "family.*"), source, severity (the least).
func eventFilter(q url.Values) (store.EventFilter, error) {
	var f store.EventFilter
	if s := q.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return f, invalid("since", "%q is not an RFC 3339 time (e.g. 2025-01-02T15:04:05Z)", s)
		}
		f.Since = t
	}
	if c := q.Get("code"); c != "" {
		if strings.ContainsAny(c, " \t\r\n") || (strings.Contains(c, "*") && !strings.HasSuffix(c, ".*")) ||
			strings.Count(c, "*") > 1 {
			return f, invalid("code", "%q is not an event code (oob.timeout_flood) or a family (audit.*)", c)
		}
		f.Code = c
	}
	f.Source = q.Get("source")
	if s := q.Get("severity"); s != "" {
		sev, err := store.ParseSeverity(s)
		if err != nil {
			return f, invalid("severity", "%v (the least severity shown)", err)
		}
		f.MinSeverity = sev
	}
	return f, nil
}

// SSEKeepalive is how often an idle event stream sends a comment, so
// proxies and clients see the connection alive.
var SSEKeepalive = 15 * time.Second

// streamEvents serves GET /api/v1/events/stream: Server-Sent Events, one
// "data:" line of JSON (an Event) per event, stored or counted up. With
// since, the stored events from then are replayed first, oldest first. A
// reader too slow for the live rate loses events: an "event: dropped"
// message says how many so far.
func (a *API) streamEvents(w http.ResponseWriter, r *http.Request, _ manager.Actor) error {
	q, err := params(r, "since", "code", "source", "severity")
	if err != nil {
		return err
	}
	f, err := eventFilter(q)
	if err != nil {
		return err
	}
	if a.ev == nil {
		return &apiError{status: http.StatusServiceUnavailable, code: wire.CodeUnavailable, msg: "this server has no live event stream"}
	}
	sub := a.ev.Subscribe(f, 0)
	defer sub.Close()
	var replay []store.Event
	if !f.Since.IsZero() {
		rf := f
		rf.Limit = 1000
		if replay, err = a.st.ListEvents(r.Context(), rf); err != nil {
			return err
		}
	}
	events.ServeSSE(r.Context(), w, sub, events.SSEStream{Comment: "lightsout events", Replay: replay, Keepalive: SSEKeepalive})
	return nil
}

// eventCatalogue serves GET /api/v1/events/catalogue: every known code.
func (a *API) eventCatalogue(w http.ResponseWriter, _ *http.Request, _ manager.Actor) error {
	var out wire.EventCatalogue
	for _, k := range events.Catalogue() {
		out.Codes = append(out.Codes, wire.EventKind{Code: k.Code, Severity: store.Severity(k.Severity), Summary: k.Summary,
			Dedup: k.Dedup.String(), Correlate: k.Correlate})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
