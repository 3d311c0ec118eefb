package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lightsout/lightsout/internal/evcode"
	"github.com/lightsout/lightsout/internal/monitor/outcome"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
)

// Store is what the Recorder needs of persistence (*sqlstore.DB has it).
type Store interface {
	AddEvent(ctx context.Context, e *store.Event, dedup time.Duration) error
	PruneEvents(ctx context.Context, before time.Time) (int64, error)
}

// Config of a Recorder. Zero fields take defaults.
type Config struct {
	Store Store
	// Dedup overrides the catalogue's dedup window per code (0 disables
	// dedup for that code).
	Dedup map[string]time.Duration
	// Retention: events whose last occurrence is older are deleted
	// (default 30 days; negative keeps everything). PruneEvery is how
	// often (default 1h; also once at start).
	Retention  time.Duration
	PruneEvery time.Duration
	// Tick is how often the detectors are aged (default 15s).
	Tick      time.Duration
	Flood     FloodConfig
	Correlate CorrelateConfig
	Webhooks  []WebhookConfig
	// Queue bounds events waiting to be stored from Observe and Enqueue
	// (default 4096); beyond it they are dropped and counted.
	Queue int
	// SubscriberBuffer is a subscription's default buffer (default 256).
	SubscriberBuffer int
	Logger           *slog.Logger
	// Now is the clock (default time.Now); tests inject one.
	Now func() time.Time
	// Leader, when set, says whether this instance raises fleet findings
	// (fleet.correlated, source fleet:…): beside other instances only
	// the leader does, from a correlator fed the whole fleet (Remote);
	// the others' findings are not recorded.
	Leader func() bool
}

// DefaultRetention is how long events are kept by default.
const DefaultRetention = 30 * 24 * time.Hour

// Recorder stores events (with per-code dedup windows), prunes old ones,
// runs the detectors over the monitor's checks, and fans events out to
// subscribers and webhooks. Recording never blocks the monitor: Observe
// and Enqueue queue, subscribers and webhooks have bounded buffers and
// lose (and count) what does not fit.
type Recorder struct {
	cfg Config
	log *slog.Logger
	now func() time.Time

	mu sync.Mutex // the detectors, and what is shared with peers
	w  *Watcher
	// sharing: digests are kept for the peers (ShareDigests); sent is
	// the last digest shared per source, pending those not taken yet.
	sharing bool
	sent    map[string]Digest
	pending []Digest
	// remoteFlood: sources other instances check that are in a timeout
	// flood, since when (Remote).
	remoteFlood map[string]time.Time

	queue chan store.Event

	subMu     sync.Mutex
	subs      map[*Subscription]struct{}
	subClosed bool

	hooks []*webhook

	met       *recorderMetrics
	startOnce sync.Once
	stopOnce  sync.Once
	cancel    context.CancelFunc
	wg        sync.WaitGroup
}

// New returns a Recorder; Start runs its background work.
func New(cfg Config) (*Recorder, error) {
	if cfg.Store == nil {
		return nil, errors.New("events: a store is required")
	}
	if cfg.Retention == 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.PruneEvery <= 0 {
		cfg.PruneEvery = time.Hour
	}
	if cfg.Tick <= 0 {
		cfg.Tick = 15 * time.Second
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 4096
	}
	if cfg.SubscriberBuffer <= 0 {
		cfg.SubscriberBuffer = 256
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r := &Recorder{cfg: cfg, log: cfg.Logger, now: cfg.Now, w: NewWatcher(cfg.Flood, cfg.Correlate), remoteFlood: map[string]time.Time{},
		queue: make(chan store.Event, cfg.Queue), subs: map[*Subscription]struct{}{}, met: newRecorderMetrics()}
	for i, wc := range cfg.Webhooks {
		h, err := newWebhook(wc, r.met, r.log)
		if err != nil {
			return nil, fmt.Errorf("webhook %d: %w", i+1, err)
		}
		r.hooks = append(r.hooks, h)
	}
	return r, nil
}

// Config is the effective configuration (defaults filled in).
func (r *Recorder) Config() Config {
	c := r.cfg
	c.Flood, c.Correlate = r.w.Flood.Config(), r.w.Correlate.Config()
	return c
}

// Start runs the queue, the detectors' clock, the pruner and the webhooks
// until ctx ends or Close.
func (r *Recorder) Start(ctx context.Context) {
	r.startOnce.Do(func() {
		ctx, r.cancel = context.WithCancel(ctx)
		r.wg.Add(2)
		go r.drain(ctx)
		go r.background(ctx)
		for _, h := range r.hooks {
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				h.run(ctx)
			}()
		}
	})
}

