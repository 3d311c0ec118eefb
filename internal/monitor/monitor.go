// Package monitor checks every OOB channel continuously and keeps its
// declared state. It owns the I/O around the pure parts: state.Schedule says
// when to check, state.Channel says what an observation means, probe.Prober
// does the checking, store.Store keeps the result.
//
// Gentleness: one check of a channel at a time (and the engine admits one
// session and one request per BMC for the whole process), jitter on every
// interval, doubling back-off for NotResponding, and a refused account is
// retried at most once per Schedule.AuthRetry unless its credentials were
// edited.
package monitor

import (
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unique"

	"github.com/lightsout/lightsout/internal/guid"
	"github.com/lightsout/lightsout/internal/ipmi"
	"github.com/lightsout/lightsout/internal/probe"
	"github.com/lightsout/lightsout/internal/protocol"
	"github.com/lightsout/lightsout/internal/redfish"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
)

// Config tunes the monitor. Zero fields take the defaults.
type Config struct {
	Schedule state.Schedule // default state.DefaultSchedule
	Damping  state.Damping  // default state.DefaultDamping
	// Timeout is the silence limit of one check (probe.DefaultTimeout).
	Timeout time.Duration
	// Parallel bounds checks in flight (default 4096).
	Parallel int
	// FirstRate bounds first checks of never-checked channels after Load
	// (default 300 a second): each declares a state, a store write, so a
	// fresh import of 50,000 is spread over about three minutes instead
	// of overrunning the store in one interval.
	FirstRate int
	// CatchUpRate bounds the first checks of channels taken over from
	// another instance (LoadWithin; default 1000 a second): they already
	// have a state, so a check writes only what changed, and each BMC
	// gets one check — the bound is this instance's CPU.
	CatchUpRate int
	// FullEvery: one check in FullEvery of a Connectable channel is full
	// (presence ping, auth capabilities, Get Device ID); the others are
	// light (probe.Target.Light). Default 10; 1 makes every check full.
	FullEvery int
	// Suites is the fleet-wide cipher suite allow-list for accounts that
	// name none (nil: ipmi.DefaultSuites, 17 then 3).
	Suites []ipmi.CipherSuite
	// Probers by protocol ("ipmi", "redfish"; probe.NewRegistry); a
	// channel whose protocol has none is never checked.
	Probers probe.Registry
	Logger  *slog.Logger
	// Sink, when set, hears of every check once the monitor has applied
	// it (see Outcome for the order): internal/events' Recorder, which
	// feeds its detectors and turns a declared transition into events.
	Sink Sink
}

// ErrUnknownChannel: no channel with that account ID is monitored.
var ErrUnknownChannel = errors.New("monitor: unknown channel")

// Monitor schedules and runs checks. Create with New, fill with Load, run
// with Run.
type Monitor struct {
	cfg Config
	st  Store
	log *slog.Logger
	met *metrics

	mu    sync.Mutex
	chans map[int64]*channel
	queue queue
	wake  chan struct{}
	sem   chan struct{}
	rng   *rand.Rand
	wg    sync.WaitGroup
	// byState counts the channels by declared state (stateIndex), kept
	// as channels come, go and change, so a /metrics scrape reads it in
	// O(1) instead of walking the fleet under mu.
	byState [len(countedStates)]int
	// changes moves whenever what the store holds of a channel changes
	// (a save) or a channel comes or goes: Changes.
	changes atomic.Uint64
	// roster moves whenever a channel comes or goes: Roster.
	roster atomic.Uint64
	// epoch is the origin of channel due times.
	epoch time.Time
}

// intern is s, one copy per distinct text: most channels of a fleet keep
// the same message ("session opened with cipher suite 17, identity
// confirmed") and power state, and a copy of each per channel was about
// 80 bytes of every channel's memory.
func intern(s string) string { return unique.Make(s).Value() }

// at is t as a due time: nanoseconds since m.epoch, from the monotonic
// clock.
func (m *Monitor) at(t time.Time) int64 { return int64(t.Sub(m.epoch)) }

// wall is the time of a due value.
func (m *Monitor) wall(due int64) time.Time { return m.epoch.Add(time.Duration(due)) }

// channel is the monitor's memory of one OOB channel. It is kept small:
// evidence lives in the store, not here.
type channel struct {
	acct      account
	machineID int64
	machine   string
	addr      netip.AddrPort // parsed acct.Address when it is literal
	enclosure string
	expected  guid.GUID

	known
	// The flags sit together (with editGen): one word, not one each.
	register bool // pin the GUID on the first Connectable check
	dirty    bool // the last save failed; save again on the next check
	rejudge  bool // declare the next observation at once (the expected GUID changed)

	due     int64 // nanoseconds since Monitor.epoch (monotonic; cheap to compare)
	index   int   // in queue; -1 when not queued
	running chan struct{}

	// editing: an edit of the account is being written (BeginEdit): no
	// scheduled check starts until Refresh or EndEdit, and one in flight
	// when it began is dropped (editGen moved on).
	editing bool
	editGen uint32

	// ed: the edits' times, made at the first edit of the credentials
	// (nil on nearly every channel: 48 bytes each otherwise).
	ed *editTimes
}

