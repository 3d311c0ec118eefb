package agent

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/lightsout/lightsout/internal/agentstate"
	"github.com/lightsout/lightsout/internal/hostlink"
	"github.com/lightsout/lightsout/internal/pki"
	"github.com/lightsout/lightsout/internal/store"
)

// HubStore is what the hub needs of persistence (*sqlstore.DB has it):
// enrolled agents, their certificates and join tokens, and the managers
// agents may reach.
type HubStore interface {
	Agents(ctx context.Context) ([]store.Agent, error)
	AddJoinToken(ctx context.Context, hash []byte, expires time.Time) error
	RevokeAgent(ctx context.Context, id int64, at time.Time) error
	TouchManager(ctx context.Context, address string, at time.Time) error
	AgentManagers(ctx context.Context, since time.Time) ([]string, error)
	EnrollAgent(ctx context.Context, tokenHash []byte, at time.Time, a *store.Agent, c *store.AgentCert) error
	AgentCertByFingerprint(ctx context.Context, fp string) (store.AgentCert, error)
	AgentSeen(ctx context.Context, id int64, version string, caps []string, address string, at time.Time) error
	AddAgentCert(ctx context.Context, c store.AgentCert) error
}

// HubConfig configures the manager's side. Zero values take defaults.
type HubConfig struct {
	Store HubStore
	CA    *pki.CA
	// Interval between an agent's heartbeats (the manager tells each
	// agent); default 10s.
	Interval time.Duration
	// Misses: an agent is Down after this many intervals without a
	// heartbeat; default 3.
	Misses int
	// MaxSkew: a heartbeat whose clock differs more from the manager's
	// makes the agent PendingUp; default 30s.
	MaxSkew time.Duration
	// TokenTTL is a join token's default lifetime; default 24h.
	TokenTTL time.Duration
	// Version of this manager; an agent reporting another is flagged.
	Version string
	// OpTimeout bounds how long Do waits for an agent's answer; default 30s.
	OpTimeout time.Duration
	Logger    *slog.Logger

	// Allow is the manager's trusted host list: an agent connecting from
	// another address is refused (enrollment too) and, when it presents a
	// certificate, listed PendingUp with reason "address A not in the
	// trusted host list". Empty: any address.
	Allow []netip.Prefix
	// Advertise lists the agent listener addresses agents should dial to
	// reach this manager; they are shared through the store with the other
	// managers of the same database and handed to agents that rediscover
	// (default: the listener's own address).
	Advertise []string
	// CertLifetime of the certificates issued to agents (default
	// pki.ClientValidity, a year).
	CertLifetime time.Duration
	// Clock (default time.Now) issues and verifies certificates and
	// measures clock skew; liveness (heartbeat ages) uses the monotonic
	// clock. Tests inject it to age certificates.
	Clock func() time.Time
	// OnEvent, if set, receives the agents' state changes and what they
	// report (codes agent.*), with source "agent:NAME". It must not block.
	OnEvent func(store.Event)
	// OnAudit, if set, receives an audit entry for each certificate issued
	// and each host link path an agent reports. It must not block.
	OnAudit func(store.AuditEntry)
}

// Status is what the manager knows of one agent (agentstate.Status).
type Status = agentstate.Status

// LinkStatus is an agent's report of its host link (agentstate.LinkStatus).
type LinkStatus = agentstate.LinkStatus

// Host link states and paths (agentstate's).
const (
	LinkUp          = agentstate.LinkUp
	LinkDown        = agentstate.LinkDown
	LinkCertExpired = agentstate.LinkCertExpired
	LinkNotTrusted  = agentstate.LinkNotTrusted
	LinkDisabled    = agentstate.LinkDisabled
	LinkUnknown     = agentstate.LinkUnknown

	PathInBand = agentstate.PathInBand
	PathIPv4   = agentstate.PathIPv4
	PathIPv6   = agentstate.PathIPv6
)

type node struct {
	st     Status
	conn   net.Conn // the live connection, if any
	link   *link    // its writer and pending ops
	queued int      // what the agent last said it holds unsent
}

