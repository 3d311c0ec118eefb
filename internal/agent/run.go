package agent

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lightsout/lightsout/internal/hostlink"
	"github.com/lightsout/lightsout/internal/pki"
)

// Files in the agent's data directory.
const (
	KeyFile      = "agent.key" // 0600
	CertFile     = "agent.pem"
	CAFile       = "manager-ca.pem"
	LinkKeyFile  = "link.key" // 0600: the host link's client key
	LinkCertFile = "link.pem"
	StatusFile   = "status.json" // the agent's view, for lightsout agent status
	AuditFile    = "audit.log"   // JSON lines: what the agent did and decided
)

// Config of the host's agent.
type Config struct {
	// Manager is the manager's agent listener, HOST:PORT: the agent
	// enrolls there. Managers are more managers to keep a connection to;
	// the agent also rediscovers the managers sharing its manager's
	// database.
	Manager  string
	Managers []string
	// DataDir keeps the agent's key, certificates and the manager's CA.
	DataDir string
	// JoinToken is needed only until the agent has a certificate.
	// TokenFile, if set, is read whenever a manager refuses the agent's
	// certificate (revoked, unknown, expired): a token found there that
	// was not tried yet enrolls the agent again with a new key.
	JoinToken string
	TokenFile string
	// CAFingerprint pins the manager's CA at enrollment when the token
	// carries none (or must agree with the token's).
	CAFingerprint string
	// Name the agent enrolls under; default the host name.
	Name    string
	Version string
	// Capabilities the agent reports; default heartbeat and every op it
	// can run. The ops among them are its allowlist.
	Capabilities []string
	// ShutdownCommand is what os-shutdown runs (argv, never a shell
	// string); empty: the agent cannot shut its host down.
	ShutdownCommand []string
	// MinBackoff and MaxBackoff bound the reconnection back-off (defaults
	// 1s and 1m; doubled after each failure, with jitter).
	MinBackoff, MaxBackoff time.Duration
	// Rediscover is how often the agent asks for the current list of
	// managers (default 5m; negative: never).
	Rediscover time.Duration
	// RenewBefore: a certificate expiring within this is renewed, and
	// warned about until it is (default 30 days). CertCheck is how often
	// expiry is looked at (default 1h).
	RenewBefore, CertCheck time.Duration
	// Link configures the host link (agent ↔ its own BMC); nil: none.
	// LinkInterval is how often it is checked (default 1m).
	Link         *hostlink.Config
	LinkInterval time.Duration
	// Clock returns the time put in heartbeats and used for certificate
	// expiry (tests move it); default time.Now.
	Clock  func() time.Time
	Logger *slog.Logger
	// OnEvent, if set, is told of each connection outcome: "enrolled",
	// "up", "refused: REASON", "lost: ERR", "renewed: KIND". It must not
	// block.
	OnEvent func(string)
}

// ErrEnrollRefused wraps the manager's refusal of a join token or CSR.
var ErrEnrollRefused = errors.New("enrollment refused")

// Run enrolls (once) and keeps the agent connected to its managers until
// ctx ends.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Manager == "" || cfg.DataDir == "" {
		return errors.New("agent: manager address and data directory are required")
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = time.Second
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(time.Minute, cfg.MinBackoff)
	}
	if cfg.Rediscover == 0 {
		cfg.Rediscover = 5 * time.Minute
	}
	if cfg.RenewBefore <= 0 {
		cfg.RenewBefore = 30 * 24 * time.Hour
	}
	if cfg.CertCheck <= 0 {
		cfg.CertCheck = time.Hour
	}
	if cfg.LinkInterval <= 0 {
		cfg.LinkInterval = time.Minute
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Version == "" {
		cfg.Version = Version
	}
	if cfg.Capabilities == nil {
		cfg.Capabilities = defaultCapabilities(cfg)
	}
	if cfg.Name == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("agent name: %w", err)
		}
		cfg.Name = h
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return err
	}
	a := newAgentd(cfg)
	bo := a.newBackoff()
	for {
		_, err := loadIdentity(cfg.DataDir)
		if err == nil {
			break
		}
		if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		err = enroll(ctx, cfg, cfg.Manager, cfg.JoinToken)
		if err == nil {
			a.emit("enrolled")
			a.audit("enrolled", "enrolled with the manager at "+cfg.Manager)
			break
		}
		if errors.Is(err, ErrEnrollRefused) {
			return err
		}
		cfg.Logger.Warn("agent enrollment", "manager", cfg.Manager, "err", err)
		if werr := bo.wait(ctx); werr != nil {
			return nil
		}
	}
	a.run(ctx)
	return nil
}

