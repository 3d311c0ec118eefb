package events

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lightsout/lightsout/internal/agent"
	"github.com/lightsout/lightsout/internal/monitor"
	"github.com/lightsout/lightsout/internal/poll"
	"github.com/lightsout/lightsout/internal/probe"
	"github.com/lightsout/lightsout/internal/secret"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
	"github.com/lightsout/lightsout/internal/store/sqlstore"
)

// clock is an injected, settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

func openStore(t *testing.T) *sqlstore.DB {
	t.Helper()
	box, err := secret.NewRandomBox()
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqlstore.Open(context.Background(), sqlstore.Options{DSN: filepath.Join(t.TempDir(), "l.db"), Box: box})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func newRecorder(t *testing.T, cfg Config) (*Recorder, *sqlstore.DB, *clock) {
	t.Helper()
	db := openStore(t)
	clk := &clock{t: t0}
	cfg.Store, cfg.Now = db, clk.Now
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r, db, clk
}

// metric reads one sample of a gathered metric (0 if absent).
func metric(t *testing.T, r *Recorder, name string, labels map[string]string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(r.Collectors()...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

func TestRecordDedup(t *testing.T) {
	r, db, clk := newRecorder(t, Config{Dedup: map[string]time.Duration{OOBDegraded: 0}})
	ctx := context.Background()
	rec := func(code, src string, at time.Time) store.Event {
		t.Helper()
		e, err := r.Record(ctx, store.Event{Code: code, Source: src, At: at, Message: "m " + at.Format(time.TimeOnly)})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	// oob.timeout_flood: 1h by default. Repeats inside raise Count.
	e1 := rec(OOBTimeoutFlood, "web-1", t0)
	e2 := rec(OOBTimeoutFlood, "web-1", t0.Add(30*time.Minute))
	e3 := rec(OOBTimeoutFlood, "web-1", t0.Add(80*time.Minute)) // within 1h of the last occurrence
	if e1.Count != 1 || e2.ID != e1.ID || e2.Count != 2 || e3.ID != e1.ID || e3.Count != 3 ||
		!e3.LastAt.Equal(t0.Add(80*time.Minute)) || !e3.At.Equal(t0) {
		t.Fatalf("dedup: %+v %+v %+v", e1, e2, e3)
	}
	if e1.Severity != store.SeverityWarning {
		t.Fatalf("catalogue severity not applied: %s", e1.Severity)
	}
	// Another source, or past the window: new events.
	if e := rec(OOBTimeoutFlood, "web-2", t0.Add(80*time.Minute)); e.ID == e1.ID || e.Count != 1 {
		t.Fatalf("other source merged: %+v", e)
	}
	if e := rec(OOBTimeoutFlood, "web-1", t0.Add(200*time.Minute)); e.ID == e1.ID {
		t.Fatalf("past the window merged: %+v", e)
	}
	// A Dedup override of 0 stores every occurrence; oob.state_changed
	// has none in the catalogue.
	if a, b := rec(OOBDegraded, "web-1", t0), rec(OOBDegraded, "web-1", t0); a.ID == b.ID {
		t.Fatal("dedup 0 merged")
	}
	if a, b := rec(OOBStateChanged, "web-1", t0), rec(OOBStateChanged, "web-1", t0); a.ID == b.ID {
		t.Fatal("state changes merged")
	}
	// Unknown codes are stored (info), the clock gives At.
	clk.Set(t0.Add(time.Hour))
	if e := rec("x.custom", "web-1", time.Time{}); e.Severity != store.SeverityInfo || !e.At.Equal(t0.Add(time.Hour)) {
		t.Fatalf("unknown code: %+v", e)
	}
	// An emitter's severity wins over the catalogue's.
	if e, _ := r.Record(ctx, store.Event{Code: OOBTimeoutFlood, Source: "db-1", Severity: store.SeverityCritical}); e.Severity != store.SeverityCritical {
		t.Fatalf("severity: %+v", e)
	}
	// Refused by the store: an error, counted.
	if _, err := r.Record(ctx, store.Event{Code: ""}); err == nil {
		t.Fatal("empty code stored")
	}
	if metric(t, r, "lightsout_events_store_errors_total", nil) != 1 {
		t.Fatal("store error not counted")
	}
	if got := metric(t, r, "lightsout_events_total", map[string]string{"code": OOBTimeoutFlood, "severity": "warning"}); got != 5 {
		t.Fatalf("lightsout_events_total{oob.timeout_flood,warning} = %v, want 5", got)
	}
	evs, err := db.ListEvents(ctx, store.EventFilter{Code: OOBTimeoutFlood, Source: "web-1"})
	if err != nil || len(evs) != 2 || evs[1].Count != 3 {
		t.Fatalf("stored: %+v %v", evs, err)
	}
}

func TestRetention(t *testing.T) {
	r, db, clk := newRecorder(t, Config{Retention: 30 * 24 * time.Hour, Dedup: map[string]time.Duration{OOBTimeoutFlood: 48 * time.Hour}})
	ctx := context.Background()
	old, _ := r.Record(ctx, store.Event{Code: OOBStateChanged, Source: "a", At: t0.Add(-31 * 24 * time.Hour)})
	// Deduplicated: its last occurrence is recent, so it is kept.
	r.Record(ctx, store.Event{Code: OOBTimeoutFlood, Source: "b", At: t0.Add(-40 * 24 * time.Hour)})
	for i := 1; i <= 40; i++ {
		r.Record(ctx, store.Event{Code: OOBTimeoutFlood, Source: "b", At: t0.Add(time.Duration(i-40) * 24 * time.Hour)})
	}
	fresh, _ := r.Record(ctx, store.Event{Code: OOBStateChanged, Source: "a", At: t0.Add(-time.Hour)})
	n, err := r.Prune(ctx)
	if err != nil || n != 1 {
		t.Fatalf("Prune = %d, %v; want 1", n, err)
	}
	evs, _ := db.ListEvents(ctx, store.EventFilter{})
	if len(evs) != 2 || evs[1].ID != fresh.ID || evs[0].Code != OOBTimeoutFlood || evs[0].Count != 41 {
		t.Fatalf("kept %+v (old was %d)", evs, old.ID)
	}
	if metric(t, r, "lightsout_events_pruned_total", nil) != 1 {
		t.Fatal("pruned not counted")
	}
	// The background pruner runs at start and every PruneEvery.
	clk.Set(t0.Add(60 * 24 * time.Hour))
	r2, err := New(Config{Store: db, Now: clk.Now, PruneEvery: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	r2.Start(context.Background())
	defer r2.Close()
	poll.Until(t, 5*time.Second, "the background pruner deletes every event", func() bool {
		evs, _ := db.ListEvents(ctx, store.EventFilter{})
		return len(evs) == 0
	})
	// Negative retention keeps everything.
	r3, _ := New(Config{Store: db, Retention: -1})
	r3.Record(ctx, store.Event{Code: "x", At: t0.Add(-3650 * 24 * time.Hour)})
	if n, err := r3.Prune(ctx); n != 0 || err != nil {
		t.Fatalf("Prune with retention < 0: %d %v", n, err)
	}
}

func TestSubscribe(t *testing.T) {
	r, _, _ := newRecorder(t, Config{})
	ctx := context.Background()
	all := r.Subscribe(store.EventFilter{}, 10)
	warn := r.Subscribe(store.EventFilter{MinSeverity: store.SeverityWarning, Code: "oob.*"}, 10)
	small := r.Subscribe(store.EventFilter{}, 1)
	web1 := r.Subscribe(store.EventFilter{Source: "web-1", Since: t0.Add(time.Hour)}, 10) // Since is ignored live
	r.Record(ctx, store.Event{Code: OOBStateChanged, Source: "web-1", At: t0})
	r.Record(ctx, store.Event{Code: OOBTimeoutFlood, Source: "web-2", At: t0})
	r.Record(ctx, store.Event{Code: OOBTimeoutFlood, Source: "web-2", At: t0.Add(time.Second)}) // merged: sent again, Count 2
	r.Record(ctx, store.Event{Code: AuditCipher0Enabled, Source: "web-1", At: t0})
	recv := func(s *Subscription) []string {
		var out []string
		for {
			select {
			case e := <-s.C:
				out = append(out, e.Code+"/"+e.Source+"/"+string(rune('0'+e.Count)))
			default:
				return out
			}
		}
	}
	if got := strings.Join(recv(all), " "); got != "oob.state_changed/web-1/1 oob.timeout_flood/web-2/1 oob.timeout_flood/web-2/2 audit.cipher0_enabled/web-1/1" {
		t.Fatalf("all: %s", got)
	}
	if got := strings.Join(recv(warn), " "); got != "oob.timeout_flood/web-2/1 oob.timeout_flood/web-2/2" {
		t.Fatalf("warning oob.*: %s", got)
	}
	if got := strings.Join(recv(web1), " "); got != "oob.state_changed/web-1/1 audit.cipher0_enabled/web-1/1" {
		t.Fatalf("web-1: %s", got)
	}
	// A full buffer drops (and counts), never blocks.
	if got := recv(small); len(got) != 1 || small.Dropped() != 3 {
		t.Fatalf("small: %v, dropped %d", got, small.Dropped())
	}
	if metric(t, r, "lightsout_events_dropped_total", map[string]string{"where": "subscriber"}) != 3 {
		t.Fatal("drops not counted")
	}
	if metric(t, r, "lightsout_events_subscribers", nil) != 4 {
		t.Fatal("subscriber gauge")
	}
	all.Close()
	all.Close() // idempotent
	if _, ok := <-all.C; ok {
		t.Fatal("closed subscription open")
	}
	r.CloseSubscribers()
	for _, s := range []*Subscription{warn, small, web1, r.Subscribe(store.EventFilter{}, 0)} {
		if _, ok := <-s.C; ok {
			t.Fatal("subscription open after CloseSubscribers")
		}
		s.Close()
	}
	if metric(t, r, "lightsout_events_subscribers", nil) != 0 {
		t.Fatal("subscriber gauge after close")
	}
}

// TestTransitionEvents: events, not the monitor, turn a declared
// transition into codes, severities and messages.
func TestTransitionEvents(t *testing.T) {
	for _, c := range []struct {
		to     state.OOB
		reason state.Reason
		want   string // code:severity of each event
		msg    string // the last event's message
	}{
		{state.Connectable, "", "oob.state_changed:info", "web-1: NotResponding → Connectable"},
		{state.NotAuthenticated, state.ReasonWrongPassword, "oob.state_changed:info oob.auth_refused:critical",
			"web-1: NotAuthenticated (wrong_password): the BMC refused the password"},
		{state.NotResponding, state.ReasonSilent, "oob.state_changed:info oob.not_responding:warning", "web-1: NotResponding (silent)"},
		{state.Invalid, state.ReasonGUIDMismatch, "oob.state_changed:info oob.identity_mismatch:critical", "web-1: Invalid (guid_mismatch)"},
		{state.Unknown, "", "oob.state_changed:warning", "web-1: NotResponding → Unknown"},
	} {
		tr := store.Transition{AccountID: 7, Machine: "web-1", At: t0, From: state.NotResponding, To: c.to, Reason: c.reason}
		evs := TransitionEvents(tr)
		var got []string
		for _, e := range evs {
			got = append(got, e.Code+":"+string(e.Severity))
			var d struct {
				Account int64     `json:"account_id"`
				From    state.OOB `json:"from"`
				To      state.OOB `json:"to"`
			}
			if err := json.Unmarshal(e.Data, &d); err != nil || d.Account != 7 || d.From != state.NotResponding || d.To != c.to ||
				e.Source != "web-1" || !e.At.Equal(t0) {
				t.Fatalf("%s: event %+v (data %s)", c.to, e, e.Data)
			}
		}
		if strings.Join(got, " ") != c.want {
			t.Errorf("%s: events %v, want %s", c.to, got, c.want)
		}
		if last := evs[len(evs)-1].Message; !strings.HasPrefix(last, c.msg) {
			t.Errorf("%s: message %q, want it to start %q", c.to, last, c.msg)
		}
	}
}

// TestCheckedRecordsTransitions: the Recorder as the monitor's sink stores
// a transition's events before Checked returns; a check without one
// stores nothing (its detectors' events are queued).
func TestCheckedRecordsTransitions(t *testing.T) {
	r, db, _ := newRecorder(t, Config{})
	ctx := context.Background()
	check := func(to state.OOB, reason state.Reason, declared bool) {
		o := monitor.Outcome{AccountID: 1, Machine: "web-1", Address: "10.0.0.1", Declared: to,
			Observation: probe.Observation{State: to, Reason: reason, At: t0}}
		if declared {
			o.Transition = &store.Transition{AccountID: 1, Machine: "web-1", At: t0, From: state.Connectable, To: to, Reason: reason}
		}
		r.Checked(ctx, o)
	}
	check(state.NotAuthenticated, state.ReasonWrongPassword, true)
	check(state.NotAuthenticated, state.ReasonWrongPassword, false)
	check(state.Connectable, "", true)
	evs, err := db.ListEvents(ctx, store.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i := len(evs) - 1; i >= 0; i-- {
		got = append(got, evs[i].Code+":"+string(evs[i].Severity))
	}
	if want := "oob.state_changed:info oob.auth_refused:critical oob.state_changed:info"; strings.Join(got, " ") != want {
		t.Fatalf("events\n got %s\nwant %s", strings.Join(got, " "), want)
	}
}

func TestCheckedAndEnqueue(t *testing.T) {
	r, db, clk := newRecorder(t, Config{Flood: FloodConfig{Window: time.Minute, Threshold: 6}, Queue: 2})
	// Without Start the queue fills: the third event is dropped, counted.
	if !r.Enqueue(store.Event{Code: "a"}, store.Event{Code: "b"}) || r.Enqueue(store.Event{Code: "c"}) {
		t.Fatal("queue bound")
	}
	if metric(t, r, "lightsout_events_dropped_total", map[string]string{"where": "queue"}) != 1 ||
		metric(t, r, "lightsout_events_queued", map[string]string{"where": "store"}) != 2 {
		t.Fatal("queue metrics")
	}
	want := func(code string) store.Event {
		t.Helper()
		var evs []store.Event
		poll.Until(t, 5*time.Second, "a "+code+" event", func() bool {
			evs, _ = db.ListEvents(context.Background(), store.EventFilter{Code: code})
			return len(evs) > 0
		})
		return evs[0]
	}
	r.Start(context.Background())
	want("a")
	want("b")
	obs := func(at time.Time, retrans uint32) {
		r.Checked(context.Background(), monitor.Outcome{Machine: "web-9", Address: "10.0.0.9", Declared: state.Connectable,
			Observation: probe.Observation{State: state.Connectable, At: at, Evidence: probe.Evidence{Retransmits: retrans}}})
	}
	obs(t0, 4)
	obs(t0.Add(10*time.Second), 4)
	// A power failure through the manager's audit hook.
	r.Audited(store.AuditEntry{At: t0, Actor: "op", Action: "power.off", Target: "web-9", Result: "failed", Error: "timeout"})
	r.Audited(store.AuditEntry{At: t0, Actor: "op", Action: "power.off", Target: "web-8", Result: "ok"})
	r.Audited(store.AuditEntry{At: t0, Actor: "op", Action: "machine.add", Target: "web-7", Result: "failed"})
	if e := want(OOBTimeoutFlood); e.Source != "web-9" {
		t.Fatalf("flood %+v", e)
	}
	if e := want(PowerFailed); e.Source != "web-9" || !strings.Contains(e.Message, "power.off failed: timeout") {
		t.Fatalf("power %+v", e)
	}
	if e := want(PowerDone); e.Source != "web-8" || e.Severity != store.SeverityInfo {
		t.Fatalf("power.done %+v", e)
	}
	// Ticks age the detectors: the flood clears on the clock.
	clk.Set(t0.Add(2 * time.Minute))
	r.Tick()
	want(OOBTimeoutFloodCleared)
	if evs, _ := db.ListEvents(context.Background(), store.EventFilter{Source: "web-7"}); len(evs) != 0 {
		t.Fatal("non-power audit became an event")
	}
}

// TestAgentEventFloods: an agent's link timeouts are recorded and their
// counts feed the flood detector under the agent's source.
func TestAgentEventFloods(t *testing.T) {
	r, db, clk := newRecorder(t, Config{Flood: FloodConfig{Window: time.Minute, Threshold: 6}})
	r.Start(context.Background())
	src := "agent:web-1"
	r.AgentEvent(store.Event{At: t0, Code: agent.EvLinkTimeout, Severity: store.SeverityWarning, Source: src, Message: "3 timed out", Count: 3})
	if r.Flooding(src) {
		t.Fatal("3 timeouts a minute is no flood at threshold 6")
	}
	clk.Set(t0.Add(10 * time.Second))
	r.AgentEvent(store.Event{At: t0, Code: agent.EvLinkTimeout, Severity: store.SeverityWarning, Source: src, Message: "4 timed out", Count: 4})
	if !r.Flooding(src) || r.Flooding("agent:other") {
		t.Fatal("7 timeouts in a minute must flood web-1 only")
	}
	poll.Until(t, 5*time.Second, "the link timeouts and their flood recorded for "+src, func() bool {
		evs, _ := db.ListEvents(context.Background(), store.EventFilter{Source: src})
		var flood, timeout bool
		for _, e := range evs {
			flood = flood || e.Code == OOBTimeoutFlood
			timeout = timeout || e.Code == agent.EvLinkTimeout
		}
		return flood && timeout
	})
}