// Close stops the background work (events still queued are stored first),
// and ends every subscription.
func (r *Recorder) Close() {
	r.stopOnce.Do(func() {
		if r.cancel != nil {
			r.cancel()
		}
		r.wg.Wait()
		r.CloseSubscribers()
	})
}

// drain stores queued events; at the end it stores what is left.
func (r *Recorder) drain(ctx context.Context) {
	defer r.wg.Done()
	for {
		select {
		case e := <-r.queue:
			r.recordQueued(e)
		case <-ctx.Done():
			for {
				select {
				case e := <-r.queue:
					r.recordQueued(e)
				default:
					return
				}
			}
		}
	}
}

func (r *Recorder) recordQueued(e store.Event) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _ = r.Record(ctx, e)
}

func (r *Recorder) background(ctx context.Context) {
	defer r.wg.Done()
	tick := time.NewTicker(r.cfg.Tick)
	defer tick.Stop()
	prune := time.NewTicker(r.cfg.PruneEvery)
	defer prune.Stop()
	r.prune(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			r.Tick()
		case <-prune.C:
			r.prune(ctx)
		}
	}
}

func (r *Recorder) prune(ctx context.Context) {
	if r.cfg.Retention < 0 {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if _, err := r.Prune(pctx); err != nil && ctx.Err() == nil {
		r.log.Error("events: prune", "err", err)
	}
}

// Prune deletes events whose last occurrence is older than the retention.
func (r *Recorder) Prune(ctx context.Context) (int64, error) {
	if r.cfg.Retention < 0 {
		return 0, nil
	}
	n, err := r.cfg.Store.PruneEvents(ctx, r.now().Add(-r.cfg.Retention))
	if err == nil {
		r.met.pruned.Add(float64(n))
		if n > 0 {
			r.log.Info("events: pruned", "events", n, "retention", r.cfg.Retention)
		}
	}
	return n, err
}

// Tick ages the detectors to now and queues what that causes (floods
// ending, findings expiring). Start calls it every Config.Tick.
func (r *Recorder) Tick() {
	r.mu.Lock()
	evs := r.w.Tick(r.now())
	r.mu.Unlock()
	r.enqueue(evs...)
}

// Flooding reports whether the flood detector holds source ("agent:NAME"
// for an agent's host link, a machine's source for its OOB channel) in a
// timeout flood now.
func (r *Recorder) Flooding(source string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.w.Flood.Flooding(source)
}

// Fleet is what the detectors hold now, for incidents: the fleet findings
// that hold, the sources in a timeout flood and when the oldest flood
// began.
func (r *Recorder) Fleet() (findings []ActiveFinding, flooding []string, floodSince time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	findings = r.w.Correlate.Active()
	flooding, floodSince = r.w.Flood.FloodingNow()
	if len(r.remoteFlood) > 0 {
		// Floods of the sources other instances check (Remote).
		for src, since := range r.remoteFlood {
			if !slices.Contains(flooding, src) {
				flooding = append(flooding, src)
			}
			if floodSince.IsZero() || since.Before(floodSince) {
				floodSince = since
			}
		}
		slices.Sort(flooding)
	}
	return findings, flooding, floodSince
}

// followerFinding: e is a fleet finding and another instance leads.
func (r *Recorder) followerFinding(e store.Event) bool {
	return r.cfg.Leader != nil && IsFleetSource(e.Source) && !r.cfg.Leader()
}

// Record stores one occurrence of e and fans it out. Severity defaults to
// the catalogue's, At to now; the code's dedup window applies (the
// returned event then carries the raised Count). It is synchronous: use
// Enqueue where the caller must not wait for the database.
func (r *Recorder) Record(ctx context.Context, e store.Event) (store.Event, error) {
	if r.followerFinding(e) {
		return e, nil
	}
	k, _ := Lookup(e.Code)
	if e.Severity == "" {
		e.Severity = store.Severity(k.Severity)
	}
	if e.At.IsZero() {
		e.At = r.now()
	}
	e.ID, e.Count, e.LastAt = 0, 1, time.Time{}
	dedup := k.Dedup
	if d, ok := r.cfg.Dedup[e.Code]; ok {
		dedup = d
	}
	if err := r.cfg.Store.AddEvent(ctx, &e, dedup); err != nil {
		r.met.failed.Inc()
		r.log.Error("events: store", "code", e.Code, "source", e.Source, "err", err)
		return e, err
	}
	r.met.recorded.WithLabelValues(e.Code, string(e.Severity)).Inc()
	r.publish(e)
	if e.Count == 1 {
		for _, h := range r.hooks {
			h.offer(e)
		}
	}
	r.mu.Lock()
	more := r.w.Recorded(e)
	r.mu.Unlock()
	for _, x := range more {
		if _, err := r.Record(ctx, x); err != nil {
			return e, err
		}
	}
	return e, nil
}

// Enqueue queues events to be recorded by the background worker; it never
// blocks. It reports false when the queue was full (the events that did
// not fit are dropped and counted).
func (r *Recorder) Enqueue(evs ...store.Event) bool { return r.enqueue(evs...) }

func (r *Recorder) enqueue(evs ...store.Event) bool {
	ok := true
	for _, e := range evs {
		if r.followerFinding(e) {
			continue
		}
		select {
		case r.queue <- e:
		default:
			ok = false
			r.met.dropped.WithLabelValues("queue").Inc()
			r.log.Warn("events: queue full, event dropped", "code", e.Code, "source", e.Source)
		}
	}
	return ok
}

// AgentEvent is the agent hub's event sink (agent.HubConfig.OnEvent):
// the event is queued for recording, and link timeouts (their Count) feed
// the flood detector under the agent's source, so a host whose in-band
// path keeps timing out raises oob.timeout_flood like a BMC the manager
// polls. It never blocks.
func (r *Recorder) AgentEvent(e store.Event) {
	var more []store.Event
	if e.Code == evcode.AgentLinkTimeout {
		r.mu.Lock()
		more = r.w.Flood.Observe(e.Source, r.now(), max(e.Count, 1))
		r.mu.Unlock()
	}
	r.enqueue(append([]store.Event{e}, more...)...)
}

// Checked is the monitor's sink (monitor.Sink): every check feeds the
// detectors, without waiting (they run in memory and what they raise is
// queued); a declared transition is recorded before Checked returns
// (within 10 s, even when ctx is cancelled by shutting down), as
// TransitionEvents says.
func (r *Recorder) Checked(ctx context.Context, o outcome.Outcome) {
	s := SampleOf(o)
	r.mu.Lock()
	evs := r.w.Observe(s)
	r.share(s)
	delete(r.remoteFlood, s.Source) // checked here now: its own checks say
	r.mu.Unlock()
	r.enqueue(evs...)
	if o.Transition != nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		for _, e := range TransitionEvents(*o.Transition) {
			_, _ = r.Record(rctx, e)
		}
	}
}