// editTimes: lastEditRetry is when an edit of the credentials last earned
// an immediate login (at most one per Schedule.AuthRetry: the lockout
// guard counts edits too); editHeld when the next login is, after an edit
// that did not earn one (zero: none held back).
type editTimes struct {
	lastEditRetry, editHeld time.Time
}

// edits reads c's edit times (zero without any).
func (c *channel) edits() editTimes {
	if c.ed == nil {
		return editTimes{}
	}
	return *c.ed
}

// editsW is c's edit times to write, made on first use.
func (c *channel) editsW() *editTimes {
	if c.ed == nil {
		c.ed = new(editTimes)
	}
	return c.ed
}

// account is what the monitor keeps of an OOB account: what a check needs
// (store.Account's other timestamps and machine name stay in the store).
type account struct {
	ID int64
	protocol.Account
	CredentialsChangedAt time.Time
}

// known is what the monitor knows of a channel's state. A check works on a
// copy and publishes it only once the store has it, so readers never see a
// state the store does not hold.
type known struct {
	ch          state.Channel
	power       string
	seenGUID    string
	message     string
	checkedAt   time.Time
	lastRefused time.Time
	// profile is what was learned about the BMC (suite, quirks), as the
	// store holds it: the check starts from it, and a change is saved.
	profile *ipmi.Profile
	// rfAuth is the Redfish authentication learned for an auto account
	// (session, basic; "": none), as the store's profile holds it.
	rfAuth string
	// layout is the layout the registered GUID last matched in, so that a
	// mismatch shows the stranger's GUID the way the operator writes GUIDs.
	layout guid.Layout
	// loss is the datagram loss of the channel's recent checks; lossShown:
	// the stored state gives its rate.
	loss      lossWindow
	sinceFull int32 // light checks since the last full one
	insecure  bool  // the last full check found the BMC insecure
	lossShown bool
}

// Loss over a window of checks (issue 15, "loss is loss"): a BMC that
// answers but loses lossDegraded or more of the datagrams sent to it over
// its last lossChecks checks (lossMinSent at least, so one unlucky check
// does not decide) is Connectable+Degraded with the rate until the loss
// falls below half of lossDegraded; a check that stalls on such a path
// says so.
const (
	lossChecks   = 8
	lossMinSent  = 20
	lossDegraded = 0.10
)

// lossWindow is a ring of the last lossChecks checks' datagram counts.
type lossWindow struct {
	sent, lost [lossChecks]uint16 // a check's datagrams (saturating: a check sends a few dozen at most)
	next, n    uint8
}

// add records one check's counters: sent datagrams (requests and their
// retransmissions) and lost ones (each retransmission follows one, each
// exchange that gave up ends with one), less the excused (probe.Evidence).
func (w lossWindow) add(ev probe.Evidence) lossWindow {
	sent, lost := ev.Requests+ev.Retransmits, ev.Retransmits+ev.Timeouts
	ex := min(ev.Excused, lost, sent)
	sent, lost = sent-ex, lost-ex
	if sent == 0 {
		return w
	}
	w.sent[w.next], w.lost[w.next] = uint16(min(sent, math.MaxUint16)), uint16(min(lost, sent, math.MaxUint16))
	w.next = (w.next + 1) % lossChecks
	w.n = min(w.n+1, lossChecks)
	return w
}

// rate is the loss over the window; nil with fewer than lossMinSent
// datagrams.
func (w lossWindow) rate() *probe.Loss {
	var l probe.Loss
	for i := range w.n {
		l.Sent += uint32(w.sent[i])
		l.Lost += uint32(w.lost[i])
	}
	if l.Sent < lossMinSent {
		return nil
	}
	l.Checks, l.Rate = int(w.n), float64(l.Lost)/float64(l.Sent)
	return &l
}

// New returns a monitor over st.
func New(st Store, cfg Config) *Monitor {
	if cfg.Schedule.Interval <= 0 {
		cfg.Schedule = state.DefaultSchedule
	}
	if cfg.Damping.Consecutive == 0 {
		cfg.Damping = state.DefaultDamping
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = probe.DefaultTimeout
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 4096
	}
	if cfg.FirstRate <= 0 {
		cfg.FirstRate = 300
	}
	if cfg.CatchUpRate <= 0 {
		cfg.CatchUpRate = 1000
	}
	if cfg.FullEvery <= 0 {
		cfg.FullEvery = 10
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Monitor{
		cfg: cfg, st: st, log: cfg.Logger,
		chans: map[int64]*channel{},
		wake:  make(chan struct{}, 1),
		sem:   make(chan struct{}, cfg.Parallel),
		rng:   rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())),
		epoch: time.Now(),
	}
	m.met = newMetrics(m)
	return m
}

// Load reads every account, its machine and its stored state, and schedules
// the first checks spread evenly at random over one interval, so a fresh
// import of a large fleet does not burst. Calling it again picks up
// accounts added since and leaves known channels as they are.
func (m *Monitor) Load(ctx context.Context) error { return m.load(ctx, 0) }

