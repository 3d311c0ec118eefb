package hostlink

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Defaults of Config.
const (
	DefaultDevice  = "/dev/ipmi0"
	DefaultIPv4    = "169.254.0.1:443"
	DefaultIPv6    = "[fe80::1%usb0]:443"
	DefaultTimeout = 5 * time.Second
	DefaultRetries = 2
)

// States of an Observation.
const (
	StateUp          = "Up"
	StateDown        = "Down"
	StateCertExpired = "CertExpired"
	StateNotTrusted  = "NotTrusted"
	StateDisabled    = "Disabled"
)

// Paths.
const (
	PathInBand = "inband"
	PathIPv4   = "ipv4"
	PathIPv6   = "ipv6"
)

// Errors classifying an Attempt (Attempt.Cause wraps one of them when it
// applies).
var (
	// ErrCertExpired: the link client certificate is expired (seen by the
	// agent before dialing, or the BMC answered certificate_expired).
	ErrCertExpired = errors.New("link certificate expired")
	// ErrNotTrusted: no link certificate, the BMC refused it, or the BMC's
	// certificate is not the pinned one.
	ErrNotTrusted = errors.New("link not trusted")
	// ErrTimeout: a try got no answer within Config.Timeout.
	ErrTimeout = errors.New("timed out")
	// ErrBadAnswer: the peer answered something that is not the link's
	// answer (HTTP status, body, IPMI completion code or length).
	ErrBadAnswer = errors.New("bad answer")
	// ErrNoDevice: no in-band device (the path is skipped, not failed).
	ErrNoDevice = errors.New("no in-band device")
)

// Device is an open in-band IPMI interface. Send sends one request and
// returns the response as "completion code + payload" (go-ipmi's pkg/open
// convention). It must return within timeout (or when ctx is done); a
// request that got no response returns an error wrapping ErrTimeout (or
// os.ErrDeadlineExceeded / context.DeadlineExceeded).
type Device interface {
	Send(ctx context.Context, netfn, cmd uint8, data []byte, timeout time.Duration) ([]byte, error)
	Close() error
}

// Opener opens the in-band device at path. An error wrapping
// os.ErrNotExist means there is no in-band path.
type Opener func(path string) (Device, error)

// Config is the agent's host link configuration. The zero value uses every
// path with the defaults.
type Config struct {
	// Device is the in-band IPMI device (default DefaultDevice);
	// DisableInBand skips it.
	Device        string
	DisableInBand bool
	// IPv4 and IPv6 are the BMC's link endpoint on the OS-to-BMC network
	// (defaults DefaultIPv4 and DefaultIPv6; an IPv6 link-local address
	// needs its zone, the host's interface towards the BMC).
	IPv4, IPv6               string
	DisableIPv4, DisableIPv6 bool
	// Timeout bounds one try (default DefaultTimeout); Retries is how many
	// times a timed-out try is repeated (default DefaultRetries; negative
	// means none). Both apply to the device and the network paths.
	Timeout time.Duration
	Retries int
	// Certificate returns the link client certificate, read at each check.
	// nil (or a nil result) fails the network paths as NotTrusted.
	Certificate func() *tls.Certificate
	// BMCFingerprint pins the BMC's link server certificate (SHA-256 of the
	// DER, lower-case hex). Empty: any certificate is accepted and its
	// fingerprint reported in Observation.BMCFingerprint.
	BMCFingerprint string
	// Clock (default time.Now) is the time for the certificate expiry check
	// and the TLS handshake.
	Clock func() time.Time
	// Opener opens the in-band device (default: go-ipmi's DeviceBackend on
	// Linux, nothing elsewhere).
	Opener Opener
}

