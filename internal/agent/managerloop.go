package agent

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// One loop per manager: connect (mutual TLS), heartbeat, serve its
// requests, deliver the queued events; back off when it is unreachable.

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