// LoadWithin is Load for channels taken over from another instance (a
// dead one's share, docs/scale-out.md): their last check was at least a
// lease ago, so the first checks of those with a stored state are spread
// over within (zero: a quarter of the interval) — longer when they are
// many, to stay under CatchUpRate a second, and never more than an
// interval. Never-checked channels are spread as by Load.
func (m *Monitor) LoadWithin(ctx context.Context, within time.Duration) error {
	if within <= 0 {
		within = m.cfg.Schedule.Interval / 4
	}
	return m.load(ctx, within)
}

func (m *Monitor) load(ctx context.Context, within time.Duration) error {
	accts, err := m.st.Accounts(ctx, store.MachineFilter{}, store.Page{})
	if err != nil {
		return fmt.Errorf("monitor: load accounts: %w", err)
	}
	states, err := m.st.States(ctx)
	if err != nil {
		return fmt.Errorf("monitor: load states: %w", err)
	}
	byAcct := make(map[int64]store.ChannelState, len(states))
	for _, s := range states {
		byAcct[s.AccountID] = s
	}
	profiles, err := m.st.Profiles(ctx)
	if err != nil {
		return fmt.Errorf("monitor: load profiles: %w", err)
	}
	machines := map[int64]store.Machine{}
	ms, err := m.st.Machines(ctx, store.MachineFilter{}, store.Page{})
	if err != nil {
		return fmt.Errorf("monitor: load machines: %w", err)
	}
	for _, mc := range ms {
		machines[mc.ID] = mc
	}
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	known := m.cfg.Schedule.Interval // spread of new channels with a stored state
	if within > 0 {
		gained := 0
		for _, a := range accts {
			if _, ok := m.chans[a.ID]; !ok {
				gained++
			}
		}
		known = min(known, max(within, time.Duration(float64(gained)/float64(m.cfg.CatchUpRate)*float64(time.Second))))
	}
	for _, a := range accts {
		c := &channel{index: -1}
		m.fill(c, a, machines[a.MachineID])
		if p, ok := profiles[a.ID]; ok && p.Address == profileAddr(a.Address, a.Port) {
			c.profile, c.rfAuth = profileFromStore(p), p.RedfishAuth
		}
		if s, ok := byAcct[a.ID]; ok {
			c.ch = state.Channel{State: s.State, Reason: s.Reason, Conditions: s.Conditions, Since: s.Since, Streak: 1}
			c.power, c.seenGUID, c.message, c.checkedAt = intern(s.Power), s.GUID, intern(s.Message), s.CheckedAt
			if s.State == state.NotAuthenticated {
				c.lastRefused = s.CheckedAt
			}
		}
		if old, known := m.chans[a.ID]; known {
			m.fill(old, a, machines[a.MachineID])
			continue
		}
		spread := known
		if c.ch.State == "" || c.ch.State == state.Unknown {
			// A first check declares a state (a store write): a large
			// import is spread so those stay under FirstRate a second.
			spread = max(m.cfg.Schedule.Interval, time.Duration(float64(len(accts))/float64(m.cfg.FirstRate)*float64(time.Second)))
		}
		c.due = m.at(now) + m.rng.Int64N(int64(spread)+1)
		if c.ch.State == state.NotAuthenticated {
			if ok, next, edit := m.cfg.Schedule.AuthAttempt(c.lastRefused, a.CredentialsChangedAt, time.Time{}, now); !ok {
				c.due = m.at(next)
			} else if edit {
				c.editsW().lastEditRetry = now
			}
		}
		m.chans[a.ID] = c
		m.byState[stateIndex(c.ch.State)]++
		m.changes.Add(1)
		m.roster.Add(1)
		heap.Push(&m.queue, c)
	}
	m.poke()
	return nil
}

func (m *Monitor) fill(c *channel, a store.Account, mc store.Machine) {
	refresh := c.acct.ID != 0
	c.acct = account{ID: a.ID, Account: a.Endpoint(), CredentialsChangedAt: a.CredentialsChangedAt}
	// The texts a fleet repeats (protocol, user name, privilege) are kept
	// once, not once per channel as the listing reads them.
	e := &c.acct.Account
	e.Protocol, e.User, e.Privilege, e.RedfishAuth = intern(e.Protocol), intern(e.User), intern(e.Privilege), intern(e.RedfishAuth)
	// A literal address is parsed once; a host name resolves per check.
	c.addr = netip.AddrPort{}
	if ip, err := netip.ParseAddr(a.Address); err == nil && a.Port > 0 && a.Port < 65536 {
		c.addr = netip.AddrPortFrom(ip.Unmap(), uint16(a.Port))
	}
	c.machineID = mc.ID
	c.machine = mc.Name
	c.enclosure = intern(mc.Enclosure)
	if g, err := guid.Parse(mc.GUID); err != nil || g != c.expected {
		c.expected, c.layout = g, ""
		// A re-pinned GUID (adopt, register) changes what the last verdict
		// was about: the next one is declared at once, not confirmed.
		c.rejudge = refresh
	}
	c.register = mc.Registering && mc.GUID == ""
}

