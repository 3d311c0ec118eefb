package agent

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lightsout/lightsout/internal/hostlink"
	"github.com/lightsout/lightsout/internal/pki"
)

// agentd is a running agent: one connection loop per manager, the
// certificate watcher, the host link checker, and what they share (the
// requests in flight, the events not yet delivered, the status file).
type agentd struct {
	cfg Config
	// root is Run's context: every manager's loop is its child, whichever
	// connection (or op) discovered the manager.
	root context.Context

	mu         sync.Mutex
	conns      map[string]*mconn // Up connections by manager address
	loops      map[string]context.CancelFunc
	views      map[string]*ManagerView
	discovered map[string]bool
	outbox     []msg // events waiting for an Up manager
	dropped    int
	nextReq    uint64
	link       *LinkStatus
	linkRate   []rateSample
	linkSince  time.Time // the first link check
	certs      map[string]*CertView
	warned     map[string]time.Time // kind → last expiry warning
	expired    map[string]bool
	triedToken string
	lastWrite  time.Time

	statusMu sync.Mutex // the status file
	idMu     sync.Mutex // certificate files: renewals swap them
	// linkMu runs one host link check at a time, so the check that starts
	// last (a restart-link op after a renewal-kicked check) reports last:
	// a slower, older check never overwrites a newer answer.
	linkMu   sync.Mutex
	linkCert *tls.Certificate

	certKick, linkKick, discoverKick chan struct{}
	wg                               sync.WaitGroup
}

type rateSample struct {
	at time.Time
	n  int
}

// mconn is an Up connection to a manager.
type mconn struct {
	addr string
	send func(msg) error
	mu   sync.Mutex
	pend map[uint64]chan msg
}

func (c *mconn) deliver(m msg) bool {
	c.mu.Lock()
	ch, ok := c.pend[m.Req]
	delete(c.pend, m.Req)
	c.mu.Unlock()
	if ok {
		ch <- m
	}
	return ok
}

func newAgentd(cfg Config) *agentd {
	return &agentd{cfg: cfg, conns: map[string]*mconn{}, loops: map[string]context.CancelFunc{},
		views: map[string]*ManagerView{}, discovered: map[string]bool{}, certs: map[string]*CertView{},
		warned: map[string]time.Time{}, expired: map[string]bool{},
		certKick: make(chan struct{}, 1), linkKick: make(chan struct{}, 1), discoverKick: make(chan struct{}, 1)}
}

