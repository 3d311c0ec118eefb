package ipmi

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"golang.org/x/net/ipv4"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Config tunes an Engine. The zero value is usable.
type Config struct {
	// Sockets is how many IPv4 UDP sockets BMCs are spread over (default 2).
	Sockets int
	// Source is the local address sockets bind to (default: unspecified).
	Source netip.Addr
	// Routes send to the BMCs of a prefix from another local address (a
	// multi-homed management server with one network per zone: lightsout
	// server --source-address ZONE=ADDR over the zone's --zone-rule
	// prefixes); the longest prefix holding a BMC's address wins, and a
	// BMC no route holds is reached from Source. IPv4 only.
	Routes []Route
	// InitialRTO is the first retransmission timeout (default 250ms); it
	// doubles per attempt up to MaxRTO (default 1s).
	InitialRTO time.Duration
	MaxRTO     time.Duration
	// MaxAttempts bounds datagrams sent per request (default 8). The
	// request's context deadline bounds it too.
	MaxAttempts int
	// SocketBuffer is the requested SO_RCVBUF/SO_SNDBUF (default 4 MiB).
	SocketBuffer int
	// CloseTimeout bounds the Close Session exchange, which runs even when
	// the caller's context is already done (default 1s).
	CloseTimeout time.Duration
	// ReadCoalesce, when > 0, makes each socket's reader pause this long
	// after a receive that did not fill a batch, so replies arriving close
	// together are taken in one system call and one wake-up. Every reply
	// waits up to that much longer; a monitor of thousands of BMCs trades
	// that for far fewer wake-ups (the server uses 1ms). 0: read at once.
	ReadCoalesce time.Duration
	Logger       *slog.Logger
}

// Route: BMCs in Prefix are reached from Source.
type Route struct {
	Prefix netip.Prefix
	Source netip.Addr
}