// Refresh re-reads one account (after an edit) and its machine. When the
// credentials changed, the channel is checked at once. A deleted account
// stops being monitored.
func (m *Monitor) Refresh(ctx context.Context, accountID int64) error {
	a, err := m.st.Account(ctx, accountID)
	if errors.Is(err, store.ErrNotFound) {
		m.Remove(accountID)
		return nil
	}
	if err != nil {
		return err
	}
	mc, err := m.st.MachineByID(ctx, a.MachineID)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.chans[accountID]
	if !ok {
		c = &channel{index: -1}
		m.chans[accountID] = c
		m.byState[stateIndex(c.ch.State)]++
		m.changes.Add(1)
		m.roster.Add(1)
		c.due = m.at(time.Now())
	}
	credsChanged := ok && (c.acct.User != a.User || !slices.Equal(c.acct.Password, a.Password) ||
		a.CredentialsChangedAt.After(c.acct.CredentialsChangedAt))
	addrChanged := ok && (c.acct.Address != a.Address || c.acct.Port != a.Port || c.acct.Protocol != a.Protocol)
	m.fill(c, a, mc)
	c.editing = false
	if addrChanged {
		c.profile, c.rfAuth = nil, "" // learned about the BMC at the old address
	}
	now := time.Now()
	switch {
	case addrChanged:
		// Another BMC: checked at once.
		c.due = m.at(now)
		if c.ed != nil {
			c.ed.editHeld = time.Time{}
		}
	case credsChanged:
		// The lockout guard counts edits: at most one immediate login
		// per AuthRetry, however many edits change the credentials.
		if ok, next := m.cfg.Schedule.EditRetry(c.edits().lastEditRetry, now); ok {
			e := c.editsW()
			c.due, e.lastEditRetry, e.editHeld = m.at(now), now, time.Time{}
		} else {
			c.editsW().editHeld = next
			if m.at(next) < c.due {
				c.due = m.at(next)
			}
		}
	}
	m.reschedule(c)
	return nil
}

// mayLogin is the lockout guard for one of the monitor's own checks of c
// (m.mu held): after a refusal (lastRefused, cleared by a successful
// login) no login before AuthRetry, except one per AuthRetry after an
// edit of the credentials, which it records.
func (m *Monitor) mayLogin(c *channel, now time.Time) (bool, time.Time) {
	if c.lastRefused.IsZero() {
		return true, now
	}
	ok, next, edit := m.cfg.Schedule.AuthAttempt(c.lastRefused, c.acct.CredentialsChangedAt, c.edits().lastEditRetry, now)
	if ok && edit {
		c.editsW().lastEditRetry = now
	}
	return ok, next
}

// AuthGuard applies the lockout guard to a refused account for another
// prober (the diagnosis), given the stored credentials edit time: may it be
// tried at now, else when. It does not spend the edit's immediate
// attempt (the diagnosis is asked for, and its re-check goes through the
// monitor). An account that is not refused may be tried.
func (m *Monitor) AuthGuard(accountID int64, credentialsChanged, now time.Time) (bool, time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.chans[accountID]
	if !ok || c.lastRefused.IsZero() {
		return true, now
	}
	// The store's edit time may be newer than the monitor's copy.
	if c.acct.CredentialsChangedAt.After(credentialsChanged) {
		credentialsChanged = c.acct.CredentialsChangedAt
	}
	ok, next, _ := m.cfg.Schedule.AuthAttempt(c.lastRefused, credentialsChanged, c.edits().lastEditRetry, now)
	return ok, next
}

// EditHeld returns when the next login of an account is, when an edit of
// its credentials did not earn an immediate one (the lockout guard allows
// one per Schedule.AuthRetry); ok is false when nothing is held back.
func (m *Monitor) EditHeld(accountID int64) (next time.Time, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, found := m.chans[accountID]
	if !found {
		return time.Time{}, false
	}
	held := c.edits().editHeld
	if held.IsZero() || !time.Now().Before(held) {
		return time.Time{}, false
	}
	if due := m.wall(c.due); due.After(held) {
		return due, true
	}
	return held, true
}

// BeginEdit fences a channel before its account is written to the store:
// a check started before would observe the old user, password or address
// and could be recorded as if made after the edit (a success with the old
// user name stamped later than the rename). Until Refresh (or EndEdit, if
// the write failed) no scheduled check starts, and a check in flight is
// dropped when it ends.
func (m *Monitor) BeginEdit(accountID int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.chans[accountID]; ok {
		c.editing = true
		c.editGen++
	}
}

// EndEdit lifts BeginEdit's fence without re-reading the account (the
// write failed).
func (m *Monitor) EndEdit(accountID int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.chans[accountID]; ok && c.editing {
		c.editing = false
		m.reschedule(c)
	}
}

// RefreshMachine re-reads every account of a machine (after its GUID,
// group or registration changed).
func (m *Monitor) RefreshMachine(ctx context.Context, machineID int64) error {
	accts, err := m.st.AccountsOf(ctx, machineID)
	if err != nil {
		return err
	}
	for _, a := range accts {
		if err := m.Refresh(ctx, a.ID); err != nil {
			return err
		}
	}
	return nil
}

// Remove stops monitoring a channel.
func (m *Monitor) Remove(accountID int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.chans[accountID]; ok {
		if c.index >= 0 {
			heap.Remove(&m.queue, c.index)
		}
		delete(m.chans, accountID)
		m.byState[stateIndex(c.ch.State)]--
		m.changes.Add(1)
		m.roster.Add(1)
	}
}

