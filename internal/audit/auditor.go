package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lightsout/lightsout/internal/evcode"
	"github.com/lightsout/lightsout/internal/ipmi"
	"github.com/lightsout/lightsout/internal/probe"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
)

// Config of an Auditor. Zero values take the defaults.
type Config struct {
	// Every is the least time between two scheduled audits of one BMC
	// (lightsout server --audit-every, 24h there). 0: no scheduled
	// audits; on demand only.
	Every time.Duration
	// Parallel bounds audits in flight (default 8).
	Parallel int
	// Rate bounds scheduled audits started per second (default 2: a
	// 50,000-BMC fleet in about 7 hours, well within a day).
	Rate float64
	// FirstSpread spreads the first audits of BMCs never audited over
	// this long after they are first seen Connectable (default the
	// smaller of Every and 10 minutes), so a fresh fleet does not burst.
	FirstSpread time.Duration
	// Jitter delays each BMC's audits by up to this fraction of Every
	// more (default 0.1): audits never come sooner than Every.
	Jitter float64
	// Tick is how often the scheduler looks for due BMCs (default the
	// smaller of Every/10 and 1 minute).
	Tick time.Duration
	// OnDemandGap is the least time between two audits of one BMC asked
	// on demand (default 10 minutes; negative: no gap).
	OnDemandGap time.Duration
	// Timeout is the silence limit of each step (probe.DefaultTimeout).
	Timeout time.Duration
	// Options of each audit.
	Options Options
	Logger  *slog.Logger
	// Emit, when set, records an event (the server's events.Recorder:
	// catalogue dedup, live stream, webhooks); otherwise events go to the
	// store with the audit's own dedup windows.
	Emit func(ctx context.Context, e store.Event) error
}

// Defaults of Config.
const (
	DefaultParallel    = 8
	DefaultOnDemandGap = 10 * time.Minute
	maxFirstSpread     = 10 * time.Minute
	maxTick            = time.Minute
)

// Store is what the auditor needs from persistence (*sqlstore.DB has it).
type Store interface {
	Accounts(ctx context.Context, f store.MachineFilter, p store.Page) ([]store.Account, error)
	SaveSecurityReport(ctx context.Context, r store.SecurityReport, c *store.SecurityChange) error
	SecurityReports(ctx context.Context, ids []int64) ([]store.SecurityReport, error)
	SecurityHistory(ctx context.Context, accountID int64, limit int) ([]store.SecurityChange, error)
	AddEvent(ctx context.Context, e *store.Event, dedup time.Duration) error
}

// States tells a channel's declared state (*monitor.Monitor has it).
type States interface {
	Get(accountID int64) (store.ChannelState, bool)
}

// Auditor audits the fleet's BMCs: on a schedule (Run) and on demand
// (AuditNow), only Connectable channels, at most Parallel at once, one BMC
// never twice within Every by the schedule nor within OnDemandGap on
// demand. It stores each report, its changes, and the events.
type Auditor struct {
	cfg    Config
	st     Store
	eng    *ipmi.Engine
	states States
	log    *slog.Logger
	sem    chan struct{}

	mu    sync.Mutex
	accts map[int64]*entry
	rng   *rand.Rand

	// listing is what scan needs of the last store listing (each
	// account's ID and whether it is IPMI: 16 bytes, not the account
	// with its credentials), which the scheduler's ticks reuse while the
	// monitor's roster stands.
	listing struct {
		accts  []listed
		roster uint64
		ticks  int
	}

	runs atomic.Uint64
	// changes moves whenever an account's findings change (Changes).
	changes atomic.Uint64
	wg      sync.WaitGroup
}

// Changes is a number that moves whenever some account's findings (what
// makes its channel Insecure) change; a steady fleet leaves it still.
func (a *Auditor) Changes() uint64 { return a.changes.Load() }

// entry is what the auditor remembers of one account.
type entry struct {
	latest    store.SecurityReport // without Report
	findings  []Finding            // of the last complete audit
	audited   bool                 // a complete audit exists
	attempted time.Time            // last audit started
	ended     time.Time            // last audit ended (in this process)
	firstSeen time.Time            // first seen Connectable by the scheduler (never audited)
	offset    time.Duration        // first audit this long after firstSeen
	jitter    time.Duration        // added to Every for this account
	running   bool
}