// status is n's Status with Queued filled in. h.mu is held.
func (n *node) status() Status {
	st := n.st
	st.Queued = n.queued
	if n.link != nil {
		n.link.mu.Lock()
		st.Queued += len(n.link.pend)
		n.link.mu.Unlock()
	}
	if st.Link != nil {
		l := *st.Link
		st.Link = &l
	}
	if st.Capabilities == nil {
		st.Capabilities = []string{}
	}
	return st
}

// Hub is the manager's side of the agent channel.
type Hub struct {
	cfg HubConfig
	log *slog.Logger

	mu      sync.Mutex
	nodes   map[int64]*node
	unknown map[string]*node // PendingUp peers with no enrolled identity, by address
	lns     []net.Listener
	conns   map[net.Conn]struct{}
	closed  bool
	wg      sync.WaitGroup
	stop    chan struct{}
	nextOp  uint64

	advertise  []string
	managers   []string // Managers' last list, read at managersAt
	managersAt time.Time

	certMu     sync.Mutex
	serverCert *tls.Certificate
	certHosts  []string
}

// NewHub loads the enrolled agents (all Down until they connect) and
// starts the heartbeat sweeper.
func NewHub(ctx context.Context, cfg HubConfig) (*Hub, error) {
	if cfg.Store == nil || cfg.CA == nil {
		return nil, errors.New("agent hub: store and CA are required")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 10 * time.Second
	}
	if cfg.Misses <= 0 {
		cfg.Misses = 3
	}
	if cfg.MaxSkew <= 0 {
		cfg.MaxSkew = 30 * time.Second
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = 24 * time.Hour
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Version == "" {
		cfg.Version = Version
	}
	if cfg.OpTimeout <= 0 {
		cfg.OpTimeout = 30 * time.Second
	}
	if cfg.CertLifetime <= 0 {
		cfg.CertLifetime = pki.ClientValidity
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	h := &Hub{cfg: cfg, log: cfg.Logger, nodes: map[int64]*node{}, unknown: map[string]*node{},
		conns: map[net.Conn]struct{}{}, stop: make(chan struct{})}
	as, err := cfg.Store.Agents(ctx)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	for _, a := range as {
		n := &node{st: Status{ID: a.ID, Name: a.Name, State: Down, Reason: "not connected since the manager started", Code: agentstate.NeverConnected, Since: now,
			Version: a.Version, Capabilities: a.Capabilities, Address: a.Address, LastHeartbeat: a.LastSeen, Revoked: !a.RevokedAt.IsZero()}}
		if n.st.Revoked {
			n.st.Reason, n.st.Code = ReasonRevoked, agentstate.Revoked
		}
		n.st.VersionSkew = h.skewed(a.Version)
		h.nodes[a.ID] = n
	}
	h.wg.Add(1)
	go h.sweep()
	return h, nil
}

// Interval is the heartbeat interval agents are told.
func (h *Hub) Interval() time.Duration { return h.cfg.Interval }

// CAFingerprint is the fingerprint agents pin.
func (h *Hub) CAFingerprint() string { return h.cfg.CA.Fingerprint }

func (h *Hub) now() time.Time { return h.cfg.Clock() }

// event hands an event about agent st to OnEvent.
func (h *Hub) event(at time.Time, code string, sev store.Severity, name, message string, data any) {
	if h.cfg.OnEvent == nil {
		return
	}
	e := store.Event{At: at, Code: code, Severity: sev, Source: "agent:" + name, Message: message}
	if data != nil {
		e.Data, _ = json.Marshal(data)
	}
	h.cfg.OnEvent(e)
}

func (h *Hub) audit(action, target, detail, result string) {
	if h.cfg.OnAudit == nil {
		return
	}
	h.cfg.OnAudit(store.AuditEntry{At: time.Now(), Actor: "agent:" + target, Action: action, Target: target, Detail: detail, Result: result})
}

func (h *Hub) allowed(addr string) bool {
	if len(h.cfg.Allow) == 0 {
		return true
	}
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	for _, p := range h.cfg.Allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// ReasonTrustMismatch: the agent refused the manager's certificate during
// the handshake (it trusts another CA).
const ReasonTrustMismatch = "trust mismatch: the agent refused this manager's certificate"

// trustAlert: TLS alerts a client sends when it does not trust the
// server's certificate (bad_certificate, unsupported, certificate_unknown,
// unknown_ca).
func trustAlert(code uint8) bool { return code == 42 || code == 43 || code == 46 || code == 48 }

// ReasonNotTrusted starts the reason of an agent refused by the trusted
// host list.
const ReasonNotTrusted = "address not in the trusted host list"

func (h *Hub) skewed(v string) bool { return v != "" && h.cfg.Version != "" && v != h.cfg.Version }

// CreateJoinToken stores a one-time join token valid for ttl (0: the
// default) and returns it with its expiry. The token embeds the CA
// fingerprint.
func (h *Hub) CreateJoinToken(ctx context.Context, ttl time.Duration) (string, time.Time, error) {
	if ttl <= 0 {
		ttl = h.cfg.TokenTTL
	}
	if ttl > 30*24*time.Hour {
		return "", time.Time{}, &store.FieldError{Record: "join token", Field: "ttl", Reason: "at most 720h"}
	}
	tok, secretPart := NewJoinToken(h.cfg.CA.Fingerprint)
	exp := h.now().Add(ttl).UTC().Round(0)
	if err := h.cfg.Store.AddJoinToken(ctx, hashSecret(secretPart), exp); err != nil {
		return "", time.Time{}, err
	}
	return tok, exp, nil
}

// List returns every agent by node ID, then the unplaced PendingUp peers.
func (h *Hub) List() []Status {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]Status, 0, len(h.nodes)+len(h.unknown))
	for _, n := range h.nodes {
		out = append(out, n.status())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	var unk []Status
	for _, n := range h.unknown {
		unk = append(unk, n.status())
	}
	sort.Slice(unk, func(i, j int) bool { return unk[i].Address < unk[j].Address })
	return append(out, unk...)
}

// Get returns one agent.
func (h *Hub) Get(id int64) (Status, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	n, ok := h.nodes[id]
	if !ok {
		return Status{}, false
	}
	return n.status(), true
}

// Revoke revokes an agent's certificates: it becomes PendingUp with reason
// "certificate revoked" and its connection is closed.
func (h *Hub) Revoke(ctx context.Context, id int64) (Status, error) {
	if err := h.cfg.Store.RevokeAgent(ctx, id, time.Now()); err != nil {
		return Status{}, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	n, ok := h.nodes[id]
	if !ok {
		return Status{}, store.ErrNotFound
	}
	n.st.Revoked = true
	h.setLocked(n, PendingUp, agentstate.Reason{Code: agentstate.Revoked, Message: ReasonRevoked})
	if n.conn != nil {
		n.conn.Close()
		n.conn = nil
	}
	return n.status(), nil
}

// setLocked sets n's state and reason (h.mu held), logging and raising
// agent.state_changed when the state changes.
func (h *Hub) setLocked(n *node, state string, why agentstate.Reason) {
	reason := why.Message
	if n.st.State != state || n.st.Reason != reason || n.st.Code != why.Code {
		from := n.st.State
		if n.st.State != state {
			n.st.Since = time.Now()
		}
		h.log.Info("agent state", "agent", n.st.Name, "id", n.st.ID, "state", state, "reason", reason)
		if n.st.ID != 0 && from != state {
			sev := store.SeverityInfo
			if state != Up {
				sev = store.SeverityWarning
			}
			msg := fmt.Sprintf("agent %s: %s → %s", n.st.Name, orNone(from), state)
			if reason != "" {
				msg += " (" + reason + ")"
			}
			h.event(time.Now(), EvStateChanged, sev, n.st.Name, msg, map[string]string{"from": from, "to": state, "reason": reason})
		}
	}
	n.st.State, n.st.Reason, n.st.Code = state, reason, why.Code
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func (h *Hub) sweep() {
	defer h.wg.Done()
	t := time.NewTicker(h.cfg.Interval / 4)
	defer t.Stop()
	var touched time.Time
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
		}
		if time.Since(touched) >= managerTouch {
			touched = time.Now()
			h.touch()
		}
		limit := time.Duration(h.cfg.Misses) * h.cfg.Interval
		h.mu.Lock()
		for _, n := range h.nodes {
			if n.st.State == Up && time.Since(n.st.LastHeartbeat) > limit {
				h.setLocked(n, Down, agentstate.Reason{Code: agentstate.NoHeartbeat,
					Message: fmt.Sprintf("no heartbeat for %d intervals (%s)", h.cfg.Misses, limit)})
				if n.conn != nil {
					n.conn.Close()
					n.conn = nil
				}
			}
		}
		h.mu.Unlock()
	}
}

// TLSConfig is the listener's: a fresh server certificate from the CA;
// client certificates are requested and checked after the handshake, so
// that a refused agent is PendingUp (connected, authentication failing)
// rather than invisible.
//
// The server certificate is renewed once two thirds of its life have
// passed (by Clock): a manager running longer than its certificate's
// lifetime keeps serving.
func (h *Hub) TLSConfig(hosts []string) (*tls.Config, error) {
	h.certMu.Lock()
	h.certHosts = hosts
	h.serverCert = nil
	h.certMu.Unlock()
	if _, err := h.currentServerCert(); err != nil {
		return nil, err
	}
	return &tls.Config{
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return h.currentServerCert() },
		ClientAuth:     tls.RequestClientCert,
		MinVersion:     tls.VersionTLS13,
	}, nil
}

func (h *Hub) currentServerCert() (*tls.Certificate, error) {
	h.certMu.Lock()
	defer h.certMu.Unlock()
	now := h.now()
	if c := h.serverCert; c != nil {
		life := c.Leaf.NotAfter.Sub(c.Leaf.NotBefore)
		if now.After(c.Leaf.NotBefore) && now.Before(c.Leaf.NotBefore.Add(life*2/3)) {
			return c, nil
		}
	}
	c, err := h.cfg.CA.ServerCert(h.certHosts, now)
	if err != nil {
		return nil, err
	}
	h.serverCert = &c
	return &c, nil
}

// managerTouch is how often a manager refreshes its advertised addresses
// in the store; an address not refreshed for managerLive is not handed to
// agents.
const (
	managerTouch = time.Minute
	managerLive  = 3 * managerTouch
)

func (h *Hub) touch() {
	h.mu.Lock()
	adv := slices.Clone(h.advertise)
	h.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
	defer cancel()
	for _, a := range adv {
		if err := h.cfg.Store.TouchManager(ctx, a, time.Now()); err != nil {
			h.log.Warn("agent hub: advertising the listener", "address", a, "err", err)
		}
	}
}

// Managers is what an agent rediscovering its managers is told: every
// live manager's advertised agent listener (this one's first).
//
// The list changes at most once a managerTouch: it is read from the store
// at most every managerListTTL, so agents reconnecting at once after a
// restart do not each cost a query.
func (h *Hub) Managers(ctx context.Context) []string {
	h.mu.Lock()
	if time.Since(h.managersAt) < managerListTTL && h.managers != nil {
		out := slices.Clone(h.managers)
		h.mu.Unlock()
		return out
	}
	out := slices.Clone(h.advertise)
	h.mu.Unlock()
	others, err := h.cfg.Store.AgentManagers(ctx, time.Now().Add(-managerLive))
	if err != nil {
		h.log.Warn("agent hub: listing managers", "err", err)
	}
	for _, a := range others {
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	if err == nil {
		h.mu.Lock()
		h.managers, h.managersAt = slices.Clone(out), time.Now()
		h.mu.Unlock()
	}
	return out
}

// managerListTTL is how long Managers reuses the list it read.
const managerListTTL = time.Second

// Serve accepts agents on ln (a plain TCP listener; the hub does TLS)
// until Close.
func (h *Hub) Serve(ln net.Listener) error {
	host, _, _ := net.SplitHostPort(ln.Addr().String())
	tc, err := h.TLSConfig([]string{host, "localhost", "127.0.0.1", "::1"})
	if err != nil {
		return err
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		ln.Close()
		return net.ErrClosed
	}
	h.lns = append(h.lns, ln)
	if len(h.cfg.Advertise) > 0 {
		h.advertise = slices.Clone(h.cfg.Advertise)
	} else if !slices.Contains(h.advertise, ln.Addr().String()) {
		h.advertise = append(h.advertise, ln.Addr().String())
	}
	h.mu.Unlock()
	h.touch()
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			h.mu.Lock()
			closed := h.closed
			h.mu.Unlock()
			if closed || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			c.Close()
			return nil
		}
		h.conns[c] = struct{}{}
		h.wg.Add(1)
		h.mu.Unlock()
		go func() {
			defer h.wg.Done()
			defer func() {
				h.mu.Lock()
				delete(h.conns, c)
				h.mu.Unlock()
				c.Close()
			}()
			h.handle(tls.Server(c, tc))
		}()
	}
}