// reschedule fixes c's place in the queue; m.mu held.
func (m *Monitor) reschedule(c *channel) {
	if c.running != nil {
		return // requeued when the check ends
	}
	if c.index >= 0 {
		heap.Fix(&m.queue, c.index)
	} else {
		heap.Push(&m.queue, c)
	}
	m.poke()
}

func (m *Monitor) poke() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// Run checks channels as they fall due until ctx ends, then waits for the
// checks in flight.
func (m *Monitor) Run(ctx context.Context) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	defer m.wg.Wait()
	for {
		m.mu.Lock()
		now := time.Now()
		var next time.Duration = time.Hour
		for m.queue.Len() > 0 {
			c := m.queue[0]
			if wait := time.Duration(c.due - m.at(now)); wait > 0 {
				next = wait
				break
			}
			heap.Pop(&m.queue)
			m.met.lag.Observe(time.Duration(m.at(now) - c.due).Seconds())
			m.mu.Unlock()
			select {
			case m.sem <- struct{}{}:
			case <-ctx.Done():
				return nil
			}
			m.mu.Lock()
			if m.chans[c.acct.ID] != c || c.running != nil || c.index >= 0 {
				<-m.sem // removed, or a check-now took it meanwhile
				continue
			}
			if c.editing { // its account is being written: after Refresh
				c.due = m.at(time.Now().Add(time.Second))
				m.reschedule(c)
				<-m.sem
				continue
			}
			if ok, next := m.mayLogin(c, time.Now()); !ok {
				c.due = m.at(next)
				m.reschedule(c)
				<-m.sem
				continue
			}
			done := make(chan struct{})
			c.running = done
			m.wg.Add(1)
			go func() {
				defer m.wg.Done()
				defer func() { <-m.sem }()
				m.check(ctx, c, done, false)
			}()
			now = time.Now()
		}
		m.mu.Unlock()
		timer.Reset(next)
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case <-m.wake:
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		}
	}
}

// Result is the outcome of one "check now".
type Result struct {
	AccountID int64              `json:"account_id"`
	Machine   string             `json:"machine"`
	State     store.ChannelState `json:"state"`
	// Skipped says why no check was made (the lockout guard), or "".
	Skipped string `json:"skipped,omitempty"`
}

// CheckNow checks the channels at once (each waits for a check already in
// flight on it to end first) and returns their fresh states, in order.
// A refused account whose credentials have not changed is not retried
// before Schedule.AuthRetry has passed: its Result says so.
func (m *Monitor) CheckNow(ctx context.Context, accountIDs []int64) ([]Result, error) {
	res := make([]Result, len(accountIDs))
	var wg sync.WaitGroup
	var firstErr error
	var emu sync.Mutex
	for i, id := range accountIDs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := m.checkOne(ctx, id)
			if err != nil {
				emu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				emu.Unlock()
			}
			res[i] = r
		}()
	}
	wg.Wait()
	return res, firstErr
}

func (m *Monitor) checkOne(ctx context.Context, id int64) (Result, error) {
	for attempt := 0; attempt < 100; attempt++ {
		m.mu.Lock()
		c, ok := m.chans[id]
		if !ok {
			m.mu.Unlock()
			return Result{AccountID: id}, fmt.Errorf("%w: account %d", ErrUnknownChannel, id)
		}
		if wait := c.running; wait != nil {
			m.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return Result{AccountID: id}, ctx.Err()
			}
		}
		if !c.lastRefused.IsZero() {
			now := time.Now()
			ok, next := m.mayLogin(c, now)
			if !ok {
				why := "its credentials have not changed since"
				if c.acct.CredentialsChangedAt.After(c.lastRefused) {
					why = fmt.Sprintf("an edit of its credentials already earned an immediate attempt at %s", c.edits().lastEditRetry.Format(time.RFC3339))
				}
				r := Result{AccountID: id, Machine: c.machine, State: m.current(c),
					Skipped: fmt.Sprintf("not retried: the BMC refused this account at %s and %s; "+
						"to protect the account from lockout the next attempt is at %s (an edit of the credentials retries at once, once per %s)",
						c.lastRefused.Format(time.RFC3339), why, next.Format(time.RFC3339), m.cfg.Schedule.AuthRetry)}
				m.mu.Unlock()
				return r, nil
			}
		}
		if c.index >= 0 {
			heap.Remove(&m.queue, c.index)
		}
		done := make(chan struct{})
		c.running = done
		m.mu.Unlock()
		select {
		case m.sem <- struct{}{}:
		case <-ctx.Done():
			m.mu.Lock()
			c.running = nil
			m.reschedule(c)
			m.mu.Unlock()
			close(done)
			return Result{AccountID: id}, ctx.Err()
		}
		m.check(ctx, c, done, true)
		<-m.sem
		m.mu.Lock()
		r := Result{AccountID: id, Machine: c.machine, State: m.current(c)}
		m.mu.Unlock()
		return r, nil
	}
	return Result{AccountID: id}, fmt.Errorf("monitor: account %d stayed busy", id)
}

// current is c's state as the store holds it (evidence excluded); m.mu held.
func (m *Monitor) current(c *channel) store.ChannelState { return stateOf(c.acct.ID, c.known) }

