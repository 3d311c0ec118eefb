package events

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/probe"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
)

var t0 = time.Date(2025, 3, 2, 10, 0, 0, 0, time.UTC)

func sec(n float64) time.Time { return t0.Add(time.Duration(n * float64(time.Second))) }

func TestLost(t *testing.T) {
	ev := func(r, to uint32) probe.Evidence { return probe.Evidence{Retransmits: r, Timeouts: to} }
	for _, c := range []struct {
		name string
		o    probe.Observation
		want int
	}{
		{"clean check", probe.Observation{State: state.Connectable}, 0},
		{"retransmissions and a timeout", probe.Observation{State: state.Connectable, Evidence: ev(3, 1)}, 4},
		{"refused account counts its retries", probe.Observation{State: state.NotAuthenticated, Evidence: ev(2, 0)}, 2},
		{"silent check is one timeout", probe.Observation{State: state.NotResponding, Reason: state.ReasonSilent, Evidence: ev(7, 2)}, 1},
		{"silent without counters is one", probe.Observation{State: state.NotResponding, Reason: state.ReasonSilent}, 1},
		{"stalled is one", probe.Observation{State: state.NotResponding, Reason: state.ReasonStalled, Evidence: ev(4, 1)}, 1},
		{"port refused is no timeout", probe.Observation{State: state.NotResponding, Reason: state.ReasonPortRefused}, 0},
		{"unreachable is no timeout", probe.Observation{State: state.NotResponding, Reason: state.ReasonUnreachable, Evidence: ev(0, 1)}, 0},
	} {
		if got := Lost(c.o); got != c.want {
			t.Errorf("%s: Lost = %d, want %d", c.name, got, c.want)
		}
	}
}

// floodStep is one call on the detector: an observation (tick false) or a
// Tick, and the codes it must return.
type floodStep struct {
	at     float64 // seconds after t0
	source string
	lost   int
	tick   bool
	want   []string // codes, in order
}

