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
	"sort"
	"sync"
	"time"

	"github.com/lightsout/lightsout/internal/pki"
	"github.com/lightsout/lightsout/internal/store"
)

// HubConfig configures the manager's side. Zero values take defaults.
type HubConfig struct {
	Store *store.DB
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
}

// Status is what the manager knows of one agent.
type Status struct {
	ID    int64  `json:"id"` // node ID; 0 for a certificate the manager cannot place
	Name  string `json:"name"`
	State string `json:"state"` // Up, Down, PendingUp
	// Reason of a Down or PendingUp.
	Reason        string    `json:"reason,omitempty"`
	Since         time.Time `json:"since,omitzero"`
	Version       string    `json:"version,omitempty"`
	VersionSkew   bool      `json:"version_skew"`
	Capabilities  []string  `json:"capabilities"`
	Address       string    `json:"address,omitempty"`
	LastHeartbeat time.Time `json:"last_heartbeat,omitzero"`
	Revoked       bool      `json:"revoked"`
}

type node struct {
	st   Status
	conn net.Conn // the live connection, if any
	link *link    // its writer and pending ops
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
	h := &Hub{cfg: cfg, log: cfg.Logger, nodes: map[int64]*node{}, unknown: map[string]*node{},
		conns: map[net.Conn]struct{}{}, stop: make(chan struct{})}
	as, err := cfg.Store.Agents(ctx)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	for _, a := range as {
		n := &node{st: Status{ID: a.ID, Name: a.Name, State: Down, Reason: "not connected since the manager started", Since: now,
			Version: a.Version, Capabilities: a.Capabilities, Address: a.Address, LastHeartbeat: a.LastSeen, Revoked: !a.RevokedAt.IsZero()}}
		if n.st.Revoked {
			n.st.Reason = ReasonRevoked
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
	exp := time.Now().Add(ttl).UTC().Round(0)
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
		out = append(out, n.st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	var unk []Status
	for _, n := range h.unknown {
		unk = append(unk, n.st)
	}
	sort.Slice(unk, func(i, j int) bool { return unk[i].Address < unk[j].Address })
	for i := range out {
		if out[i].Capabilities == nil {
			out[i].Capabilities = []string{}
		}
	}
	for i := range unk {
		unk[i].Capabilities = []string{}
	}
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
	return n.st, true
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
	h.setLocked(n, PendingUp, ReasonRevoked)
	if n.conn != nil {
		n.conn.Close()
		n.conn = nil
	}
	return n.st, nil
}

func (h *Hub) setLocked(n *node, state, reason string) {
	if n.st.State != state || n.st.Reason != reason {
		if n.st.State != state {
			n.st.Since = time.Now()
		}
		h.log.Info("agent state", "agent", n.st.Name, "id", n.st.ID, "state", state, "reason", reason)
	}
	n.st.State, n.st.Reason = state, reason
}

func (h *Hub) sweep() {
	defer h.wg.Done()
	t := time.NewTicker(h.cfg.Interval / 4)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
		}
		limit := time.Duration(h.cfg.Misses) * h.cfg.Interval
		h.mu.Lock()
		for _, n := range h.nodes {
			if n.st.State == Up && time.Since(n.st.LastHeartbeat) > limit {
				h.setLocked(n, Down, fmt.Sprintf("no heartbeat for %d intervals (%s)", h.cfg.Misses, limit))
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
func (h *Hub) TLSConfig(hosts []string) (*tls.Config, error) {
	cert, err := h.cfg.CA.ServerCert(hosts, time.Now())
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequestClientCert,
		MinVersion:   tls.VersionTLS13,
	}, nil
}

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
	h.mu.Unlock()
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
	now := time.Now().UTC().Round(0)
	cert, err := h.cfg.CA.SignClient(m.CSR, m.Name, now)
	if err != nil {
		refuse(err.Error())
		return
	}
	a := store.Agent{Name: m.Name, Version: m.Version, Capabilities: m.Capabilities, Address: hostOf(c.RemoteAddr())}
	ac := store.AgentCert{Serial: cert.SerialNumber.Text(16), Fingerprint: pki.Fingerprint(cert), IssuedAt: now, NotAfter: cert.NotAfter}
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
	h.setLocked(n, Down, "enrolled, not connected yet")
	h.mu.Unlock()
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
func (h *Hub) authenticate(ctx context.Context, c *tls.Conn) (int64, string) {
	certs := c.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return 0, ReasonNoCert
	}
	leaf := certs[0]
	inter := x509.NewCertPool()
	for _, ic := range certs[1:] {
		inter.AddCert(ic)
	}
	_, verr := leaf.Verify(x509.VerifyOptions{Roots: h.cfg.CA.Pool(), Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, CurrentTime: time.Now()})
	rec, err := h.cfg.Store.AgentCertByFingerprint(ctx, pki.Fingerprint(leaf))
	switch {
	case err != nil && errors.Is(err, store.ErrNotFound):
		return 0, ReasonUnknownCert + " (not issued by this manager: enroll the agent again with a join token)"
	case err != nil:
		return 0, "certificate lookup failed: " + err.Error()
	case !rec.RevokedAt.IsZero():
		return rec.AgentID, ReasonRevoked
	case verr != nil:
		var ie x509.CertificateInvalidError
		if errors.As(verr, &ie) && ie.Reason == x509.Expired {
			return rec.AgentID, ReasonExpired
		}
		return rec.AgentID, ReasonUnknownCert + ": " + verr.Error()
	}
	return rec.AgentID, ""
}

func (h *Hub) session(c *tls.Conn, r *bufio.Reader, enc *json.Encoder, hello msg) {
	ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
	id, reason := h.authenticate(ctx, c)
	cancel()
	addr := hostOf(c.RemoteAddr())
	if reason == "" {
		if skew := hello.Time.Sub(time.Now()); hello.Time.IsZero() || skew.Abs() > h.cfg.MaxSkew {
			reason = fmt.Sprintf("%s %s beyond %s", ReasonClockSkew, skew.Round(time.Millisecond), h.cfg.MaxSkew)
		}
	}
	if reason != "" {
		h.pending(id, c.RemoteAddr().String(), addr, reason)
		enc.Encode(msg{Type: "refused", Reason: reason})
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
	n.st.Version, n.st.Capabilities, n.st.Address, n.st.LastHeartbeat = hello.Version, hello.Capabilities, addr, now
	n.st.VersionSkew = h.skewed(hello.Version)
	h.setLocked(n, Up, "")
	h.mu.Unlock()
	sctx, scancel := context.WithTimeout(context.Background(), handshakeTimeout)
	if err := h.cfg.Store.AgentSeen(sctx, id, hello.Version, hello.Capabilities, addr, now); err != nil {
		h.log.Warn("agent: storing what it reported", "agent", n.st.Name, "err", err)
	}
	scancel()

	limit := time.Duration(h.cfg.Misses) * h.cfg.Interval
	silent := fmt.Sprintf("no heartbeat for %d intervals (%s)", h.cfg.Misses, limit)
	downReason := "connection closed"
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
	if err := l.send(msg{Type: "welcome", ID: id, Interval: h.cfg.Interval.String(), Version: h.cfg.Version}); err != nil {
		return
	}
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
		if m.Type == "op-result" {
			l.deliver(m)
			continue
		}
		if m.Type != "heartbeat" {
			continue
		}
		now := time.Now()
		if skew := m.Time.Sub(now); m.Time.IsZero() || skew.Abs() > h.cfg.MaxSkew {
			reason := fmt.Sprintf("%s %s beyond %s", ReasonClockSkew, skew.Round(time.Millisecond), h.cfg.MaxSkew)
			h.mu.Lock()
			if n.conn == c {
				n.conn = nil
				h.setLocked(n, PendingUp, reason)
			}
			h.mu.Unlock()
			l.send(msg{Type: "refused", Reason: reason})
			return
		}
		h.mu.Lock()
		if n.conn != c { // revoked or replaced meanwhile
			h.mu.Unlock()
			return
		}
		n.st.LastHeartbeat = now
		if len(m.Capabilities) > 0 {
			n.st.Capabilities = m.Capabilities
		}
		h.setLocked(n, Up, "")
		h.mu.Unlock()
		if err := l.send(msg{Type: "ack", Seq: m.Seq}); err != nil {
			return
		}
	}
}

func (h *Hub) pending(id int64, remote, addr, reason string) {
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
	_ = remote
}

// hashSecret is the stored form of a join token's secret.
func hashSecret(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}