func stateOf(id int64, k known) store.ChannelState {
	st := k.ch.State
	if st == "" {
		st = state.Unknown
	}
	return store.ChannelState{
		AccountID: id, State: st, Reason: k.ch.Reason, Conditions: k.ch.Conditions,
		Message: k.message, Since: k.ch.Since, CheckedAt: k.checkedAt, GUID: k.seenGUID, Power: k.power,
	}
}

// Snapshot returns every channel's current state (without evidence).
func (m *Monitor) Snapshot() map[int64]store.ChannelState {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[int64]store.ChannelState, len(m.chans))
	for id, c := range m.chans {
		out[id] = m.current(c)
	}
	return out
}

// IDs lists the account IDs of the channels the monitor checks, without
// copying their states (a heartbeat's reconcile at 100,000 channels).
func (m *Monitor) IDs() []int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]int64, 0, len(m.chans))
	for id := range m.chans {
		out = append(out, id)
	}
	return out
}

// Broken returns the current states of the channels an incident can be
// made of: NotResponding, NotAuthenticated and Invalid, and Connectable
// with a condition. A healthy fleet returns nothing, whatever its size.
func (m *Monitor) Broken() []store.ChannelState {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.ChannelState
	for id, c := range m.chans {
		switch st := c.known.ch.State; {
		case st == state.NotResponding || st == state.NotAuthenticated || st == state.Invalid,
			st == state.Connectable && len(c.known.ch.Conditions) > 0:
			out = append(out, stateOf(id, c.known))
		}
	}
	return out
}

// Get returns one channel's current state.
func (m *Monitor) Get(accountID int64) (store.ChannelState, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.chans[accountID]
	if !ok {
		return store.ChannelState{}, false
	}
	return m.current(c), true
}