func (c *Config) setDefaults() {
	if c.Sockets <= 0 {
		c.Sockets = 2
	}
	if c.InitialRTO <= 0 {
		c.InitialRTO = 250 * time.Millisecond
	}
	if c.MaxRTO <= 0 {
		c.MaxRTO = time.Second
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 8
	}
	if c.SocketBuffer <= 0 {
		c.SocketBuffer = 4 << 20
	}
	if c.CloseTimeout <= 0 {
		c.CloseTimeout = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Stats are the engine's counters since it started.
type Stats struct {
	Sent, Received, Retransmits        uint64
	Malformed, Foreign, Stale, BadAuth uint64
	Unreachable                        uint64
	SessionsOpened, SessionsClosed     uint64
	CloseFailed                        uint64
	SessionsOpen                       int64
	KnownBMCs                          int
}

type counters struct {
	sent, received, retransmits        atomic.Uint64
	malformed, foreign, stale, badAuth atomic.Uint64
	unreachable                        atomic.Uint64
	opened, closed, closeFailed        atomic.Uint64
	open                               atomic.Int64
}

// Engine multiplexes sessions with many BMCs over a few UDP sockets.
// It is safe for concurrent use; every method takes a context.
type Engine struct {
	cfg Config
	v4  []*sock
	// routes: the sockets of each Config.Routes source, longest prefix
	// first.
	routes []routeSocks

	v6once sync.Once
	v6     *sock
	v6err  error

	mu       sync.RWMutex
	peers    map[netip.AddrPort]*peer
	sessions map[uint32]*Session // by console session ID, from Open Session on
	closed   bool

	wg  sync.WaitGroup
	c   counters
	log *slog.Logger

	// qrtt is the engine-wide smoothed round-trip time (ns) of clean
	// samples from every BMC. It rises when requests queue — on this host
	// when its CPU is saturated, or at a shared bottleneck — and then
	// floors every BMC's retransmission timeout: a reply late because of
	// our own queue is not a loss, and resending it only lengthens the
	// queue (and would count against the BMC as Degraded).
	qrtt atomic.Int64
}

// peer is what the engine remembers about one BMC. It stays small: an idle
// known BMC costs this struct, its two semaphores and a map entry.
type peer struct {
	addr netip.AddrPort
	sock *sock
	// slot admits one request in flight; sess admits one open session.
	slot, sess token

	mu   sync.Mutex
	wait *waiter // the request in flight, if any
	// hold is set while the slot stays taken after its exchange ended
	// with a copy of the request unanswered (see Engine.finish).
	hold *hold

	suite  atomic.Uint32 // last cipher suite that worked, +1 (0 = none yet)
	quirks atomic.Uint32 // Quirk bits learned

	// Lifetime counters for this BMC: exchanges started (requests, not
	// counting their retransmissions), retransmissions, and exchanges that
	// gave up.
	requests, retrans, timeouts atomic.Uint32

	// srtt is the smoothed round-trip time (ns) from clean samples;
	// backoff is the retransmission timeout that last worked after a loss
	// (Karn: kept until a clean sample arrives).
	srtt, backoff atomic.Int64
}

// observeRTT folds a clean round-trip sample into the peer's SRTT.
func (p *peer) observeRTT(rtt time.Duration) {
	if rtt <= 0 {
		return
	}
	old := p.srtt.Load()
	if old == 0 {
		p.srtt.Store(int64(rtt))
	} else {
		p.srtt.Store(old + (int64(rtt)-old)/8)
	}
	p.backoff.Store(0)
}

// minRTO floors the learned timeout: a loopback or LAN round trip of a
// millisecond says nothing about how long a busy BMC takes to compute a
// RAKP reply, and a premature retransmission of a handshake message makes
// BMCs re-randomize (see errRetryHandshake).
const minRTO = 200 * time.Millisecond

// handshakeMinRTO floors the retransmission timeout of Open Session,
// RAKP 1 and RAKP 3.
const handshakeMinRTO = time.Second

// rto is the first retransmission timeout for the next exchange with p:
// twice the smoothed RTT plus a margin once measured, the configured
// initial value before; never below a back-off that worked.
func (e *Engine) rto(p *peer) time.Duration {
	r := e.cfg.InitialRTO
	if s := time.Duration(p.srtt.Load()); s > 0 {
		r = 2*s + 20*time.Millisecond
		if r < minRTO {
			r = minRTO
		}
	}
	if q := time.Duration(e.qrtt.Load()); q > 0 {
		if f := min(3*q+20*time.Millisecond, e.cfg.MaxRTO); f > r {
			r = f
		}
	}
	if b := time.Duration(p.backoff.Load()); b > r {
		r = b
	}
	return r
}

// observeRTT folds a clean sample into the engine-wide SRTT (weight 1/16:
// with thousands of exchanges a second it follows a queue building up
// within a fraction of a second). Concurrent updates may lose a sample;
// it is an estimate.
func (e *Engine) observeRTT(rtt time.Duration) {
	if rtt <= 0 {
		return
	}
	old := e.qrtt.Load()
	if old == 0 {
		e.qrtt.Store(int64(rtt))
		return
	}
	e.qrtt.Store(old + (int64(rtt)-old)/16)
}

// PeerCounters are lifetime counters for one BMC: the raw material of the
// Degraded condition (a BMC that answers, but only after retries) and of
// its loss rate. Requests counts exchanges (a retransmission is not a new
// request); Timeouts the exchanges that gave up.
type PeerCounters struct {
	Requests    uint32 `json:"requests"`
	Retransmits uint32 `json:"retransmits"`
	Timeouts    uint32 `json:"timeouts"`
}

// PeerCounters returns the counters for addr (zero if never contacted).
func (e *Engine) PeerCounters(addr netip.AddrPort) PeerCounters {
	p := e.lookupPeer(addr)
	if p == nil {
		return PeerCounters{}
	}
	return PeerCounters{Requests: p.requests.Load(), Retransmits: p.retrans.Load(), Timeouts: p.timeouts.Load()}
}

type waiter struct {
	ch chan event
	// extra counts datagrams an exchange's accept func sent on its own
	// (Session.orphan's abort), each one more answer the BMC owes.
	extra int
}

// heard is what one exchange sent and what came back from the BMC, so the
// slot can outlive the exchange while the BMC still owes an answer.
type heard struct {
	copies int // datagrams sent that the BMC answers (the request's copies, extras)
	n      int // distinct datagrams from the BMC since the first copy
	// sums are hashes of what was heard: a network duplicate of an answer
	// is not the answer to another copy.
	sums [8]uint64
	ns   int
	// gone: the BMC's port is unreachable; nothing it owes will come.
	gone bool
}

// hear counts a datagram from the BMC (nil pkt: an ICMP error).
func (h *heard) hear(ev *event) {
	if ev.err != nil {
		h.gone = true
		return
	}
	sum := uint64(14695981039346656037)
	for _, c := range ev.pkt {
		sum = (sum ^ uint64(c)) * 1099511628211
	}
	for _, x := range h.sums[:h.ns] {
		if x == sum {
			return
		}
	}
	if h.ns < len(h.sums) {
		h.sums[h.ns] = sum
		h.ns++
	}
	h.n++
}

// owed reports whether the BMC may still be working on a copy.
func (h *heard) owed() bool { return !h.gone && h.n < h.copies }

// hold keeps a BMC's slot after its exchange ended while the BMC still owes
// an answer: until it comes or the last copy's retransmission timeout has
// passed, whoever asked and whatever they decided meanwhile.
type hold struct {
	heard
	timer *time.Timer
	done  chan struct{} // closed when the slot is given back
}

// awaitHold waits (at most limit) until p's slot is no longer held for an
// answer owed to an exchange that ended.
func (p *peer) awaitHold(limit time.Duration) {
	p.mu.Lock()
	h := p.hold
	p.mu.Unlock()
	if h == nil {
		return
	}
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case <-h.done:
	case <-t.C:
	}
}

// waiters and timers are shared by every exchange (see exchangeOpt).
var (
	waiters = sync.Pool{New: func() any { return &waiter{ch: make(chan event, 4)} }}
	timers  = sync.Pool{New: func() any {
		t := time.NewTimer(time.Hour)
		t.Stop()
		return t
	}}
)

// event is one routed datagram, or an ICMP error about the peer.
type event struct {
	pkt     []byte
	d       datagram
	err     error
	garbage bool // a datagram from this BMC that did not parse
	// stalePT is the payload type of a garbage RMCP+ datagram that parsed
	// but named a session of ours that does not exist (0 otherwise).
	stalePT byte
	at      time.Time
	src     netip.AddrPort
}

// tentative wraps what an accept func returns (with done=true) for an
// unauthenticated negative reply: an error status in a handshake message,
// or a handshake reply whose proof does not verify. Anyone who sees the
// console session ID on the path can forge one, so exchangeOpt does not
// take it on sight: it keeps listening until the reply window closes
// (without retransmitting: the BMC has answered), and a verified reply to
// the same request wins. The last tentative reply stands otherwise.
type tentative struct{ err error }

func (t *tentative) Error() string { return t.err.Error() }
func (t *tentative) Unwrap() error { return t.err }

// untentative is err without its tentative wrapper.
func untentative(err error) error {
	if t, ok := err.(*tentative); ok {
		return t.err
	}
	return err
}

// errBadReply is what an accept func returns (with done=false) for a
// datagram that was meant for this request but failed verification.
var errBadReply = errors.New("ipmi: reply failed verification")

// New opens the engine's sockets and starts their readers.
func New(cfg Config) (*Engine, error) {
	cfg.setDefaults()
	e := &Engine{
		log:      cfg.Logger,
		cfg:      cfg,
		peers:    make(map[netip.AddrPort]*peer),
		sessions: make(map[uint32]*Session),
	}
	src := cfg.Source
	if !src.IsValid() {
		src = netip.IPv4Unspecified()
	}
	for i := 0; i < cfg.Sockets; i++ {
		s, err := openSock(netip.AddrPortFrom(src, 0), cfg.SocketBuffer)
		if err != nil {
			e.Close()
			return nil, fmt.Errorf("ipmi: open socket: %w", err)
		}
		e.v4 = append(e.v4, s)
		e.startReader(s)
	}
	bySource := map[netip.Addr]*sock{}
	for _, r := range cfg.Routes {
		if !r.Prefix.IsValid() || !r.Prefix.Addr().Is4() || !r.Source.Is4() {
			e.Close()
			return nil, fmt.Errorf("ipmi: route %v from %v: an IPv4 prefix and an IPv4 source address", r.Prefix, r.Source)
		}
		s, ok := bySource[r.Source]
		if !ok {
			var err error
			if s, err = openSock(netip.AddrPortFrom(r.Source, 0), cfg.SocketBuffer); err != nil {
				e.Close()
				return nil, fmt.Errorf("ipmi: open socket on %v (route to %v): %w", r.Source, r.Prefix, err)
			}
			bySource[r.Source] = s
			e.startReader(s)
		}
		e.routes = append(e.routes, routeSocks{prefix: r.Prefix.Masked(), sock: s})
	}
	slices.SortStableFunc(e.routes, func(a, b routeSocks) int { return b.prefix.Bits() - a.prefix.Bits() })
	return e, nil
}

// routeSocks is one route's socket.
type routeSocks struct {
	prefix netip.Prefix
	sock   *sock
}

// routed is the socket of the longest route holding a, if any.
func (e *Engine) routed(a netip.Addr) *sock {
	for _, r := range e.routes {
		if r.prefix.Contains(a) {
			return r.sock
		}
	}
	return nil
}

func (e *Engine) startReader(s *sock) {
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		e.read(s)
	}()
}

