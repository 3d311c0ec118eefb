package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lightsout/lightsout/internal/probe"
	"github.com/lightsout/lightsout/internal/store"
)

// Store is what a node needs from the database (*sqlstore.DB).
type Store interface {
	Heartbeat(ctx context.Context, in store.Instance, lease time.Duration, restart bool) (store.Instance, error)
	Instances(ctx context.Context) ([]store.Instance, error)
	Leave(ctx context.Context, name string) error
	Listen(ctx context.Context, ready func(), fn func(store.Change)) error
}

// Monitor is what a node drives in the monitor (*monitor.Monitor): Load
// picks up machines gained, Remove drops channels lost, Refresh and
// RefreshMachine re-read what a notification names. The monitor reads the
// fleet through [Node.Store], which hands it only the node's share.
type Monitor interface {
	Load(ctx context.Context) error
	IDs() []int64
	Remove(accountID int64)
	Refresh(ctx context.Context, accountID int64) error
	RefreshMachine(ctx context.Context, machineID int64) error
}

// Config of a node. Zero values take defaults.
type Config struct {
	// Name is unique among the instances sharing the database.
	Name string
	// Zones served (nil: store.DefaultZone).
	Zones []string
	// Buffer bounds the state changes kept in memory while the database
	// is unreachable (default DefaultBuffer).
	Buffer int
	// ZoneRules place a machine imported or added without a zone by its
	// BMC subnet (the server hands them to the manager); every instance
	// that takes imports should have the same list.
	ZoneRules ZoneRules
	// PeerAddress is where the other instances reach this one's API.
	PeerAddress string
	// Source is the local address BMC traffic leaves from (shown only).
	Source  string
	Version string
	// Lease is how long a heartbeat keeps the instance alive (default
	// DefaultLease); Every how often it is renewed (default Lease/6);
	// Fence how long before the lease would lapse an instance that could
	// not renew it stops checking (default the larger of Lease/2 and
	// 5/4 MaxCheck + Every). MaxCheck is the longest a check may last (the
	// node's prober cuts it there; default 4/5 Fence): Fence must be at
	// least 5/4 MaxCheck (the cut check still closes its session), so the
	// check in flight has ended when the others take over.
	Lease, Every, Fence, MaxCheck time.Duration
	// Alone: no other instance can share the database (SQLite: the data
	// directory's lock refuses a second one), so nobody can take over a
	// lapsed lease and the node never fences. A renewal that is slow or
	// fails (a saturated CPU, a busy database file) is logged, and the
	// checks go on: fencing there would only stop the monitor.
	Alone  bool
	Logger *slog.Logger
	// OnMembers, when set, is called after each reading of the members
	// (on the node's goroutine; it must not block for long).
	OnMembers func(Members)
	// FleetZones, when set, lists the zones machines are in; a zone no
	// live instance serves is unwatched (Unwatched, the metric
	// lightsout_zone_unwatched), and OnUnwatched is called once when a
	// zone becomes so (on the node's goroutine).
	FleetZones  func(context.Context) ([]string, error)
	OnUnwatched func(zone string, since time.Time)
	// Digests, when set, gives at each heartbeat the batches of the fleet
	// detectors' digests to share with the other instances (each at most
	// sqlstore.NotifyMax bytes with the name); OnDigests is called with a
	// batch another instance shared (on the listening goroutine), and
	// Resync when every digest should be shared again (on the node's
	// goroutine): the live members changed — a newcomer, perhaps the next
	// leader, knows none — or a batch could not be sent.
	Digests   func() [][]byte
	OnDigests func(batch []byte)
	Resync    func()
	// TakeoverWindow spreads the first checks of the machines this
	// instance gains after its first load (a dead or leaving member's
	// share, handed back on a rejoin) — overdue, since their owner last
	// checked them at least a lease ago — instead of over one interval
	// (zero: the monitor's own default, DefaultTakeoverWindow's rule).
	TakeoverWindow time.Duration
}

// DefaultLease is a member's lease when none is configured: with the
// default 60 s interval a dead instance's channels are checked again
// within two intervals (the lease, a heartbeat to see it lapse, the load,
// then first checks spread over a quarter interval: TakeoverWindow).
const DefaultLease = 45 * time.Second

// ErrLease: the lease is too short for the checks (Config.MaxCheck).
var ErrLease = errors.New("cluster: lease too short")