// NotePower records a power state read outside the monitor (the manager's
// power operations read it back), so the channel's power is current before
// the next check; the next check saves it. Unknown channels and "" are
// ignored.
func (m *Monitor) NotePower(accountID int64, p string) {
	if p == "" {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.chans[accountID]; ok && c.known.power != p {
		c.known.power = p
		c.dirty = true
	}
}

// check runs one probe of c and records the outcome. c.running is done.
func (m *Monitor) check(ctx context.Context, c *channel, done chan struct{}, now bool) {
	defer close(done)
	m.mu.Lock()
	a := c.acct
	gen := c.editGen
	t := probe.NewTarget(c.machine, a.Account, m.cfg.Timeout)
	t.Expected, t.ExpectedLayout, t.Addr, t.Profile = c.expected, c.layout, c.addr, c.profile
	t.RedfishLearned = redfish.Auth(c.rfAuth)
	if t.Suites == nil { // the account names none: the fleet's
		t.Suites = m.cfg.Suites
	}
	// A BMC that answered last time gets the light re-check; every
	// FullEvery-th check (and every check now) is full. The suite it took
	// is proposed first from the learned profile (t.Profile and the
	// engine's), not pinned: a BMC that dropped it is negotiated again
	// within its allow-list instead of being declared no_cipher_suite.
	if !now && c.ch.Observing() == state.Connectable && int(c.sinceFull)+1 < m.cfg.FullEvery {
		t.Light = true
	}
	m.mu.Unlock()

	obs := m.observe(ctx, t, a)
	if ctx.Err() != nil && !now {
		// Shutting down: a cancelled check says nothing about the BMC.
		m.mu.Lock()
		c.running = nil
		m.mu.Unlock()
		return
	}
	m.met.checks.WithLabelValues(string(obs.State)).Inc()
	m.met.latency.Observe(obs.ElapsedMS / 1000)
	// An account edited while the check was in flight: the observation
	// was made with the old user, password or address and says nothing
	// about the account as it is now. Drop it and check again at once.
	m.mu.Lock()
	stale := c.editGen != gen || !c.acct.CredentialsChangedAt.Equal(a.CredentialsChangedAt) || c.acct.User != a.User ||
		c.acct.Address != a.Address || c.acct.Port != a.Port
	if stale {
		c.running = nil
		if obs.State == state.NotAuthenticated {
			// The BMC refused a login all the same, and may count it:
			// the lockout guard does (mayLogin).
			c.lastRefused = obs.At
		}
		if m.chans[c.acct.ID] == c {
			c.due = m.at(time.Now())
			m.reschedule(c)
		}
	}
	m.mu.Unlock()
	if stale {
		return
	}
	m.record(ctx, c, obs, t.Light)
}

// observe resolves the address and runs the protocol's prober.
func (m *Monitor) observe(ctx context.Context, t probe.Target, a account) probe.Observation {
	p := m.cfg.Probers.For(a.Protocol)
	if p == nil {
		return probe.Observation{Name: t.Name, Host: a.Address, Protocol: a.Protocol, State: state.Unknown,
			Message: fmt.Sprintf("protocol %q is not supported by this manager", a.Protocol), At: time.Now()}
	}
	if t.Addr.IsValid() {
		return p(ctx, t)
	}
	addr, err := probe.Resolve(ctx, a.Address, a.Port)
	if err != nil {
		return probe.Observation{Name: t.Name, Host: a.Address, Protocol: a.Protocol, State: state.NotResponding,
			Reason: state.ReasonUnreachable, Message: "address does not resolve: " + err.Error(), At: time.Now(),
			Evidence: probe.Evidence{Error: err.Error()}}
	}
	t.Addr = netip.AddrPortFrom(addr.Addr(), addr.Port())
	return p(ctx, t)
}

// record feeds obs into c's state machine (step) and applies the Outcome.
func (m *Monitor) record(ctx context.Context, c *channel, obs probe.Observation, light bool) {
	m.mu.Lock()
	in := stepInput{known: c.known, obs: obs, light: light, damping: m.cfg.Damping, register: c.register, dirty: c.dirty,
		accountID: c.acct.ID, protocol: c.acct.Protocol, address: c.acct.Address, port: c.acct.Port,
		machineID: c.machineID, machine: c.machine, enclosure: c.enclosure}
	if c.rejudge {
		in.damping, c.rejudge = state.Damping{Consecutive: 1}, false
	}
	m.mu.Unlock()
	k, out := step(in)
	m.apply(ctx, c, k, out)
}

// stepInput is what step needs to know of a channel and its check.
type stepInput struct {
	known
	obs      probe.Observation
	light    bool // the check was light (no auth capabilities read)
	damping  state.Damping
	register bool // pin the GUID on the first Connectable check
	dirty    bool // the last save failed: save again

	accountID, machineID int64
	protocol             string
	address              string
	port                 int
	machine, enclosure   string
}

// step is the channel's pure core: what one observation does to what the
// monitor knows of the channel. It returns the next known state and the
// Outcome for apply; no I/O, no clock, no lock.
func step(in stepInput) (known, Outcome) {
	k, obs := in.known, in.obs
	out := Outcome{AccountID: in.accountID, MachineID: in.machineID, Machine: in.machine, Enclosure: in.enclosure, Address: in.address}
	if in.register && obs.State == state.Connectable && obs.GUID != "" {
		out.Pin = obs.GUID
	}
	// What the check learned about the BMC is kept (a write only when it
	// changed: the steady state writes nothing).
	rfAuth := k.rfAuth
	if rf := obs.Evidence.Redfish; rf != nil && in.protocol == "redfish" {
		rfAuth = rf.Learned
	}
	if p := obs.Evidence.Profile; (p != nil && (k.profile == nil || *k.profile != *p)) || rfAuth != k.rfAuth {
		sp := store.Profile{AccountID: in.accountID, Address: profileAddr(in.address, in.port), RedfishAuth: rfAuth, LearnedAt: obs.At}
		if p == nil {
			p = k.profile
		}
		if p != nil {
			sp.Quirks = p.Quirks.Names()
			if p.Known {
				sp.Suite = int(p.Suite)
			}
		}
		out.Profile = &sp
	}
	if in.light {
		k.sinceFull++
		// A light check does not read the auth capabilities: Insecure
		// stands as the last full check found it.
		if k.insecure && obs.State == state.Connectable && !slices.Contains(obs.Conditions, state.Insecure) {
			obs.Conditions = append(obs.Conditions, state.Insecure)
		}
	} else {
		k.sinceFull = 0
		k.insecure = slices.Contains(obs.Conditions, state.Insecure)
	}
	// Loss over the recent checks, from checks the BMC answered: a
	// Connectable one, or one that stalled after it answered (silence
	// from the first request is a BMC or path that is down, not lossy).
	if obs.State == state.Connectable || (obs.State == state.NotResponding && obs.Reason == state.ReasonStalled) {
		k.loss = k.loss.add(obs.Evidence)
		// Hysteresis: once shown, the rate goes at half the threshold.
		limit := lossDegraded
		if k.lossShown {
			limit /= 2
		}
		if l := k.loss.rate(); l != nil && l.Rate >= limit {
			obs.Evidence.Loss = l
			if obs.State == state.Connectable {
				if !slices.Contains(obs.Conditions, state.Degraded) {
					obs.Conditions = append(slices.Clip(obs.Conditions), state.Degraded)
				}
				obs.Message += "; Degraded: " + l.String()
			} else {
				obs.Message += "; the path lost " + l.String() + ": packet loss, not necessarily a hung BMC (lightsout diag tells them apart)"
			}
		}
	}
	prev := k.ch
	next, change, tr := k.ch.Observe(state.Observed{State: obs.State, Reason: obs.Reason, Conditions: obs.Conditions, At: obs.At}, in.damping)
	k.ch = next
	k.checkedAt = obs.At
	switch obs.State {
	case state.NotAuthenticated:
		k.lastRefused = obs.At
	case state.Connectable:
		k.lastRefused = time.Time{} // the credentials work
	}
	// A check that could not read the power (it failed) changes nothing:
	// only a power state read and different is a change to store.
	// So is the loss rate's coming and going (not every change of it).
	lossShown := obs.Evidence.Loss != nil
	detailChanged := (obs.Evidence.Power != "" && obs.Evidence.Power != k.power) || (obs.GUID != "" && obs.GUID != k.seenGUID) ||
		lossShown != k.lossShown
	if lossShown != k.lossShown {
		k.message, k.lossShown = "", lossShown
	}
	if obs.Evidence.Power != "" {
		k.power = obs.Evidence.Power
	}
	if m := obs.Evidence.GUIDMatch; m != nil && *m {
		k.layout = obs.Evidence.GUIDLayout
	}
	if obs.GUID != "" {
		k.seenGUID = obs.GUID
	}
	if change != state.NoChange || k.message == "" {
		k.message = intern(obs.Message)
	}
	out.Observation, out.Change, out.Declared = obs, change, k.ch.State
	if change != state.NoChange || detailChanged || in.dirty {
		cs := stateOf(in.accountID, k)
		ev, _ := json.Marshal(obs.Evidence)
		cs.Evidence = ev
		out.State = &cs
		if change == state.Declared {
			out.Transition = &store.Transition{AccountID: in.accountID, Machine: in.machine, At: tr.At, From: prev.State, To: tr.To,
				Reason: tr.Reason, Conditions: tr.Conditions, Message: obs.Message, Evidence: ev}
			if out.Transition.From == "" {
				out.Transition.From = state.Unknown
			}
		}
	}
	return k, out
}

// apply carries out one Outcome of c in Outcome's order: pin, save,
// publish. k is the channel's next known state from step.
func (m *Monitor) apply(ctx context.Context, c *channel, k known, out Outcome) {
	bounded := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	}
	// 1. Pin.
	if out.Pin != "" && m.pin(ctx, out.MachineID, out.Machine, out.Pin) {
		k.layout = "" // the GUID is pinned now: no layout matched yet
	}
	// 2. Save.
	if out.Profile != nil {
		sctx, cancel := bounded()
		if err := m.st.SaveProfile(sctx, *out.Profile); err != nil && !errors.Is(err, store.ErrNotFound) {
			m.log.Error("save BMC profile", "machine", out.Machine, "account", out.AccountID, "err", err)
		} else {
			if lp := out.Observation.Evidence.Profile; lp != nil {
				cp := *lp
				k.profile = &cp
			}
			k.rfAuth = out.Profile.RedfishAuth
		}
		cancel()
	}
	var err error
	if out.State != nil {
		sctx, cancel := bounded()
		err = m.st.SaveState(sctx, *out.State, out.Transition)
		cancel()
		if err != nil {
			m.log.Error("save channel state", "machine", out.Machine, "account", out.AccountID, "err", err)
			out.Transition = nil // not stored: nobody hears of it
		}
	}
	// 3. Publish.
	m.mu.Lock()
	if m.chans[out.AccountID] == c {
		m.byState[stateIndex(c.ch.State)]--
		m.byState[stateIndex(k.ch.State)]++
	}
	c.known = k
	if out.State != nil {
		m.changes.Add(1)
	}
	c.dirty = err != nil
	c.running = nil
	if m.chans[out.AccountID] == c {
		c.due = m.at(time.Now()) + int64(m.cfg.Schedule.Next(c.ch, m.rng.Float64()))
		m.reschedule(c)
	}
	m.mu.Unlock()
	if t := out.Transition; t != nil {
		m.log.Info("state changed", "machine", out.Machine, "from", t.From, "to", t.To, "reason", t.Reason)
	}
	if m.cfg.Sink != nil {
		m.cfg.Sink.Checked(ctx, out)
	}
}