// Close closes every socket. Sessions still open are abandoned; callers
// close their sessions first.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	e.mu.Unlock()
	for _, s := range e.v4 {
		s.c.Close()
	}
	closed := map[*sock]bool{}
	for _, r := range e.routes {
		if !closed[r.sock] {
			closed[r.sock] = true
			r.sock.c.Close()
		}
	}
	if e.v6 != nil {
		e.v6.c.Close()
	}
	e.wg.Wait()
	return nil
}

// Stats returns a snapshot of the counters.
func (e *Engine) Stats() Stats {
	e.mu.RLock()
	known := len(e.peers)
	e.mu.RUnlock()
	return Stats{
		Sent: e.c.sent.Load(), Received: e.c.received.Load(), Retransmits: e.c.retransmits.Load(),
		Malformed: e.c.malformed.Load(), Foreign: e.c.foreign.Load(), Stale: e.c.stale.Load(),
		BadAuth: e.c.badAuth.Load(), Unreachable: e.c.unreachable.Load(),
		SessionsOpened: e.c.opened.Load(), SessionsClosed: e.c.closed.Load(),
		CloseFailed: e.c.closeFailed.Load(), SessionsOpen: e.c.open.Load(), KnownBMCs: known,
	}
}

// peer returns (creating) the state for addr.
func (e *Engine) peer(addr netip.AddrPort) (*peer, error) {
	addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	if !addr.IsValid() || addr.Port() == 0 {
		return nil, fmt.Errorf("ipmi: invalid BMC address %v", addr)
	}
	e.mu.RLock()
	p, ok := e.peers[addr]
	closed := e.closed
	e.mu.RUnlock()
	if closed {
		return nil, ErrClosed
	}
	if ok {
		return p, nil
	}
	var s *sock
	if addr.Addr().Is4() {
		if s = e.routed(addr.Addr()); s == nil {
			s = e.v4[int(hashAddr(addr)%uint32(len(e.v4)))]
		}
	} else {
		e.v6once.Do(func() {
			e.v6, e.v6err = openSock(netip.AddrPortFrom(netip.IPv6Unspecified(), 0), e.cfg.SocketBuffer)
			if e.v6err == nil {
				e.startReader(e.v6)
			}
		})
		if e.v6err != nil {
			return nil, fmt.Errorf("ipmi: IPv6 socket: %w", e.v6err)
		}
		s = e.v6
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if p, ok := e.peers[addr]; ok {
		return p, nil
	}
	p = &peer{addr: addr, sock: s}
	e.peers[addr] = p
	return p, nil
}

func hashAddr(a netip.AddrPort) uint32 {
	b := a.Addr().As16()
	h := uint32(2166136261)
	for _, c := range b {
		h = (h ^ uint32(c)) * 16777619
	}
	return (h ^ uint32(a.Port())) * 16777619
}

// read is a socket's receive loop: route each datagram to the request
// waiting for it. No crypto here; the waiter verifies.
func (e *Engine) read(s *sock) {
	// recvmmsg: under load many datagrams wait at once; one system call
	// takes them all (up to readBatch).
	msgs := make([]ipv4.Message, readBatch)
	for i := range msgs {
		msgs[i].Buffers = [][]byte{make([]byte, 2048)}
	}
	for {
		n, err := s.batch.ReadBatch(msgs, 0)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// A queued ICMP error surfaces as a read error; the error
			// queue says which BMC it was about.
			e.routeErrors(s)
			continue
		}
		for i := 0; i < n; i++ {
			m := &msgs[i]
			ua, ok := m.Addr.(*net.UDPAddr)
			if !ok {
				continue
			}
			e.route(m.Buffers[0][:m.N], ua.AddrPort())
		}
		if e.cfg.ReadCoalesce > 0 && n < readBatch {
			time.Sleep(e.cfg.ReadCoalesce)
		}
	}
}