// ErrNameInUse: a live instance already has this name.
var ErrNameInUse = errors.New("cluster: instance name in use")

// Node is this instance's membership and share of the fleet.
type Node struct {
	cfg Config
	st  Store
	log *slog.Logger
	mon Monitor

	checks   atomic.Int64
	mu       sync.Mutex
	members  Members
	view     []string // published; nil before the first heartbeat with one, and when fenced
	fenced   bool
	active   map[int64]*held // machines handed to the monitor
	inflight map[string]int  // checks running, by machine name
	changed  chan struct{}   // closed when a check ends; made by a waiter (drain), nil without one
	// dropped moves whenever an account leaves the books (dropOneLocked,
	// forget); with the monitor's Roster it tells reconcile whether
	// anything could have left a channel the node does not hold.
	dropped    uint64
	reconciled struct {
		ok              bool
		dropped, monGen uint64
	}
	loaded  string // signature of the members the monitor was last loaded for
	fenceT  *time.Timer
	started bool
	// unwatched: zones with machines and no live instance, since when
	// (this instance's first reading that found them so).
	unwatched map[string]time.Time
	// loading: the monitor's Load is reading the fleet; pending are the
	// machines changed meanwhile, re-read after it (Load may have read
	// them before the change and admitted them after it was applied).
	loading bool
	pending map[int64]bool
	// drainAll: fenced since the last published view; every check still
	// in flight must end before a new view is published (the others may
	// take what it gives away at once).
	drainAll bool
	// buf: state changes declared while the database was unreachable.
	buf buffer
	// inner is the store the monitor's writes go to (Store), for flush.
	inner store.Store
	// gen moves with every change to the fleet this node heard of: a
	// notification (an edit, a peer's announced state changes), a
	// membership change, a lost notification connection (Generation).
	gen atomic.Uint64
	// announced is the monitor's Changes last announced to the peers.
	announced uint64
	// changes is the monitor's change count (Attach; nil: none).
	changes func() uint64
	// everLoaded: the monitor was loaded once (later loads are takeovers).
	everLoaded bool
	// zonesGen, zonesAt: gen and time at the last reading of the fleet's
	// zones; noNotify: the database announces no changes (SQLite), so
	// they are read at every heartbeat.
	zonesGen uint64
	zonesAt  time.Time
	noNotify atomic.Bool
}

// zonesEvery bounds how long the fleet's zones go unread while nothing
// was announced.
const zonesEvery = 5 * time.Minute

// announcer is the store's way of telling the peers that this instance
// stored channel state changes (*sqlstore.DB).
type announcer interface {
	AnnounceStates(ctx context.Context, instance string) error
}

// digestAnnouncer shares the fleet detectors' digests (*sqlstore.DB).
type digestAnnouncer interface {
	AnnounceDigests(ctx context.Context, instance string, batch []byte) error
}

// catchUpLoader loads channels gained from another instance with their
// first checks spread over a window shorter than the interval
// (*monitor.Monitor.LoadWithin).
type catchUpLoader interface {
	LoadWithin(ctx context.Context, within time.Duration) error
}

// Generation is a number that moves whenever something that fleet-wide
// aggregates (incidents) are made of may have changed: this instance's
// monitor changed a stored state, a peer announced that it did (at its
// heartbeat after the write), an account or machine was edited through
// any instance, or the members changed. A steady fleet leaves it still, so
// the leader need not read the fleet again (docs/scale-out.md).
func (n *Node) Generation() uint64 {
	g := n.gen.Load()
	if n.changes != nil {
		g += n.changes()
	}
	return g
}

type held struct {
	name     string
	zone     string
	accounts accountSet
}

// accountSet is a machine's accounts: one or two, so a slice (72 bytes a
// machine with its held) rather than a map (240).
type accountSet []int64

func (s accountSet) has(a int64) bool { return slices.Contains(s, a) }

func (s *accountSet) add(a int64) {
	if !s.has(a) {
		*s = append(*s, a)
	}
}

func (s *accountSet) del(a int64) {
	if i := slices.Index(*s, a); i >= 0 {
		*s = slices.Delete(*s, i, i+1)
	}
}