// pin records the GUID of a registering machine's first Connectable check;
// it reports whether it did.
func (m *Monitor) pin(ctx context.Context, machineID int64, machine, g string) bool {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	mc, err := m.st.MachineByID(sctx, machineID)
	if err != nil || mc.GUID != "" || !mc.Registering {
		return false
	}
	mc.GUID, mc.Registering = g, false
	err = m.st.UpdateMachine(sctx, &mc)
	res, msg := "ok", ""
	if err != nil {
		res, msg = "failed", err.Error()
	}
	_ = m.st.Audit(sctx, &store.AuditEntry{At: time.Now(), Actor: "monitor", Action: "machine.register",
		Target: machine, Detail: "pinned System GUID " + g + " from the first Connectable check", Result: res, Error: msg})
	if err != nil {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range m.chans {
		if c.machineID == machineID {
			c.register = false
			c.expected, _ = guid.Parse(g)
			c.layout = ""
		}
	}
	return true
}

// queue is a min-heap of channels by due time.
type queue []*channel

func (q queue) Len() int           { return len(q) }
func (q queue) Less(i, j int) bool { return q[i].due < q[j].due }
func (q queue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}
func (q *queue) Push(x any) {
	c := x.(*channel)
	c.index = len(*q)
	*q = append(*q, c)
}
func (q *queue) Pop() any {
	old := *q
	c := old[len(old)-1]
	old[len(old)-1] = nil
	c.index = -1
	*q = old[:len(old)-1]
	return c
}

// profileAddr is the address a learned profile belongs to.
func profileAddr(address string, port int) string {
	return net.JoinHostPort(address, strconv.Itoa(port))
}

// profileFromStore reads a stored profile for the engine.
func profileFromStore(p store.Profile) *ipmi.Profile {
	out := &ipmi.Profile{Quirks: ipmi.ParseQuirks(p.Quirks)}
	if s := ipmi.CipherSuite(p.Suite); p.Suite > 0 && p.Suite < 256 && s.Supported() {
		out.Suite, out.Known = s, true
	}
	return out
}