// Close stops the listeners and every connection.
func (h *Hub) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	for _, ln := range h.lns {
		ln.Close()
	}
	for c := range h.conns {
		c.Close()
	}
	close(h.stop)
	h.mu.Unlock()
	h.wg.Wait()
	return nil
}

const handshakeTimeout = 10 * time.Second

func (h *Hub) handle(c *tls.Conn) {
	c.SetDeadline(time.Now().Add(handshakeTimeout))
	if err := c.Handshake(); err != nil {
		h.log.Debug("agent TLS handshake", "remote", c.RemoteAddr().String(), "err", err)
		// A peer that refuses our certificate with an alert is an agent
		// that does not trust this manager (it pins another CA): the
		// RMC trust-list mismatch, PendingUp by address. Anything else
		// (a scanner, a network failure) is not listed.
		if code, ok := hostlink.RemoteAlert(err); ok && trustAlert(code) {
			h.pending(0, hostOf(c.RemoteAddr()), agentstate.Reason{Code: agentstate.TrustMismatch, Message: ReasonTrustMismatch + " (" + err.Error() + ")"})
		}
		return
	}
	r := bufio.NewReaderSize(c, 4096)
	enc := json.NewEncoder(c)
	var first msg
	if err := readMsg(r, &first); err != nil {
		return
	}
	switch first.Type {
	case "enroll":
		h.enroll(c, enc, first)
	case "hello":
		h.session(c, r, enc, first)
	default:
		enc.Encode(msg{Type: "refused", Reason: "unexpected message " + first.Type})
	}
}