// New returns a node; Start registers it.
func New(st Store, cfg Config) (*Node, error) {
	if cfg.Name == "" || strings.ContainsAny(cfg.Name, ", \t\n") {
		return nil, fmt.Errorf("cluster: instance name %q: not empty, no commas or spaces", cfg.Name)
	}
	if len(cfg.Zones) == 0 {
		cfg.Zones = []string{store.DefaultZone}
	}
	if cfg.Lease <= 0 {
		cfg.Lease = DefaultLease
	}
	if cfg.Every <= 0 {
		cfg.Every = cfg.Lease / 6
	}
	if cfg.Fence <= 0 {
		cfg.Fence = max(cfg.Lease/2, cfg.MaxCheck*5/4+cfg.Every)
	}
	if cfg.MaxCheck <= 0 {
		cfg.MaxCheck = (cfg.Fence - cfg.Every) * 4 / 5
	}
	if cfg.Fence < cfg.MaxCheck*5/4+cfg.Every {
		// A check cut at MaxCheck still closes its session (on a fresh
		// deadline): a quarter more for that; and one may start up to a
		// heartbeat after the fence (a load racing it, see reconcile).
		return nil, fmt.Errorf("%w: fence %v is shorter than a check may last (%v, and a quarter more to close its session) plus a heartbeat (%v)", ErrLease, cfg.Fence, cfg.MaxCheck, cfg.Every)
	}
	if cfg.Fence >= cfg.Lease || cfg.Every >= cfg.Lease-cfg.Fence {
		return nil, fmt.Errorf("%w: lease %v must exceed the fence %v (a check may last %v) plus the heartbeat %v: give a lease of at least %v",
			ErrLease, cfg.Lease, cfg.Fence, cfg.MaxCheck, cfg.Every, 2*cfg.MaxCheck)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Buffer <= 0 {
		cfg.Buffer = DefaultBuffer
	}
	return &Node{cfg: cfg, st: st, log: cfg.Logger, active: map[int64]*held{}, inflight: map[string]int{},
		members: Members{Self: cfg.Name, All: map[string]store.Instance{}}}, nil
}

// CheckLease says whether a lease (with the default heartbeat and fence)
// is long enough for checks that may last maxCheck.
func CheckLease(lease, maxCheck time.Duration) error {
	_, err := New(nil, Config{Name: "x", Lease: lease, MaxCheck: maxCheck})
	return err
}

// Name is the instance's name.
func (n *Node) Name() string { return n.cfg.Name }

// Zones are the zones it serves.
func (n *Node) Zones() []string { return slices.Clone(n.cfg.Zones) }

// Members is the last reading of the instances table.
func (n *Node) Members() Members {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.members
}

// Start registers the instance (refused with ErrNameInUse while a live
// instance has its name), claiming nothing yet. Call Attach, then Run.
func (n *Node) Start(ctx context.Context) error {
	l, err := n.st.Instances(ctx)
	if err != nil {
		return fmt.Errorf("cluster: reading the instances: %w", err)
	}
	for _, in := range l {
		if in.Name == n.cfg.Name && in.Live {
			return fmt.Errorf("%w: a live instance %q (peer address %q) renewed its lease until %s; give this one another --name, or, if that one was killed, start again after its lease lapses",
				ErrNameInUse, in.Name, in.PeerAddress, in.LeaseUntil.UTC().Format(time.RFC3339))
		}
	}
	begun := time.Now()
	if _, err := n.st.Heartbeat(ctx, n.row(nil), n.cfg.Lease, true); err != nil {
		return fmt.Errorf("cluster: registering: %w", err)
	}
	n.mu.Lock()
	n.started = true
	n.armFence(begun)
	n.mu.Unlock()
	return nil
}

// Attach gives the node the monitor it hands channels to. A monitor that
// counts its stored changes (Changes) has them announced to the peers at
// each heartbeat after they moved (Generation).
func (n *Node) Attach(m Monitor) {
	n.mon = m
	if c, ok := m.(interface{ Changes() uint64 }); ok {
		n.changes = c.Changes
	}
}

// shareDigests sends the fleet detectors' digests that changed since the
// last heartbeat to the other instances.
func (n *Node) shareDigests(ctx context.Context) {
	a, ok := n.st.(digestAnnouncer)
	if !ok || n.cfg.Digests == nil {
		return
	}
	for _, b := range n.cfg.Digests() {
		if err := a.AnnounceDigests(ctx, n.cfg.Name, b); err != nil {
			if !errors.Is(err, store.ErrNoNotify) {
				n.log.Warn("cluster: sharing the fleet detectors' digests", "err", err)
				if n.cfg.Resync != nil {
					n.cfg.Resync() // what was taken is shared again at the next checks
				}
			}
			return
		}
	}
}

// announce tells the peers, at most once a heartbeat, that this
// instance's stored states changed since the last announcement. The
// count is read before the buffer: a change it counts was written, or
// is still buffered — then nothing is announced until it is written.
func (n *Node) announce(ctx context.Context) {
	a, ok := n.st.(announcer)
	if !ok || n.changes == nil {
		return
	}
	c := n.changes()
	if c == n.announced || n.Buffered() > 0 {
		return
	}
	if err := a.AnnounceStates(ctx, n.cfg.Name); err != nil {
		if !errors.Is(err, store.ErrNoNotify) {
			n.log.Warn("cluster: announcing state changes", "err", err)
		}
		return
	}
	n.announced = c
}

func (n *Node) row(view []string) store.Instance {
	ch := int64(0)
	for _, h := range n.active {
		ch += int64(len(h.accounts))
	}
	return store.Instance{Name: n.cfg.Name, Zones: n.cfg.Zones, PeerAddress: n.cfg.PeerAddress, Source: n.cfg.Source,
		Version: n.cfg.Version, View: view, Channels: ch, Checks: n.checks.Load()}
}

// armFence (n.mu held) fences the node if no renewal begun after begun
// succeeds before the lease it renewed could lapse, less Fence.
func (n *Node) armFence(begun time.Time) {
	d := time.Until(begun.Add(n.cfg.Lease - n.cfg.Fence))
	if n.fenceT == nil {
		n.fenceT = time.AfterFunc(d, n.fence)
		return
	}
	n.fenceT.Reset(d)
}

// fence stops every check: the lease may lapse and the others take over.
func (n *Node) fence() {
	n.mu.Lock()
	if n.fenced {
		n.mu.Unlock()
		return
	}
	if n.cfg.Alone {
		n.mu.Unlock()
		n.log.Warn("cluster: the lease was not renewed in time; alone on this database, checking on", "instance", n.cfg.Name)
		return
	}
	n.fenced, n.view = true, nil
	n.loaded = "" // load the share again once the lease is renewed
	n.drainAll = true
	n.log.Error("cluster: the lease could not be renewed; stopping every check until it is (docs/scale-out.md)", "instance", n.cfg.Name)
	n.dropLocked(func(int64, *held) bool { return true })
	n.mu.Unlock()
}

// dropLocked removes the machines drop says from the monitor (n.mu held)
// and returns their names.
func (n *Node) dropLocked(drop func(int64, *held) bool) []string {
	var names []string
	for id, h := range n.active {
		if drop(id, h) {
			n.dropOneLocked(id, h)
			names = append(names, h.name)
		}
	}
	return names
}

// dropOneLocked removes machine id, held as h, from the monitor and the
// books (n.mu held).
func (n *Node) dropOneLocked(id int64, h *held) {
	for _, a := range h.accounts {
		if n.mon != nil {
			n.mon.Remove(a)
		}
	}
	delete(n.active, id)
	n.dropped++
}

// drain waits until no check of names is in flight (ctx bounds it).
func (n *Node) drain(ctx context.Context, names []string) error {
	for {
		n.mu.Lock()
		busy := false
		for _, nm := range names {
			if n.inflight[nm] > 0 {
				busy = true
				break
			}
		}
		if busy && n.changed == nil {
			n.changed = make(chan struct{})
		}
		ch := n.changed
		n.mu.Unlock()
		if !busy {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Run renews the lease, follows membership changes and the database's
// change notifications until ctx ends.
func (n *Node) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); n.listen(ctx) }()
	n.tick(ctx)
	t := time.NewTicker(n.cfg.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-t.C:
			n.tick(ctx)
		}
	}
}

