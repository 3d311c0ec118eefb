package events

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/lightsout/lightsout/internal/store"
)

// SSEStream is what ServeSSE writes besides the live events.
type SSEStream struct {
	// Comment names the stream in its first comment line.
	Comment string
	// Replay is the store's events, newest first as ListEvents gives
	// them, written first, oldest first; a live event already replayed
	// with the same count is not sent again.
	Replay []store.Event
	// Keepalive is how often an idle stream sends a comment, so proxies
	// and clients see the connection alive.
	Keepalive time.Duration
}

// ServeSSE streams sub's events to w as Server-Sent Events (one "id:" and
// one "data:" line of JSON per event, stored or counted up) until ctx ends,
// the subscription closes (the server stops) or the client goes. A reader
// too slow for the live rate loses events: an "event: dropped" message
// says how many so far. The REST API's and the console's streams are this
// one.
func ServeSSE(ctx context.Context, w http.ResponseWriter, sub *Subscription, s SSEStream) {
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // a proxy in front must not hold the events
	w.WriteHeader(http.StatusOK)
	if _, err := fmt.Fprintf(w, "retry: 3000\n: %s\n\n", s.Comment); err != nil {
		return
	}
	seen := map[int64]int{}
	for i := len(s.Replay) - 1; i >= 0; i-- {
		if writeSSE(w, s.Replay[i]) != nil {
			return
		}
		seen[s.Replay[i].ID] = s.Replay[i].Count
	}
	if rc.Flush() != nil {
		return
	}
	keep := time.NewTicker(s.Keepalive)
	defer keep.Stop()
	var dropped uint64
	for {
		select {
		case <-ctx.Done():
			return
		case <-keep.C:
			if _, err := fmt.Fprint(w, ": keepalive\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		case e, ok := <-sub.C:
			if !ok {
				return // the server is shutting down
			}
			if c, ok := seen[e.ID]; ok && e.Count <= c {
				continue
			}
			if writeSSE(w, e) != nil {
				return
			}
			if d := sub.Dropped(); d != dropped {
				dropped = d
				if _, err := fmt.Fprintf(w, "event: dropped\ndata: {\"dropped\":%d}\n\n", d); err != nil {
					return
				}
			}
			if rc.Flush() != nil {
				return
			}
		}
	}
}

func writeSSE(w http.ResponseWriter, e store.Event) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "id: %d\ndata: %s\n\n", e.ID, b)
	return err
}