func kick(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (a *agentd) emit(s string) {
	if a.cfg.OnEvent != nil {
		a.cfg.OnEvent(s)
	}
}

// run keeps the managers' connections, the certificates and the host link
// until ctx ends.
func (a *agentd) run(ctx context.Context) {
	a.root = ctx
	a.mu.Lock()
	for _, m := range a.configured() {
		a.startLoopLocked(m, false)
	}
	a.mu.Unlock()
	a.writeStatus(true)
	a.wg.Add(2)
	go a.certLoop(ctx)
	go a.discoverLoop(ctx)
	if a.cfg.Link != nil {
		a.wg.Add(1)
		go a.linkLoop(ctx)
	}
	<-ctx.Done()
	a.wg.Wait()
	a.writeStatus(true)
}

func (a *agentd) configured() []string {
	out := []string{a.cfg.Manager}
	for _, m := range a.cfg.Managers {
		if m != "" && !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out
}

func (a *agentd) startLoopLocked(addr string, discovered bool) {
	if _, ok := a.loops[addr]; ok || a.root.Err() != nil {
		return // known, or shutting down (no new loop while run waits)
	}
	lctx, cancel := context.WithCancel(a.root)
	a.loops[addr] = cancel
	a.discovered[addr] = discovered
	a.views[addr] = &ManagerView{Address: addr, State: MgrConnecting, Since: time.Now(), Discovered: discovered}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.managerLoop(lctx, addr)
	}()
}

type backoff struct {
	cur, min, max time.Duration
}

func (a *agentd) newBackoff() *backoff {
	return &backoff{cur: a.cfg.MinBackoff, min: a.cfg.MinBackoff, max: a.cfg.MaxBackoff}
}

func (b *backoff) reset() { b.cur = b.min }

func (b *backoff) wait(ctx context.Context) error {
	d := b.cur/2 + rand.N(b.cur/2+1)
	b.cur = min(2*b.cur, b.max)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// managerLoop keeps one manager's connection, with back-off.
func (a *agentd) managerLoop(ctx context.Context, addr string) {
	bo := a.newBackoff()
	for ctx.Err() == nil {
		tc, err := loadIdentity(a.cfg.DataDir)
		if err != nil {
			a.setView(addr, MgrRefused, "local identity: "+err.Error(), 0)
			if bo.wait(ctx) != nil {
				return
			}
			continue
		}
		tc.Time = a.cfg.Clock
		up, reason, err := a.connect(ctx, addr, tc)
		if ctx.Err() != nil {
			return
		}
		if up {
			bo.reset()
		}
		if reason != "" && certRefusal(reason) && a.tryTokenFile(ctx, addr) {
			bo.reset()
			continue
		}
		a.cfg.Logger.Warn("agent connection", "manager", addr, "err", err)
		if bo.wait(ctx) != nil {
			return
		}
	}
}

func certRefusal(reason string) bool {
	for _, r := range []string{ReasonRevoked, ReasonUnknownCert, ReasonExpired} {
		if strings.HasPrefix(reason, r) {
			return true
		}
	}
	return false
}

// tryTokenFile enrolls again with a new key when TokenFile holds a token
// not tried yet (an admin's answer to a revoked, unknown or expired
// certificate).
func (a *agentd) tryTokenFile(ctx context.Context, addr string) bool {
	if a.cfg.TokenFile == "" {
		return false
	}
	b, err := os.ReadFile(a.cfg.TokenFile)
	if err != nil {
		return false
	}
	tok := strings.TrimSpace(string(b))
	a.mu.Lock()
	tried := tok == "" || tok == a.triedToken
	a.mu.Unlock()
	if tried {
		return false
	}
	a.idMu.Lock()
	err = enroll(ctx, a.cfg, addr, tok)
	if err == nil || errors.Is(err, ErrEnrollRefused) {
		// Spent or refused: not tried again (a network failure is).
		a.mu.Lock()
		a.triedToken = tok
		a.mu.Unlock()
	}
	if err == nil {
		os.Remove(filepath.Join(a.cfg.DataDir, LinkCertFile))
		os.Remove(filepath.Join(a.cfg.DataDir, LinkKeyFile))
		a.linkCert = nil
	}
	a.idMu.Unlock()
	if err != nil {
		a.cfg.Logger.Warn("agent re-enrollment", "manager", addr, "err", err)
		a.audit("re-enroll failed", err.Error())
		return false
	}
	a.emit("enrolled")
	a.audit("re-enrolled", "enrolled again with a new key and the token in "+a.cfg.TokenFile+" at "+addr)
	a.queueEvent(Event{At: a.cfg.Clock(), Code: EvReEnrolled, Severity: "info", Message: fmt.Sprintf("agent %s enrolled again with a new key", a.cfg.Name)})
	kick(a.certKick)
	return true
}

// connect runs one connection: hello, then heartbeats. up tells whether
// the manager accepted us (the back-off restarts); reason is the
// manager's refusal, if it refused.
func (a *agentd) connect(ctx context.Context, addr string, tc *tls.Config) (up bool, reason string, err error) {
	cfg := a.cfg
	c, err := dial(ctx, addr, tc)
	if err != nil {
		a.emit("lost: " + err.Error())
		var ve *tls.CertificateVerificationError
		if errors.As(err, &ve) {
			// Our trust list (the pinned manager CA) does not cover it.
			a.setView(addr, MgrUntrusted, "the manager's certificate is not from the trusted CA: "+err.Error(), 0)
		} else {
			a.setView(addr, MgrUnreachable, err.Error(), 0)
		}
		return false, "", err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	enc := json.NewEncoder(c)
	r := bufio.NewReader(c)
	c.SetDeadline(time.Now().Add(handshakeTimeout))
	if err := enc.Encode(msg{Type: "hello", Name: cfg.Name, Version: cfg.Version, Capabilities: cfg.Capabilities, Time: cfg.Clock(), Queued: a.queued()}); err != nil {
		a.emit("lost: " + err.Error())
		a.setView(addr, MgrUnreachable, err.Error(), 0)
		return false, "", err
	}
	var m msg
	if err := readMsg(r, &m); err != nil {
		a.emit("lost: " + err.Error())
		a.setView(addr, MgrUnreachable, err.Error(), 0)
		return false, "", err
	}
	if m.Type != "welcome" {
		a.emit("refused: " + m.Reason)
		a.setView(addr, MgrRefused, m.Reason, 0)
		return false, m.Reason, fmt.Errorf("refused by the manager: %s", m.Reason)
	}
	interval, err := time.ParseDuration(m.Interval)
	if err != nil || interval <= 0 {
		return false, "", fmt.Errorf("manager sent heartbeat interval %q", m.Interval)
	}
	c.SetDeadline(time.Time{})
	a.emit("up")
	a.setView(addr, MgrUp, "", m.ID)
	if m.Version != "" && m.Version != cfg.Version {
		a.audit("version skew", fmt.Sprintf("manager %s runs %s, this agent %s", addr, m.Version, cfg.Version))
	}
	allowed := agentOps(cfg)
	var wmu sync.Mutex
	send := func(m msg) error {
		wmu.Lock()
		defer wmu.Unlock()
		c.SetWriteDeadline(time.Now().Add(3 * interval))
		return enc.Encode(m)
	}
	mc := &mconn{addr: addr, send: send, pend: map[uint64]chan msg{}}
	a.mu.Lock()
	a.conns[addr] = mc
	out := a.outbox
	a.outbox = nil
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		if a.conns[addr] == mc {
			delete(a.conns, addr)
		}
		a.mu.Unlock()
	}()
	for _, e := range out {
		if err := send(e); err != nil {
			a.requeue(e)
		}
	}
	kick(a.certKick)     // a link certificate may be due now that a manager is here
	kick(a.discoverKick) // and the managers sharing its database are worth knowing at once
	// The reader: acks, refusals, answers to our requests and ops,
	// interleaved; each op runs on its own and answers with its op_id.
	rerr := make(chan error, 1)
	go func() {
		for {
			c.SetReadDeadline(time.Now().Add(3 * interval))
			var m msg
			if err := readMsg(r, &m); err != nil {
				rerr <- err
				return
			}
			switch m.Type {
			case "refused":
				if m.Req != 0 {
					mc.deliver(m)
					continue
				}
				rerr <- fmt.Errorf("%w: %s", errRefused, m.Reason)
				return
			case "renewed", "managers":
				mc.deliver(m)
			case "ack":
				a.acked(addr)
			case "op":
				go func(m msg) {
					out := msg{Type: "op-result", OpID: m.OpID, Op: m.Op}
					res, err := a.runOp(ctx, allowed, m.Op)
					if res != nil {
						out.Result, _ = json.Marshal(res)
					}
					if err != nil {
						out.Error = err.Error()
					} else {
						out.OK = true
					}
					cfg.Logger.Info("agent op", "op", m.Op, "id", m.OpID, "ok", out.OK, "err", out.Error)
					a.audit("op "+m.Op, fmt.Sprintf("from %s: ok=%v %s", addr, out.OK, out.Error))
					send(out)
				}(m)
			}
		}
	}()
	t := time.NewTicker(interval)
	defer t.Stop()
	for seq := uint64(1); ; seq++ {
		select {
		case <-ctx.Done():
			return true, "", ctx.Err()
		case err := <-rerr:
			if errors.Is(err, errRefused) {
				reason := strings.TrimPrefix(err.Error(), errRefused.Error()+": ")
				a.emit("refused: " + reason)
				a.setView(addr, MgrRefused, reason, 0)
				return true, reason, fmt.Errorf("refused by the manager: %s", reason)
			}
			a.emit("lost: " + err.Error())
			a.setView(addr, MgrUnreachable, "connection lost: "+err.Error(), 0)
			return true, "", err
		case <-t.C:
		}
		a.mu.Lock()
		var link *LinkStatus
		if a.link != nil {
			l := *a.link
			link = &l
		}
		q := len(a.outbox)
		a.mu.Unlock()
		if err := send(msg{Type: "heartbeat", Seq: seq, Time: cfg.Clock(), Link: link, Queued: q}); err != nil {
			a.emit("lost: " + err.Error())
			a.setView(addr, MgrUnreachable, "connection lost: "+err.Error(), 0)
			return true, "", err
		}
	}
}

var errRefused = errors.New("refused")

// ErrNoManager: no manager is connected to take a request.
var ErrNoManager = errors.New("no manager connected")

// request sends m to one Up manager and waits for the answer with the
// same req (or a refusal).
func (a *agentd) request(ctx context.Context, m msg) (msg, error) {
	a.mu.Lock()
	var mc *mconn
	for _, addr := range a.sortedConnsLocked() {
		mc = a.conns[addr]
		break
	}
	a.nextReq++
	m.Req = a.nextReq
	a.mu.Unlock()
	if mc == nil {
		return msg{}, ErrNoManager
	}
	ch := make(chan msg, 1)
	mc.mu.Lock()
	mc.pend[m.Req] = ch
	mc.mu.Unlock()
	defer func() { mc.mu.Lock(); delete(mc.pend, m.Req); mc.mu.Unlock() }()
	if err := mc.send(m); err != nil {
		return msg{}, fmt.Errorf("manager %s: %w", mc.addr, err)
	}
	t := time.NewTimer(handshakeTimeout)
	defer t.Stop()
	select {
	case r := <-ch:
		if r.Type == "refused" {
			return r, fmt.Errorf("manager %s refused: %s", mc.addr, r.Reason)
		}
		return r, nil
	case <-t.C:
		return msg{}, fmt.Errorf("manager %s did not answer %s in %s", mc.addr, m.Type, handshakeTimeout)
	case <-ctx.Done():
		return msg{}, ctx.Err()
	}
}

func (a *agentd) sortedConnsLocked() []string {
	var addrs []string
	for addr := range a.conns {
		addrs = append(addrs, addr)
	}
	// Configured managers first, in their order; then discovered ones.
	conf := a.configured()
	slices.SortFunc(addrs, func(x, y string) int {
		ix, iy := slices.Index(conf, x), slices.Index(conf, y)
		if ix < 0 {
			ix = len(conf)
		}
		if iy < 0 {
			iy = len(conf)
		}
		if ix != iy {
			return ix - iy
		}
		return strings.Compare(x, y)
	})
	return addrs
}

// maxOutbox bounds the events held while no manager is connected.
const maxOutbox = 256

// queueEvent sends an event to one Up manager, or holds it until one is.
func (a *agentd) queueEvent(e Event) {
	m := msg{Type: "event", Event: &e}
	a.mu.Lock()
	var mc *mconn
	for _, addr := range a.sortedConnsLocked() {
		mc = a.conns[addr]
		break
	}
	a.mu.Unlock()
	if mc != nil && mc.send(m) == nil {
		return
	}
	a.requeue(m)
}

func (a *agentd) requeue(m msg) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.outbox) >= maxOutbox {
		a.outbox = a.outbox[1:]
		a.dropped++
	}
	a.outbox = append(a.outbox, m)
}