func TestFlood(t *testing.T) {
	const F, C = OOBTimeoutFlood, OOBTimeoutFloodCleared
	// Window 1m, threshold 10/min, refresh 30s unless a case says.
	base := FloodConfig{Window: time.Minute, Threshold: 10, Refresh: 30 * time.Second}
	tests := []struct {
		name  string
		cfg   FloodConfig
		steps []floodStep
	}{
		{"quiet source never floods", base, []floodStep{
			{0, "a", 0, false, nil}, {20, "a", 2, false, nil}, {40, "a", 3, false, nil}, {59, "a", 4, false, nil}}},
		{"reaching the threshold starts a flood", base, []floodStep{
			{0, "a", 4, false, nil}, {20, "a", 4, false, nil}, {40, "a", 2, false, []string{F}}}},
		{"one burst over the threshold", base, []floodStep{{0, "a", 12, false, []string{F}}}},
		{"samples older than the window do not count", base, []floodStep{
			{0, "a", 6, false, nil}, {61, "a", 6, false, nil}, {70, "a", 0, false, nil}}},
		{"the window's start is exclusive", base, []floodStep{
			{0, "a", 6, false, nil}, {60, "a", 6, false, nil}}},
		{"a flood is reported once, then every refresh", base, []floodStep{
			{0, "a", 10, false, []string{F}}, {10, "a", 5, false, nil}, {20, "a", 5, false, nil},
			{30, "a", 5, false, []string{F}}, {40, "a", 5, false, nil}, {61, "a", 5, false, []string{F}}}},
		{"between half and the threshold the flood goes on (hysteresis)", base, []floodStep{
			{0, "a", 10, false, []string{F}}, {50, "a", 6, false, []string{F}}, {62, "a", 0, false, nil}, {100, "", 0, true, nil}}},
		{"below half the threshold it clears", base, []floodStep{
			{0, "a", 10, false, []string{F}}, {61, "a", 4, false, []string{C}}, {70, "a", 0, false, nil}}},
		{"a tick clears a source that went quiet, and does not refresh", base, []floodStep{
			{0, "a", 12, false, []string{F}}, {30, "", 0, true, nil}, {61, "", 0, true, []string{C}}, {200, "", 0, true, nil}}},
		{"it can flood again after clearing", base, []floodStep{
			{0, "a", 12, false, []string{F}}, {61, "", 0, true, []string{C}}, {62, "a", 11, false, []string{F}}}},
		{"sources are independent", base, []floodStep{
			{0, "a", 12, false, []string{F}}, {10, "b", 9, false, nil}, {11, "b", 1, false, []string{F}},
			{61, "", 0, true, []string{C}}, {62, "b", 0, false, []string{F}}, {72, "b", 0, false, []string{C}}}},
		{"the rate is per minute over a longer window", FloodConfig{Window: 5 * time.Minute, Threshold: 10}, []floodStep{
			{0, "a", 25, false, nil}, {60, "a", 24, false, nil}, {120, "a", 1, false, []string{F}}}},
		{"a short window scales up", FloodConfig{Window: 10 * time.Second, Threshold: 30}, []floodStep{
			{0, "a", 4, false, nil}, {5, "a", 1, false, []string{F}}}},
		{"out-of-order samples keep the window right", base, []floodStep{
			{30, "a", 5, false, nil}, {10, "a", 5, false, []string{F}}, {71, "a", 0, false, []string{F}}, {91, "a", 0, false, []string{C}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := NewFlood(tt.cfg)
			for i, s := range tt.steps {
				var got []store.Event
				if s.tick {
					got = f.Tick(sec(s.at))
				} else {
					got = f.Observe(s.source, sec(s.at), s.lost)
				}
				var codes []string
				for _, e := range got {
					codes = append(codes, e.Code)
				}
				if strings.Join(codes, ",") != strings.Join(s.want, ",") {
					t.Fatalf("step %d (%+v): events %v, want %v", i, s, codes, s.want)
				}
			}
		})
	}
}

func TestFloodEventContent(t *testing.T) {
	f := NewFlood(FloodConfig{Window: time.Minute, Threshold: 10})
	evs := f.Observe("web-7", t0, 15)
	if len(evs) != 1 {
		t.Fatalf("events %v", evs)
	}
	e := evs[0]
	if e.Source != "web-7" || e.Severity != store.SeverityWarning || !e.At.Equal(t0) ||
		!strings.Contains(e.Message, "15.0 unanswered requests a minute") || !strings.Contains(e.Message, "threshold 10") {
		t.Fatalf("flood event %+v", e)
	}
	var d struct {
		Rate       float64   `json:"rate_per_minute"`
		Threshold  float64   `json:"threshold"`
		Unanswered int       `json:"unanswered"`
		Since      time.Time `json:"since"`
	}
	if err := json.Unmarshal(e.Data, &d); err != nil || d.Rate != 15 || d.Threshold != 10 || d.Unanswered != 15 || !d.Since.Equal(t0) {
		t.Fatalf("data %s (%v)", e.Data, err)
	}
	if !f.Flooding("web-7") || f.Rate("web-7", sec(30)) != 15 || f.Rate("nobody", t0) != 0 {
		t.Fatal("Flooding/Rate")
	}
	f.Observe("web-7", sec(30), 10) // peak 25
	evs = f.Tick(sec(95))
	if len(evs) != 1 || evs[0].Code != OOBTimeoutFloodCleared || evs[0].Severity != store.SeverityInfo ||
		!strings.Contains(evs[0].Message, "peak 25.0") || !strings.Contains(evs[0].Message, "1m35s") {
		t.Fatalf("cleared %+v", evs)
	}
	if f.Flooding("web-7") {
		t.Fatal("still flooding")
	}
	// Idle sources are forgotten.
	f.Tick(sec(300))
	if len(f.src) != 0 {
		t.Fatalf("%d sources kept", len(f.src))
	}
}

func TestFloodDefaults(t *testing.T) {
	c := NewFlood(FloodConfig{}).Config()
	if c != DefaultFlood {
		t.Fatalf("defaults %+v, want %+v", c, DefaultFlood)
	}
	c = NewFlood(FloodConfig{Window: time.Minute}).Config()
	if c.Refresh != time.Minute {
		t.Fatalf("refresh defaults to the window: %+v", c)
	}
}

// A flood reported again while its rate has eased below the threshold
// (but not below half of it) does not read as under its threshold; a BMC
// that answered nothing is not said to answer after retries.
func TestFloodEventWords(t *testing.T) {
	f := NewFlood(FloodConfig{Window: time.Minute, Threshold: 10, Refresh: 10 * time.Second})
	evs := f.ObserveCheck("bmc-1", t0, Check{Lost: 12, Requests: 3, Retransmits: 9, Timeouts: 3})
	if len(evs) != 1 || !strings.Contains(evs[0].Message, "none of the requests") || strings.Contains(evs[0].Message, "after retries") {
		t.Fatalf("dead BMC: %v", evs)
	}
	f = NewFlood(FloodConfig{Window: time.Minute, Threshold: 10, Refresh: 10 * time.Second})
	f.ObserveCheck("bmc-2", t0, Check{Lost: 12, Requests: 9, Retransmits: 12, Timeouts: 1})
	// 61 s later the first check has left the window: 9 a minute, still a
	// flood (it ends below 5).
	evs = f.ObserveCheck("bmc-2", sec(61), Check{Lost: 9, Requests: 9, Retransmits: 9})
	if len(evs) != 1 || evs[0].Code != OOBTimeoutFlood {
		t.Fatalf("refresh: %v", evs)
	}
	m := evs[0].Message
	if !strings.Contains(m, "9.0 unanswered") || strings.Contains(m, "(threshold 10)") || !strings.Contains(m, "peak 12.0; a flood starts at 10 and ends below 5") || !strings.Contains(m, "after retries") {
		t.Errorf("eased flood: %s", m)
	}
}
