package ipmi

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// Cipher suite negotiation, as a careful human with ipmitool does it: on
// first contact ask the BMC which suites it offers (Get Channel Cipher
// Suites), propose the strongest one of the allow-list it offers, and fall
// back in the allow-list's order when the BMC refuses a suite — with an
// RMCP+ status that says so, with 0x01 "insufficient resources" (Intel
// M50CYP answers it for a suite it does not do), or by answering with
// another suite's algorithms (pyghmi answers suite 3's to any proposal).
// What worked is remembered per BMC (Profile), so a steady-state check
// costs no extra round trip; a learned suite that stops working is
// forgotten and the BMC negotiated again within the same Open.

// Profile returns what the engine has learned about addr (zero if never
// contacted or nothing learned).
func (e *Engine) Profile(addr netip.AddrPort) Profile {
	p := e.lookupPeer(netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port()))
	if p == nil {
		return Profile{}
	}
	return p.profile()
}

func (p *peer) profile() Profile {
	var pr Profile
	if s := p.suite.Load(); s != 0 {
		pr.Suite, pr.Known = CipherSuite(s-1), true
	}
	pr.Quirks = Quirk(p.quirks.Load())
	return pr
}

// Learn seeds what is known about addr (a profile kept in the store from
// an earlier run) when the engine knows nothing of it yet: what the engine
// learned itself is newer.
func (e *Engine) Learn(addr netip.AddrPort, pr Profile) error {
	p, err := e.peer(addr)
	if err != nil {
		return err
	}
	if p.suite.Load() != 0 || p.quirks.Load() != 0 {
		return nil // the engine's own knowledge is newer
	}
	if pr.Known && pr.Suite.Supported() && pr.Suite != 0 {
		p.suite.CompareAndSwap(0, uint32(pr.Suite)+1)
	}
	p.quirks.Or(uint32(pr.Quirks))
	return nil
}

// SetQuirk sets or clears quirk q of addr (the probe learns "no ping").
func (e *Engine) SetQuirk(addr netip.AddrPort, q Quirk, on bool) {
	p, err := e.peer(addr)
	if err != nil {
		return
	}
	if on {
		p.quirks.Or(uint32(q))
	} else {
		p.quirks.And(^uint32(q))
	}
}

// Forget drops what was learned about addr's cipher suite: the next Open
// negotiates again.
func (e *Engine) Forget(addr netip.AddrPort) {
	if p := e.lookupPeer(netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())); p != nil {
		p.suite.Store(0)
	}
}

// suiteListTimeout bounds Get Channel Cipher Suites: a BMC that answered
// the first contact but ignores this command costs at most this much, once.
func suiteListTimeout(ctx context.Context) time.Duration {
	d := requestTimeout(ctx) / 3
	if d <= 0 || d > time.Second {
		d = time.Second
	}
	return d
}

// negotiable reports whether err, a failure to set up a session with one
// suite, could be about the suite rather than the account or the BMC's
// state: the next suite is worth trying.
func negotiable(err error) bool {
	var se *StageError
	if !errors.As(err, &se) {
		return false
	}
	if errors.Is(err, ErrNoCipherSuite) {
		return true
	}
	if se.Stage != StageOpenSession {
		return false
	}
	switch se.Status {
	case 0x01, // LAN Auth #28: "insufficient resources" for a suite it does not do
		0x0a, 0x12: // LAN Auth #19/#20: a disabled suite answered with 0x0a or 0x12
		return true
	}
	return errors.Is(err, ErrMalformed) // an answer we could not use
}

// negotiate sets up the session's suite: the learned one first, else the
// strongest allowed; when that fails with a negotiable error, the rest
// (negotiateMore). The usual case — the first proposal works — keeps this
// frame small: it is on the stack through the whole handshake, and a
// check's goroutine stack must stay within 8 KiB (see probe.presize).
func (s *Session) negotiate(ctx context.Context, cr Credentials, allow []CipherSuite) (*Negotiation, error) {
	n := &Negotiation{Allowed: allow}
	first, learned := allow[0], false
	if last := s.p.suite.Load(); last != 0 && slices.Contains(allow, CipherSuite(last-1)) {
		first, learned = CipherSuite(last-1), true
	}
	err := s.try(ctx, cr, first, allow, n)
	if err == nil {
		n.Suite, n.Learned = s.suite, learned
		n.Why = firstWhy(n, first, learned)
		return n, nil
	}
	return s.negotiateMore(ctx, cr, allow, n, first, learned, err)
}