// New returns an auditor; call Load before anything else.
func New(st Store, eng *ipmi.Engine, states States, cfg Config) *Auditor {
	if cfg.Parallel <= 0 {
		cfg.Parallel = DefaultParallel
	}
	if cfg.Rate <= 0 {
		cfg.Rate = 2
	}
	if cfg.FirstSpread <= 0 {
		cfg.FirstSpread = min(cfg.Every, maxFirstSpread)
	}
	if cfg.Jitter <= 0 {
		cfg.Jitter = 0.1
	}
	if cfg.Tick <= 0 {
		cfg.Tick = min(cfg.Every/10, maxTick)
	}
	cfg.Tick = max(cfg.Tick, 10*time.Millisecond)
	if cfg.OnDemandGap == 0 {
		cfg.OnDemandGap = DefaultOnDemandGap
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = probe.DefaultTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Auditor{cfg: cfg, st: st, eng: eng, states: states, log: cfg.Logger,
		sem: make(chan struct{}, cfg.Parallel), accts: map[int64]*entry{},
		rng: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))}
}

// Config is the auditor's configuration with defaults filled in.
func (a *Auditor) Config() Config { return a.cfg }

// Runs counts the audits run since the auditor started.
func (a *Auditor) Runs() uint64 { return a.runs.Load() }

// Load reads the latest stored report of every account: what was found,
// and when each BMC was last audited (the schedule survives restarts).
func (a *Auditor) Load(ctx context.Context) error {
	rs, err := a.st.SecurityReports(ctx, nil)
	if err != nil {
		return fmt.Errorf("audit: load reports: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, r := range rs {
		e := a.entry(r.AccountID)
		e.attempted = r.AttemptedAt
		e.audited = !r.AuditedAt.IsZero()
		if len(r.Findings) > 0 {
			if err := json.Unmarshal(r.Findings, &e.findings); err != nil {
				a.log.Error("audit: stored findings", "account", r.AccountID, "err", err)
			}
		}
		r.Report = nil
		e.latest = r
	}
	return nil
}

// entry returns (creating) an account's entry; a.mu held.
// lastActive is when the BMC was last being audited: the on-demand gap
// runs from the end of an audit, whose failed logins may take a while
// (each refusal waits out its reply window), not only from its start.
func (e *entry) lastActive() time.Time {
	if e.ended.After(e.attempted) {
		return e.ended
	}
	return e.attempted
}

func (a *Auditor) entry(id int64) *entry {
	e, ok := a.accts[id]
	if !ok {
		e = &entry{
			offset: time.Duration(a.rng.Int64N(int64(a.cfg.FirstSpread) + 1)),
			jitter: time.Duration(a.rng.Float64() * a.cfg.Jitter * float64(a.cfg.Every)),
		}
		a.accts[id] = e
	}
	return e
}

// Findings are the findings of an account's last complete audit (nil: none,
// or never audited).
func (a *Auditor) Findings(accountID int64) []Finding {
	a.mu.Lock()
	defer a.mu.Unlock()
	if e, ok := a.accts[accountID]; ok && len(e.findings) > 0 {
		return slices.Clone(e.findings)
	}
	return nil
}

// Flagged lists the accounts with findings (their channels are Insecure).
func (a *Auditor) Flagged() []int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []int64
	for id, e := range a.accts {
		if len(e.findings) > 0 {
			out = append(out, id)
		}
	}
	return out
}