// maxLine bounds one JSON line.
const maxLine = 64 << 10

func readMsg(r *bufio.Reader, m *msg) error {
	var line []byte
	for {
		chunk, isPrefix, err := r.ReadLine()
		if err != nil {
			return err
		}
		line = append(line, chunk...)
		if len(line) > maxLine {
			return errors.New("line too long")
		}
		if !isPrefix {
			break
		}
	}
	*m = msg{}
	return json.Unmarshal(line, m)
}

func (h *Hub) enroll(c *tls.Conn, enc *json.Encoder, m msg) {
	refuse := func(reason string) {
		h.log.Warn("agent enrollment refused", "remote", c.RemoteAddr().String(), "name", m.Name, "reason", reason)
		enc.Encode(msg{Type: "refused", Reason: reason})
	}
	secretPart, _, err := ParseJoinToken(m.Token)
	if err != nil {
		refuse(err.Error())
		return
	}
	if err := checkName(m.Name); err != nil {
		refuse(err.Error())
		return
	}
	if addr := hostOf(c.RemoteAddr()); !h.allowed(addr) {
		refuse(fmt.Sprintf("%s: %s", ReasonNotTrusted, addr))
		return
	}
	now := h.now().UTC().Round(0)
	cert, err := h.cfg.CA.SignClientFor(m.CSR, m.Name, now, h.cfg.CertLifetime)
	if err != nil {
		refuse(err.Error())
		return
	}
	a := store.Agent{Name: m.Name, Version: m.Version, Capabilities: m.Capabilities, Address: hostOf(c.RemoteAddr())}
	ac := store.AgentCert{Serial: cert.SerialNumber.Text(16), Fingerprint: pki.Fingerprint(cert), IssuedAt: now, NotAfter: cert.NotAfter, Kind: store.CertAgent}
	ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
	defer cancel()
	if err := h.cfg.Store.EnrollAgent(ctx, hashSecret(secretPart), now, &a, &ac); err != nil {
		refuse(err.Error())
		return
	}
	h.mu.Lock()
	n, ok := h.nodes[a.ID]
	if !ok {
		n = &node{st: Status{ID: a.ID, Name: a.Name, State: Down, Since: time.Now()}}
		h.nodes[a.ID] = n
	}
	n.st.Revoked, n.st.Version, n.st.Capabilities, n.st.Address = false, a.Version, a.Capabilities, a.Address
	n.st.VersionSkew = h.skewed(a.Version)
	n.st.CertNotAfter = cert.NotAfter
	h.setLocked(n, Down, agentstate.Reason{Code: agentstate.NeverConnected, Message: "enrolled, not connected yet"})
	h.mu.Unlock()
	h.audit("agent.enroll", a.Name, fmt.Sprintf("node %d from %s, certificate until %s", a.ID, a.Address, cert.NotAfter.Format(time.RFC3339)), "ok")
	h.log.Info("agent enrolled", "agent", a.Name, "id", a.ID, "remote", c.RemoteAddr().String())
	enc.Encode(msg{Type: "enrolled", ID: a.ID, Cert: pki.CertPEM(cert), CA: pki.CertPEM(h.cfg.CA.Cert)})
}