// workedLast are the reasons "cipher suite N worked last time", each made
// once: the monitor's usual check gives one.
var workedLast [256]atomic.Pointer[string]

func workedLastTime(s CipherSuite) string {
	if m := workedLast[s].Load(); m != nil {
		return *m
	}
	m := s.String() + " worked last time"
	workedLast[s].Store(&m)
	return m
}

//go:noinline
func firstWhy(n *Negotiation, proposed CipherSuite, learned bool) string {
	switch {
	case learned:
		return workedLastTime(proposed)
	case len(n.Allowed) == 1:
		return fmt.Sprintf("%v is the only suite allowed", n.Suite)
	}
	return why(n, proposed)
}

// negotiateMore goes on after the first proposal, first, failed with
// firstErr: the learned suite is forgotten, the strongest allowed suite
// proposed, the one allowed suite left proposed, or the BMC asked what it
// offers and the allowed suites it offers tried in order.
//
//go:noinline
func (s *Session) negotiateMore(ctx context.Context, cr Credentials, allow []CipherSuite, n *Negotiation, first CipherSuite, learned bool, firstErr error) (*Negotiation, error) {
	p := s.p
	n.Learned = learned
	tried := map[CipherSuite]bool{}
	var lastErr error
	busy := false
	record := func(suite CipherSuite, err error) (bool, error) {
		tried[suite] = true
		if err == nil {
			n.Suite = s.suite
			if busy {
				n.Quirks |= QuirkStatus01
			}
			return true, nil
		}
		if !negotiable(err) || ctx.Err() != nil {
			return true, err
		}
		var se *StageError
		errors.As(err, &se)
		n.Tried = append(n.Tried, SuiteTry{Suite: suite, Status: se.Status, Error: err.Error()})
		if se.Status == 0x01 {
			busy = true
		}
		lastErr = err
		return false, nil
	}
	attempt := func(suite CipherSuite) (bool, error) {
		return record(suite, s.try(ctx, cr, suite, allow, n))
	}
	if done, err := record(first, firstErr); done {
		return n, err
	}
	if learned {
		// The learned suite stopped working: forget it and negotiate.
		p.suite.Store(0)
	}
	if len(allow) == 1 {
		// Nothing to choose: it was proposed (an explicit pin, or an audit
		// trying one suite whatever the BMC lists, LAN Auth #15).
		// Refused: what does the BMC offer? (For the evidence and the
		// remedy.)
		if offered, err := s.e.offeredSuites(WithRequestTimeout(ctx, suiteListTimeout(ctx)), p); err == nil {
			n.Asked, n.Offered = true, offered
		}
		var se *StageError
		if errors.As(lastErr, &se) {
			se.Negotiation = n
			// Refused, and not offered: not our suite — whatever the
			// status said (0x01 included, LAN Auth #28).
			if n.Offered != nil && !slices.Contains(n.Offered, allow[0]) && !errors.Is(se.Err, ErrNoCipherSuite) {
				se.Err = fmt.Errorf("%w: the BMC offers %s (%v)", ErrNoCipherSuite, listSuites(n.Offered), se.Err)
			}
		}
		n.Why = fmt.Sprintf("%v, the only suite allowed, was refused", allow[0])
		if n.Offered != nil {
			n.Why += fmt.Sprintf("; the BMC offers %s", listSuites(n.Offered))
		}
		return n, lastErr
	}
	// The learned suite failed: propose the strongest allowed suite, as
	// on first contact (negotiate). A BMC that accepts it offers it, so
	// the outcome is the one asking first would give, without the extra
	// round trip for every healthy BMC (a fresh `lightsout check` is first
	// contact for the whole fleet).
	if !tried[allow[0]] {
		if done, err := attempt(allow[0]); done {
			if err == nil {
				n.Why = why(n, allow[0])
			}
			return n, err
		}
	}
	// Refused. With one allowed suite left, propose it: one extra round
	// trip, no more (the default list, 17 then 3).
	var rest []CipherSuite
	for _, a := range allow {
		if !tried[a] {
			rest = append(rest, a)
		}
	}
	if len(rest) == 1 {
		if done, err := attempt(rest[0]); done {
			if err == nil {
				n.Why = why(n, rest[0])
			}
			return n, err
		}
	}
	// Otherwise (and for the evidence when that was refused too) ask what
	// the BMC offers, as ipmitool does, and go on with the allowed suites
	// it offers.
	list := allow
	offered, err := s.e.offeredSuites(WithRequestTimeout(ctx, suiteListTimeout(ctx)), p)
	n.Asked = true
	switch {
	case err == nil:
		n.Offered = offered
		list = nil
		for _, a := range allow {
			if slices.Contains(offered, a) {
				list = append(list, a)
			}
		}
		if len(list) == 0 {
			n.Why = fmt.Sprintf("the BMC offers %s, none of the allowed %s", listSuites(offered), listSuites(allow))
			return n, &StageError{Stage: StageOpenSession, Err: fmt.Errorf("%w: the BMC offers %s, we allow %s", ErrNoCipherSuite, listSuites(offered), listSuites(allow)), Negotiation: n}
		}
	case errors.Is(err, ErrPortUnreachable), errors.Is(err, ErrHostUnreachable), ctx.Err() != nil:
		return n, err
	default:
		n.Quirks |= QuirkNoSuiteList
	}
	for _, suite := range list {
		if tried[suite] {
			continue
		}
		if done, err := attempt(suite); done {
			if err == nil {
				n.Why = why(n, suite)
			}
			return n, err
		}
	}
	if lastErr == nil {
		lastErr = &StageError{Stage: StageOpenSession, Err: ErrNoCipherSuite}
	}
	var se *StageError
	if errors.As(lastErr, &se) {
		se.Negotiation = n
		// Status 0x01 is "no free session slot" only once every suite that
		// could work has been tried, and only from a suite the BMC offers
		// (or when its offer is unknown): for a suite it does not offer,
		// 0x01 means "not this suite" (LAN Auth #28).
		slot := false
		for _, t := range n.Tried {
			if t.Status == 0x01 && (n.Offered == nil || slices.Contains(n.Offered, t.Suite)) {
				slot = true
			}
		}
		switch {
		case slot && !errors.Is(se.Err, ErrNoSessionSlot):
			se.Status, se.Err = 0x01, ErrNoSessionSlot
		case !slot && errors.Is(se.Err, ErrNoSessionSlot):
			se.Err = fmt.Errorf("%w: status 0x01 only for suites the BMC does not offer", ErrNoCipherSuite)
		}
	}
	n.Why = fmt.Sprintf("no allowed suite worked (tried %s)", triedList(n.Tried))
	return n, lastErr
}

