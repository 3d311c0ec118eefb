package audit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lightsout/lightsout/internal/ipmi"
	"github.com/lightsout/lightsout/internal/probe"
)

// Options tune one audit.
type Options struct {
	// MaxGuesses bounds the default credentials tried on one BMC per
	// audit (0: DefaultMaxGuesses; negative: none are tried).
	MaxGuesses int
}

func (o Options) maxGuesses() int {
	switch {
	case o.MaxGuesses < 0:
		return 0
	case o.MaxGuesses == 0:
		return DefaultMaxGuesses
	}
	return o.MaxGuesses
}

// Report is one audit of one BMC.
type Report struct {
	Machine   string    `json:"machine"`
	Address   string    `json:"address"`
	At        time.Time `json:"at"`
	ElapsedMS float64   `json:"elapsed_ms"`
	// Complete: every check reached a verdict. An incomplete report
	// holds what was found before it stopped; it is never compared for
	// drift (a check that did not run is not a finding that went away).
	Complete bool   `json:"complete"`
	Error    string `json:"error,omitempty"`

	Manufacturer   string         `json:"manufacturer,omitempty"`
	ManufacturerID uint32         `json:"manufacturer_id,omitempty"`
	Firmware       string         `json:"firmware,omitempty"`
	AuthCaps       *ipmi.AuthCaps `json:"auth_caps,omitempty"`

	Findings []Finding `json:"findings"`
	Checks   []Check   `json:"checks"`
	// Logins counts the sessions the audit tried to open, each closed at
	// once when it opened: the checks, and the monitored account's login
	// after each refused one.
	Logins int `json:"logins"`
}

// Check is one step of an audit and its verdict.
type Check struct {
	// Name: auth_caps, own_login, cipher0, null_user, default:USER.
	Name string `json:"name"`
	// Result: passed (nothing insecure), finding, skipped (not needed),
	// error (no verdict).
	Result string `json:"result"`
	Detail string `json:"detail,omitempty"`
}

// Check results.
const (
	Passed  = "passed"
	Found   = "finding"
	Skipped = "skipped"
	Failed  = "error"
)

// Run audits the BMC of t with the default options. See RunWith.
func Run(ctx context.Context, eng *ipmi.Engine, t probe.Target) Report {
	return RunWith(ctx, eng, t, Options{})
}