func (a *agentd) queued() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.outbox)
}

// discoverLoop asks for the managers every Rediscover (and when asked to,
// by refresh-trust), starting a connection to each new one and stopping
// those of discovered managers no longer listed.
func (a *agentd) discoverLoop(ctx context.Context) {
	defer a.wg.Done()
	if a.cfg.Rediscover < 0 {
		<-ctx.Done()
		return
	}
	t := time.NewTicker(a.cfg.Rediscover)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-a.discoverKick:
		}
		if _, err := a.discover(ctx); err != nil && !errors.Is(err, ErrNoManager) {
			a.cfg.Logger.Warn("agent: rediscovering managers", "err", err)
		}
	}
}

// discover asks one manager for the live managers and adjusts the
// connections; it returns the list.
func (a *agentd) discover(ctx context.Context) ([]string, error) {
	r, err := a.request(ctx, msg{Type: "discover"})
	if err != nil {
		return nil, err
	}
	if len(r.Managers) == 0 {
		return nil, errors.New("the manager listed no managers")
	}
	a.mu.Lock()
	conf := a.configured()
	var added []string
	for _, m := range r.Managers {
		if len(a.loops) >= 64 {
			break // bounded: a manager cannot make us dial the world
		}
		if _, ok := a.loops[m]; !ok {
			a.startLoopLocked(m, true)
			added = append(added, m)
		}
	}
	var removed []string
	for addr, cancel := range a.loops {
		if a.discovered[addr] && !slices.Contains(r.Managers, addr) && !slices.Contains(conf, addr) {
			cancel()
			delete(a.loops, addr)
			delete(a.views, addr)
			delete(a.discovered, addr)
			removed = append(removed, addr)
		}
	}
	a.mu.Unlock()
	if len(added)+len(removed) > 0 {
		a.audit("managers rediscovered", fmt.Sprintf("added %v, removed %v", added, removed))
	}
	return r.Managers, nil
}