func why(n *Negotiation, suite CipherSuite) string {
	var b strings.Builder
	switch {
	case n.Offered != nil:
		fmt.Fprintf(&b, "the BMC offers %s; %v is the strongest of them in the allow-list %s", listSuites(n.Offered), n.Suite, listSuites(n.Allowed))
	case n.Quirks&QuirkNoSuiteList != 0:
		fmt.Fprintf(&b, "the BMC did not list its cipher suites; %v is the first of the allow-list %s that worked", n.Suite, listSuites(n.Allowed))
	case len(n.Tried) == 0 && n.Suite == suite:
		fmt.Fprintf(&b, "%v is the strongest of the allow-list %s, and the BMC accepted it", n.Suite, listSuites(n.Allowed))
	default:
		fmt.Fprintf(&b, "%v from the allow-list %s", n.Suite, listSuites(n.Allowed))
	}
	if n.Suite != suite {
		fmt.Fprintf(&b, " (proposed %v, the BMC answered with %v's algorithms)", suite, n.Suite)
	}
	if len(n.Tried) > 0 {
		fmt.Fprintf(&b, "; refused before: %s", triedList(n.Tried))
	}
	return b.String()
}

func triedList(t []SuiteTry) string {
	parts := make([]string, len(t))
	for i, x := range t {
		parts[i] = fmt.Sprintf("%d", x.Suite)
		if x.Status != 0 {
			parts[i] += fmt.Sprintf(" (status %#02x)", x.Status)
		}
	}
	return strings.Join(parts, ", ")
}