// Tick runs one round at once (tests).
func (n *Node) Tick(ctx context.Context) { n.tick(ctx) }

// rosterCounter is a Monitor whose Roster moves whenever a channel comes
// or goes (*monitor.Monitor).
type rosterCounter interface{ Roster() uint64 }

// reconcile removes from the monitor every channel the node does not hold:
// a load that raced a fence or a release can insert one after the node
// dropped it. Run at every heartbeat, even without the database; skipped
// when neither a channel came or went in the monitor nor an account left
// the books since the last one that found the monitor within the books (a
// walk of 100,000 channels at every heartbeat otherwise).
func (n *Node) reconcile() {
	if n.mon == nil {
		return
	}
	rc, counted := n.mon.(rosterCounter)
	var gen uint64
	if counted {
		gen = rc.Roster() // before IDs: a channel added after it moves it again
		n.mu.Lock()
		same := n.reconciled.ok && n.reconciled.monGen == gen && n.reconciled.dropped == n.dropped
		n.mu.Unlock()
		if same {
			return
		}
	}
	ids := n.mon.IDs() // not a copy of every channel's state: 100,000 at each heartbeat
	n.mu.Lock()
	defer n.mu.Unlock()
	n.reconciled.ok, n.reconciled.monGen, n.reconciled.dropped = counted, gen, n.dropped
	held := map[int64]bool{}
	for _, h := range n.active {
		for _, a := range h.accounts {
			held[a] = true
		}
	}
	for _, id := range ids {
		if !held[id] {
			n.mon.Remove(id)
		}
	}
}