const readBatch = 32

// route hands one received datagram to the request waiting for it.
func (e *Engine) route(b []byte, src netip.AddrPort) {
	e.c.received.Add(1)
	pkt := make([]byte, len(b))
	copy(pkt, b)
	src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	d, err := parseDatagram(pkt)
	if err != nil {
		e.c.malformed.Add(1)
		// Tell the BMC's waiting request it answered with garbage, so a
		// timeout can say "malformed replies" rather than "silent".
		if p := e.lookupPeer(src); p != nil {
			e.deliverTo(p, event{garbage: true, pkt: pkt, at: time.Now()})
		}
		return
	}
	var p *peer
	if d.class == classIPMI && d.authType == authTypeRMCPP && (d.sessionID != 0 || d.consoleID != 0) {
		id := d.sessionID
		if id == 0 {
			id = d.consoleID
		}
		e.mu.RLock()
		sess := e.sessions[id]
		e.mu.RUnlock()
		if sess != nil && sess.p.addr == src {
			p = sess.p
		} else if p = e.lookupPeer(src); p != nil {
			// From a BMC we talk to, but no session of ours: a corrupted
			// or stale reply. Its request counts it as garbage (and sees
			// its payload type: an Open Session Response inside an old
			// session means the BMC kept that session for our port).
			e.deliverTo(p, event{garbage: true, pkt: pkt, stalePT: d.payloadType, at: time.Now()})
			return
		}
	} else {
		p = e.lookupPeer(src)
	}
	if p == nil {
		e.c.foreign.Add(1)
		return
	}
	e.deliverTo(p, event{pkt: pkt, d: d, at: time.Now(), src: src})
}