// acked notes a heartbeat's acknowledgement.
func (a *agentd) acked(addr string) {
	a.mu.Lock()
	if v := a.views[addr]; v != nil {
		v.LastAck = time.Now()
	}
	write := time.Since(a.lastWrite) > 10*time.Second
	a.mu.Unlock()
	if write {
		a.writeStatus(false)
	}
}

func (a *agentd) setView(addr, state, reason string, id int64) {
	a.mu.Lock()
	v := a.views[addr]
	if v == nil {
		a.mu.Unlock()
		return
	}
	changed := v.State != state || v.Reason != reason
	if v.State != state {
		v.Since = time.Now()
	}
	v.State, v.Reason = state, reason
	if id != 0 {
		v.NodeID = id
	}
	a.mu.Unlock()
	if changed {
		a.writeStatus(true)
	}
}

// ---- certificates ----

// certLoop watches both certificates' expiry: a warning (an event, at
// most daily) and a renewal once within RenewBefore; an event and an audit
// entry when one has expired.
func (a *agentd) certLoop(ctx context.Context) {
	defer a.wg.Done()
	t := time.NewTicker(a.cfg.CertCheck)
	defer t.Stop()
	for {
		a.checkCerts(ctx, false)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-a.certKick:
		}
	}
}

// checkCerts renews what is due (everything when force) and reports
// what it did.
func (a *agentd) checkCerts(ctx context.Context, force bool) []string {
	var did []string
	now := a.cfg.Clock()
	for _, kind := range []string{"agent", "link"} {
		cert := a.loadCert(kind)
		view := &CertView{Kind: kind}
		switch {
		case cert == nil:
			view.State = CertMissing
		default:
			view.NotAfter = cert.NotAfter
			left := cert.NotAfter.Sub(now)
			view.DaysLeft = int(left.Hours() / 24)
			switch {
			case left <= 0:
				view.State = CertExpired
			case left <= a.cfg.RenewBefore:
				view.State = CertExpiring
			default:
				view.State = CertOK
			}
		}
		a.mu.Lock()
		a.certs[kind] = view
		a.mu.Unlock()
		switch view.State {
		case CertExpired:
			a.mu.Lock()
			first := !a.expired[kind]
			a.expired[kind] = true
			a.mu.Unlock()
			if first {
				if kind == "link" && a.cfg.Link != nil {
					kick(a.linkKick) // the link fails now: say so at once
				}
				msg := fmt.Sprintf("agent %s: its %s certificate expired at %s", a.cfg.Name, kind, view.NotAfter.Format(time.RFC3339))
				a.audit("certificate expired", msg)
				a.queueEvent(Event{At: now, Code: EvCertExpired, Severity: "critical", Message: msg + ": " + certRemedy(kind),
					Data: mustJSON(map[string]any{"kind": kind, "not_after": view.NotAfter})})
			}
		case CertExpiring:
			a.mu.Lock()
			last := a.warned[kind]
			warn := last.IsZero() || now.Sub(last) >= 24*time.Hour || now.Before(last)
			if warn {
				a.warned[kind] = now
			}
			a.mu.Unlock()
			if warn {
				msg := fmt.Sprintf("agent %s: its %s certificate expires in %d days (%s); renewing", a.cfg.Name, kind, view.DaysLeft, view.NotAfter.Format(time.RFC3339))
				a.queueEvent(Event{At: now, Code: EvCertExpiring, Severity: "warning", Message: msg,
					Data: mustJSON(map[string]any{"kind": kind, "not_after": view.NotAfter, "days_left": view.DaysLeft})})
			}
		}
		// The agent's own certificate cannot be renewed once expired (no
		// manager accepts it); the link's can, over the agent channel.
		due := view.State == CertMissing || view.State == CertExpiring || (view.State == CertExpired && kind == "link") || force
		if !due {
			continue
		}
		if err := a.renew(ctx, kind); err != nil {
			if !errors.Is(err, ErrNoManager) {
				a.cfg.Logger.Warn("agent: certificate renewal", "kind", kind, "err", err)
			}
			a.mu.Lock()
			view.RenewError = err.Error()
			a.mu.Unlock()
			continue
		}
		did = append(did, kind)
		if c := a.loadCert(kind); c != nil {
			left := c.NotAfter.Sub(a.cfg.Clock())
			a.mu.Lock()
			view.State, view.NotAfter, view.DaysLeft, view.RenewError = CertOK, c.NotAfter, int(left.Hours()/24), ""
			a.mu.Unlock()
		}
	}
	a.writeStatus(true)
	return did
}