func (n *Node) tick(ctx context.Context) {
	n.reconcile()
	begun := time.Now()
	tctx, cancel := context.WithTimeout(ctx, n.cfg.Lease-n.cfg.Fence)
	defer cancel()
	l, err := n.st.Instances(tctx)
	if err != nil {
		n.log.Warn("cluster: reading the instances", "err", err)
		return
	}
	mem := NewMembers(n.cfg.Name, l)
	view := mem.Live()
	if !slices.Contains(view, n.cfg.Name) {
		view = append(view, n.cfg.Name)
		slices.Sort(view)
	}
	n.mu.Lock()
	n.members = mem
	var dropped []string
	if n.view != nil && !slices.Equal(view, n.view) {
		// Shrink to the new share before claiming it: the machines this
		// view gives to another are dropped and their checks waited for.
		dropped = n.dropLocked(func(id int64, h *held) bool { return mem.OwnerIn(id, h.zone, view) != n.cfg.Name })
	}
	n.mu.Unlock()
	if len(dropped) > 0 {
		if err := n.drain(tctx, dropped); err != nil {
			n.log.Warn("cluster: waiting for the checks of machines handed over", "err", err)
			return // not published: the others keep waiting
		}
		n.log.Info("cluster: handed over", "machines", len(dropped), "view", view)
	}
	n.mu.Lock()
	all := n.drainAll
	var names []string
	for nm := range n.inflight {
		names = append(names, nm)
	}
	n.mu.Unlock()
	if all && len(names) > 0 {
		// Back from a fence: the checks cut then may still be closing.
		if err := n.drain(tctx, names); err != nil {
			n.log.Warn("cluster: waiting for the checks in flight when fenced", "err", err)
			return
		}
	}
	n.mu.Lock()
	n.drainAll = false
	row := n.row(view)
	n.mu.Unlock()
	if _, err := n.st.Heartbeat(tctx, row, n.cfg.Lease, false); err != nil {
		n.log.Warn("cluster: renewing the lease", "err", err)
		return
	}
	// Read again after the write: of two instances that claim one machine
	// at once, at least one sees the other's claim (see Decide).
	l, err = n.st.Instances(tctx)
	if err != nil {
		n.log.Warn("cluster: reading the instances", "err", err)
		return
	}
	mem = NewMembers(n.cfg.Name, l)
	if n.inner != nil && n.Buffered() > 0 {
		// The database answers: what was declared while it did not is
		// written now, after the renewal (a long flush must not cost the
		// lease), within one heartbeat; a buffered state older than the
		// stored one is not written (flush).
		fctx, fcancel := context.WithTimeout(ctx, n.cfg.Every)
		n.flush(fctx, n.inner)
		fcancel()
	}
	n.mu.Lock()
	n.members, n.view = mem, view
	if n.fenced {
		n.log.Info("cluster: lease renewed; checking again", "instance", n.cfg.Name)
	}
	n.fenced = false
	n.armFence(begun)
	sig := signature(mem)
	reload := sig != n.loaded
	n.loaded = sig
	first := !n.everLoaded
	n.mu.Unlock()
	if reload {
		n.gen.Add(1)
		if n.cfg.Resync != nil {
			n.cfg.Resync()
		}
	}
	if n.cfg.OnMembers != nil {
		n.cfg.OnMembers(mem)
	}
	if g := n.gen.Load(); n.noNotify.Load() || g != n.zonesGen || time.Since(n.zonesAt) >= zonesEvery || len(n.Unwatched()) > 0 {
		// The zones machines are in change only with an edit, which is
		// announced (gen), and unwatched ones only with the members
		// (gen too): a steady fleet is not scanned at every heartbeat.
		n.zonesGen, n.zonesAt = g, time.Now()
		n.watchZones(tctx, mem)
	}
	if reload && n.mon != nil {
		// Machines gained (a member left, or released what it held) are
		// picked up; spread over one interval by the monitor.
		n.mu.Lock()
		n.loading, n.pending = true, map[int64]bool{}
		n.mu.Unlock()
		var err error
		if cl, ok := n.mon.(catchUpLoader); ok && !first {
			// Machines taken over are overdue (their owner died a
			// lease ago, or handed them over): their first checks are
			// spread over TakeoverWindow, not a whole interval.
			err = cl.LoadWithin(ctx, n.cfg.TakeoverWindow)
		} else {
			err = n.mon.Load(ctx)
		}
		n.mu.Lock()
		if err == nil {
			n.everLoaded = true
		}
		pending := n.pending
		n.loading, n.pending = false, nil
		if err != nil {
			n.loaded = ""
		}
		n.mu.Unlock()
		if err != nil {
			n.log.Warn("cluster: loading the share", "err", err)
		}
		for id := range pending {
			if err := n.mon.RefreshMachine(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
				n.log.Warn("cluster: applying a change", "machine", id, "err", err)
			}
		}
		n.reconcile()
	}
	// After the load: a share taken over is not kept waiting for these.
	n.announce(tctx)
	n.shareDigests(tctx)
}

