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
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/lightsout/lightsout/internal/guid"
	"github.com/lightsout/lightsout/internal/ipmi"
	"github.com/lightsout/lightsout/internal/probe"
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
	// FullEvery: one check in FullEvery of a Connectable channel is full
	// (presence ping, auth capabilities, Get Device ID); the others are
	// light (probe.Target.Light). Default 10; 1 makes every check full.
	FullEvery int
	// Suites is the fleet-wide cipher suite allow-list for accounts that
	// name none (nil: ipmi.DefaultSuites, 17 then 3).
	Suites []ipmi.CipherSuite
	// Probers by protocol ("ipmi", "redfish"); a channel whose protocol
	// has none is never checked.
	Probers map[string]probe.Prober
	Logger  *slog.Logger
	// OnChange, when set, is called after a declared transition is stored
	// (for events and live views). It must not block.
	OnChange func(store.Transition)
	// OnObservation, when set, is called with every check's observation
	// (after the state is published), for detectors that work on rates
	// and on the whole fleet (floods, correlation). It must not block.
	OnObservation func(Observed)
	// Events, when set, receives the events the monitor raises (an
	// oob.state_changed per declared transition) instead of the monitor
	// storing them itself; internal/events' Recorder stores, deduplicates
	// and fans them out. Called on the check's goroutine with a context
	// bounded to 10 s.
	Events func(context.Context, store.Event)
}

// Observed is one check's outcome with what it was about.
type Observed struct {
	AccountID int64
	MachineID int64
	Machine   string
	Enclosure string
	Address   string
	// Declared is the channel's declared state after this observation.
	Declared    state.OOB
	Observation probe.Observation
}

// ErrUnknownChannel: no channel with that account ID is monitored.
var ErrUnknownChannel = errors.New("monitor: unknown channel")

// Monitor schedules and runs checks. Create with New, fill with Load, run
// with Run.
type Monitor struct {
	cfg Config
	st  store.Store
	log *slog.Logger
	met *metrics

	mu    sync.Mutex
	chans map[int64]*channel
	queue queue
	wake  chan struct{}
	sem   chan struct{}
	rng   *rand.Rand
	wg    sync.WaitGroup
	// epoch is the origin of channel due times.
	epoch time.Time
}

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
	register  bool // pin the GUID on the first Connectable check

	known
	dirty   bool // the last save failed; save again on the next check
	rejudge bool // declare the next observation at once (the expected GUID changed)

	due     int64 // nanoseconds since Monitor.epoch (monotonic; cheap to compare)
	index   int   // in queue; -1 when not queued
	running chan struct{}

	// editing: an edit of the account is being written (BeginEdit): no
	// scheduled check starts until Refresh or EndEdit, and one in flight
	// when it began is dropped (editGen moved on).
	editing bool
	editGen uint32

	// lastEditRetry: when an edit of the credentials last earned an
	// immediate login (at most one per Schedule.AuthRetry: the lockout
	// guard counts edits too); editHeld: when the next login is, after
	// an edit that did not earn one (zero: none held back).
	lastEditRetry, editHeld time.Time
}

// account is what the monitor keeps of an OOB account: what a check needs
// (store.Account's timestamps and machine name stay in the store).
type account struct {
	ID                                 int64
	Protocol, Address, User, Privilege string
	RedfishAuth                        string
	Port, CipherSuite                  int
	CipherSuites                       []int
	Password                           []byte
	CredentialsChangedAt               time.Time
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
	rfAuth    string
	insecure  bool // the last full check found the BMC insecure
	sinceFull int  // light checks since the last full one
	// layout is the layout the registered GUID last matched in, so that a
	// mismatch shows the stranger's GUID the way the operator writes GUIDs.
	layout guid.Layout
}