// routeErrors drains s's ICMP error queue, delivering each error to the
// BMC it names. An error is never pinned on whoever happens to be using
// the shared socket when it surfaces.
func (e *Engine) routeErrors(s *sock) {
	for _, ie := range s.drainErrors() {
		e.c.unreachable.Add(1)
		e.deliverTo(e.lookupPeer(ie.dst), event{err: ie.err, at: time.Now()})
	}
}

// send writes pkt to p. On a shared unconnected socket a pending ICMP error
// about some other BMC can surface as this send's error: route the queued
// errors to their owners and send again (twice at most). (Batching sends
// with sendmmsg was measured: no gain worth its complexity.)
func (e *Engine) send(p *peer, pkt []byte) error {
	var err error
	for try := 0; try < 3; try++ {
		if _, err = p.sock.c.WriteToUDPAddrPort(pkt, p.addr); err == nil {
			e.c.sent.Add(1)
			return nil
		}
		if !isSocketError(err) {
			return err
		}
		e.routeErrors(p.sock)
	}
	return err
}

func (e *Engine) lookupPeer(a netip.AddrPort) *peer {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.peers[netip.AddrPortFrom(a.Addr().Unmap(), a.Port())]
}

func (e *Engine) deliverTo(p *peer, ev event) {
	if p == nil {
		e.c.foreign.Add(1)
		return
	}
	// Send under the lock (never blocks): once an exchange has cleared
	// p.wait, its pooled waiter may serve another BMC and must get
	// nothing more from this one.
	p.mu.Lock()
	w := p.wait
	if w == nil {
		e.c.stale.Add(1)
		if h := p.hold; h != nil {
			// The answer a held slot waits for (or an ICMP error: none
			// will come).
			h.hear(&ev)
			if !h.owed() {
				p.hold = nil
				h.timer.Stop()
				p.mu.Unlock()
				p.slot.release()
				close(h.done)
				return
			}
		}
		p.mu.Unlock()
		return
	}
	defer p.mu.Unlock()
	select {
	case w.ch <- ev:
	default:
		e.c.stale.Add(1) // the waiter is flooded; drop like the wire would
	}
}

// exchange sends build()'s datagram to p and waits for a reply that accept
// takes, retransmitting with back-off. Only one exchange per peer runs at a
// time. accept returns done=true to finish (with err to fail); done=false
// ignores the datagram (stale, duplicate, forged) and keeps waiting.
func (e *Engine) exchange(ctx context.Context, p *peer, stage Stage, build func() []byte,
	accept func(ev event) (done bool, err error)) (attempts int, rtt time.Duration, err error) {
	return e.exchangeOpt(ctx, p, stage, build, accept, false)
}

