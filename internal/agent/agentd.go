package agent

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
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

func mustJSON(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}
