package hostlink

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Fault is a fault the BMC-side Endpoint injects.
type Fault int

const (
	// FaultNone answers normally.
	FaultNone Fault = iota
	// FaultSilent accepts TCP connections and never answers: the client
	// times out.
	FaultSilent
	// FaultRefuse resets every new connection at once.
	FaultRefuse
	// FaultBadAnswer answers HTTP 200 with a body that is not an identity.
	FaultBadAnswer
)

// EndpointConfig configures the BMC side of the link.
type EndpointConfig struct {
	// Addr is the listen address, e.g. "127.0.0.1:0" or "[::1]:0".
	Addr string
	// Cert is the BMC's link server certificate (see SelfSigned).
	Cert tls.Certificate
	// ClientCAs signs acceptable link client certificates (the manager's
	// agent CA). A client certificate is required.
	ClientCAs *x509.CertPool
	// Clock is the time client certificates are verified at (default
	// time.Now).
	Clock func() time.Time
	// UUID and Firmware are answered at GET /link/v1/identity.
	UUID, Firmware string
}

// Endpoint is the BMC's link endpoint: HTTPS with required client
// certificates, for the simulator and tests.
type Endpoint struct {
	cfg      EndpointConfig
	ln       net.Listener
	srv      *http.Server
	fault    atomic.Int64
	requests atomic.Int64
	done     chan struct{}

	mu     sync.Mutex
	held   map[net.Conn]struct{} // connections kept silent
	closed bool
}

// SelfSigned makes an ECDSA P-256 self-signed server certificate for hosts
// (IP addresses or DNS names) valid from now-5m for lifetime.
func SelfSigned(hosts []string, now time.Time, lifetime time.Duration) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	sn, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: "lightsout BMC host link"},
		NotBefore:             now.Add(-5 * time.Minute),
		NotAfter:              now.Add(lifetime),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// NewEndpoint listens on cfg.Addr and serves the link.
func NewEndpoint(cfg EndpointConfig) (*Endpoint, error) {
	if len(cfg.Cert.Certificate) == 0 {
		return nil, errors.New("hostlink endpoint: no server certificate")
	}
	if cfg.ClientCAs == nil {
		return nil, errors.New("hostlink endpoint: no client CA")
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, err
	}
	e := &Endpoint{cfg: cfg, ln: ln, held: map[net.Conn]struct{}{}, done: make(chan struct{})}
	tcfg := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cfg.Cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    cfg.ClientCAs,
		Time:         cfg.Clock,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+IdentityPath, e.identity)
	e.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	go func() {
		defer close(e.done)
		e.srv.Serve(tls.NewListener(&faultListener{Listener: ln, e: e}, tcfg))
	}()
	return e, nil
}

// Addr is the listening address (host:port).
func (e *Endpoint) Addr() string { return e.ln.Addr().String() }

// SetFault sets the fault for new connections and requests.
func (e *Endpoint) SetFault(f Fault) { e.fault.Store(int64(f)) }

// Requests is the number of requests answered.
func (e *Endpoint) Requests() int64 { return e.requests.Load() }

// Close stops listening and closes every connection.
func (e *Endpoint) Close() error {
	e.mu.Lock()
	e.closed = true
	for c := range e.held {
		c.Close()
	}
	e.held = map[net.Conn]struct{}{}
	e.mu.Unlock()
	err := e.srv.Close()
	<-e.done
	return err
}

func (e *Endpoint) identity(w http.ResponseWriter, r *http.Request) {
	e.requests.Add(1)
	w.Header().Set("Content-Type", "application/json")
	if Fault(e.fault.Load()) == FaultBadAnswer {
		io.WriteString(w, `{"uuid": [1,2,3], "service": <html>garbage`)
		return
	}
	json.NewEncoder(w).Encode(Identity{UUID: e.cfg.UUID, Firmware: e.cfg.Firmware, Service: ServiceName})
}

// hold keeps c open without answering until the client leaves or the
// endpoint closes.
func (e *Endpoint) hold(c net.Conn) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		c.Close()
		return
	}
	e.held[c] = struct{}{}
	go func() {
		io.Copy(io.Discard, c) // until the client closes, or Close
		e.mu.Lock()
		delete(e.held, c)
		e.mu.Unlock()
		c.Close()
	}()
}

// faultListener applies the connection faults before TLS.
type faultListener struct {
	net.Listener
	e *Endpoint
}

func (l *faultListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		switch Fault(l.e.fault.Load()) {
		case FaultSilent:
			l.e.hold(c)
		case FaultRefuse:
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetLinger(0) // close with a reset
			}
			c.Close()
		default:
			return c, nil
		}
	}
}