func checkName(s string) error {
	if s == "" || len(s) > 253 {
		return errors.New("agent name: 1 to 253 characters")
	}
	for _, r := range s {
		if !(r == '-' || r == '.' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return fmt.Errorf("agent name %q: letters, digits, '-', '.', '_' only", s)
		}
	}
	return nil
}

func hostOf(a net.Addr) string {
	h, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return h
}

// authenticate places the client certificate: the agent's ID, or a
// refusal reason (and the ID when the certificate still names one).
func (h *Hub) authenticate(ctx context.Context, c *tls.Conn) (int64, agentstate.Reason) {
	why := func(code agentstate.ReasonCode, msg string) agentstate.Reason {
		return agentstate.Reason{Code: code, Message: msg}
	}
	certs := c.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return 0, why(agentstate.NoCert, ReasonNoCert)
	}
	leaf := certs[0]
	inter := x509.NewCertPool()
	for _, ic := range certs[1:] {
		inter.AddCert(ic)
	}
	_, verr := leaf.Verify(x509.VerifyOptions{Roots: h.cfg.CA.Pool(), Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, CurrentTime: h.now()})
	rec, err := h.cfg.Store.AgentCertByFingerprint(ctx, pki.Fingerprint(leaf))
	switch {
	case err != nil && errors.Is(err, store.ErrNotFound):
		return 0, why(agentstate.UnknownCert, ReasonUnknownCert+" (not issued by this manager: enroll the agent again with a join token)")
	case err != nil:
		return 0, why(agentstate.LookupFailed, "certificate lookup failed: "+err.Error())
	case !rec.RevokedAt.IsZero():
		return rec.AgentID, why(agentstate.Revoked, ReasonRevoked)
	case rec.Kind != store.CertAgent:
		return rec.AgentID, why(agentstate.UnknownCert, ReasonUnknownCert+": a "+rec.Kind+" certificate does not open the agent channel")
	case verr != nil:
		var ie x509.CertificateInvalidError
		if errors.As(verr, &ie) && ie.Reason == x509.Expired {
			return rec.AgentID, why(agentstate.CertExpired, ReasonExpired)
		}
		return rec.AgentID, why(agentstate.UnknownCert, ReasonUnknownCert+": "+verr.Error())
	}
	if addr := hostOf(c.RemoteAddr()); !h.allowed(addr) {
		return rec.AgentID, why(agentstate.NotTrusted, ReasonNotTrusted+": "+addr)
	}
	return rec.AgentID, agentstate.Reason{}
}

