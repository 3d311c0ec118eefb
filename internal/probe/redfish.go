package probe

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/stmcginnis/gofish"
	"github.com/stmcginnis/gofish/schemas"

	"github.com/lightsout/lightsout/internal/guid"
	"github.com/lightsout/lightsout/internal/state"
)

// CertPins stores the SHA-256 fingerprint of each Redfish BMC's leaf
// certificate (trust on first use). Name is the target's name.
type CertPins interface {
	// CertPin returns the pinned fingerprint ("" when none).
	CertPin(ctx context.Context, name string) (string, error)
	// PinCert pins fingerprint for name.
	PinCert(ctx context.Context, name, fingerprint string) error
}

// AwaitingPin is the pin of a machine whose Redfish address (or protocol)
// was changed: no certificate matches it, so the first contact at the new
// address is Invalid / cert_changed, and no credentials are sent, until an
// admin accepts the certificate it presents (trust on first use applies to
// a new machine, never to a moved one).
const AwaitingPin = "0000000000000000000000000000000000000000000000000000000000000000"

// MemPins is an in-memory CertPins (for `lightsout check` and tests).
type MemPins struct {
	mu sync.Mutex
	m  map[string]string
}

func (p *MemPins) CertPin(_ context.Context, name string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.m[name], nil
}

func (p *MemPins) PinCert(_ context.Context, name, fp string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[string]string{}
	}
	p.m[name] = fp
	return nil
}

// NewRedfishTransport is the one HTTP transport a fleet's Redfish checks
// share: one connection per BMC at most, kept alive between checks. The
// certificate chain is not verified (BMCs present self-signed
// certificates); the probe pins the leaf instead.
func NewRedfishTransport() *http.Transport {
	return &http.Transport{
		DialContext:         (&net.Dialer{Timeout: DefaultTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}, //nolint:gosec // pinned by the probe
		TLSHandshakeTimeout: DefaultTimeout,
		MaxIdleConnsPerHost: 1,
		MaxConnsPerHost:     1,
		IdleConnTimeout:     time.Minute,
	}
}

// RedfishEvidence is what a Redfish check saw.
type RedfishEvidence struct {
	// Statuses are the HTTP status codes, in order ("GET /redfish/v1 200").
	Statuses     []string `json:"statuses,omitempty"`
	TLSVersion   string   `json:"tls_version,omitempty"`
	CertSHA256   string   `json:"cert_sha256,omitempty"`
	PinnedSHA256 string   `json:"pinned_sha256,omitempty"`
	CertSubject  string   `json:"cert_subject,omitempty"`
	CertExpires  string   `json:"cert_expires,omitempty"`
	UUID         string   `json:"uuid,omitempty"` // as the service reported it
	PowerState   string   `json:"power_state,omitempty"`
	Model        string   `json:"model,omitempty"`
	BIOSVersion  string   `json:"bios_version,omitempty"`
	LoggedOut    bool     `json:"logged_out,omitempty"`
}

// recorder wraps the shared transport for one check: per-request
// deadlines, status codes and the TLS state of the first response. It does
// not pass CloseIdleConnections on (gofish's Logout would close the whole
// fleet's idle connections).
type recorder struct {
	rt      http.RoundTripper
	timeout time.Duration
	mu      sync.Mutex
	tls     *tls.ConnectionState
	ev      *RedfishEvidence
}

type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b cancelBody) Close() error { err := b.ReadCloser.Close(); b.cancel(); return err }

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(req.Context(), r.timeout)
	resp, err := r.rt.RoundTrip(req.WithContext(ctx))
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = cancelBody{resp.Body, cancel}
	r.mu.Lock()
	if r.tls == nil && resp.TLS != nil {
		st := *resp.TLS
		r.tls = &st
	}
	r.ev.Statuses = append(r.ev.Statuses, fmt.Sprintf("%s %s %d", req.Method, req.URL.Path, resp.StatusCode))
	r.mu.Unlock()
	return resp, nil
}

// Redfish returns a Prober that checks a BMC over Redfish through the
// shared transport tr: GET the service root without credentials (TLS,
// certificate pin), log in (session), read Systems/1 (UUID, PowerState),
// log out. Credentials are never sent to a BMC whose certificate differs
// from the pinned one. pins may be nil (no pinning).
func Redfish(tr http.RoundTripper, pins CertPins) Prober {
	return func(ctx context.Context, t Target) Observation {
		return checkRedfish(ctx, tr, pins, t)
	}
}

