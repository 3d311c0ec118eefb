package client

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/lightsout/lightsout/internal/api/wire"
	"github.com/lightsout/lightsout/internal/store"
)

// EventQuery filters events (GET /api/v1/events and its stream).
type EventQuery struct {
	Since time.Time
	// Code is one code or a family ("audit.*").
	Code   string
	Source string
	// Severity is the least severity.
	Severity store.Severity
	Limit    int // listing only
}

func (q EventQuery) values(withLimit bool) url.Values {
	v := url.Values{}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339))
	}
	setIf(v, "code", q.Code)
	setIf(v, "source", q.Source)
	setIf(v, "severity", string(q.Severity))
	if withLimit && q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	return v
}

// ListEvents lists events newest first.
func (c *Client) ListEvents(ctx context.Context, q EventQuery) ([]store.Event, error) {
	var out wire.Events
	return out.Events, c.call(ctx, "GET", "/api/v1/events", q.values(true), nil, &out)
}

// EventCatalogue lists the event codes the server knows.
func (c *Client) EventCatalogue(ctx context.Context) ([]wire.EventKind, error) {
	var out wire.EventCatalogue
	return out.Codes, c.call(ctx, "GET", "/api/v1/events/catalogue", nil, nil, &out)
}

// FollowEvents streams events (GET /api/v1/events/stream) until ctx ends,
// the server ends the stream (nil error), or each returns an error. With
// q.Since, stored events from then come first, oldest first. dropped, when
// set, hears how many events this reader lost so far by being too slow.
func (c *Client) FollowEvents(ctx context.Context, q EventQuery, each func(store.Event) error, dropped func(n uint64)) error {
	resp, err := c.do(ctx, "GET", "/api/v1/events/stream", q.values(false), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		return fmt.Errorf("events stream: the server answered %q, not text/event-stream", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var kind string
	var data strings.Builder
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if data.Len() > 0 {
				if err := dispatchSSE(kind, data.String(), each, dropped); err != nil {
					return err
				}
			}
			kind = ""
			data.Reset()
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			kind = value
		case "data":
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.WriteString(value)
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("events stream: %w", err)
	}
	return nil
}

func dispatchSSE(kind, data string, each func(store.Event) error, dropped func(uint64)) error {
	switch kind {
	case "", "message":
		var e store.Event
		if err := json.Unmarshal([]byte(data), &e); err != nil {
			return fmt.Errorf("events stream: cannot decode an event: %w", err)
		}
		return each(e)
	case "dropped":
		var d struct {
			Dropped uint64 `json:"dropped"`
		}
		if json.Unmarshal([]byte(data), &d) == nil && dropped != nil {
			dropped(d.Dropped)
		}
	}
	return nil
}