func (h *Hub) session(c *tls.Conn, r *bufio.Reader, enc *json.Encoder, hello msg) {
	ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
	id, reason := h.authenticate(ctx, c)
	cancel()
	addr := hostOf(c.RemoteAddr())
	if reason.Code == "" {
		if skew := hello.Time.Sub(h.now()); hello.Time.IsZero() || skew.Abs() > h.cfg.MaxSkew {
			reason = agentstate.Reason{Code: agentstate.ClockSkew,
				Message: fmt.Sprintf("%s %s beyond %s", ReasonClockSkew, skew.Round(time.Millisecond), h.cfg.MaxSkew)}
		}
	}
	if reason.Code != "" {
		h.pending(id, addr, reason)
		enc.Encode(msg{Type: "refused", Reason: reason.Message})
		return
	}
	// The welcome goes first: nothing else may be sent (an op) before the
	// agent has it, and the agent is Up (ops allowed) only after.
	c.SetWriteDeadline(time.Now().Add(handshakeTimeout))
	if err := enc.Encode(msg{Type: "welcome", ID: id, Interval: h.cfg.Interval.String(), Version: h.cfg.Version}); err != nil {
		return
	}
	now := time.Now()
	h.mu.Lock()
	n, ok := h.nodes[id]
	if !ok { // enrolled by another manager sharing the database
		n = &node{st: Status{ID: id, Since: now}}
		h.nodes[id] = n
	}
	if n.conn != nil {
		n.conn.Close() // the newer connection wins
	}
	n.conn = c
	l := &link{enc: enc, set: c.SetWriteDeadline, pend: map[uint64]chan msg{}, done: make(chan struct{})}
	n.link = l
	n.st.Name = c.ConnectionState().PeerCertificates[0].Subject.CommonName
	n.st.CertNotAfter = c.ConnectionState().PeerCertificates[0].NotAfter
	n.queued = hello.Queued
	n.st.Version, n.st.Capabilities, n.st.Address, n.st.LastHeartbeat = hello.Version, hello.Capabilities, addr, now
	n.st.VersionSkew = h.skewed(hello.Version)
	h.setLocked(n, Up, agentstate.Reason{})
	h.mu.Unlock()
	sctx, scancel := context.WithTimeout(context.Background(), handshakeTimeout)
	if err := h.cfg.Store.AgentSeen(sctx, id, hello.Version, hello.Capabilities, addr, now); err != nil {
		h.log.Warn("agent: storing what it reported", "agent", n.st.Name, "err", err)
	}
	scancel()

	limit := time.Duration(h.cfg.Misses) * h.cfg.Interval
	silent := agentstate.Reason{Code: agentstate.NoHeartbeat, Message: fmt.Sprintf("no heartbeat for %d intervals (%s)", h.cfg.Misses, limit)}
	downReason := agentstate.Reason{Code: agentstate.ConnectionClosed, Message: "connection closed"}
	defer func() {
		close(l.done)
		h.mu.Lock()
		if n.link == l {
			n.link = nil
		}
		if n.conn == c {
			n.conn = nil
			if n.st.State == Up {
				h.setLocked(n, Down, downReason)
			}
		}
		h.mu.Unlock()
	}()
	for {
		c.SetReadDeadline(time.Now().Add(limit))
		var m msg
		if err := readMsg(r, &m); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				downReason = silent
			}
			return
		}
		if !h.handleMsg(c, n, l, id, m) {
			return
		}
	}
}

