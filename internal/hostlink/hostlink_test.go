package hostlink

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/pki"
)

// fixture is a manager CA, a link client certificate it issued, and the
// BMC's self-signed link server certificate.
type fixture struct {
	ca     *pki.CA
	client *tls.Certificate
	server tls.Certificate
	now    time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ca, err := pki.LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	srv, err := SelfSigned([]string{"127.0.0.1", "::1"}, now, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{ca: ca, client: issue(t, ca, now), server: srv, now: now}
}

func issue(t *testing.T, ca *pki.CA, now time.Time) *tls.Certificate {
	t.Helper()
	key, csr, err := pki.NewCSR("host-1")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.SignClient(csr, "host-1", now)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}
}

func (f *fixture) endpoint(t *testing.T, addr string, clock func() time.Time) *Endpoint {
	t.Helper()
	e, err := NewEndpoint(EndpointConfig{Addr: addr, Cert: f.server, ClientCAs: f.ca.Pool(), Clock: clock, UUID: "4c4c4544-0031-3210-8050-b4c04f4e3232", Firmware: "7.00.00.171"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// endpoint6 listens on [::1] or skips.
func (f *fixture) endpoint6(t *testing.T) *Endpoint {
	t.Helper()
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	ln.Close()
	return f.endpoint(t, "[::1]:0", nil)
}

// closedAddr is a loopback address nothing listens on (refused).
func (f *fixture) closedAddr(t *testing.T) string {
	t.Helper()
	e := f.endpoint(t, "127.0.0.1:0", nil)
	addr := e.Addr()
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

func (f *fixture) config(ipv4, ipv6 string) Config {
	return Config{
		DisableInBand: true,
		IPv4:          ipv4,
		IPv6:          ipv6,
		Timeout:       2 * time.Second,
		Certificate:   func() *tls.Certificate { return f.client },
	}
}

func check(t *testing.T, cfg Config) Observation {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	o := Check(ctx, cfg)
	t.Logf("%+v", o)
	return o
}

func TestUpIPv4(t *testing.T) {
	f := newFixture(t)
	e := f.endpoint(t, "127.0.0.1:0", nil)
	cfg := f.config(e.Addr(), "")
	cfg.DisableIPv6 = true
	o := check(t, cfg)
	if o.State != StateUp || o.Path != PathIPv4 || o.Address != e.Addr() {
		t.Fatalf("state %s path %s address %s, want Up ipv4 %s (%s)", o.State, o.Path, o.Address, e.Addr(), o.Reason)
	}
	if o.UUID != "4c4c4544-0031-3210-8050-b4c04f4e3232" || o.Firmware != "7.00.00.171" {
		t.Errorf("uuid %q firmware %q", o.UUID, o.Firmware)
	}
	if len(o.Attempts) != 1 || !o.Attempts[0].OK || o.Attempts[0].Tries != 1 {
		t.Errorf("attempts %+v, want one OK of one try", o.Attempts)
	}
	if o.BMCFingerprint != pki.Fingerprint(f.server.Leaf) {
		t.Errorf("fingerprint %s, want the server's %s", o.BMCFingerprint, pki.Fingerprint(f.server.Leaf))
	}
	if !o.CertNotAfter.Equal(f.client.Leaf.NotAfter) || o.IPv4Failed || o.Reason != "" || o.Timeouts != 0 {
		t.Errorf("not after %v (want %v), ipv4 failed %v, reason %q, timeouts %d", o.CertNotAfter, f.client.Leaf.NotAfter, o.IPv4Failed, o.Reason, o.Timeouts)
	}
	if e.Requests() != 1 {
		t.Errorf("endpoint answered %d requests, want 1", e.Requests())
	}
}

func TestIPv4RefusedFallsBackToIPv6(t *testing.T) {
	f := newFixture(t)
	e6 := f.endpoint6(t)
	dead := f.closedAddr(t)
	o := check(t, f.config(dead, e6.Addr()))
	if o.State != StateUp || o.Path != PathIPv6 || !o.IPv4Failed {
		t.Fatalf("state %s path %s ipv4failed %v, want Up over ipv6 with IPv4Failed", o.State, o.Path, o.IPv4Failed)
	}
	if !strings.Contains(o.Reason, "IPv4") || !strings.Contains(o.Reason, "refused") {
		t.Errorf("reason %q does not name the IPv4 failure (connection refused)", o.Reason)
	}
	if len(o.Attempts) != 2 || o.Attempts[0].Path != PathIPv4 || o.Attempts[0].OK || o.Attempts[0].Tries != 1 || o.Attempts[0].Timeout || !o.Attempts[1].OK {
		t.Errorf("attempts %+v: want ipv4 failed once (refused is not retried), ipv6 OK", o.Attempts)
	}
	if o.Remedy == "" || o.UUID == "" {
		t.Errorf("remedy %q uuid %q", o.Remedy, o.UUID)
	}
}

func TestDisableIPv4GoesStraightToIPv6(t *testing.T) {
	f := newFixture(t)
	e6 := f.endpoint6(t)
	cfg := f.config("", e6.Addr())
	cfg.DisableIPv4 = true
	o := check(t, cfg)
	if o.State != StateUp || o.Path != PathIPv6 || o.IPv4Failed || o.Reason != "" {
		t.Fatalf("state %s path %s ipv4failed %v reason %q, want Up ipv6 and no IPv4 failure", o.State, o.Path, o.IPv4Failed, o.Reason)
	}
	for _, a := range o.Attempts {
		if a.Path == PathIPv4 {
			t.Errorf("IPv4 was tried although disabled: %+v", a)
		}
	}
}

func TestDisableIPv6WithIPv4FailingIsDown(t *testing.T) {
	f := newFixture(t)
	cfg := f.config(f.closedAddr(t), "")
	cfg.DisableIPv6 = true
	o := check(t, cfg)
	if o.State != StateDown || len(o.Attempts) != 1 || o.Attempts[0].Path != PathIPv4 {
		t.Fatalf("state %s attempts %+v, want Down after one ipv4 attempt", o.State, o.Attempts)
	}
	if !strings.Contains(o.Reason, "refused") || o.Remedy != RemedyDown {
		t.Errorf("reason %q remedy %q", o.Reason, o.Remedy)
	}
}

func TestAllDisabled(t *testing.T) {
	o := check(t, Config{DisableInBand: true, DisableIPv4: true, DisableIPv6: true})
	if o.State != StateDisabled || len(o.Attempts) != 0 {
		t.Fatalf("state %s attempts %+v, want Disabled with no attempt", o.State, o.Attempts)
	}
	for _, k := range []string{"DisableInBand", "DisableIPv4", "DisableIPv6"} {
		if !strings.Contains(o.Remedy, k) {
			t.Errorf("remedy %q does not name %s", o.Remedy, k)
		}
	}
}

func TestSilentIPv4RetriedThenIPv6(t *testing.T) {
	f := newFixture(t)
	e4 := f.endpoint(t, "127.0.0.1:0", nil)
	e4.SetFault(FaultSilent)
	e6 := f.endpoint6(t)
	cfg := f.config(e4.Addr(), e6.Addr())
	cfg.Timeout, cfg.Retries = 200*time.Millisecond, 2
	start := time.Now()
	o := check(t, cfg)
	took := time.Since(start)
	if o.State != StateUp || o.Path != PathIPv6 || !o.IPv4Failed {
		t.Fatalf("state %s path %s, want Up over ipv6 after the silent ipv4", o.State, o.Path)
	}
	a := o.Attempts[0]
	if a.Path != PathIPv4 || a.Tries != 3 || !a.Timeout || !errors.Is(a.Cause, ErrTimeout) {
		t.Errorf("ipv4 attempt %+v, want 3 timed-out tries wrapping ErrTimeout", a)
	}
	if o.Timeouts != 3 {
		t.Errorf("timeouts %d, want 3", o.Timeouts)
	}
	if took < 600*time.Millisecond || took > 5*time.Second {
		t.Errorf("check took %v, want about 3×200ms", took)
	}
	if e4.Requests() != 0 {
		t.Errorf("silent endpoint answered %d requests", e4.Requests())
	}
}

func TestCertExpiredClientSide(t *testing.T) {
	f := newFixture(t)
	later := f.client.Leaf.NotAfter.Add(time.Hour)
	e := f.endpoint(t, "127.0.0.1:0", func() time.Time { return later })
	cfg := f.config(e.Addr(), "")
	cfg.DisableIPv6 = true
	cfg.Clock = func() time.Time { return later }
	o := check(t, cfg)
	if o.State != StateCertExpired {
		t.Fatalf("state %s, want CertExpired", o.State)
	}
	want := "link certificate expired at " + f.client.Leaf.NotAfter.UTC().Format(time.RFC3339)
	if o.Reason != want || o.Remedy != RemedyCertExpired {
		t.Errorf("reason %q remedy %q, want %q", o.Reason, o.Remedy, want)
	}
	if len(o.Attempts) != 0 || e.Requests() != 0 {
		t.Errorf("dialed although expired: attempts %+v, requests %d", o.Attempts, e.Requests())
	}
	if !strings.Contains(o.Remedy, "renew-certs") || !strings.Contains(o.Remedy, "no reinstall") {
		t.Errorf("remedy %q", o.Remedy)
	}
}

func TestCertExpiredServerSide(t *testing.T) {
	f := newFixture(t)
	later := f.client.Leaf.NotAfter.Add(time.Hour)
	e := f.endpoint(t, "127.0.0.1:0", func() time.Time { return later })
	cfg := f.config(e.Addr(), "")
	cfg.DisableIPv6 = true // the client's clock is not advanced
	o := check(t, cfg)
	if o.State != StateCertExpired || o.Remedy != RemedyCertExpired {
		t.Fatalf("state %s reason %q, want CertExpired from the BMC's alert", o.State, o.Reason)
	}
	a := o.Attempts[0]
	if !errors.Is(a.Cause, ErrCertExpired) || a.Tries != 1 || a.Timeout {
		t.Errorf("attempt %+v, want one try wrapping ErrCertExpired", a)
	}
	if e.Requests() != 0 {
		t.Errorf("the BMC answered %d requests with an expired certificate", e.Requests())
	}
}

func TestCertFromAnotherCANotTrusted(t *testing.T) {
	f := newFixture(t)
	other, err := pki.LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e := f.endpoint(t, "127.0.0.1:0", nil)
	stranger := issue(t, other, time.Now())
	cfg := f.config(e.Addr(), "")
	cfg.DisableIPv6 = true
	cfg.Certificate = func() *tls.Certificate { return stranger }
	o := check(t, cfg)
	if o.State != StateNotTrusted || o.Remedy != RemedyNotTrusted {
		t.Fatalf("state %s reason %q remedy %q, want NotTrusted", o.State, o.Reason, o.Remedy)
	}
	if !errors.Is(o.Attempts[0].Cause, ErrNotTrusted) || !strings.Contains(o.Reason, "does not trust the link certificate") {
		t.Errorf("attempt %+v reason %q", o.Attempts[0], o.Reason)
	}
}

func TestNoCertificate(t *testing.T) {
	f := newFixture(t)
	e := f.endpoint(t, "127.0.0.1:0", nil)
	cfg := f.config(e.Addr(), "")
	cfg.DisableIPv6 = true
	cfg.Certificate = func() *tls.Certificate { return nil }
	o := check(t, cfg)
	if o.State != StateNotTrusted || o.Reason != "no link certificate" || e.Requests() != 0 {
		t.Fatalf("state %s reason %q requests %d", o.State, o.Reason, e.Requests())
	}
}

func TestFingerprintPin(t *testing.T) {
	f := newFixture(t)
	e := f.endpoint(t, "127.0.0.1:0", nil)
	real := pki.Fingerprint(f.server.Leaf)
	cfg := f.config(e.Addr(), "")
	cfg.DisableIPv6 = true

	cfg.BMCFingerprint = real
	if o := check(t, cfg); o.State != StateUp {
		t.Fatalf("pinned the right fingerprint: state %s (%s)", o.State, o.Reason)
	}

	pinned := strings.Repeat("ab", 32)
	cfg.BMCFingerprint = pinned
	o := check(t, cfg)
	if o.State != StateNotTrusted || o.Remedy != RemedyPinChanged {
		t.Fatalf("state %s remedy %q, want NotTrusted with the pin remedy", o.State, o.Remedy)
	}
	if !strings.Contains(o.Reason, "pinned "+pinned+", got "+real) || !strings.Contains(o.Reason, "changed") {
		t.Errorf("reason %q lacks both fingerprints", o.Reason)
	}
	if o.BMCFingerprint != real || !errors.Is(o.Attempts[0].Cause, ErrNotTrusted) {
		t.Errorf("seen %s attempt %+v", o.BMCFingerprint, o.Attempts[0])
	}
	if e.Requests() != 1 {
		t.Errorf("requests %d: the mismatched check must not send its request", e.Requests())
	}
}

func TestBadAnswerIsDown(t *testing.T) {
	f := newFixture(t)
	e := f.endpoint(t, "127.0.0.1:0", nil)
	e.SetFault(FaultBadAnswer)
	cfg := f.config(e.Addr(), "")
	cfg.DisableIPv6 = true
	o := check(t, cfg)
	if o.State != StateDown || !strings.Contains(o.Reason, "bad answer") || !errors.Is(o.Attempts[0].Cause, ErrBadAnswer) {
		t.Fatalf("state %s reason %q, want Down bad answer", o.State, o.Reason)
	}
	if o.Attempts[0].Tries != 1 || e.Requests() != 1 {
		t.Errorf("a bad answer is an answer, not retried: tries %d requests %d", o.Attempts[0].Tries, e.Requests())
	}
	e.SetFault(FaultNone)
	if o := check(t, cfg); o.State != StateUp {
		t.Errorf("fault cleared: state %s (%s)", o.State, o.Reason)
	}
}

func TestRefuseIsNotRetried(t *testing.T) {
	f := newFixture(t)
	e := f.endpoint(t, "127.0.0.1:0", nil)
	e.SetFault(FaultRefuse)
	cfg := f.config(e.Addr(), "")
	cfg.DisableIPv6 = true
	o := check(t, cfg)
	if o.State != StateDown || o.Attempts[0].Tries != 1 || o.Timeouts != 0 {
		t.Fatalf("state %s attempt %+v timeouts %d, want Down after one try", o.State, o.Attempts[0], o.Timeouts)
	}
}

func TestCancelledCheckReturns(t *testing.T) {
	f := newFixture(t)
	e := f.endpoint(t, "127.0.0.1:0", nil)
	e.SetFault(FaultSilent)
	cfg := f.config(e.Addr(), "")
	cfg.DisableIPv6 = true
	cfg.Timeout = 10 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	start := time.Now()
	o := Check(ctx, cfg)
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("a cancelled check took %v", took)
	}
	if o.State != StateDown || o.Attempts[0].Tries != 1 || o.Timeouts != 0 {
		t.Errorf("state %s attempt %+v timeouts %d: the caller's cancellation is neither retried nor a link timeout", o.State, o.Attempts[0], o.Timeouts)
	}
}

func TestRealDevice(t *testing.T) {
	if _, err := os.Stat(DefaultDevice); err != nil {
		t.Skipf("no %s on this machine: %v", DefaultDevice, err)
	}
	o := check(t, Config{DisableIPv4: true, DisableIPv6: true, Timeout: 2 * time.Second})
	if len(o.Attempts) != 1 || o.Attempts[0].Path != PathInBand {
		t.Fatalf("attempts %+v", o.Attempts)
	}
	if o.State == StateUp && o.Firmware == "" {
		t.Errorf("up in-band without a firmware revision")
	}
}

// TestAlertDetectedByType: the BMC's refusal is recognised from the
// error's type (the alert code), not only from its text.
func TestAlertDetectedByType(t *testing.T) {
	f := newFixture(t)
	later := f.client.Leaf.NotAfter.Add(time.Hour)
	e := f.endpoint(t, "127.0.0.1:0", func() time.Time { return later })
	cfg := f.config(e.Addr(), "").withDefaults()
	_, err := tryNetwork(context.Background(), cfg, f.client, e.Addr())
	if err == nil {
		t.Fatal("the BMC accepted an expired client certificate")
	}
	if code, ok := remoteAlertTyped(err); !ok || code != alertCertificateExpired {
		t.Fatalf("remoteAlertTyped(%v) = %d, %v; want %d", err, code, ok, alertCertificateExpired)
	}
	if code, ok := remoteAlertTyped(errors.New("remote error: tls: expired certificate")); ok {
		t.Errorf("typed detection matched a plain string (%d)", code)
	}
	if code, ok := remoteAlertText(errors.New("remote error: tls: unknown certificate authority")); !ok || code != alertUnknownCA {
		t.Errorf("text fallback: %d %v", code, ok)
	}
}

// The in-band driver is named in the remedy only when in-band is in use.
func TestDownRemedyNamesInBandOnlyWhenUsed(t *testing.T) {
	f := newFixture(t)
	cfg := f.config(f.closedAddr(t), "")
	cfg.DisableIPv6 = true
	if o := check(t, cfg); o.State != StateDown || strings.Contains(o.Remedy, "modprobe") {
		t.Errorf("--no-inband: %s, remedy %q", o.State, o.Remedy)
	}
	cfg.DisableInBand = false
	cfg.Opener = func(string) (Device, error) { return nil, ErrNoDevice }
	if o := check(t, cfg); o.State != StateDown || o.Remedy != RemedyDownInBand {
		t.Errorf("in-band without a device: %s, remedy %q", o.State, o.Remedy)
	}
}