// Observation is the outcome of one Check.
type Observation struct {
	State   string // StateUp, StateDown, StateCertExpired, StateNotTrusted, StateDisabled
	Path    string // the path in use when Up: PathInBand, PathIPv4, PathIPv6
	Address string // its device or address
	// Reason is why the link is not Up; when Up over IPv6, why IPv4 failed.
	Reason string
	// Remedy is what the operator should do (empty when nothing).
	Remedy string
	// IPv4Failed: IPv4 was enabled and failed, IPv6 is in use.
	IPv4Failed bool
	// Attempts lists every path tried, in order.
	Attempts []Attempt
	// Timeouts counts the timed-out tries (retried ones included).
	Timeouts int
	// CertNotAfter is the link client certificate's expiry (zero without a
	// certificate).
	CertNotAfter time.Time
	// BMCFingerprint is the BMC link server certificate's fingerprint seen
	// on the network path in use (or the last one seen).
	BMCFingerprint string
	// UUID and Firmware are what the BMC reported.
	UUID, Firmware string
	// Latency is the duration of the answered try.
	Latency time.Duration
}

// Attempt is one path tried.
type Attempt struct {
	Path, Address string
	OK            bool
	Timeout       bool   // the last try timed out
	Err           string // why not OK ("" when OK)
	Tries         int    // tries made (1 + retries used; 0 when skipped)
	// Cause is the error behind Err; it wraps ErrCertExpired,
	// ErrNotTrusted, ErrTimeout, ErrBadAnswer or ErrNoDevice when one
	// applies.
	Cause error `json:"-"`
}

// Remedies.
const (
	RemedyCertExpired = "renew the link certificate (the agent renews it through its manager: `lightsout agent op NAME renew-certs`, or `lightsout diag --agent NAME --autocorrect`); no reinstall needed"
	RemedyNotTrusted  = "the BMC does not trust the link certificate: give the BMC's link endpoint the manager's agent CA, or renew the link certificate (`lightsout agent op NAME renew-certs`)"
	RemedyNoCert      = "the agent has no link certificate yet: let it enroll with its manager, or renew its certificates (`lightsout agent op NAME renew-certs`)"
	RemedyPinChanged  = "if the BMC's link certificate was replaced on purpose (BMC reset or firmware update), pin the new fingerprint (clear BMCFingerprint to learn it again); otherwise something else answers on the host link: find it before trusting it"
	RemedyDown        = "check the BMC's OS-to-BMC pass-through (iDRAC: OS to iDRAC Pass-through, USB NIC) is enabled and the host's interface towards it is up with its link-local address, and the link endpoint runs on the BMC"
	// RemedyDownInBand is RemedyDown when the in-band path was tried too.
	RemedyDownInBand = RemedyDown + "; for the in-band path, the IPMI driver is loaded (modprobe ipmi_si ipmi_devintf)"
	RemedyDisabled   = "every host link path is disabled: enable one (DisableInBand, DisableIPv4, DisableIPv6 in the host link configuration)"
	RemedyIPv4Failed = "the link works over IPv6; to restore IPv4 check the host's IPv4 link-local address towards the BMC and the BMC's IPv4 pass-through address"
)