func checkRedfish(ctx context.Context, tr http.RoundTripper, pins CertPins, t Target) (o Observation) {
	start := time.Now()
	o = Observation{Name: t.Name, Host: t.Addr.String(), Protocol: "redfish", At: start}
	o.Evidence.RTTMS = map[string]float64{}
	ev := &RedfishEvidence{}
	o.Evidence.Redfish = ev
	if !t.Expected.Zero() {
		o.Expected = t.Expected.Spelling()
	}
	timeout := t.timeout()
	defer func() { o.ElapsedMS = ms(time.Since(start)) }()
	rec := &recorder{rt: tr, timeout: timeout, ev: ev}
	client := &http.Client{Transport: rec, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	base := "https://" + t.Addr.String()

	// 1. Service root, no credentials: reachability, TLS, certificate.
	t0 := time.Now()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/redfish/v1/", nil)
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return rfFail(o, t, err, 0)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	o.Evidence.RTTMS["service_root"] = ms(time.Since(t0))
	if st := rec.tls; st != nil {
		ev.TLSVersion = tls.VersionName(st.Version)
		if len(st.PeerCertificates) > 0 {
			leaf := st.PeerCertificates[0]
			sum := sha256.Sum256(leaf.Raw)
			ev.CertSHA256 = hex.EncodeToString(sum[:])
			ev.CertSubject = leaf.Subject.String()
			ev.CertExpires = leaf.NotAfter.UTC().Format(time.RFC3339)
		}
	}
	if resp.StatusCode == http.StatusServiceUnavailable {
		return rfFail(o, t, &schemas.Error{HTTPReturnedStatusCode: 503}, 503)
	}
	if pins != nil && ev.CertSHA256 != "" {
		pinned, err := pins.CertPin(ctx, t.Name)
		switch {
		case err != nil:
			// Cannot compare: go on, say so.
			o.Evidence.Error = "certificate pin unavailable: " + err.Error()
		case pinned == "":
			_ = pins.PinCert(ctx, t.Name, ev.CertSHA256)
		case pinned == AwaitingPin:
			o.State, o.Reason = state.Invalid, state.ReasonCertChanged
			o.Message = fmt.Sprintf("new address: the BMC at %s presents a certificate with SHA-256 %s; the account's address was changed, so its certificate is not trusted on first use and no credentials were sent. An admin accepts it once verified (lightsout accept-cert)",
				t.Addr, short(ev.CertSHA256))
			return o
		case !strings.EqualFold(pinned, ev.CertSHA256):
			ev.PinnedSHA256 = pinned
			o.State, o.Reason = state.Invalid, state.ReasonCertChanged
			o.Message = fmt.Sprintf("certificate changed: the BMC at %s presents a certificate with SHA-256 %s, but %s was pinned on first contact: the BMC was replaced or reset, its certificate regenerated, or something intercepts the connection; no credentials were sent. An admin accepts the new certificate once verified",
				t.Addr, short(ev.CertSHA256), short(pinned))
			return o
		}
	}

	// 2. Session.
	t0 = time.Now()
	c, err := gofish.ConnectContext(ctx, gofish.ClientConfig{
		Endpoint: base, Username: t.User, Password: string(t.Password),
		HTTPClient: client, NoModifyTransport: true, ReuseConnections: true, Insecure: true,
	})
	if err != nil {
		return rfFail(o, t, err, statusOf(err))
	}
	defer func() {
		c.Logout()
		for _, s := range ev.Statuses {
			if strings.HasPrefix(s, "DELETE ") && (strings.HasSuffix(s, " 204") || strings.HasSuffix(s, " 200")) {
				ev.LoggedOut = true
			}
		}
	}()
	o.Evidence.RTTMS["session"] = ms(time.Since(t0))

	// 3. Identity and power.
	t0 = time.Now()
	systems, err := c.Service.Systems()
	if err != nil {
		return rfFail(o, t, err, statusOf(err))
	}
	if len(systems) == 0 {
		return rfFail(o, t, errors.New("the service lists no ComputerSystem"), 0)
	}
	sys := systems[0]
	o.Evidence.RTTMS["system"] = ms(time.Since(t0))
	ev.UUID, ev.PowerState, ev.Model, ev.BIOSVersion = sys.UUID, string(sys.PowerState), sys.Model, sys.BiosVersion
	o.Evidence.Manufacturer, o.Evidence.Firmware = sys.Manufacturer, sys.BiosVersion
	switch sys.PowerState {
	case schemas.OnPowerState:
		o.Evidence.Power = "on"
	case schemas.OffPowerState:
		o.Evidence.Power = "off"
	}
	g, perr := guid.Parse(sys.UUID)
	if perr != nil {
		return rfFail(o, t, fmt.Errorf("system UUID %q: %w", sys.UUID, perr), 0)
	}
	// Redfish spells the UUID as text (RFC 4122 layout): no guessing.
	r := g.Renderings()
	r.Layout = guid.LayoutRFC4122
	o.Evidence.GUIDSource = "redfish_system_uuid"
	if !identity(&o, &t, g, r) {
		mismatch(&o, &t, "reports System UUID")
		return o
	}
	o.State = state.Connectable
	o.Message = fmt.Sprintf("Redfish session opened over %s, identity confirmed", ev.TLSVersion)
	if t.Expected.Zero() {
		o.Message = fmt.Sprintf("Redfish session opened over %s (no GUID registered to compare)", ev.TLSVersion)
	}
	return o
}

func short(fp string) string {
	if len(fp) > 16 {
		return fp[:16] + "…"
	}
	return fp
}

func statusOf(err error) int {
	var re *schemas.Error
	if errors.As(err, &re) {
		return re.HTTPReturnedStatusCode
	}
	return 0
}

// ClassifyRedfish maps a Redfish check error (and the HTTP status, when
// one came back) to a state and reason.
func ClassifyRedfish(err error, status int) (state.OOB, state.Reason) {
	var te *tls.RecordHeaderError
	var ae tls.AlertError
	var ne net.Error
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return state.NotAuthenticated, state.ReasonAuthRejected
	case status == http.StatusServiceUnavailable:
		return state.Connectable, state.ReasonBusy
	case status != 0:
		return state.NotResponding, state.ReasonProtocol
	case errors.Is(err, syscall.ECONNREFUSED):
		return state.NotResponding, state.ReasonPortRefused
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return state.NotResponding, state.ReasonUnreachable
	case errors.As(err, &te), errors.As(err, &ae), strings.Contains(fmt.Sprint(err), "tls: "):
		if errors.As(err, &ne) && ne.Timeout() {
			return state.NotResponding, state.ReasonSilent
		}
		return state.NotResponding, state.ReasonTLS
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return state.NotResponding, state.ReasonProtocol
	default:
		return state.NotResponding, state.ReasonSilent
	}
}