// TransitionEvents are the events of one declared transition of an OOB
// channel: oob.state_changed, the channel's log line (info, or warning
// into a state no problem code covers), and for a change into a failing
// state the problem code (oob.not_responding, oob.auth_refused,
// oob.identity_mismatch) with the catalogue's severity and the state's
// remedy. Pure.
func TransitionEvents(t store.Transition) []store.Event {
	data, _ := json.Marshal(map[string]any{"account_id": t.AccountID, "from": t.From, "to": t.To, "reason": t.Reason})
	msg := fmt.Sprintf("%s: %s → %s", t.Machine, t.From, t.To)
	if t.Reason != "" {
		msg += " (" + string(t.Reason) + ")"
	}
	specific := ""
	switch t.To {
	case state.NotResponding:
		specific = OOBNotResponding
	case state.NotAuthenticated:
		specific = OOBAuthRefused
	case state.Invalid:
		specific = OOBIdentityMismatch
	}
	sev := store.SeverityWarning
	if specific != "" || t.To == state.Connectable {
		sev = store.SeverityInfo
	}
	out := []store.Event{{At: t.At, Code: OOBStateChanged, Severity: sev, Source: t.Machine, Message: msg, Count: 1, LastAt: t.At, Data: data}}
	if specific == "" {
		return out
	}
	k, _ := Lookup(specific)
	msg = fmt.Sprintf("%s: %s", t.Machine, t.To)
	if t.Reason != "" {
		msg += " (" + string(t.Reason) + ")"
	}
	if rem := state.RemedyFor(t.To, t.Reason, t.Machine, t.AccountID); rem != "" {
		msg += ": " + rem
	}
	return append(out, store.Event{At: t.At, Code: specific, Severity: store.Severity(k.Severity), Source: t.Machine, Message: msg, Data: data})
}

// Subscription receives live events (stored or merged) matching its
// filter. Events that do not fit its buffer are dropped and counted: a
// slow reader never slows the recorder.
type Subscription struct {
	C       <-chan store.Event
	c       chan store.Event
	filter  store.EventFilter
	dropped atomic.Uint64
	r       *Recorder
}

// Subscribe starts a subscription (buf 0: Config.SubscriberBuffer). Close
// it when done.
func (r *Recorder) Subscribe(f store.EventFilter, buf int) *Subscription {
	if buf <= 0 {
		buf = r.cfg.SubscriberBuffer
	}
	f.Since = time.Time{}
	s := &Subscription{c: make(chan store.Event, buf), filter: f, r: r}
	s.C = s.c
	r.subMu.Lock()
	defer r.subMu.Unlock()
	if r.subClosed {
		close(s.c)
		return s
	}
	r.subs[s] = struct{}{}
	r.met.subscribers.Inc()
	return s
}