// handleMsg handles one message of an authenticated agent's session (its
// connection c, node n, writer l); false ends the session. Everything in m
// comes from the network: nothing here may trust its fields (fuzzed by
// FuzzSessionMessages).
func (h *Hub) handleMsg(c net.Conn, n *node, l *link, id int64, m msg) bool {
	switch m.Type {
	case "op-result":
		l.deliver(m)
		return true
	case "renew":
		h.renew(n, l, id, m)
		return true
	case "discover":
		dctx, dcancel := context.WithTimeout(context.Background(), handshakeTimeout)
		l.send(msg{Type: "managers", Req: m.Req, Managers: h.Managers(dctx)})
		dcancel()
		return true
	case "event":
		h.agentEvent(n, m.Event)
		return true
	case "heartbeat":
	default:
		return true
	}
	now := time.Now()
	if skew := m.Time.Sub(h.now()); m.Time.IsZero() || skew.Abs() > h.cfg.MaxSkew {
		reason := agentstate.Reason{Code: agentstate.ClockSkew,
			Message: fmt.Sprintf("%s %s beyond %s", ReasonClockSkew, skew.Round(time.Millisecond), h.cfg.MaxSkew)}
		h.mu.Lock()
		if n.conn == c {
			n.conn = nil
			h.setLocked(n, PendingUp, reason)
		}
		h.mu.Unlock()
		l.send(msg{Type: "refused", Reason: reason.Message})
		return false
	}
	h.mu.Lock()
	if n.conn != c { // revoked or replaced meanwhile
		h.mu.Unlock()
		return false
	}
	n.st.LastHeartbeat = now
	if len(m.Capabilities) > 0 {
		n.st.Capabilities = m.Capabilities
	}
	if m.Link != nil {
		n.st.Link = m.Link
	}
	n.queued = m.Queued
	h.setLocked(n, Up, agentstate.Reason{})
	h.mu.Unlock()
	return l.send(msg{Type: "ack", Seq: m.Seq}) == nil
}