// Run audits BMCs as they fall due until ctx ends, then waits for the
// audits in flight. Without Every it only waits for ctx.
func (a *Auditor) Run(ctx context.Context) error {
	defer a.wg.Wait()
	if a.cfg.Every <= 0 {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(a.cfg.Tick)
	defer t.Stop()
	for {
		if err := a.scan(ctx); err != nil && ctx.Err() == nil {
			a.log.Error("audit: scan", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// usable says why a channel may not be audited now ("" if it may).
func (a *Auditor) usable(acct store.Account) string {
	if acct.Protocol != "ipmi" {
		return fmt.Sprintf("the security audit speaks IPMI only; this channel is %s", acct.Protocol)
	}
	cs, ok := a.states.Get(acct.ID)
	if !ok || cs.State == "" {
		return "the channel is not monitored yet"
	}
	if cs.State != state.Connectable {
		s := fmt.Sprintf("the channel is %s", cs.State)
		if cs.Reason != "" {
			s += " (" + string(cs.Reason) + ")"
		}
		if !cs.Since.IsZero() {
			s += " since " + cs.Since.UTC().Format(time.RFC3339)
		}
		return s + ": the audit runs only on Connectable channels, so a refused or silent BMC never sees its login attempts"
	}
	if slices.Contains(cs.Conditions, state.Busy) {
		return "the BMC has no free session slot (Busy): the audit's sessions would be refused"
	}
	return ""
}

// relistEvery bounds how many ticks reuse one listing of the accounts.
const relistEvery = 10

// roster is a States whose Roster moves whenever a channel comes or goes
// (*monitor.Monitor).
type roster interface{ Roster() uint64 }

// accountReader reads one account (*sqlstore.DB).
type accountReader interface {
	Account(ctx context.Context, id int64) (store.Account, error)
}

// listed is an account as the scheduler remembers it between listings.
type listed struct {
	id   int64
	ipmi bool
}

// accounts lists the fleet's accounts for scan: from the store (fresh), or
// — while the monitor's channels are the same ones, for at most
// relistEvery ticks, and when the store can read one account — the IDs
// and protocols of the last listing, whose accounts an audit about to
// start reads afresh. A listing reads and unseals every account (about a
// second of CPU at 100,000), and only the channels the monitor has can be
// audited (usable), so a steady fleet needs one per relistEvery ticks.
func (a *Auditor) accounts(ctx context.Context) (accts []store.Account, fresh bool, err error) {
	r, counted := a.states.(roster)
	_, reads := a.st.(accountReader)
	l := &a.listing
	var gen uint64
	if counted {
		gen = r.Roster() // before the listing: a channel added after it moves it again
		if reads && l.accts != nil && l.roster == gen && l.ticks < relistEvery {
			l.ticks++
			return nil, false, nil
		}
	}
	accts, err = a.st.Accounts(ctx, store.MachineFilter{}, store.Page{})
	if err != nil {
		return nil, false, err
	}
	l.accts, l.roster, l.ticks = nil, 0, 0
	if counted && reads {
		l.accts, l.roster = make([]listed, len(accts)), gen
		for i, acct := range accts {
			l.accts[i] = listed{id: acct.ID, ipmi: acct.Protocol == "ipmi"}
		}
	}
	return accts, true, nil
}

// scan starts the audits that are due, as long as there is room.
func (a *Auditor) scan(ctx context.Context) error {
	accts, fresh, err := a.accounts(ctx)
	if err != nil {
		return err
	}
	now := time.Now()
	n := len(accts)
	if fresh {
		a.prune(accts)
	} else {
		n = len(a.listing.accts)
	}
	budget := max(1, int(a.cfg.Tick.Seconds()*a.cfg.Rate))
	started := 0
	for i := range n {
		var acct store.Account
		if fresh {
			acct = accts[i]
		} else {
			// What usable needs of it until the account is read afresh.
			acct.ID, acct.Protocol = a.listing.accts[i].id, "ipmi"
			if !a.listing.accts[i].ipmi {
				continue
			}
		}
		if a.usable(acct) != "" {
			continue
		}
		a.mu.Lock()
		e := a.entry(acct.ID)
		var due time.Time
		if e.attempted.IsZero() {
			if e.firstSeen.IsZero() {
				e.firstSeen = now
			}
			due = e.firstSeen.Add(e.offset)
		} else {
			due = e.attempted.Add(a.cfg.Every + e.jitter)
		}
		if e.running || now.Before(due) {
			a.mu.Unlock()
			continue
		}
		if started >= budget {
			a.mu.Unlock()
			return nil // the rest stay due for the next tick
		}
		a.mu.Unlock()
		if !fresh {
			// From an earlier listing: the audit logs in with what the
			// store holds now (an edited password, a changed protocol).
			cur, err := a.st.(accountReader).Account(ctx, acct.ID)
			if errors.Is(err, store.ErrNotFound) {
				continue // deleted: the next listing prunes it
			}
			if err != nil {
				return err
			}
			if acct = cur; a.usable(acct) != "" {
				continue
			}
		}
		// Wait for room (Parallel in flight); a tick starts at most
		// budget audits, so a large fleet is worked through at Rate.
		select {
		case a.sem <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		started++
		a.mu.Lock()
		if e.running { // an on-demand audit took it meanwhile
			a.mu.Unlock()
			<-a.sem
			continue
		}
		e.running, e.attempted = true, now
		a.mu.Unlock()
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			defer func() { <-a.sem }()
			a.audit(ctx, acct, false)
		}()
	}
	return nil
}

// prune forgets accounts that no longer exist (deleted machines).
func (a *Auditor) prune(accts []store.Account) {
	exists := make(map[int64]bool, len(accts))
	for _, acct := range accts {
		exists[acct.ID] = true
	}
	a.mu.Lock()
	for id, e := range a.accts {
		if !exists[id] && !e.running {
			delete(a.accts, id)
		}
	}
	a.mu.Unlock()
}

// Result is the outcome of one on-demand audit.
type Result struct {
	AccountID int64  `json:"account_id"`
	Machine   string `json:"machine"`
	Address   string `json:"address"`
	// Skipped says why no audit ran ("" when one did).
	Skipped string `json:"skipped,omitempty"`
	// Report is the fresh audit; Drift what changed since the previous
	// complete one.
	Report *Report `json:"report,omitempty"`
	Drift  *Drift  `json:"drift,omitempty"`
}

// AuditNow audits the accounts' BMCs now, Parallel at a time, and returns
// the results in order. A channel that is not Connectable, a BMC audited
// less than OnDemandGap ago and one being audited are skipped, with the
// reason.
func (a *Auditor) AuditNow(ctx context.Context, accts []store.Account) []Result {
	out := make([]Result, len(accts))
	var wg sync.WaitGroup
	now := time.Now()
	for i, acct := range accts {
		out[i] = Result{AccountID: acct.ID, Machine: acct.Machine, Address: address(acct)}
		if why := a.usable(acct); why != "" {
			out[i].Skipped = why
			continue
		}
		a.mu.Lock()
		e := a.entry(acct.ID)
		switch {
		case e.running:
			out[i].Skipped = "an audit of this BMC is running"
		case a.cfg.OnDemandGap > 0 && !e.attempted.IsZero() && now.Sub(e.lastActive()) < a.cfg.OnDemandGap:
			out[i].Skipped = fmt.Sprintf("audited %s ago; on demand at most once per %s per BMC (each audit tries logins that must fail): see the latest report",
				roundAgo(now.Sub(e.lastActive())), a.cfg.OnDemandGap)
		default:
			e.running, e.attempted = true, now
		}
		a.mu.Unlock()
		if out[i].Skipped != "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case a.sem <- struct{}{}:
			case <-ctx.Done():
				a.finished(acct.ID)
				out[i].Skipped = "cancelled before the audit started"
				return
			}
			defer func() { <-a.sem }()
			r, d := a.audit(ctx, acct, true)
			out[i].Report, out[i].Drift = &r, d
		}()
	}
	wg.Wait()
	return out
}

// roundAgo rounds a duration for a message: seconds, or milliseconds
// below ten seconds.
func roundAgo(d time.Duration) time.Duration {
	if d < 10*time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(time.Second)
}

// finished clears an account's running mark.
func (a *Auditor) finished(id int64) {
	a.mu.Lock()
	if e, ok := a.accts[id]; ok {
		e.running, e.ended = false, time.Now()
	}
	a.mu.Unlock()
}

func address(acct store.Account) string {
	if acct.Port == 0 || acct.Port == 623 {
		return acct.Address
	}
	return fmt.Sprintf("%s:%d", acct.Address, acct.Port)
}

// audit runs one audit and records it. The entry is marked running by the
// caller; the audit clears it. A scheduled audit cut short by shutdown is
// not recorded.
func (a *Auditor) audit(ctx context.Context, acct store.Account, onDemand bool) (Report, *Drift) {
	defer a.finished(acct.ID)
	a.runs.Add(1)
	t := probe.NewTarget(acct.Machine, acct.Endpoint(), a.cfg.Timeout)
	var r Report
	addr, err := probe.Resolve(ctx, acct.Address, acct.Port)
	if err != nil {
		r = Report{Machine: acct.Machine, Address: acct.Address, At: time.Now(), Findings: []Finding{}, Checks: []Check{}}
		r = r.fail("resolve", err)
	} else {
		t.Addr = addr
		r = RunWith(ctx, a.eng, t, a.cfg.Options)
	}
	if ctx.Err() != nil && !onDemand {
		return r, nil
	}
	a.log.Info("security audit", "machine", acct.Machine, "complete", r.Complete, "findings", strings.Join(Keys(r.Findings), ","), "err", r.Error)
	d := a.record(context.WithoutCancel(ctx), acct, r)
	return r, d
}

// record stores a report, its change and its events; it returns the drift
// from the previous complete audit (nil for the first one, or an
// incomplete audit).
func (a *Auditor) record(ctx context.Context, acct store.Account, r Report) *Drift {
	a.mu.Lock()
	e := a.entry(acct.ID)
	prev, hadAudit, latest := slices.Clone(e.findings), e.audited, e.latest
	a.mu.Unlock()

	sr := store.SecurityReport{AccountID: acct.ID, Machine: acct.Machine, AttemptedAt: r.At, Error: r.Error,
		AuditedAt: latest.AuditedAt, Findings: latest.Findings}
	var change *store.SecurityChange
	var drift Drift
	if r.Complete {
		fj, _ := json.Marshal(r.Findings)
		rj, _ := json.Marshal(r)
		sr.AuditedAt, sr.Findings, sr.Report = r.At, fj, rj
		drift = Diff(prev, r.Findings)
		if !hadAudit || !drift.Empty() {
			change = &store.SecurityChange{At: r.At, Findings: fj, Added: mustJSON(drift.Added), Removed: mustJSON(drift.Removed)}
		}
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if !r.Complete {
		// Keep the last complete report; with none, show this one.
		if latest.AuditedAt.IsZero() {
			sr.Report, _ = json.Marshal(r)
		} else if rs, err := a.st.SecurityReports(sctx, []int64{acct.ID}); err == nil && len(rs) == 1 {
			sr.Report = rs[0].Report
		}
	}
	if err := a.st.SaveSecurityReport(sctx, sr, change); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			a.mu.Lock()
			delete(a.accts, acct.ID) // the account was deleted meanwhile
			a.mu.Unlock()
			return nil
		}
		a.log.Error("audit: save report", "machine", acct.Machine, "err", err)
	}
	a.mu.Lock()
	e = a.entry(acct.ID)
	sr.Report = nil
	e.latest = sr
	if r.Complete {
		if !reflect.DeepEqual(e.findings, r.Findings) && (len(e.findings) > 0 || len(r.Findings) > 0) {
			a.changes.Add(1)
		}
		e.findings, e.audited = slices.Clone(r.Findings), true
	}
	a.mu.Unlock()
	if !r.Complete {
		return nil
	}
	a.events(sctx, acct, r, drift, hadAudit)
	if !hadAudit {
		return nil
	}
	return &drift
}

func mustJSON(fs []Finding) json.RawMessage {
	if len(fs) == 0 {
		return nil
	}
	b, _ := json.Marshal(fs)
	return b
}

// events raises one event per code that appears (on the first audit: every
// code found) and, after the first audit, a drift event for any change.
func (a *Auditor) events(ctx context.Context, acct store.Account, r Report, d Drift, hadAudit bool) {
	add := func(e store.Event) {
		e.At, e.Source, e.Count = r.At, acct.Machine, 1
		var err error
		if a.cfg.Emit != nil {
			err = a.cfg.Emit(ctx, e)
		} else {
			k, _ := evcode.Lookup(e.Code)
			err = a.st.AddEvent(ctx, &e, k.Dedup)
		}
		if err != nil {
			a.log.Error("audit: store event", "code", e.Code, "err", err)
		}
	}
	for _, c := range d.NewCodes {
		var msgs, keys []string
		for _, f := range r.Findings {
			if f.Code == c {
				msgs, keys = append(msgs, f.Message), append(keys, f.Key())
			}
		}
		data, _ := json.Marshal(map[string]any{"account_id": acct.ID, "address": address(acct), "findings": keys})
		add(store.Event{Code: c.EventCode(), Severity: c.Severity(), Data: data,
			Message: fmt.Sprintf("%s: %s", acct.Machine, strings.Join(msgs, "; "))})
	}
	if !hadAudit || d.Empty() {
		return
	}
	sev := store.SeverityInfo
	if len(d.Added) > 0 {
		sev = store.SeverityWarning
	}
	data, _ := json.Marshal(map[string]any{"account_id": acct.ID, "address": address(acct),
		"added": Keys(d.Added), "removed": Keys(d.Removed)})
	add(store.Event{Code: EventDrift, Severity: sev, Data: data,
		Message: fmt.Sprintf("%s: BMC security settings changed since the last audit: %s", acct.Machine, d.Summary())})
}

// View is one account's latest audit as the API shows it.
type View struct {
	AccountID int64  `json:"account_id"`
	Machine   string `json:"machine"`
	Address   string `json:"address"`
	// Status: insecure (findings), clean, or not_audited.
	Status      string     `json:"status"`
	AuditedAt   *time.Time `json:"audited_at,omitempty"`
	AttemptedAt *time.Time `json:"attempted_at,omitempty"`
	// NextAt is when the schedule audits it next, at the earliest (absent
	// when scheduled audits are off).
	NextAt   *time.Time `json:"next_at,omitempty"`
	Findings []Finding  `json:"findings"`
	// Error says why the last attempt did not complete.
	Error string `json:"error,omitempty"`
	// Report is the last complete audit in full (checks, capabilities).
	Report json.RawMessage `json:"report,omitempty"`
	// Changes are the latest changes of findings, newest first (when
	// asked for).
	Changes []store.SecurityChange `json:"changes,omitempty"`
}

// View statuses.
const (
	StatusInsecure   = "insecure"
	StatusClean      = "clean"
	StatusNotAudited = "not_audited"
)

// Views returns the latest audit of each account, in order, with up to
// history changes each.
func (a *Auditor) Views(ctx context.Context, accts []store.Account, history int) ([]View, error) {
	ids := make([]int64, len(accts))
	for i, acct := range accts {
		ids[i] = acct.ID
	}
	byID := map[int64]store.SecurityReport{}
	if len(ids) > 0 {
		rs, err := a.st.SecurityReports(ctx, ids)
		if err != nil {
			return nil, err
		}
		for _, r := range rs {
			byID[r.AccountID] = r
		}
	}
	out := make([]View, 0, len(accts))
	for _, acct := range accts {
		v := View{AccountID: acct.ID, Machine: acct.Machine, Address: address(acct), Status: StatusNotAudited, Findings: []Finding{}}
		r, ok := byID[acct.ID]
		if ok {
			v.Error, v.Report = r.Error, r.Report
			if !r.AttemptedAt.IsZero() {
				t := r.AttemptedAt
				v.AttemptedAt = &t
			}
			if !r.AuditedAt.IsZero() {
				t := r.AuditedAt
				v.AuditedAt = &t
				v.Status = StatusClean
				if len(r.Findings) > 0 {
					if err := json.Unmarshal(r.Findings, &v.Findings); err != nil {
						return nil, fmt.Errorf("audit: stored findings of account %d: %w", acct.ID, err)
					}
				}
				if len(v.Findings) > 0 {
					v.Status = StatusInsecure
				}
			}
		}
		if a.cfg.Every > 0 {
			a.mu.Lock()
			if e, ok := a.accts[acct.ID]; ok && !e.attempted.IsZero() {
				t := e.attempted.Add(a.cfg.Every + e.jitter)
				v.NextAt = &t
			}
			a.mu.Unlock()
		}
		if history > 0 {
			cs, err := a.st.SecurityHistory(ctx, acct.ID, history)
			if err != nil {
				return nil, err
			}
			v.Changes = cs
		}
		out = append(out, v)
	}
	return out, nil
}