func certRemedy(kind string) string {
	if kind == "link" {
		return "the agent renews it through its manager as soon as one is connected (`lightsout agent op NAME renew-certs`)"
	}
	return "enroll the agent again: `lightsout agent token create` on the manager, the token into the agent's --token-file (0600); the running agent picks it up"
}

func mustJSON(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

func (a *agentd) certFiles(kind string) (certPath, keyPath string) {
	if kind == "link" {
		return filepath.Join(a.cfg.DataDir, LinkCertFile), filepath.Join(a.cfg.DataDir, LinkKeyFile)
	}
	return filepath.Join(a.cfg.DataDir, CertFile), filepath.Join(a.cfg.DataDir, KeyFile)
}

func (a *agentd) loadCert(kind string) *x509.Certificate {
	a.idMu.Lock()
	defer a.idMu.Unlock()
	cp, _ := a.certFiles(kind)
	b, err := os.ReadFile(cp)
	if err != nil {
		return nil
	}
	c, err := pki.ParseCertPEM(b)
	if err != nil {
		return nil
	}
	return c
}

// renew asks a manager to sign a new key's CSR and swaps the files.
func (a *agentd) renew(ctx context.Context, kind string) error {
	key, csr, err := pki.NewCSR(a.cfg.Name)
	if err != nil {
		return err
	}
	r, err := a.request(ctx, msg{Type: "renew", Kind: kind, CSR: csr})
	if err != nil {
		return err
	}
	kp, err := pki.KeyPEM(key)
	if err != nil {
		return err
	}
	pair, err := tls.X509KeyPair(r.Cert, kp)
	if err != nil {
		return fmt.Errorf("the renewed %s certificate does not match our key: %w", kind, err)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return err
	}
	caPEM, err := os.ReadFile(filepath.Join(a.cfg.DataDir, CAFile))
	if err != nil {
		return err
	}
	ca, err := pki.ParseCertPEM(caPEM)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, CurrentTime: cert.NotBefore.Add(time.Minute)}); err != nil {
		return fmt.Errorf("the renewed %s certificate is not from the trusted CA: %w", kind, err)
	}
	cp, kpath := a.certFiles(kind)
	a.idMu.Lock()
	err = swapFiles(kpath, kp, 0o600, cp, r.Cert, 0o644)
	if kind == "link" && err == nil {
		pair.Leaf = cert
		a.linkCert = &pair
	}
	a.idMu.Unlock()
	if err != nil {
		return err
	}
	a.mu.Lock()
	delete(a.warned, kind)
	delete(a.expired, kind)
	a.mu.Unlock()
	a.audit("certificate renewed", fmt.Sprintf("%s certificate renewed until %s", kind, cert.NotAfter.Format(time.RFC3339)))
	a.emit("renewed: " + kind)
	if kind == "link" {
		kick(a.linkKick)
	}
	return nil
}