// exchangeOpt is exchange; with linger, a request that was retransmitted
// keeps listening after its first accepted reply, for about as long as that
// reply took, and hands every further reply to accept too. Handshake steps
// use it: a BMC answers each copy of a retransmitted RAKP message, and only
// its last answer matches its state.
func (e *Engine) exchangeOpt(ctx context.Context, p *peer, stage Stage, build func() []byte,
	accept func(ev event) (done bool, err error), linger bool) (attempts int, rtt time.Duration, err error) {
	if ctx.Err() != nil { // select picks at random among ready cases: check first
		return 0, 0, &StageError{Stage: stage, Err: ctxErr(ctx)}
	}
	limit := requestTimeout(ctx)
	if err := p.slot.acquire(ctx, limit); err != nil {
		return 0, 0, &StageError{Stage: stage, Err: err}
	}
	p.requests.Add(1)

	// The waiter and the timer come from pools: an idle BMC holds neither
	// (together about 1 KiB), and at most one exchange per BMC runs.
	w := waiters.Get().(*waiter)
	p.mu.Lock()
	p.wait = w
	p.mu.Unlock()
	// The slot is given back by finish: at once when the BMC answered
	// every copy, else when it does or the last copy's timeout passes.
	var h heard
	var sentAt time.Time
	var rto time.Duration
	defer func() { e.finish(p, w, &h, sentAt.Add(rto)) }()

	start := time.Now()
	var giveUp time.Time // the request's own limit (WithRequestTimeout)
	if limit > 0 {
		giveUp = start.Add(limit)
	}
	rto = e.rto(p)
	if linger && rto < handshakeMinRTO {
		// Handshake messages are not idempotent on a BMC (each copy of
		// RAKP 1 draws a new random number; threaded BMCs may even answer
		// copies out of order): retransmit them only after a long wait.
		rto = handshakeMinRTO
	}
	timer := timers.Get().(*time.Timer)
	defer func() {
		timer.Stop() // no stale tick can remain (Go ≥ 1.23 timers)
		timers.Put(timer)
	}()
	garbage := 0
	fail := func(err error) (int, time.Duration, error) {
		if garbage > 0 && (errors.Is(err, ErrNoResponse)) {
			err = fmt.Errorf("%w: %d replies were malformed or failed verification", ErrMalformed, garbage)
		}
		return attempts, 0, &StageError{Stage: stage, Attempts: attempts, Elapsed: time.Since(start), Err: err}
	}
	// held is an unauthenticated negative answer (tentative) waiting for
	// the reply window to close; heldRTT its reply time.
	var held error
	var heldRTT time.Duration
	verdict := func(aerr error) (int, time.Duration, error) {
		var se *StageError
		if errors.As(aerr, &se) {
			se.Attempts, se.Elapsed = attempts, time.Since(start)
			return attempts, rtt, aerr // keep any wrapper (retryHandshake)
		}
		return attempts, rtt, &StageError{Stage: stage, Attempts: attempts, Elapsed: time.Since(start), Err: aerr}
	}
	for attempts = 1; ; attempts++ {
		pkt := build()
		sentAt = time.Now()
		if werr := e.send(p, pkt); werr != nil {
			return fail(fmt.Errorf("%w: send: %v", ErrNoResponse, werr))
		}
		h.copies++
		if attempts > 1 {
			e.c.retransmits.Add(1)
			p.retrans.Add(1)
			e.log.Debug("retransmit", "bmc", p.addr, "stage", stage, "attempt", attempts, "rto", rto)
		}
		// One timer serves both the retransmission and the request's limit:
		// it fires at whichever comes first.
		last := false
		next := rto
		if limit > 0 {
			if left := time.Until(giveUp); left <= next {
				next, last = left, true
			}
		}
		timer.Reset(next)
		timerAt := sentAt.Add(next)
	wait:
		for {
			select {
			case ev := <-w.ch:
				h.hear(&ev)
				if ev.err != nil {
					if held != nil {
						continue // an answer is in hand; keep waiting for a verified one
					}
					return fail(ev.err)
				}
				if ev.garbage {
					garbage++
					if ev.stalePT != 0 {
						// Accept funcs may recognise a stale session's
						// reply (see Session.openSession).
						if done, aerr := accept(ev); done {
							return attempts, 0, aerr
						}
					}
					continue
				}
				done, aerr := accept(ev)
				if !done {
					if aerr != nil {
						garbage++
					}
					continue
				}
				if t, ok := aerr.(*tentative); ok {
					if held == nil {
						// The window: long enough for the BMC's own reply to
						// arrive behind a forger's (4 of this reply's times,
						// at least the BMC's retransmission timeout), never
						// past the next retransmission.
						heldRTT = ev.at.Sub(sentAt)
						if end := sentAt.Add(max(4*heldRTT, e.rto(p))); end.Before(timerAt) {
							timer.Reset(time.Until(end))
							timerAt = end
						}
					}
					held = t.err
					continue
				}
				rtt = ev.at.Sub(sentAt)
				if attempts == 1 {
					p.observeRTT(rtt)
					e.observeRTT(rtt)
				} else {
					p.backoff.Store(int64(rto))
					if linger {
						aerr = e.linger(ctx, w, &h, sentAt.Add(min(ev.at.Sub(start), time.Second)), accept, aerr)
					}
				}
				if aerr != nil {
					return verdict(untentative(aerr))
				}
				return attempts, rtt, nil
			case <-timer.C:
				if held != nil {
					// The window closed with no verified reply: the
					// unauthenticated answer stands (it was an answer, so
					// no RTT sample and no retransmission).
					rtt = heldRTT
					return verdict(held)
				}
				if last {
					p.timeouts.Add(1)
					return fail(ErrNoResponse)
				}
				break wait
			case <-ctx.Done():
				if held != nil {
					rtt = heldRTT
					return verdict(held)
				}
				if errors.Is(ctx.Err(), context.DeadlineExceeded) {
					p.timeouts.Add(1)
				}
				return fail(ctxErr(ctx))
			}
		}
		if attempts >= e.cfg.MaxAttempts {
			p.timeouts.Add(1)
			return fail(ErrNoResponse)
		}
		rto *= 2
		if limit := max(e.cfg.MaxRTO, 2*time.Duration(p.srtt.Load())); rto > limit {
			rto = limit
		}
	}
}