// watchZones finds the zones with machines that no live instance serves.
func (n *Node) watchZones(ctx context.Context, mem Members) {
	if n.cfg.FleetZones == nil {
		return
	}
	zones, err := n.cfg.FleetZones(ctx)
	if err != nil {
		n.log.Warn("cluster: listing the zones", "err", err)
		return
	}
	now := time.Now()
	var raised []string
	n.mu.Lock()
	next := map[string]time.Time{}
	for _, z := range mem.Unwatched(zones) {
		since, ok := n.unwatched[z]
		if !ok {
			since = now
			raised = append(raised, z)
		}
		next[z] = since
	}
	n.unwatched = next
	n.mu.Unlock()
	for _, z := range raised {
		n.log.Error("cluster: no live instance serves this zone: its machines are not checked", "zone", z)
		if n.cfg.OnUnwatched != nil {
			n.cfg.OnUnwatched(z, now)
		}
	}
}

// Unwatched is the zones with machines that no live instance serves, and
// since when.
func (n *Node) Unwatched() map[string]time.Time {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make(map[string]time.Time, len(n.unwatched))
	for z, t := range n.unwatched {
		out[z] = t
	}
	return out
}

// signature sums up what ownership depends on: the live members, their
// zones and published views.
func signature(m Members) string {
	var b strings.Builder
	for _, nm := range m.Live() {
		in := m.All[nm]
		fmt.Fprintf(&b, "%s|%s|%v|%s;", nm, strings.Join(in.Zones, ","), in.View != nil, strings.Join(in.View, ","))
	}
	return b.String()
}

// listen follows the database's change notifications (PostgreSQL); after
// a lost connection it reloads, since changes may have been missed.
func (n *Node) listen(ctx context.Context) {
	for ctx.Err() == nil {
		err := n.st.Listen(ctx, nil, func(c store.Change) { n.onChange(ctx, c) })
		if errors.Is(err, store.ErrNoNotify) {
			n.noNotify.Store(true)
			return
		}
		if ctx.Err() != nil {
			return
		}
		n.log.Warn("cluster: change notifications lost; listening again", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(n.cfg.Every):
		}
		n.mu.Lock()
		n.loaded = "" // reload on the next tick
		n.mu.Unlock()
		n.gen.Add(1) // changes may have been missed
	}
}

func (n *Node) onChange(ctx context.Context, c store.Change) {
	if c.Digests != nil {
		if c.Instance != n.cfg.Name && n.cfg.OnDigests != nil {
			n.cfg.OnDigests(c.Digests)
		}
		return
	}
	if c.Instance != "" {
		// A peer stored state changes: only the fleet-wide aggregates
		// care (Generation); its own announcements are counted already.
		if c.Instance != n.cfg.Name {
			n.gen.Add(1)
		}
		return
	}
	n.gen.Add(1)
	if n.mon == nil {
		return
	}
	n.mu.Lock()
	if n.loading {
		n.pending[c.MachineID] = true
	}
	n.mu.Unlock()
	var err error
	if c.AccountID != 0 {
		err = n.mon.Refresh(ctx, c.AccountID)
	} else {
		err = n.mon.RefreshMachine(ctx, c.MachineID)
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		n.log.Warn("cluster: applying a change", "account", c.AccountID, "machine", c.MachineID, "err", err)
	}
}