// RunWith audits one BMC through eng, t's account being one that logs in:
//
//  1. Get Channel Authentication Capabilities: anonymous login and null
//     user names enabled, IPMI 1.5 authentication types none, straight
//     password and MD2 offered.
//  2. A session with t's own account: Get Device ID names the
//     manufacturer. If the account is refused nothing else is tried.
//  3. A session with cipher suite 0 as t's user: accepted is a finding.
//  4. A session as the null user with an empty password.
//  5. The manufacturer's documented default credentials, then generic
//     ones, at most o.MaxGuesses; a default whose user is t's own is
//     decided locally (t's password is that default, or the default
//     cannot work), never tried.
//
// Every session is the engine's (one per BMC at a time) and closed at
// once; no command is sent in any but the first. A wrong password is seen
// in RAKP 2 and abandoned before any password proof is sent, each default
// user is guessed once per audit, and every refused login is followed by a
// successful one of t's account (see try and docs/security-audit.md). The
// report always comes back; on an error it is incomplete.
func RunWith(ctx context.Context, eng *ipmi.Engine, t probe.Target, o Options) (r Report) {
	start := time.Now()
	r = Report{Machine: t.Name, Address: t.Addr.String(), At: start, Findings: []Finding{}, Checks: []Check{}}
	defer func() {
		Sort(r.Findings)
		r.ElapsedMS = float64(time.Since(start).Microseconds()) / 1000
	}()
	timeout := t.Timeout
	if timeout <= 0 {
		timeout = probe.DefaultTimeout
	}
	priv := t.Privilege
	if priv == 0 {
		priv = ipmi.PrivilegeAdministrator
	}

	// 1. What the BMC offers before login.
	cctx, cancel := context.WithTimeout(ctx, timeout)
	caps, _, err := eng.AuthCaps(cctx, t.Addr, priv)
	cancel()
	// Capabilities that deny IPMI 2.0 may be bogus (FreeIPMI "authcap":
	// Asus, Intel, Sun): the own login decides.
	if err != nil && !errors.Is(err, ipmi.ErrNoIPMI20) {
		return r.fail("auth_caps", err)
	}
	r.AuthCaps = &caps
	before := len(r.Findings)
	r.Findings = append(r.Findings, capsFindings(caps)...)
	r.verdict("auth_caps", len(r.Findings) > before, fmt.Sprintf("IPMI 1.5 auth types offered: %s; anonymous login %v, null user names %v",
		authTypes(caps), caps.Anonymous, caps.NullUsers))

	// 2. Our own account, and who made the BMC.
	own := ipmi.Credentials{User: t.User, Password: t.Password, Privilege: priv}
	if t.CipherSuite != 0 {
		own.Suites = []ipmi.CipherSuite{ipmi.CipherSuite(t.CipherSuite)}
	}
	sess, err := r.open(ctx, eng, t, own, timeout)
	if err != nil {
		return r.fail("own_login", fmt.Errorf("the monitored account was refused or the BMC stopped answering, so nothing else is tried: %w", err))
	}
	sctx, scancel := context.WithTimeout(ctx, timeout)
	id, err := sess.GetDeviceID(sctx)
	scancel()
	sess.Close(ctx)
	var ce *ipmi.CompletionError
	switch {
	case err == nil:
		r.ManufacturerID, r.Manufacturer, r.Firmware = id.ManufacturerID, probe.Manufacturer(id.ManufacturerID), id.Firmware()
		r.Checks = append(r.Checks, Check{Name: "own_login", Result: Passed, Detail: "manufacturer " + r.Manufacturer + ", firmware " + r.Firmware})
	case errors.As(err, &ce):
		r.Checks = append(r.Checks, Check{Name: "own_login", Result: Passed, Detail: "Get Device ID refused (" + err.Error() + "): only generic defaults are tried"})
	default:
		return r.fail("own_login", err)
	}

	// 3. Cipher suite 0: no authentication at all.
	c0 := ipmi.Credentials{User: t.User, Password: t.Password, Privilege: priv, Suites: []ipmi.CipherSuite{0}, AllowCipher0: true}
	if ok, err := r.try(ctx, eng, t, c0, own, timeout); err != nil {
		return r.fail("cipher0", err)
	} else if ok {
		r.Findings = append(r.Findings, cipher0Finding(t.User))
		r.verdict("cipher0", true, "a session opened with cipher suite 0")
		// The engine remembers the suite that last worked on a BMC and
		// tries it first: log in once more with the account's own suites
		// so the monitor's next check finds them first again.
		if err := r.login(ctx, eng, t, own, timeout); err != nil {
			return r.fail("cipher0", err)
		}
	} else {
		r.verdict("cipher0", false, "cipher suite 0 refused")
	}

	// 4. The null user with an empty password.
	switch {
	case t.User == "" && len(t.Password) == 0:
		r.Findings = append(r.Findings, anonymousFinding(SubjectNullLogin))
		r.verdict("null_user", true, "the monitored account itself is the null user with an empty password")
	case t.User == "":
		r.Checks = append(r.Checks, Check{Name: "null_user", Result: Skipped, Detail: "the monitored account is the null user with a password: an empty one cannot work"})
	default:
		null := ipmi.Credentials{User: "", Privilege: ipmi.PrivilegeUser, Suites: own.Suites}
		if ok, err := r.try(ctx, eng, t, null, own, timeout); err != nil {
			return r.fail("null_user", err)
		} else if ok {
			r.Findings = append(r.Findings, anonymousFinding(SubjectNullLogin))
			r.verdict("null_user", true, "a session opened as the null user with an empty password")
		} else {
			r.verdict("null_user", false, "the null user was refused")
		}
	}

	// 5. Factory default credentials.
	if c, ok := ownDefault(t.User, t.Password); ok {
		r.Findings = append(r.Findings, defaultPasswordFinding(c, true))
		r.verdict("default:"+c.User, true, "the monitored account uses the "+c.Vendor+" default password")
	}
	for _, c := range Candidates(r.ManufacturerID, o.maxGuesses()) {
		name := "default:" + c.User
		if c.User == t.User {
			if c.Password != string(t.Password) {
				r.Checks = append(r.Checks, Check{Name: name, Result: Skipped,
					Detail: "the monitored account's own user, whose password is not this default: it cannot work, and trying it would count against that account"})
			}
			continue
		}
		cr := ipmi.Credentials{User: c.User, Password: []byte(c.Password), Privilege: ipmi.PrivilegeUser, Suites: own.Suites}
		if ok, err := r.try(ctx, eng, t, cr, own, timeout); err != nil {
			return r.fail(name, err)
		} else if ok {
			r.Findings = append(r.Findings, defaultPasswordFinding(c, false))
			r.verdict(name, true, "the "+c.Vendor+" default password works")
		} else {
			r.verdict(name, false, "the "+c.Vendor+" default was refused")
		}
	}
	r.Complete = true
	return r
}