// New returns a monitor over st.
func New(st store.Store, cfg Config) *Monitor {
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
func (m *Monitor) Load(ctx context.Context) error {
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
	for _, a := range accts {
		c := &channel{index: -1}
		m.fill(c, a, machines[a.MachineID])
		if p, ok := profiles[a.ID]; ok && p.Address == profileAddr(a.Address, a.Port) {
			c.profile, c.rfAuth = profileFromStore(p), p.RedfishAuth
		}
		if s, ok := byAcct[a.ID]; ok {
			c.ch = state.Channel{State: s.State, Reason: s.Reason, Conditions: s.Conditions, Since: s.Since, Streak: 1}
			c.power, c.seenGUID, c.message, c.checkedAt = s.Power, s.GUID, s.Message, s.CheckedAt
			if s.State == state.NotAuthenticated {
				c.lastRefused = s.CheckedAt
			}
		}
		if old, known := m.chans[a.ID]; known {
			m.fill(old, a, machines[a.MachineID])
			continue
		}
		spread := m.cfg.Schedule.Interval
		if c.ch.State == "" || c.ch.State == state.Unknown {
			// A first check declares a state (a store write): a large
			// import is spread so those stay under FirstRate a second.
			spread = max(spread, time.Duration(float64(len(accts))/float64(m.cfg.FirstRate)*float64(time.Second)))
		}
		c.due = m.at(now) + m.rng.Int64N(int64(spread)+1)
		if c.ch.State == state.NotAuthenticated {
			if ok, next, edit := m.cfg.Schedule.AuthAttempt(c.lastRefused, a.CredentialsChangedAt, time.Time{}, now); !ok {
				c.due = m.at(next)
			} else if edit {
				c.lastEditRetry = now
			}
		}
		m.chans[a.ID] = c
		heap.Push(&m.queue, c)
	}
	m.poke()
	return nil
}

func (m *Monitor) fill(c *channel, a store.Account, mc store.Machine) {
	refresh := c.acct.ID != 0
	c.acct = account{ID: a.ID, Protocol: a.Protocol, Address: a.Address, User: a.User, Privilege: a.Privilege,
		Port: a.Port, CipherSuite: a.CipherSuite, CipherSuites: a.CipherSuites, Password: a.Password, CredentialsChangedAt: a.CredentialsChangedAt,
		RedfishAuth: a.RedfishAuth}
	// A literal address is parsed once; a host name resolves per check.
	c.addr = netip.AddrPort{}
	if ip, err := netip.ParseAddr(a.Address); err == nil && a.Port > 0 && a.Port < 65536 {
		c.addr = netip.AddrPortFrom(ip.Unmap(), uint16(a.Port))
	}
	c.machineID = mc.ID
	c.machine = mc.Name
	c.enclosure = mc.Enclosure
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
		c.due, c.editHeld = m.at(now), time.Time{}
	case credsChanged:
		// The lockout guard counts edits: at most one immediate login
		// per AuthRetry, however many edits change the credentials.
		if ok, next := m.cfg.Schedule.EditRetry(c.lastEditRetry, now); ok {
			c.due, c.lastEditRetry, c.editHeld = m.at(now), now, time.Time{}
		} else {
			c.editHeld = next
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
	ok, next, edit := m.cfg.Schedule.AuthAttempt(c.lastRefused, c.acct.CredentialsChangedAt, c.lastEditRetry, now)
	if ok && edit {
		c.lastEditRetry = now
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
	ok, next, _ := m.cfg.Schedule.AuthAttempt(c.lastRefused, credentialsChanged, c.lastEditRetry, now)
	return ok, next
}

// EditHeld returns when the next login of an account is, when an edit of
// its credentials did not earn an immediate one (the lockout guard allows
// one per Schedule.AuthRetry); ok is false when nothing is held back.
func (m *Monitor) EditHeld(accountID int64) (next time.Time, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, found := m.chans[accountID]
	if !found || c.editHeld.IsZero() || !time.Now().Before(c.editHeld) {
		return time.Time{}, false
	}
	if due := m.wall(c.due); due.After(c.editHeld) {
		return due, true
	}
	return c.editHeld, true
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
					why = fmt.Sprintf("an edit of its credentials already earned an immediate attempt at %s", c.lastEditRetry.Format(time.RFC3339))
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
	t := probe.Target{
		Name: c.machine, Protocol: a.Protocol, User: a.User, Password: a.Password,
		Expected: c.expected, ExpectedLayout: c.layout, CipherSuite: a.CipherSuite, Privilege: ipmi.PrivilegeOf(a.Privilege),
		Timeout: m.cfg.Timeout, Addr: c.addr, RedfishAuth: redfish.Auth(a.RedfishAuth), Suites: m.cfg.Suites, Profile: c.profile,
		RedfishLearned: redfish.Auth(c.rfAuth),
	}
	if len(a.CipherSuites) > 0 {
		t.Suites = make([]ipmi.CipherSuite, len(a.CipherSuites))
		for i, n := range a.CipherSuites {
			t.Suites[i] = ipmi.CipherSuite(n)
		}
	}
	// A BMC that answered last time gets the light re-check; every
	// FullEvery-th check (and every check now) is full. The suite it took
	// is proposed first from the learned profile (t.Profile and the
	// engine's), not pinned: a BMC that dropped it is negotiated again
	// within its allow-list instead of being declared no_cipher_suite.
	if !now && c.ch.Observing() == state.Connectable && c.sinceFull+1 < m.cfg.FullEvery {
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
	p := m.cfg.Probers[a.Protocol]
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

// record feeds obs into c's state machine and stores what changed.
func (m *Monitor) record(ctx context.Context, c *channel, obs probe.Observation, light bool) {
	// Registration first, so nobody sees the channel Connectable before
	// the machine's GUID is pinned.
	m.mu.Lock()
	pin := c.register && obs.State == state.Connectable && obs.GUID != ""
	machineID, machine, enclosure := c.machineID, c.machine, c.enclosure
	m.mu.Unlock()
	if pin {
		m.pin(ctx, machineID, machine, obs.GUID)
	}

	m.mu.Lock()
	k := c.known
	acct := c.acct
	dirty := c.dirty
	damping := m.cfg.Damping
	if c.rejudge {
		damping, c.rejudge = state.Damping{Consecutive: 1}, false
	}
	m.mu.Unlock()

	// What the check learned about the BMC is kept (a write only when it
	// changed: the steady state writes nothing).
	rfAuth := k.rfAuth
	if rf := obs.Evidence.Redfish; rf != nil && acct.Protocol == "redfish" {
		rfAuth = rf.Learned
	}
	if p := obs.Evidence.Profile; (p != nil && (k.profile == nil || *k.profile != *p)) || rfAuth != k.rfAuth {
		sp := store.Profile{AccountID: acct.ID, Address: profileAddr(acct.Address, acct.Port), RedfishAuth: rfAuth, LearnedAt: obs.At}
		if p == nil {
			p = k.profile
		}
		if p != nil {
			sp.Quirks = p.Quirks.Names()
			if p.Known {
				sp.Suite = int(p.Suite)
			}
		}
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		if err := m.st.SaveProfile(sctx, sp); err != nil && !errors.Is(err, store.ErrNotFound) {
			m.log.Error("save BMC profile", "machine", machine, "account", acct.ID, "err", err)
		} else {
			if p != nil {
				cp := *p
				k.profile = &cp
			}
			k.rfAuth = rfAuth
		}
		cancel()
	}
	if light {
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
	prev := k.ch
	next, change, tr := k.ch.Observe(state.Observed{State: obs.State, Reason: obs.Reason, Conditions: obs.Conditions, At: obs.At}, damping)
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
	detailChanged := (obs.Evidence.Power != "" && obs.Evidence.Power != k.power) || (obs.GUID != "" && obs.GUID != k.seenGUID)
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
		k.message = obs.Message
	}
	save := change != state.NoChange || detailChanged || dirty
	var st *store.Transition
	var err error
	if save {
		cs := stateOf(acct.ID, k)
		ev, _ := json.Marshal(obs.Evidence)
		cs.Evidence = ev
		if change == state.Declared {
			st = &store.Transition{AccountID: acct.ID, Machine: machine, At: tr.At, From: prev.State, To: tr.To,
				Reason: tr.Reason, Conditions: tr.Conditions, Message: obs.Message, Evidence: ev}
			if st.From == "" {
				st.From = state.Unknown
			}
		}
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		err = m.st.SaveState(sctx, cs, st)
		cancel()
		if err != nil {
			m.log.Error("save channel state", "machine", machine, "account", acct.ID, "err", err)
		}
	}

	m.mu.Lock()
	c.known = k
	c.dirty = err != nil
	c.running = nil
	if m.chans[acct.ID] == c {
		c.due = m.at(time.Now()) + int64(m.cfg.Schedule.Next(c.ch, m.rng.Float64()))
		m.reschedule(c)
	}
	m.mu.Unlock()

	if m.cfg.OnObservation != nil {
		m.cfg.OnObservation(Observed{AccountID: acct.ID, MachineID: machineID, Machine: machine, Enclosure: enclosure,
			Address: acct.Address, Declared: k.ch.State, Observation: obs})
	}
	if err == nil && st != nil {
		m.log.Info("state changed", "machine", machine, "from", st.From, "to", st.To, "reason", st.Reason)
		m.event(ctx, *st)
		if m.cfg.OnChange != nil {
			m.cfg.OnChange(*st)
		}
	}
}

// pin records the GUID of a registering machine's first Connectable check.
func (m *Monitor) pin(ctx context.Context, machineID int64, machine, g string) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	mc, err := m.st.MachineByID(sctx, machineID)
	if err != nil || mc.GUID != "" || !mc.Registering {
		return
	}
	mc.GUID, mc.Registering = g, false
	err = m.st.UpdateMachine(sctx, &mc)
	res, msg := "ok", ""
	if err != nil {
		res, msg = "failed", err.Error()
	}
	_ = m.st.Audit(sctx, &store.AuditEntry{At: time.Now(), Actor: "monitor", Action: "machine.register",
		Target: machine, Detail: "pinned System GUID " + g + " from the first Connectable check", Result: res, Error: msg})
	if err == nil {
		m.mu.Lock()
		for _, c := range m.chans {
			if c.machineID == machineID {
				c.register = false
				c.expected, _ = guid.Parse(g)
				c.layout = ""
			}
		}
		m.mu.Unlock()
	}
}

// event stores an oob.state_changed event for a declared transition.
func (m *Monitor) event(ctx context.Context, t store.Transition) {
	sev := store.SeverityWarning
	switch t.To {
	case state.Connectable:
		sev = store.SeverityInfo
	case state.Invalid, state.NotAuthenticated:
		sev = store.SeverityCritical
	}
	data, _ := json.Marshal(map[string]any{"account_id": t.AccountID, "from": t.From, "to": t.To, "reason": t.Reason})
	msg := fmt.Sprintf("%s: %s → %s", t.Machine, t.From, t.To)
	if t.Reason != "" {
		msg += " (" + string(t.Reason) + ")"
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	e := store.Event{At: t.At, Code: "oob.state_changed", Severity: sev,
		Source: t.Machine, Message: msg, Count: 1, LastAt: t.At, Data: data}
	if m.cfg.Events != nil {
		m.cfg.Events(sctx, e)
		return
	}
	if err := m.st.AddEvent(sctx, &e, 0); err != nil {
		m.log.Error("store event", "err", err)
	}
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