func rfFail(o Observation, t Target, err error, status int) Observation {
	o.Err = err
	o.Evidence.Error = err.Error()
	o.State, o.Reason = ClassifyRedfish(err, status)
	user := fmt.Sprintf("%q", t.User)
	switch o.Reason {
	case state.ReasonBusy:
		o.Conditions = append(o.Conditions, state.Busy)
		o.Message = "the Redfish service answers HTTP 503 (busy or out of sessions); identity not verified"
	case state.ReasonAuthRejected:
		o.Message = fmt.Sprintf("the BMC refused the Redfish login of user %s (HTTP %d): wrong password, or the user was removed or locked", user, status)
	case state.ReasonPortRefused:
		o.Message = fmt.Sprintf("%s refused TCP %d: a host is at that address but no Redfish (HTTPS) service listens", t.Addr.Addr(), t.Addr.Port())
	case state.ReasonUnreachable:
		o.Message = fmt.Sprintf("%s is unreachable: check routing and the management VLAN", t.Addr.Addr())
	case state.ReasonTLS:
		o.Message = fmt.Sprintf("the TLS handshake with %s failed: %v", t.Addr, err)
	case state.ReasonSilent:
		if errors.Is(err, context.Canceled) {
			o.Message = "check cancelled before the BMC answered"
		} else {
			o.Message = fmt.Sprintf("no answer from %s within %v: check the address, the network path (TCP %d filtering) and that the BMC is powered", t.Addr, t.timeout(), t.Addr.Port())
		}
	case state.ReasonProtocol:
		o.Message = fmt.Sprintf("the Redfish service at %s answered with nothing usable: %v", t.Addr, err)
	default:
		o.Message = err.Error()
	}
	return o
}