// requestTimeoutKey carries WithRequestTimeout's limit in a context.
type requestTimeoutKey struct{}

// WithRequestTimeout returns ctx carrying a limit for each request made
// with it: a request (with its retransmissions) that has no accepted reply
// d after it was first sent fails with ErrNoResponse, as if its own
// context.WithTimeout had expired — but without a timer context per
// request: the engine folds the limit into the retransmission timer it
// runs anyway. A check of thousands of BMCs makes several requests per BMC;
// a timer context each was about a tenth of its CPU. It bounds each
// request, not their sum; ctx's own deadline still applies.
func WithRequestTimeout(ctx context.Context, d time.Duration) context.Context {
	return context.WithValue(ctx, requestTimeoutKey{}, d)
}

func requestTimeout(ctx context.Context) time.Duration {
	d, _ := ctx.Value(requestTimeoutKey{}).(time.Duration)
	return d
}

// token is a per-BMC semaphore of one (a request in flight, a session
// open). Taking a free one and giving it back allocate nothing; a caller
// that must wait makes a channel, and the token passes to the waiters in
// the order they came. (It replaced a buffered channel each: two channels
// were 192 bytes of every known BMC's memory.)
type token struct {
	mu      sync.Mutex
	held    bool
	waiters []chan struct{} // closed when the token is handed to its waiter
}

// acquire takes t, waiting at most limit (0: until ctx is done). The usual
// case — free at once — costs no timer and no allocation.
func (t *token) acquire(ctx context.Context, limit time.Duration) error {
	t.mu.Lock()
	if !t.held {
		t.held = true
		t.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	t.waiters = append(t.waiters, ch)
	t.mu.Unlock()
	var expired <-chan time.Time
	if limit > 0 {
		tm := time.NewTimer(limit)
		defer tm.Stop()
		expired = tm.C
	}
	var err error
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		err = ctxErr(ctx)
	case <-expired:
		err = ErrNoResponse
	}
	t.mu.Lock()
	for i, w := range t.waiters {
		if w == ch {
			t.waiters = append(t.waiters[:i], t.waiters[i+1:]...)
			if len(t.waiters) == 0 {
				t.waiters = nil
			}
			t.mu.Unlock()
			return err
		}
	}
	t.mu.Unlock()
	// Handed over while giving up: pass it on.
	t.release()
	return err
}

// release gives t back: to the longest waiter, if any.
func (t *token) release() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.held {
		panic("ipmi: token released while free")
	}
	if len(t.waiters) == 0 {
		t.held = false
		return
	}
	ch := t.waiters[0]
	t.waiters = t.waiters[1:]
	if len(t.waiters) == 0 {
		t.waiters = nil
	}
	close(ch) // held stays true: the waiter has it
}