func (h *Hub) pending(id int64, addr string, reason agentstate.Reason) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if n, ok := h.nodes[id]; ok && id != 0 {
		n.st.Address = addr
		h.setLocked(n, PendingUp, reason)
		return
	}
	n, ok := h.unknown[addr]
	if !ok {
		if len(h.unknown) >= 1024 {
			return // bounded: a scan must not grow the table
		}
		n = &node{st: Status{Name: "?", Address: addr, Since: time.Now()}}
		h.unknown[addr] = n
	}
	n.st.LastHeartbeat = time.Now()
	h.setLocked(n, PendingUp, reason)
}

// hashSecret is the stored form of a join token's secret.
func hashSecret(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// renew signs a renewal CSR from an authenticated agent: a new agent
// certificate, or its host link certificate.
func (h *Hub) renew(n *node, l *link, id int64, m msg) {
	h.mu.Lock()
	name := n.st.Name
	h.mu.Unlock()
	refuse := func(reason string) {
		h.log.Warn("agent certificate renewal refused", "agent", name, "kind", m.Kind, "reason", reason)
		h.audit("agent.cert_renew", name, m.Kind+" certificate", "refused: "+reason)
		l.send(msg{Type: "refused", Req: m.Req, Reason: reason})
	}
	if m.Kind != store.CertAgent && m.Kind != store.CertLink {
		refuse(fmt.Sprintf("certificate kind %q: agent or link", m.Kind))
		return
	}
	now := h.now().UTC().Round(0)
	cert, err := h.cfg.CA.SignClientFor(m.CSR, name, now, h.cfg.CertLifetime)
	if err != nil {
		refuse(err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
	defer cancel()
	ac := store.AgentCert{Serial: cert.SerialNumber.Text(16), AgentID: id, Fingerprint: pki.Fingerprint(cert), IssuedAt: now, NotAfter: cert.NotAfter, Kind: m.Kind}
	if err := h.cfg.Store.AddAgentCert(ctx, ac); err != nil {
		refuse(err.Error())
		return
	}
	if m.Kind == store.CertAgent {
		h.mu.Lock()
		n.st.CertNotAfter = cert.NotAfter
		h.mu.Unlock()
	}
	detail := fmt.Sprintf("%s certificate %s until %s", m.Kind, ac.Serial, cert.NotAfter.Format(time.RFC3339))
	h.log.Info("agent certificate renewed", "agent", name, "kind", m.Kind, "not_after", cert.NotAfter)
	h.audit("agent.cert_renew", name, detail, "ok")
	h.event(time.Now(), EvCertRenewed, store.SeverityInfo, name, "agent "+name+": "+detail,
		map[string]any{"kind": m.Kind, "serial": ac.Serial, "not_after": cert.NotAfter})
	l.send(msg{Type: "renewed", Req: m.Req, Kind: m.Kind, Cert: pki.CertPEM(cert)})
}

// agentEvent passes on what an agent reported: its events go to OnEvent
// under its name; the host link's path is audited.
func (h *Hub) agentEvent(n *node, e *Event) {
	if e == nil || e.Code == "" || !strings.HasPrefix(e.Code, "agent.") || len(e.Message) > 4096 {
		return // not an agent's event: dropped, never stored under another code
	}
	h.mu.Lock()
	name := n.st.Name
	h.mu.Unlock()
	sev := store.Severity(e.Severity)
	switch sev {
	case store.SeverityInfo, store.SeverityWarning, store.SeverityCritical:
	default:
		sev = store.SeverityWarning
	}
	at := e.At
	if at.IsZero() {
		at = time.Now()
	}
	if h.cfg.OnEvent != nil {
		ev := store.Event{At: at, Code: e.Code, Severity: sev, Source: "agent:" + name, Message: e.Message, Data: e.Data, Count: max(e.Count, 1)}
		h.cfg.OnEvent(ev)
	}
	if e.Code == EvLinkPath {
		h.audit("agent.link_path", name, e.Message, "ok")
	}
}
