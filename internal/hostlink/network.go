package hostlink

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/lightsout/lightsout/internal/pki"
)

// Wire constants of the network paths.
const (
	IdentityPath = "/link/v1/identity"
	ServiceName  = "lightsout-hostlink"
	// MaxBody bounds the identity answer read.
	MaxBody = 64 << 10
	// maxField bounds uuid and firmware.
	maxField = 256
)

// TLS alert codes (RFC 8446 §6) the BMC sends when it refuses the client
// certificate.
const (
	alertBadCertificate         = 42
	alertUnsupportedCertificate = 43
	alertCertificateRevoked     = 44
	alertCertificateExpired     = 45
	alertCertificateUnknown     = 46
	alertUnknownCA              = 48
	alertAccessDenied           = 49
	alertCertificateRequired    = 116
)

// errPinChanged marks a fingerprint mismatch (wrapped with ErrNotTrusted).
var errPinChanged = errors.New("pinned BMC certificate changed")

// Identity is the answer of GET /link/v1/identity.
type Identity struct {
	UUID     string `json:"uuid"`
	Firmware string `json:"firmware"`
	Service  string `json:"service"`
}

// DecodeIdentity reads an identity answer defensively: at most MaxBody
// bytes, one JSON object, the right service, bounded printable fields.
// Every failure wraps ErrBadAnswer.
func DecodeIdentity(b []byte) (Identity, error) {
	var id Identity
	if len(b) > MaxBody {
		return id, fmt.Errorf("%w: body over %d bytes", ErrBadAnswer, MaxBody)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&id); err != nil {
		return Identity{}, fmt.Errorf("%w: %v", ErrBadAnswer, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Identity{}, fmt.Errorf("%w: data after the JSON object", ErrBadAnswer)
	}
	if id.Service != ServiceName {
		return Identity{}, fmt.Errorf("%w: service %q, want %q", ErrBadAnswer, clip(id.Service), ServiceName)
	}
	for _, f := range []struct{ name, v string }{{"uuid", id.UUID}, {"firmware", id.Firmware}} {
		if len(f.v) > maxField || !printable(f.v) {
			return Identity{}, fmt.Errorf("%w: %s not a short printable string", ErrBadAnswer, f.name)
		}
	}
	return id, nil
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

func clip(s string) string {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}

func leafOf(c *tls.Certificate) (*x509.Certificate, error) {
	if c.Leaf != nil {
		return c.Leaf, nil
	}
	if len(c.Certificate) == 0 {
		return nil, errors.New("empty certificate")
	}
	return x509.ParseCertificate(c.Certificate[0])
}

// checkNetwork tries one network path with retries after timeouts.
func checkNetwork(ctx context.Context, cfg Config, cert *tls.Certificate, path, addr string, o *Observation) (Attempt, identity) {
	a := Attempt{Path: path, Address: addr}
	var id identity
	var err error
	for a.Tries < 1+cfg.Retries {
		a.Tries++
		start := time.Now()
		id, err = tryNetwork(ctx, cfg, cert, addr)
		if err == nil {
			id.latency = time.Since(start)
			a.OK, a.Timeout, a.Cause = true, false, nil
			return a, id
		}
		if !tryTimedOut(ctx, err) {
			break
		}
		o.Timeouts++
		err = fmt.Errorf("%w: no answer in %v (%d tries): %v", ErrTimeout, cfg.Timeout, a.Tries, err)
		a.Timeout = true
		if ctx.Err() != nil {
			break
		}
	}
	a.Timeout = errors.Is(err, ErrTimeout)
	err = classify(err)
	a.Cause, a.Err = err, err.Error()
	return a, id
}

// tryNetwork is one try: dial, handshake, request and answer, all within
// cfg.Timeout.
func tryNetwork(ctx context.Context, cfg Config, cert *tls.Certificate, addr string) (identity, error) {
	var id identity
	tctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	deadline, _ := tctx.Deadline()

	tcfg := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{*cert},
		Time:         cfg.Clock,
		// The BMC's certificate is self-signed: it is checked by its
		// fingerprint in VerifyConnection, not by a chain.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return fmt.Errorf("%w: the BMC presented no certificate", ErrNotTrusted)
			}
			id.fingerprint = pki.Fingerprint(cs.PeerCertificates[0])
			if cfg.BMCFingerprint != "" && !strings.EqualFold(id.fingerprint, cfg.BMCFingerprint) {
				return fmt.Errorf("%w: %w: the BMC's link certificate changed (pinned %s, got %s)", ErrNotTrusted, errPinChanged, cfg.BMCFingerprint, id.fingerprint)
			}
			return nil
		},
	}
	d := tls.Dialer{NetDialer: &net.Dialer{}, Config: tcfg}
	c, err := d.DialContext(tctx, "tcp", addr)
	if err != nil {
		return id, err
	}
	defer c.Close()
	if err := c.SetDeadline(deadline); err != nil {
		return id, err
	}
	// Close the connection when the caller cancels mid-exchange.
	stop := context.AfterFunc(tctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	req, err := http.NewRequestWithContext(tctx, http.MethodGet, "https://"+addr+IdentityPath, nil)
	if err != nil {
		return id, err
	}
	req.Close = true
	req.Header.Set("User-Agent", "lightsout-agent")
	if err := req.Write(c); err != nil {
		return id, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), req)
	if err != nil {
		return id, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody+1))
	if err != nil {
		return id, err
	}
	if resp.StatusCode != http.StatusOK {
		return id, fmt.Errorf("%w: HTTP %s", ErrBadAnswer, resp.Status)
	}
	ans, err := DecodeIdentity(body)
	if err != nil {
		return id, err
	}
	id.UUID, id.Firmware = ans.UUID, ans.Firmware
	return id, nil
}