func listSuites(l []CipherSuite) string {
	parts := make([]string, len(l))
	for i, s := range l {
		parts[i] = fmt.Sprint(uint8(s))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// errStaleSession: the BMC answered Open Session inside an old session of
// our source port (QuirkStaleSession).
var errStaleSession = fmt.Errorf("%w: Open Session answered inside a closed session of this console port", ErrMalformed)

// resetPort sends a sessionless Get Channel Authentication Capabilities,
// which makes a BMC that keeps sessions per console port
// (QuirkStaleSession) drop the old one.
func (s *Session) resetPort(ctx context.Context, cr Credentials) error {
	_, _, err := s.e.AuthCaps(ctx, s.p.addr, cr.Privilege)
	return err
}

// try runs the whole handshake with one suite. The rare paths are
// functions of their own, so this frame stays small: it is on the stack
// through the handshake (see negotiate).
func (s *Session) try(ctx context.Context, cr Credentials, suite CipherSuite, allow []CipherSuite, n *Negotiation) error {
	if Quirk(s.p.quirks.Load())&QuirkStaleSession != 0 {
		if err := s.resetPort(ctx, cr); err != nil {
			return err
		}
	}
	if err := s.openSession(ctx, cr, suite, allow, n); err != nil {
		if !errors.Is(err, errStaleSession) {
			return err
		}
		if err := s.reopenStale(ctx, cr, suite, allow, n); err != nil {
			return err
		}
	}
	if err := s.rakp(ctx, cr); err != nil {
		return s.afterRAKP(ctx, cr, allow, n, err)
	}
	return nil
}

// reopenStale resets a BMC that answered Open Session inside an old
// session of our port (QuirkStaleSession), learns that, and opens again.
//
//go:noinline
func (s *Session) reopenStale(ctx context.Context, cr Credentials, suite CipherSuite, allow []CipherSuite, n *Negotiation) error {
	s.e.log.Debug("stale session for our port; resetting with Get Channel Authentication Capabilities", "bmc", s.p.addr)
	n.Quirks |= QuirkStaleSession
	s.p.quirks.Or(uint32(QuirkStaleSession))
	if err := s.resetPort(ctx, cr); err != nil {
		return err
	}
	return s.openSession(ctx, cr, suite, allow, n)
}

// afterRAKP handles a failed RAKP exchange: the BMC answered a
// retransmitted RAKP 1 twice and moved on to a random number we did not
// use, so start over cleanly (twice at most); otherwise the error as the
// account's verdict.
//
//go:noinline
func (s *Session) afterRAKP(ctx context.Context, cr Credentials, allow []CipherSuite, n *Negotiation, err error) error {
	for restarts := 0; restarts < 2 && errors.Is(err, errRetryHandshake); restarts++ {
		s.e.log.Debug("handshake restart", "bmc", s.p.addr, "err", err)
		if err = s.openSession(ctx, cr, s.suite, allow, n); err == nil {
			err = s.rakp(ctx, cr)
		}
	}
	var rh *retryHandshake
	if errors.As(err, &rh) {
		err = rh.StageError
	}
	return err
}

// offeredSuites reads Get Channel Cipher Suites for p.
func (e *Engine) offeredSuites(ctx context.Context, p *peer) ([]CipherSuite, error) {
	l, lenient, err := e.cipherSuites(ctx, p.addr)
	if err != nil {
		return nil, err
	}
	if lenient {
		p.quirks.Or(uint32(QuirkCipherTags))
	}
	if len(l) == 0 {
		return nil, malformed("empty cipher suite list")
	}
	return l, nil
}

// counterSuite finds the allowed suite whose algorithms the BMC answered.
func counterSuite(allow []CipherSuite, auth, integ, conf uint8, cipher0 bool) (CipherSuite, bool) {
	for _, a := range allow {
		algs := suites[a]
		if uint8(algs.auth) == auth && uint8(algs.integ) == integ && uint8(algs.conf) == conf && (a != 0 || cipher0) {
			return a, true
		}
	}
	return 0, false
}
