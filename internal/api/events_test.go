package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/api/apitest"
	"github.com/lightsout/lightsout/internal/api/wire"
	"github.com/lightsout/lightsout/internal/events"
	"github.com/lightsout/lightsout/internal/store"
)

func TestEventStream(t *testing.T) {
	e := apitest.Start(t, apitest.Options{})
	rec := e.Server.Events
	ctx := context.Background()
	old := time.Now().Add(-2 * time.Hour)
	rec.Record(ctx, store.Event{Code: events.OOBNotResponding, Source: "web-1", Message: "too old", At: old})
	rec.Record(ctx, store.Event{Code: events.OOBNotResponding, Source: "web-2", Message: "replayed", At: time.Now()})

	// Authentication, role and parameters are checked before streaming.
	if st, _ := raw(t, e, "", "GET", "/api/v1/events/stream", ""); st != http.StatusUnauthorized {
		t.Fatalf("no token: %d", st)
	}
	for _, q := range []string{"?severity=loud", "?code=oob*", "?since=yesterday", "?limit=3"} {
		st, body := raw(t, e, store.RoleViewer, "GET", "/api/v1/events/stream"+q, "")
		if st != http.StatusBadRequest || !strings.Contains(string(body), "invalid_field") {
			t.Errorf("%s: %d %s", q, st, body)
		}
	}

	since := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	req, _ := http.NewRequest("GET", e.URL+"/api/v1/events/stream?severity=warning&since="+since, nil)
	req.Header.Set("Authorization", "Bearer "+e.Tokens[store.RoleViewer])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	next := func() store.Event {
		t.Helper()
		timeout := time.After(10 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatal("stream ended")
				}
				if d, ok := strings.CutPrefix(l, "data: "); ok {
					var ev store.Event
					if err := json.Unmarshal([]byte(d), &ev); err != nil {
						t.Fatalf("data line %q: %v", l, err)
					}
					return ev
				}
			case <-timeout:
				t.Fatal("no event on the stream")
			}
		}
	}
	if ev := next(); ev.Message != "replayed" {
		t.Fatalf("replay: %+v", ev)
	}
	rec.Record(ctx, store.Event{Code: events.OOBStateChanged, Source: "web-3", Message: "info: filtered out"})
	rec.Record(ctx, store.Event{Code: events.OOBAuthRefused, Source: "web-3", Message: "live"})
	if ev := next(); ev.Message != "live" || ev.Severity != store.SeverityCritical || ev.ID == 0 {
		t.Fatalf("live: %+v", ev)
	}

	// The catalogue.
	var cat wire.EventCatalogue
	st, body := raw(t, e, store.RoleViewer, "GET", "/api/v1/events/catalogue", "")
	if err := json.Unmarshal(body, &cat); st != http.StatusOK || err != nil || len(cat.Codes) != len(events.Catalogue()) {
		t.Fatalf("catalogue: %d %s", st, body)
	}
	for _, k := range cat.Codes {
		if k.Code == events.OOBTimeoutFlood && (k.Dedup != "1h0m0s" || !k.Correlate || k.Severity != store.SeverityWarning) {
			t.Errorf("catalogue entry %+v", k)
		}
	}

	// CloseSubscribers (which the HTTP server's shutdown calls) ends the
	// stream, so a shutdown does not wait for it.
	start := time.Now()
	rec.CloseSubscribers()
	for range lines {
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("stream ended %v after the subscribers were closed", el)
	}
}