// swapFiles replaces a key and its certificate: both written beside, then
// renamed key first (a reader between the renames fails to pair them and
// tries again; it never sees a half-written file).
func swapFiles(keyPath string, key []byte, keyPerm os.FileMode, certPath string, cert []byte, certPerm os.FileMode) error {
	kt, ct := keyPath+".new", certPath+".new"
	os.Remove(kt)
	os.Remove(ct)
	if err := pki.WriteFile(kt, key, keyPerm); err != nil {
		return err
	}
	if err := pki.WriteFile(ct, cert, certPerm); err != nil {
		return err
	}
	if err := os.Rename(kt, keyPath); err != nil {
		return err
	}
	return os.Rename(ct, certPath)
}

// currentLinkCert is the host link's client certificate (cached).
func (a *agentd) currentLinkCert() *tls.Certificate {
	a.idMu.Lock()
	defer a.idMu.Unlock()
	if a.linkCert != nil {
		return a.linkCert
	}
	cp, kp := a.certFiles("link")
	pair, err := tls.LoadX509KeyPair(cp, kp)
	if err != nil {
		return nil
	}
	a.linkCert = &pair
	return a.linkCert
}

// ---- host link ----

// linkLoop checks the host link every LinkInterval (and when asked to).
func (a *agentd) linkLoop(ctx context.Context) {
	defer a.wg.Done()
	t := time.NewTicker(a.cfg.LinkInterval)
	defer t.Stop()
	for {
		if a.currentLinkCert() == nil {
			// Nothing to present yet: the certificate comes from a
			// manager (its renewal kicks a check). Not a link failure.
			a.mu.Lock()
			a.link = &LinkStatus{State: LinkUnknown, Reason: "waiting for the link certificate from a manager", Checked: a.cfg.Clock()}
			a.mu.Unlock()
			a.writeStatus(true)
		} else {
			a.checkLink(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-a.linkKick:
		}
	}
}

// checkLink runs one host link check and reports what changed: the path
// in use (audited: the seed's "which protocol the agent uses"), the state,
// and every timeout (counted, reported with a count for flood detection).
func (a *agentd) checkLink(ctx context.Context) hostlink.Observation {
	a.linkMu.Lock()
	defer a.linkMu.Unlock()
	lc := *a.cfg.Link
	lc.Certificate = a.currentLinkCert
	lc.Clock = a.cfg.Clock
	o := hostlink.Check(ctx, lc)
	now := a.cfg.Clock()
	st := LinkStatus{State: o.State, Path: o.Path, Address: o.Address, Reason: o.Reason, Remedy: o.Remedy,
		IPv4Failed: o.IPv4Failed, CertNotAfter: o.CertNotAfter, Checked: now}
	a.mu.Lock()
	prev := a.link
	if prev != nil {
		st.Timeouts = prev.Timeouts
	}
	st.Timeouts += uint64(o.Timeouts)
	wall := time.Now()
	if o.Timeouts > 0 {
		a.linkRate = append(a.linkRate, rateSample{at: wall, n: o.Timeouts})
	}
	for len(a.linkRate) > 0 && wall.Sub(a.linkRate[0].at) > 5*time.Minute {
		a.linkRate = a.linkRate[1:]
	}
	n := 0
	for _, s := range a.linkRate {
		n += s.n
	}
	// A minute's rate over the last 5 minutes, or over the time the link
	// has been watched if that is shorter (at least a minute, so one bad
	// check at start-up does not read as a storm).
	if a.linkSince.IsZero() {
		a.linkSince = wall
	}
	window := min(max(wall.Sub(a.linkSince), time.Minute), 5*time.Minute)
	st.TimeoutRate = float64(n) / window.Minutes()
	a.link = &st
	a.mu.Unlock()

	if o.Timeouts > 0 {
		a.queueEvent(Event{At: now, Code: EvLinkTimeout, Severity: "warning", Count: o.Timeouts,
			Message: fmt.Sprintf("agent %s: %d host link request(s) timed out (%s)", a.cfg.Name, o.Timeouts, timeoutWhere(o)),
			Data:    mustJSON(map[string]any{"timeouts": o.Timeouts, "total": st.Timeouts, "attempts": o.Attempts})})
	}
	if prev == nil || prev.Path != st.Path {
		var msg string
		switch {
		case st.Path == "":
			msg = fmt.Sprintf("agent %s: host link has no working path (%s)", a.cfg.Name, st.Reason)
		case st.IPv4Failed:
			msg = fmt.Sprintf("agent %s: host link uses %s at %s (IPv4 failed: %s)", a.cfg.Name, st.Path, st.Address, st.Reason)
		default:
			msg = fmt.Sprintf("agent %s: host link uses %s at %s", a.cfg.Name, st.Path, st.Address)
		}
		a.audit("host link path", msg)
		a.queueEvent(Event{At: now, Code: EvLinkPath, Severity: "info", Message: msg,
			Data: mustJSON(map[string]any{"path": st.Path, "address": st.Address, "ipv4_failed": st.IPv4Failed})})
	}
	if prev == nil && st.State != LinkUp || prev != nil && prev.State != st.State {
		sev := "info"
		if st.State != LinkUp {
			sev = "warning"
		}
		if st.State == LinkCertExpired {
			sev = "critical"
		}
		msg := fmt.Sprintf("agent %s: host link %s", a.cfg.Name, st.State)
		switch {
		case st.State == LinkUp && st.IPv4Failed:
			msg += fmt.Sprintf(" over %s at %s (IPv4 failed: %s)", st.Path, st.Address, st.Reason)
		case st.State == LinkUp:
			msg += fmt.Sprintf(" over %s at %s", st.Path, st.Address)
		case st.Reason != "":
			msg += " (" + st.Reason + ")"
		}
		if st.Remedy != "" && st.State != LinkUp {
			msg += ": " + st.Remedy
		}
		a.audit("host link state", msg)
		a.queueEvent(Event{At: now, Code: EvLinkState, Severity: sev, Message: msg,
			Data: mustJSON(map[string]any{"state": st.State, "reason": st.Reason})})
		if st.State == LinkCertExpired || st.State == LinkNotTrusted {
			kick(a.certKick)
		}
	}
	a.writeStatus(true)
	return o
}

func timeoutWhere(o hostlink.Observation) string {
	var parts []string
	for _, at := range o.Attempts {
		if at.Timeout || at.Tries > 1 {
			parts = append(parts, at.Path+" "+at.Address)
		}
	}
	if len(parts) == 0 {
		return "retried"
	}
	return strings.Join(parts, ", ")
}

// ---- the agent's own view: status file and audit log ----

// Manager connection states in the agent's view.
const (
	MgrUp          = "Up"
	MgrConnecting  = "Connecting"
	MgrRefused     = "Refused"     // connected, the manager refused us (reason)
	MgrUnreachable = "Unreachable" // no connection, or it was lost
	MgrUntrusted   = "Untrusted"   // its certificate is not from the CA the agent trusts
)

// ManagerView is one manager as the agent sees it.
type ManagerView struct {
	Address    string    `json:"address"`
	State      string    `json:"state"`
	Reason     string    `json:"reason,omitempty"`
	NodeID     int64     `json:"node_id,omitempty"`
	Since      time.Time `json:"since"`
	LastAck    time.Time `json:"last_ack,omitzero"`
	Discovered bool      `json:"discovered"`
}

// Certificate states in the agent's view.
const (
	CertOK       = "ok"
	CertExpiring = "expiring"
	CertExpired  = "expired"
	CertMissing  = "missing"
)

// CertView is one of the agent's certificates.
type CertView struct {
	Kind       string    `json:"kind"` // agent, link
	State      string    `json:"state"`
	NotAfter   time.Time `json:"not_after,omitzero"`
	DaysLeft   int       `json:"days_left"`
	RenewError string    `json:"renew_error,omitempty"`
}

// LocalStatus is the agent's view of itself, written to StatusFile.
type LocalStatus struct {
	PID      int           `json:"pid"`
	Name     string        `json:"name"`
	Version  string        `json:"version"`
	Updated  time.Time     `json:"updated"`
	Managers []ManagerView `json:"managers"`
	Certs    []CertView    `json:"certs"`
	Link     *LinkStatus   `json:"link,omitempty"`
	Queued   int           `json:"queued"`
	Dropped  int           `json:"dropped"`
	// CAFingerprint is the manager CA the agent trusts.
	CAFingerprint string `json:"ca_fingerprint"`
}

func (a *agentd) writeStatus(force bool) {
	// One writer at a time, snapshot included: two interleaved into the
	// same temporary file would leave a status no reader can parse, and an
	// older snapshot written last would hide the newer one.
	a.statusMu.Lock()
	defer a.statusMu.Unlock()
	a.mu.Lock()
	if !force && time.Since(a.lastWrite) < 10*time.Second {
		a.mu.Unlock()
		return
	}
	a.lastWrite = time.Now()
	st := LocalStatus{PID: os.Getpid(), Name: a.cfg.Name, Version: a.cfg.Version, Updated: time.Now(),
		Queued: len(a.outbox), Dropped: a.dropped, Managers: []ManagerView{}, Certs: []CertView{}}
	for _, v := range a.views {
		st.Managers = append(st.Managers, *v)
	}
	for _, k := range []string{"agent", "link"} {
		if v := a.certs[k]; v != nil {
			st.Certs = append(st.Certs, *v)
		}
	}
	if a.link != nil {
		l := *a.link
		st.Link = &l
	}
	a.mu.Unlock()
	slices.SortFunc(st.Managers, func(x, y ManagerView) int { return strings.Compare(x.Address, y.Address) })
	if b, err := os.ReadFile(filepath.Join(a.cfg.DataDir, CAFile)); err == nil {
		if ca, err := pki.ParseCertPEM(b); err == nil {
			st.CAFingerprint = pki.Fingerprint(ca)
		}
	}
	b, _ := json.MarshalIndent(st, "", "  ")
	p := filepath.Join(a.cfg.DataDir, StatusFile)
	tmp := p + ".new"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err == nil {
		os.Rename(tmp, p)
	}
}

// ReadLocalStatus reads the status a running (or stopped) agent wrote in
// dir.
func ReadLocalStatus(dir string) (LocalStatus, error) {
	var st LocalStatus
	b, err := os.ReadFile(filepath.Join(dir, StatusFile))
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("%s: %w", filepath.Join(dir, StatusFile), err)
	}
	return st, nil
}