func loadIdentity(dir string) (*tls.Config, error) {
	kb, err := os.ReadFile(filepath.Join(dir, KeyFile))
	if err != nil {
		return nil, err
	}
	cb, err := os.ReadFile(filepath.Join(dir, CertFile))
	if err != nil {
		return nil, err
	}
	ca, err := os.ReadFile(filepath.Join(dir, CAFile))
	if err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair(cb, kb)
	if err != nil {
		return nil, fmt.Errorf("agent identity in %s: %w", dir, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("agent identity: %s holds no certificate", CAFile)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: pool, ServerName: "lightsout-manager", MinVersion: tls.VersionTLS13}, nil
}

func dial(ctx context.Context, addr string, tc *tls.Config) (*tls.Conn, error) {
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: handshakeTimeout, KeepAlive: 30 * time.Second}, Config: tc}
	hctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	c, err := d.DialContext(hctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return c.(*tls.Conn), nil
}

// enroll sends a CSR with the join token, pinning the manager's CA by its
// fingerprint, and stores the key, the certificate and the CA.
func enroll(ctx context.Context, cfg Config, addr, token string) error {
	secretPart, fp, err := ParseJoinToken(token)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrEnrollRefused, err)
	}
	if cfg.CAFingerprint != "" {
		want := strings.ToLower(strings.ReplaceAll(cfg.CAFingerprint, ":", ""))
		if err := checkFingerprint(want); err != nil {
			return fmt.Errorf("%w: %v", ErrEnrollRefused, err)
		}
		if fp != "" && fp != want {
			return fmt.Errorf("%w: the CA fingerprint given differs from the join token's", ErrEnrollRefused)
		}
		fp = want
	}
	if fp == "" {
		return fmt.Errorf("%w: no CA fingerprint to pin (the token carries none; give one)", ErrEnrollRefused)
	}
	key, csr, err := pki.NewCSR(cfg.Name)
	if err != nil {
		return err
	}
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true, // verified below against the pinned CA
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			return verifyPinned(raw, fp, cfg.Clock())
		},
	}
	c, err := dial(ctx, addr, tc)
	if err != nil {
		return err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	c.SetDeadline(time.Now().Add(handshakeTimeout))
	if err := json.NewEncoder(c).Encode(msg{Type: "enroll", Token: secretPart, CSR: csr, Name: cfg.Name,
		Version: cfg.Version, Capabilities: cfg.Capabilities}); err != nil {
		return err
	}
	var m msg
	if err := readMsg(bufio.NewReader(c), &m); err != nil {
		return err
	}
	if m.Type != "enrolled" {
		return fmt.Errorf("%w: %s", ErrEnrollRefused, m.Reason)
	}
	ca, err := pki.ParseCertPEM(m.CA)
	if err != nil || pki.Fingerprint(ca) != fp {
		return fmt.Errorf("%w: the manager sent a CA that is not the pinned one", ErrEnrollRefused)
	}
	kp, err := pki.KeyPEM(key)
	if err != nil {
		return err
	}
	if _, err := tls.X509KeyPair(m.Cert, kp); err != nil {
		return fmt.Errorf("%w: the certificate does not match our key: %v", ErrEnrollRefused, err)
	}
	// The key last: loadIdentity starts from it, so a half-written
	// identity is re-enrolled (the token is spent, though: say so).
	for _, f := range []struct {
		name string
		b    []byte
		perm os.FileMode
	}{{CAFile, m.CA, 0o644}, {CertFile, m.Cert, 0o644}, {KeyFile, kp, 0o600}} {
		p := filepath.Join(cfg.DataDir, f.name)
		os.Remove(p)
		if err := pki.WriteFile(p, f.b, f.perm); err != nil {
			return fmt.Errorf("%w: enrolled as node %d but could not store %s: %v", ErrEnrollRefused, m.ID, p, err)
		}
	}
	cfg.Logger.Info("agent enrolled", "manager", addr, "id", m.ID)
	return nil
}

// verifyPinned checks that the chain contains the pinned CA and that the
// leaf is signed by it.
func verifyPinned(raw [][]byte, fp string, now time.Time) error {
	var certs []*x509.Certificate
	for _, r := range raw {
		c, err := x509.ParseCertificate(r)
		if err != nil {
			return err
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return errors.New("no server certificate")
	}
	for _, c := range certs[1:] {
		if pki.Fingerprint(c) != fp {
			continue
		}
		pool := x509.NewCertPool()
		pool.AddCert(c)
		if _, err := certs[0].Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now}); err != nil {
			return fmt.Errorf("server certificate not signed by the pinned CA: %w", err)
		}
		return nil
	}
	return fmt.Errorf("the manager's CA is not the pinned one (fingerprint %s)", fp)
}