func (c Config) withDefaults() Config {
	if c.Device == "" {
		c.Device = DefaultDevice
	}
	if c.IPv4 == "" {
		c.IPv4 = DefaultIPv4
	}
	if c.IPv6 == "" {
		c.IPv6 = DefaultIPv6
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Retries == 0 {
		c.Retries = DefaultRetries
	} else if c.Retries < 0 {
		c.Retries = 0
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Opener == nil {
		c.Opener = openDevice
	}
	return c
}

// Check tries the paths in order and reports the first that answers, or
// why none did. It never panics on a peer's answer and returns within
// about (1+Retries)·Timeout per enabled path.
func Check(ctx context.Context, cfg Config) Observation {
	if cfg.DisableInBand && cfg.DisableIPv4 && cfg.DisableIPv6 {
		return Observation{State: StateDisabled, Reason: "every host link path is disabled", Remedy: RemedyDisabled}
	}
	cfg = cfg.withDefaults()
	var o Observation

	if !cfg.DisableInBand {
		a, id := checkInBand(ctx, cfg, &o)
		o.Attempts = append(o.Attempts, a)
		if a.OK {
			o.State, o.Path, o.Address = StateUp, PathInBand, a.Address
			o.UUID, o.Firmware, o.Latency = id.UUID, id.Firmware, id.latency
			o.CertNotAfter = certNotAfter(cfg.Certificate)
			return o
		}
	}
	if cfg.DisableIPv4 && cfg.DisableIPv6 {
		return finishDown(o, !cfg.DisableInBand)
	}

	// The network paths need a valid client certificate.
	var cert *tls.Certificate
	if cfg.Certificate != nil {
		cert = cfg.Certificate()
	}
	if cert == nil || len(cert.Certificate) == 0 {
		for _, p := range networkPaths(cfg) {
			o.Attempts = append(o.Attempts, Attempt{Path: p.path, Address: p.addr, Err: "no link certificate", Cause: fmt.Errorf("%w: no link certificate", ErrNotTrusted)})
		}
		o.State, o.Reason, o.Remedy = StateNotTrusted, "no link certificate", RemedyNoCert
		return o
	}
	leaf, err := leafOf(cert)
	if err != nil {
		o.State, o.Reason, o.Remedy = StateNotTrusted, "link certificate unreadable: "+err.Error(), RemedyNoCert
		return o
	}
	o.CertNotAfter = leaf.NotAfter
	if now := cfg.Clock(); now.After(leaf.NotAfter) {
		o.State = StateCertExpired
		o.Reason = "link certificate expired at " + leaf.NotAfter.UTC().Format(time.RFC3339)
		o.Remedy = RemedyCertExpired
		return o
	}

	var ipv4Err string
	for _, p := range networkPaths(cfg) {
		a, id := checkNetwork(ctx, cfg, cert, p.path, p.addr, &o)
		o.Attempts = append(o.Attempts, a)
		if id.fingerprint != "" {
			o.BMCFingerprint = id.fingerprint
		}
		if a.OK {
			o.State, o.Path, o.Address = StateUp, p.path, p.addr
			o.UUID, o.Firmware, o.Latency = id.UUID, id.Firmware, id.latency
			if p.path == PathIPv6 && ipv4Err != "" {
				o.IPv4Failed = true
				o.Reason = "IPv4 " + ipv4Err
				o.Remedy = RemedyIPv4Failed
			}
			return o
		}
		if p.path == PathIPv4 {
			ipv4Err = a.Err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return finishDown(o, !cfg.DisableInBand)
}

type netPath struct{ path, addr string }

func networkPaths(cfg Config) []netPath {
	var ps []netPath
	if !cfg.DisableIPv4 {
		ps = append(ps, netPath{PathIPv4, cfg.IPv4})
	}
	if !cfg.DisableIPv6 {
		ps = append(ps, netPath{PathIPv6, cfg.IPv6})
	}
	return ps
}

// finishDown sets the state from the failed attempts: a certificate cause
// wins over a plain failure, since it names what the operator must do.
func finishDown(o Observation, inBand bool) Observation {
	o.State, o.Remedy = StateDown, RemedyDown
	// The in-band driver is worth naming only when in-band is in use
	// (not with --no-inband).
	if inBand {
		o.Remedy = RemedyDownInBand
	}
	var reasons []string
	for _, a := range o.Attempts {
		reasons = append(reasons, a.Path+" "+a.Address+": "+a.Err)
		switch {
		case errors.Is(a.Cause, ErrCertExpired):
			o.State, o.Remedy = StateCertExpired, RemedyCertExpired
		case errors.Is(a.Cause, ErrNotTrusted) && o.State != StateCertExpired:
			o.State, o.Remedy = StateNotTrusted, RemedyNotTrusted
			if errors.Is(a.Cause, errPinChanged) {
				o.Remedy = RemedyPinChanged
			}
		}
	}
	if len(reasons) == 0 {
		reasons = append(reasons, "no path tried")
	}
	o.Reason = strings.Join(reasons, "; ")
	return o
}

func certNotAfter(f func() *tls.Certificate) time.Time {
	if f == nil {
		return time.Time{}
	}
	c := f()
	if c == nil {
		return time.Time{}
	}
	if l, err := leafOf(c); err == nil {
		return l.NotAfter
	}
	return time.Time{}
}

// tryTimedOut reports whether err is a try's own timeout (not the
// caller's cancellation).
func tryTimedOut(parent context.Context, err error) bool {
	if err == nil || parent.Err() != nil {
		return false
	}
	if errors.Is(err, ErrTimeout) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}