// Dropped is how many events did not fit the buffer so far.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Close ends the subscription; C is closed.
func (s *Subscription) Close() {
	s.r.subMu.Lock()
	defer s.r.subMu.Unlock()
	if _, ok := s.r.subs[s]; ok {
		delete(s.r.subs, s)
		close(s.c)
		s.r.met.subscribers.Dec()
	}
}

// CloseSubscribers ends every subscription (and refuses new ones): for an
// HTTP server's shutdown, so streams end instead of holding it open.
func (r *Recorder) CloseSubscribers() {
	r.subMu.Lock()
	defer r.subMu.Unlock()
	r.subClosed = true
	for s := range r.subs {
		delete(r.subs, s)
		close(s.c)
		r.met.subscribers.Dec()
	}
}

func (r *Recorder) publish(e store.Event) {
	r.subMu.Lock()
	defer r.subMu.Unlock()
	for s := range r.subs {
		if !s.filter.Match(e) {
			continue
		}
		select {
		case s.c <- e:
		default:
			s.dropped.Add(1)
			r.met.dropped.WithLabelValues("subscriber").Inc()
		}
	}
}

// Collectors are the Recorder's Prometheus metrics.
func (r *Recorder) Collectors() []prometheus.Collector {
	cs := []prometheus.Collector{r.met.recorded, r.met.failed, r.met.dropped, r.met.pruned, r.met.subscribers,
		r.met.deliveries, r.met.retries}
	return append(cs, queueCollector{r})
}

type recorderMetrics struct {
	recorded    *prometheus.CounterVec
	failed      prometheus.Counter
	dropped     *prometheus.CounterVec
	pruned      prometheus.Counter
	subscribers prometheus.Gauge
	deliveries  *prometheus.CounterVec
	retries     *prometheus.CounterVec
}

func newRecorderMetrics() *recorderMetrics {
	return &recorderMetrics{
		recorded: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lightsout_events_total",
			Help: "Event occurrences recorded, by code and severity (a deduplicated repeat counts too)."}, []string{"code", "severity"}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{Name: "lightsout_events_store_errors_total",
			Help: "Events the database refused or did not take."}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lightsout_events_dropped_total",
			Help: "Events dropped because a bounded buffer was full: queue (waiting to be stored) or subscriber (a live view too slow)."}, []string{"where"}),
		pruned: prometheus.NewCounter(prometheus.CounterOpts{Name: "lightsout_events_pruned_total",
			Help: "Events deleted by retention."}),
		subscribers: prometheus.NewGauge(prometheus.GaugeOpts{Name: "lightsout_events_subscribers",
			Help: "Live event subscriptions (API streams) open now."}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lightsout_webhook_deliveries_total",
			Help: "Webhook deliveries by webhook (scheme://host) and result: delivered, failed (gave up after retries or refused), dropped (queue full or shutting down)."}, []string{"webhook", "result"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lightsout_webhook_retries_total",
			Help: "Webhook attempts that failed and were retried."}, []string{"webhook"}),
	}
}

var descQueue = prometheus.NewDesc("lightsout_events_queued", "Events waiting: where=store (to be stored) or webhook:NAME (to be delivered).", []string{"where"}, nil)

type queueCollector struct{ r *Recorder }

func (c queueCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descQueue }
func (c queueCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(descQueue, prometheus.GaugeValue, float64(len(c.r.queue)), "store")
	for _, h := range c.r.hooks {
		ch <- prometheus.MustNewConstMetric(descQueue, prometheus.GaugeValue, float64(len(h.queue)), "webhook:"+h.name)
	}
}

// Audited turns the manager's audit entries of power operations into
// events (the manager.Manager.OnAudit hook): power.failed / power.refused,
// and power.done (info) for a change that succeeded, so live views follow
// it; status reads raise nothing. It never blocks.
func (r *Recorder) Audited(a store.AuditEntry) {
	if !strings.HasPrefix(a.Action, "power.") || a.Action == "power.status" {
		return
	}
	code := PowerFailed
	switch a.Result {
	case "ok":
		code = PowerDone
	case "refused":
		code = PowerRefused
	}
	msg := a.Target + ": " + a.Action + " " + a.Result
	if a.Error != "" {
		msg += ": " + a.Error
	}
	if a.Detail != "" {
		msg += " (" + a.Detail + ")"
	}
	data, _ := json.Marshal(map[string]any{"action": a.Action, "actor": a.Actor, "result": a.Result})
	r.enqueue(store.Event{At: a.At, Code: code, Source: a.Target, Message: msg, Data: data})
}