// AuditRecord is one line of the agent's audit log.
type AuditRecord struct {
	At     time.Time `json:"at"`
	Agent  string    `json:"agent"`
	Action string    `json:"action"`
	Detail string    `json:"detail"`
}

// maxAudit is the audit log's size before it is rotated (one old file
// kept: AuditFile + ".1").
const maxAudit = 1 << 20

var auditMu sync.Mutex

func (a *agentd) audit(action, detail string) {
	a.cfg.Logger.Info("agent audit", "action", action, "detail", detail)
	auditMu.Lock()
	defer auditMu.Unlock()
	p := filepath.Join(a.cfg.DataDir, AuditFile)
	if fi, err := os.Stat(p); err == nil && fi.Size() > maxAudit {
		os.Rename(p, p+".1")
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	b, _ := json.Marshal(AuditRecord{At: a.cfg.Clock(), Agent: a.cfg.Name, Action: action, Detail: detail})
	f.Write(append(b, '\n'))
}

// ReadAudit returns the last n records of the agent's audit log in dir.
func ReadAudit(dir string, n int) ([]AuditRecord, error) {
	f, err := os.Open(filepath.Join(dir, AuditFile))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []AuditRecord
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		var r AuditRecord
		if json.Unmarshal(s.Bytes(), &r) == nil {
			out = append(out, r)
			if len(out) > n {
				out = out[1:]
			}
		}
	}
	return out, s.Err()
}