// open opens a session (Open Session, RAKP 1 and RAKP 3: a timeout of
// silence for each).
func (r *Report) open(ctx context.Context, eng *ipmi.Engine, t probe.Target, cr ipmi.Credentials, timeout time.Duration) (*ipmi.Session, error) {
	r.Logins++
	sctx, cancel := context.WithTimeout(ctx, 3*timeout)
	defer cancel()
	return eng.Open(sctx, t.Addr, cr)
}

// try opens a session that should be refused and closes it at once.
// accepted: it opened. A refusal by the BMC is (false, nil); anything
// that leaves the question open (silence, no free slot) is an error.
//
// A refused login is followed at once by a successful one with the
// monitored account (own): BMCs that block a source address after N
// consecutive failures (iDRAC IP blocking) reset the count on a success,
// so the audit never leaves more than one failure in a row, and always
// ends on a success.
func (r *Report) try(ctx context.Context, eng *ipmi.Engine, t probe.Target, cr, own ipmi.Credentials, timeout time.Duration) (accepted bool, err error) {
	sess, err := r.open(ctx, eng, t, cr, timeout)
	if err == nil {
		sess.Close(ctx)
		return true, nil
	}
	if !refused(err) {
		return false, err
	}
	if errors.Is(err, ipmi.ErrAuth) || errors.Is(err, ipmi.ErrRejected) {
		if err := r.login(ctx, eng, t, own, timeout); err != nil {
			return false, err
		}
	}
	return false, nil
}

// login opens and closes a session of the monitored account.
func (r *Report) login(ctx context.Context, eng *ipmi.Engine, t probe.Target, own ipmi.Credentials, timeout time.Duration) error {
	sess, err := r.open(ctx, eng, t, own, timeout)
	if err != nil {
		return fmt.Errorf("the monitored account's own login failed: %w", err)
	}
	sess.Close(ctx)
	return nil
}

// refused: the BMC said no (a verdict), as opposed to silence or busy.
func refused(err error) bool {
	return errors.Is(err, ipmi.ErrAuth) || errors.Is(err, ipmi.ErrNoCipherSuite) || errors.Is(err, ipmi.ErrRejected)
}

func (r *Report) verdict(name string, found bool, detail string) {
	res := Passed
	if found {
		res = Found
	}
	r.Checks = append(r.Checks, Check{Name: name, Result: res, Detail: detail})
}

func (r Report) fail(name string, err error) Report {
	r.Checks = append(r.Checks, Check{Name: name, Result: Failed, Detail: err.Error()})
	r.Error = name + ": " + err.Error()
	return r
}

// capsFindings reads the security-relevant bits of the pre-login
// capabilities (the same bits probe marks Insecure). MD5 is IPMI 1.5's
// normal authentication type, not a finding.
func capsFindings(c ipmi.AuthCaps) []Finding {
	var fs []Finding
	if c.Anonymous {
		fs = append(fs, anonymousFinding(SubjectAnonymousFlag))
	}
	if c.NullUsers {
		fs = append(fs, anonymousFinding(SubjectNullUsersFlag))
	}
	if c.AuthNone {
		fs = append(fs, weakAuthFinding(SubjectAuthNone))
	}
	if c.AuthStraight {
		fs = append(fs, weakAuthFinding(SubjectAuthStraight))
	}
	if c.AuthMD2 {
		fs = append(fs, weakAuthFinding(SubjectAuthMD2))
	}
	return fs
}

func authTypes(c ipmi.AuthCaps) string {
	s := ""
	add := func(on bool, n string) {
		if on {
			if s != "" {
				s += ", "
			}
			s += n
		}
	}
	add(c.AuthNone, "none (no authentication)")
	add(c.AuthMD2, "MD2")
	add(c.AuthMD5, "MD5")
	add(c.AuthStraight, "straight password")
	add(c.AuthOEM, "OEM")
	if s == "" {
		return "none offered"
	}
	return s
}