// classify wraps err with the sentinel that names its cause, and phrases
// the certificate cases for the operator.
func classify(err error) error {
	if errors.Is(err, ErrNotTrusted) || errors.Is(err, ErrCertExpired) || errors.Is(err, ErrTimeout) || errors.Is(err, ErrBadAnswer) {
		return err
	}
	if code, ok := remoteAlert(err); ok {
		switch code {
		case alertCertificateExpired:
			return fmt.Errorf("%w: the BMC refused the link certificate as expired (%v)", ErrCertExpired, err)
		case alertBadCertificate, alertUnsupportedCertificate, alertCertificateRevoked,
			alertCertificateUnknown, alertUnknownCA, alertAccessDenied, alertCertificateRequired:
			return fmt.Errorf("%w: the BMC does not trust the link certificate (%v)", ErrNotTrusted, err)
		}
	}
	if errors.Is(err, syscall.EAFNOSUPPORT) || errors.Is(err, syscall.EADDRNOTAVAIL) {
		return fmt.Errorf("no such address family or address on this host (IPv6 stack unavailable?): %w", err)
	}
	return err
}

// RemoteAlert returns the TLS alert code the peer sent, if err is the
// peer's refusal of a handshake (for other packages: the agent hub tells
// an agent that refused the manager's certificate from a network failure).
func RemoteAlert(err error) (uint8, bool) { return remoteAlert(err) }

// remoteAlert returns the TLS alert the peer sent. crypto/tls reports a
// received alert as *net.OpError{Op: "remote error"} around its unexported
// alert type (a uint8); tls.AlertError (QUIC, and any future wrapping) is
// tried first. The error text is the last resort.
func remoteAlert(err error) (uint8, bool) {
	if code, ok := remoteAlertTyped(err); ok {
		return code, true
	}
	return remoteAlertText(err)
}

func remoteAlertTyped(err error) (uint8, bool) {
	var ae tls.AlertError
	if errors.As(err, &ae) {
		return uint8(ae), true
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "remote error" && op.Err != nil {
		if v := reflect.ValueOf(op.Err); v.Kind() == reflect.Uint8 {
			return uint8(v.Uint()), true
		}
	}
	return 0, false
}

func remoteAlertText(err error) (uint8, bool) {
	s := err.Error()
	for _, t := range []struct {
		text string
		code uint8
	}{
		{"expired certificate", alertCertificateExpired},
		{"bad certificate", alertBadCertificate},
		{"unknown certificate authority", alertUnknownCA},
		{"certificate required", alertCertificateRequired},
		{"revoked certificate", alertCertificateRevoked},
		{"unsupported certificate", alertUnsupportedCertificate},
		{"unknown certificate", alertCertificateUnknown},
		{"access denied", alertAccessDenied},
	} {
		if strings.Contains(s, "remote error: tls: "+t.text) {
			return t.code, true
		}
	}
	return 0, false
}