// admit says whether the monitor may have machine (and records it), given
// this instance's published view and the others'.
func (n *Node) admit(machine int64, name, zone string, account int64) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.fenced || n.view == nil {
		return false
	}
	h := n.active[machine]
	d := n.members.Decide(machine, zone, n.view)
	if !d.Mine || (h == nil && d.BlockedBy != "") {
		return false
	}
	if h == nil {
		h = &held{}
		n.active[machine] = h
	}
	h.name, h.zone = name, zone
	if account != 0 {
		h.accounts.add(account)
	}
	return true
}

// forget drops an account (deleted, or its machine no longer ours) from
// the node's books; the monitor removes it itself.
func (n *Node) forget(machine, account int64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for id, h := range n.active {
		if (machine == 0 || id == machine) && h.accounts.has(account) {
			h.accounts.del(account)
			n.dropped++
			if len(h.accounts) == 0 {
				delete(n.active, id)
			}
		}
	}
}

// release drops a machine no longer ours (its zone changed) from the
// monitor: the accounts the node knows of and those given (the monitor
// may have one the node's books lost, when a change raced a load).
func (n *Node) release(machine int64, accounts ...int64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	// By key, not through dropLocked's walk of every machine held: a load
	// releases each machine of the fleet another instance owns, and a walk
	// per machine made a share's load O(fleet × share) — at 30,000 BMCs
	// over three instances, seconds of CPU per load that held up the
	// heartbeat past its fence (bench/scaleout).
	if h, ok := n.active[machine]; ok {
		n.dropOneLocked(machine, h)
	}
	if n.mon != nil {
		for _, a := range accounts {
			n.mon.Remove(a)
		}
	}
}

// Prober wraps p to count checks and keep track of those in flight, so a
// hand-over waits for them.
func (n *Node) Prober(p probe.Prober) probe.Prober {
	return func(ctx context.Context, t probe.Target) probe.Observation {
		n.mu.Lock()
		n.inflight[t.Name]++
		n.mu.Unlock()
		defer func() {
			n.mu.Lock()
			if n.inflight[t.Name]--; n.inflight[t.Name] <= 0 {
				delete(n.inflight, t.Name)
			}
			if n.changed != nil { // a drain waits: not a channel per check otherwise
				close(n.changed)
				n.changed = nil
			}
			n.mu.Unlock()
		}()
		n.checks.Add(1)
		// A check never outlasts the fence margin: when this instance is
		// fenced, its last checks end before its lease can lapse.
		ctx, cancel := context.WithTimeout(ctx, n.cfg.MaxCheck)
		defer cancel()
		return p(ctx, t)
	}
}

// Leader: this instance has the first name among the live instances. It
// alone does what the fleet needs once (incident events); a new leader
// takes over within a lease when it dies.
func (n *Node) Leader() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	live := n.members.Live()
	return !n.fenced && (len(live) == 0 || live[0] == n.cfg.Name)
}

// Alone: no other instance is live.
func (n *Node) Alone() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, nm := range n.members.Live() {
		if nm != n.cfg.Name {
			return false
		}
	}
	return true
}

// Checks is how many checks this instance made since it started.
func (n *Node) Checks() int64 { return n.checks.Load() }

// Held is how many machines the monitor has from this node.
func (n *Node) Held() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.active)
}

// OwnerOf is the live instance a machine of zone belongs to (ok false when
// no live instance serves zone).
func (n *Node) OwnerOf(machine int64, zone string) (store.Instance, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	o := n.members.OwnerIn(machine, zone, n.members.Live())
	in, ok := n.members.All[o]
	return in, ok && o != ""
}

// Close stops the fence timer and leaves the table, so the others take
// over at once instead of after the lease. Call it after the monitor
// stopped.
func (n *Node) Close(ctx context.Context) error {
	n.mu.Lock()
	if n.fenceT != nil {
		n.fenceT.Stop()
	}
	started := n.started
	n.mu.Unlock()
	if !started {
		return nil
	}
	return n.st.Leave(ctx, n.cfg.Name)
}