// finish ends an exchange with p: the waiter is detached (what it still
// holds is counted as heard) and the slot given back — at once when the
// BMC answered every copy sent (or its port is unreachable), else when the
// answer it owes arrives or at until (the last copy's retransmission
// timeout), whichever comes first. A caller that gave up (cancelled,
// out of time, an answer taken from an earlier copy while a retransmitted
// one is still at the BMC) thus never puts a second request of ours in
// front of a BMC that is still working on the first.
func (e *Engine) finish(p *peer, w *waiter, h *heard, until time.Time) {
	p.mu.Lock()
	p.wait = nil
	// Nothing is delivered to w any more: count and drop what it holds.
	for drained := false; !drained; {
		select {
		case ev := <-w.ch:
			h.hear(&ev)
		default:
			drained = true
		}
	}
	h.copies += w.extra
	w.extra = 0
	waiters.Put(w)
	d := time.Until(until)
	if !h.owed() || d <= 0 {
		p.mu.Unlock()
		p.slot.release()
		return
	}
	hd := &hold{heard: *h, done: make(chan struct{})}
	hd.timer = time.AfterFunc(d, func() { p.endHold(hd) })
	p.hold = hd
	p.mu.Unlock()
}

// endHold gives back the slot hd kept, unless an answer already did.
func (p *peer) endHold(hd *hold) {
	p.mu.Lock()
	if p.hold != hd {
		p.mu.Unlock()
		return
	}
	p.hold = nil
	p.mu.Unlock()
	p.slot.release()
	close(hd.done)
}

// sendExtra sends pkt to p from inside an exchange's accept func, a
// datagram the BMC answers besides the request's own copies: the slot is
// held for its answer too.
func (e *Engine) sendExtra(p *peer, pkt []byte) error {
	p.mu.Lock()
	if p.wait != nil {
		p.wait.extra++
	}
	p.mu.Unlock()
	return e.send(p, pkt)
}

// linger keeps feeding replies to accept until the deadline; the result of
// the last reply accept took (done) wins.
func (e *Engine) linger(ctx context.Context, w *waiter, h *heard, until time.Time, accept func(event) (bool, error), last error) error {
	t := time.NewTimer(time.Until(until))
	defer t.Stop()
	for {
		select {
		case ev := <-w.ch:
			h.hear(&ev)
			if ev.err != nil || ev.garbage {
				continue
			}
			if done, err := accept(ev); done {
				if t, ok := err.(*tentative); ok {
					if last == nil {
						continue // an unverified refusal never overrides a verified answer
					}
					err = t.err
				}
				last = err
			}
		case <-t.C:
			return last
		case <-ctx.Done():
			return last
		}
	}
}

// ctxErr maps a done context to the engine's vocabulary: a deadline is "no
// response"; a cancellation stays context.Canceled.
func ctxErr(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return ErrNoResponse
	}
	return ctx.Err()
}

// newConsoleID reserves a console session ID unique within this engine.
func (e *Engine) newConsoleID(s *Session) (uint32, error) {
	var b [4]byte
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return 0, ErrClosed
	}
	for i := 0; i < 64; i++ {
		if _, err := rand.Read(b[:]); err != nil {
			return 0, err
		}
		id := binary.LittleEndian.Uint32(b[:])
		if id == 0 {
			continue
		}
		if _, taken := e.sessions[id]; taken {
			continue
		}
		e.sessions[id] = s
		return id, nil
	}
	return 0, errors.New("ipmi: could not allocate a console session ID")
}

func (e *Engine) releaseConsoleID(id uint32) {
	e.mu.Lock()
	delete(e.sessions, id)
	e.mu.Unlock()
}

func randomTag() byte {
	var b [1]byte
	_, _ = rand.Read(b[:])
	if b[0] == 0xff {
		b[0] = 0
	}
	return b[0]
}

// Ping sends an ASF Presence Ping and waits for the Pong. It is the
// cheapest "is anything there" question and needs no credentials. Each
// attempt carries its own tag, so the round-trip time is exact even after
// a retransmission (and teaches the engine this BMC's RTT).
func (e *Engine) Ping(ctx context.Context, addr netip.AddrPort) (time.Duration, error) {
	p, err := e.peer(addr)
	if err != nil {
		return 0, err
	}
	base := (randomTag() % 0x0f) << 4 // never 0xf_: tag 0xff is reserved
	var sent [16]time.Time
	n := 0
	var rtt time.Duration
	_, _, err = e.exchange(ctx, p, StagePing, func() []byte {
		tag := base | byte(n&0x0f)
		sent[n&0x0f] = time.Now()
		n++
		return buildPing(tag)
	}, func(ev event) (bool, error) {
		if ev.d.class != classASF || ev.d.asfType != asfTypePong || ev.d.asfTag&0xf0 != base || int(ev.d.asfTag&0x0f) >= n {
			return false, nil
		}
		rtt = ev.at.Sub(sent[ev.d.asfTag&0x0f])
		return true, nil
	})
	if err == nil {
		p.observeRTT(rtt)
	}
	return rtt, err
}
