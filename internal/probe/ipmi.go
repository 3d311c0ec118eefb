package probe

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/lightsout/lightsout/internal/guid"
	"github.com/lightsout/lightsout/internal/ipmi"
	"github.com/lightsout/lightsout/internal/state"
)

// IPMI returns a Prober that checks a BMC over IPMI 2.0 RMCP+ through eng:
// presence ping, Get Channel Authentication Capabilities, session set-up
// (Open Session, RAKP 1–4), Get Device ID, Get System GUID, Get Chassis
// Status, Close Session. The session is closed whatever happens.
func IPMI(eng *ipmi.Engine) Prober {
	return func(ctx context.Context, t Target) Observation {
		// The observation lives on the heap and is filled through a
		// pointer: copies of it (448 bytes) in every frame made each
		// check's goroutine grow its stack to 16 KiB — three stack copies
		// per BMC, 160 MiB at 10,000 BMCs in flight.
		o := new(Observation)
		presize()
		checkIPMI(ctx, eng, &t, o)
		return *o
	}
}

// presize grows the calling goroutine's stack to what a check needs (about
// 8 KiB: the session handshake's frames and crypto) while the stack is
// still nearly empty. A check usually runs on a goroutine of its own that
// starts with a 2 KiB stack; grown on demand, it was copied twice, deep in
// the handshake, with a dozen frames to adjust each time — about 5% of a
// 10,000-BMC check's CPU. Copying a near-empty stack once costs little.
//
//go:noinline
func presize() {
	var pad [presizeBytes]byte
	keep(pad[:])
}

const presizeBytes = 5 << 10

//go:noinline
func keep([]byte) {}

func checkIPMI(ctx context.Context, eng *ipmi.Engine, t *Target, o *Observation) {
	start := time.Now()
	*o = Observation{Name: t.Name, Host: t.Addr.String(), Protocol: "ipmi", At: start}
	o.Evidence.RTTMS = map[string]float64{}
	if !t.Expected.Zero() {
		o.Expected = t.Expected.Spelling()
	}
	timeout := t.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if t.Profile != nil {
		_ = eng.Learn(t.Addr, *t.Profile)
	}
	prof := eng.Profile(t.Addr)
	before := eng.PeerCounters(t.Addr)
	// excused are retransmissions that say nothing about the path: of a
	// Close Session the BMC does not answer (LAN Session #1).
	var excused excusal
	defer func() {
		after := eng.PeerCounters(t.Addr)
		o.Evidence.Requests = after.Requests - before.Requests
		o.Evidence.Retransmits = after.Retransmits - before.Retransmits
		o.Evidence.Timeouts = after.Timeouts - before.Timeouts
		o.Evidence.Excused = excused.retransmits + excused.timeouts
		if o.State == state.Connectable && o.Evidence.Retransmits-excused.retransmits >= degradedRetransmits {
			o.Conditions = append(o.Conditions, state.Degraded)
		}
		if p := eng.Profile(t.Addr); p != (ipmi.Profile{}) {
			o.Evidence.Profile = &p
			// Quirks are what the check met and worked around: not that
			// RAKP 2 carries the System GUID (a fact the profile keeps).
			o.Evidence.Quirks = (p.Quirks &^ ipmi.QuirkRAKP2GUID).Names()
		}
		o.ElapsedMS = ms(time.Since(start))
	}()
	// First contact must answer within the timeout: silence for that long
	// is NotResponding. Once the BMC has answered, every later step gets
	// the timeout again, so a BMC that is slow but answering finishes its
	// check, and one that stops answering is "stalled" a timeout after it
	// went quiet. The limits are the engine's per-request ones
	// (ipmi.WithRequestTimeout), not a timer context per step.
	if t.Light {
		sessionChecks(ctx, eng, t, o, timeout, false, &excused)
		return
	}
	ok, no20 := firstContact(ctx, eng, t, o, timeout, prof)
	if !ok {
		return
	}
	sessionChecks(ctx, eng, t, o, timeout, no20, &excused)
}

// firstContact is a full check's Get Channel Authentication Capabilities
// and the presence ping after it; ok false when the check ended
// there (o holds the verdict). no20: the capabilities deny IPMI 2.0 —
// which a session may yet contradict (authcap). Its own function, so its
// locals are off the stack during the session handshake.
//
//go:noinline
func firstContact(ctx context.Context, eng *ipmi.Engine, t *Target, o *Observation, timeout time.Duration, prof ipmi.Profile) (ok, no20 bool) {
	// The ping is cheap and credential-free, and follows the first
	// request (never alongside it: one request in flight per BMC): a BMC
	// that does not answer it (ipmiping quirk: Intel M50FCP, Windmill,
	// pyghmi) costs a few round trips of waiting, not a ping timeout. One learned not to answer it is not pinged:
	// Get Channel Authentication Capabilities is its liveness probe.
	pinged := !prof.NoPing()
	o.Evidence.PingSkipped = !pinged
	c, err := eng.Contact(ipmi.WithRequestTimeout(ctx, timeout), t.Addr, t.privilege(), pinged)
	if c.Pong {
		o.Evidence.PingAnswered = true
		o.Evidence.PingRTTMS = ms(c.PingRTT)
	}
	switch {
	case err == nil:
	case errors.Is(err, ipmi.ErrNoIPMI20) && c.CapsRTT > 0:
		// The BMC says it speaks IPMI 1.5 only. Some say so wrongly
		// (authcap: Asus, Intel, Sun): the session decides.
		no20 = true
	default:
		fail(o, t, err, c.Pong)
		return false, false
	}
	o.Evidence.RTTMS[string(ipmi.StageAuthCaps)] = ms(c.CapsRTT)
	if c.Code == 0 {
		o.Evidence.AuthCaps = &c.Caps
	}
	if pinged {
		// The BMC answers IPMI: whether it answered the ping is a fact
		// about it, learned for the next checks.
		eng.SetQuirk(t.Addr, ipmi.QuirkNoPing, !c.Pong)
	}
	o.Evidence.Insecure = insecureFindings(c.Caps)
	return true, no20
}

// sessionChecks opens the session and reads identity and power (Get Device
// ID unless t.Light).
func sessionChecks(ctx context.Context, eng *ipmi.Engine, t *Target, o *Observation, timeout time.Duration, no20 bool, excused *excusal) {
	// Every request of the session: a timeout of silence each.
	sctx := ipmi.WithRequestTimeout(ctx, timeout)
	// 3. Session.
	cr := ipmi.Credentials{User: t.User, Password: t.Password, Privilege: t.privilege(), Suites: t.suites()}
	t0 := time.Now()
	// Open Session, RAKP 1 and RAKP 3: a timeout of silence for each —
	// a third of it when the capabilities denied IPMI 2.0 and the BMC is
	// not known to misreport them: silence then confirms them.
	octx := sctx
	known := eng.Profile(t.Addr).Quirks&ipmi.QuirkAuthCaps != 0
	if no20 && !known {
		octx = ipmi.WithRequestTimeout(ctx, timeout/3)
	}
	sess, err := eng.Open(octx, t.Addr, cr)
	if err != nil {
		var se *ipmi.StageError
		// Silence (or garbage) to Open Session from a BMC whose
		// capabilities deny IPMI 2.0 confirms them.
		if no20 && errors.As(err, &se) && se.Stage == ipmi.StageOpenSession && (errors.Is(err, ipmi.ErrNoResponse) || errors.Is(err, ipmi.ErrMalformed)) {
			err = &ipmi.StageError{Stage: ipmi.StageOpenSession, Attempts: se.Attempts, Elapsed: se.Elapsed, Err: ipmi.ErrIPMI15Only}
		}
		fail(o, t, err, !t.Light)
		return
	}
	defer closeSession(ctx, eng, t, sess, excused)
	authCapsContradicted(eng, t, o, no20)
	o.Evidence.RTTMS["session"] = ms(time.Since(t0))
	o.Evidence.CipherSuite = int(sess.Suite())
	o.Evidence.ConflictingReplies = sess.Conflicts
	if n := sess.Negotiation; n != nil {
		o.Evidence.SuiteWhy = n.Why
		// The details only when there is more to them than the reason
		// (the check's JSON stays small for the usual BMC).
		if n.Asked || len(n.Tried) > 0 || n.Quirks != 0 {
			o.Evidence.Negotiation = n
		}
	}

	// 4. Identity and state.
	if !t.Light {
		t0 = time.Now()
		id, err := sess.GetDeviceID(sctx)
		if err == nil {
			o.Evidence.RTTMS["get_device_id"] = ms(time.Since(t0))
			o.Evidence.ManufacturerID, o.Evidence.ProductID = id.ManufacturerID, id.ProductID
			o.Evidence.Manufacturer = Manufacturer(id.ManufacturerID)
			o.Evidence.Firmware, o.Evidence.IPMIVersion = id.Firmware(), id.IPMIVersion
		} else if !isCompletion(err) {
			fail(o, t, err, true)
			return
		}
	}
	g, ok := systemGUID(sctx, eng, t, o, sess)
	if !ok {
		return
	}
	t0 = time.Now()
	cs, err := sess.ChassisStatus(sctx)
	if err == nil {
		o.Evidence.RTTMS["chassis_status"] = ms(time.Since(t0))
		o.Evidence.Chassis = &cs
		o.Evidence.Power = "off"
		if cs.PowerOn {
			o.Evidence.Power = "on"
		}
	} else if !isCompletion(err) {
		fail(o, t, err, true)
		return
	}

	identify(o, t, g, sess.Suite())
}

// systemGUID is the managed system GUID the verdict compares: Get System
// GUID's answer, or RAKP 2's where that is learned to be the same — a BMC
// that does not implement the command (QuirkNoSystemGUID), or, on a light
// check, one whose RAKP 2 GUID was seen equal to the command's answer
// (QuirkRAKP2GUID: one datagram fewer per check). A RAKP 2 GUID that does
// not match the registered one is never a verdict by itself: the command
// is sent, and its answer decides. ok false: the check failed (o holds
// the verdict).
//
//go:noinline
func systemGUID(ctx context.Context, eng *ipmi.Engine, t *Target, o *Observation, sess *ipmi.Session) (guid.GUID, bool) {
	rakp := guid.GUID(sess.RAKPGUID)
	q := eng.Profile(t.Addr).Quirks
	if q&ipmi.QuirkNoSystemGUID != 0 {
		// Learned: Get System GUID is not implemented (pyghmi); RAKP 2
		// carried the managed system GUID.
		o.Evidence.GUIDSource = "rakp2"
		return rakp, true
	}
	if t.Light && q&ipmi.QuirkRAKP2GUID != 0 && !rakp.Zero() && (t.Expected.Zero() || rakp.Matches(t.Expected)) {
		o.Evidence.GUIDSource = "rakp2"
		return rakp, true
	}
	t0 := time.Now()
	raw, err := sess.GetSystemGUID(ctx)
	switch {
	case err == nil:
		o.Evidence.RTTMS["get_system_guid"] = ms(time.Since(t0))
		o.Evidence.GUIDSource = "get_system_guid"
		// Whether RAKP 2 says the same, for the next light checks.
		eng.SetQuirk(t.Addr, ipmi.QuirkRAKP2GUID, !rakp.Zero() && raw == sess.RAKPGUID)
		return guid.GUID(raw), true
	case isCompletion(err):
		// An optional command refused (0xC1 not implemented, 0xD4 on
		// some Supermicro firmware): not an authentication verdict.
		// RAKP 2 carried the managed system GUID.
		eng.SetQuirk(t.Addr, ipmi.QuirkNoSystemGUID, true)
		o.Evidence.GUIDSource = "rakp2"
		return rakp, true
	default:
		fail(o, t, err, true)
		return guid.GUID{}, false
	}
}

// closeSession closes sess; the retransmissions of a Close Session the
// BMC does not answer (LAN Session #1) are excused from Degraded: the BMC
// answered everything else.
func closeSession(ctx context.Context, eng *ipmi.Engine, t *Target, sess *ipmi.Session, excused *excusal) {
	before := eng.PeerCounters(t.Addr)
	if err := sess.Close(ctx); errors.Is(err, ipmi.ErrNoResponse) {
		after := eng.PeerCounters(t.Addr)
		excused.retransmits += after.Retransmits - before.Retransmits
		excused.timeouts += after.Timeouts - before.Timeouts
	}
}

// excusal counts the engine's retransmissions and time-outs of one check
// that say nothing about the path (closeSession).
type excusal struct{ retransmits, timeouts uint32 }

// authCapsContradicted notes what the capabilities claimed and a session
// just proved wrong (FreeIPMI's "authcap" workaround, taken automatically:
// the claims never decide; the session does).
func authCapsContradicted(eng *ipmi.Engine, t *Target, o *Observation, no20 bool) {
	var wrong []string
	c := o.Evidence.AuthCaps
	switch {
	case no20 && c == nil:
		wrong = append(wrong, "the IPMI 2.0 capabilities request was refused, yet an RMCP+ session opened")
	case no20:
		wrong = append(wrong, "IPMI 2.0 not offered, yet an RMCP+ session opened")
	}
	if c != nil && c.KGNonZero {
		wrong = append(wrong, "K_g (BMC key) set, yet the session opened without one")
	}
	if c != nil && !c.NonNullUsers && t.User != "" {
		wrong = append(wrong, fmt.Sprintf("no user with a name enabled, yet user %q logged in", t.User))
	}
	if len(wrong) == 0 {
		return
	}
	o.Evidence.AuthCapsContradicted = wrong
	eng.SetQuirk(t.Addr, ipmi.QuirkAuthCaps, true)
}

// identify compares the GUID the BMC gave with the registered one and
// gives the verdict of a session that worked. (Its own function: its
// locals stay out of sessionChecks' frame, which is on the stack through
// the whole handshake.)
func identify(o *Observation, t *Target, g guid.GUID, suite ipmi.CipherSuite) {
	if len(o.Evidence.Insecure) > 0 {
		o.Conditions = append(o.Conditions, state.Insecure)
	}
	if !identity(o, t, g, g.Renderings()) {
		mismatch(o, t, "answers with System GUID")
		return
	}
	o.State = state.Connectable
	o.Message = connectedMessage(suite, t.Expected.Zero())
}

// connectedMessages are the messages of a session that worked, by GUID
// registered or not and suite, each made once: the monitor's usual check
// ends with one.
var connectedMessages [2][256]atomic.Pointer[string]

func connectedMessage(suite ipmi.CipherSuite, unregistered bool) string {
	p := &connectedMessages[0][suite]
	if unregistered {
		p = &connectedMessages[1][suite]
	}
	if m := p.Load(); m != nil {
		return *m
	}
	m := "session opened with " + suite.String() + ", identity confirmed"
	if unregistered {
		m = "session opened with " + suite.String() + " (no GUID registered to compare)"
	}
	p.Store(&m)
	return m
}

// degradedRetransmits is how many retransmissions within one check mark a
// Connectable BMC Degraded: it answers, but only after retries.
const degradedRetransmits = 2

// suites is the allow-list to negotiate from: the pinned suite alone, or
// Suites (nil: the engine's default).
func (t *Target) suites() []ipmi.CipherSuite {
	if t.CipherSuite != 0 {
		return []ipmi.CipherSuite{ipmi.CipherSuite(t.CipherSuite)}
	}
	return t.Suites
}

func (t *Target) privilege() ipmi.Privilege {
	if t.Privilege == 0 {
		return ipmi.PrivilegeAdministrator
	}
	return t.Privilege
}

func isCompletion(err error) bool {
	var ce *ipmi.CompletionError
	return errors.As(err, &ce)
}

// fail fills o from err. answered says whether the BMC has said anything
// usable during this check (so silence now means it stalled).
func fail(o *Observation, t *Target, err error, answered bool) {
	o.Err = err
	o.Evidence.Error = err.Error()
	var se *ipmi.StageError
	if errors.As(err, &se) {
		o.Evidence.FailedStage = string(se.Stage)
		o.Evidence.RMCPStatus = int(se.Status)
		o.Evidence.Attempts = se.Attempts
		if n := se.Negotiation; n != nil {
			o.Evidence.Negotiation, o.Evidence.SuiteWhy = n, n.Why
		}
	}
	o.State, o.Reason = Classify(err, answered)
	// A refused password from a BMC that names another GUID in RAKP 2: the
	// address answers as a different BMC (addresses swapped or reused).
	if se != nil && se.BMCGUID != ([16]byte{}) && !t.Expected.Zero() && errors.Is(err, ipmi.ErrAuth) {
		if g := guid.GUID(se.BMCGUID); !identity(o, t, g, g.Renderings()) {
			o.Evidence.GUIDSource = "rakp2"
			mismatch(o, t, "refuses the password and names in RAKP 2 System GUID")
			return
		}
		// The same GUID: the password is what was refused.
		o.GUID, o.Evidence.GUID, o.Evidence.GUIDLayout, o.Evidence.GUIDMatch = "", nil, "", nil
	}
	if o.Reason == state.ReasonBusy {
		o.Conditions = append(o.Conditions, state.Busy)
	}
	o.Message = message(o, t, err)
}

// slowRTT is the typical reply time seen in this check, in ms, when it is
// slow enough to explain a budget running out (≥ 100 ms); else 0.
func slowRTT(o *Observation) float64 {
	r := o.Evidence.PingRTTMS
	if a, ok := o.Evidence.RTTMS[string(ipmi.StageAuthCaps)]; ok && a > r {
		r = a
	}
	if r >= 100 {
		return r
	}
	return 0
}

// Classify maps an engine error to a state and reason. It is pure and
// decides by errors.Is only. answered: the BMC had already replied during
// this check.
func Classify(err error, answered bool) (state.OOB, state.Reason) {
	switch {
	case err == nil:
		return state.Connectable, state.ReasonOK
	case errors.Is(err, ipmi.ErrPortUnreachable):
		return state.NotResponding, state.ReasonPortRefused
	case errors.Is(err, ipmi.ErrHostUnreachable):
		return state.NotResponding, state.ReasonUnreachable
	case errors.Is(err, ipmi.ErrWrongPassword):
		return state.NotAuthenticated, state.ReasonWrongPassword
	case errors.Is(err, ipmi.ErrUnknownUser):
		return state.NotAuthenticated, state.ReasonUnknownUser
	case errors.Is(err, ipmi.ErrPrivilege):
		return state.NotAuthenticated, state.ReasonPrivilege
	case errors.Is(err, ipmi.ErrLocked):
		return state.NotAuthenticated, state.ReasonLocked
	case errors.Is(err, ipmi.ErrAuth), errors.Is(err, ipmi.ErrRejected):
		return state.NotAuthenticated, state.ReasonAuthRejected
	case errors.Is(err, ipmi.ErrNoSessionSlot):
		return state.Connectable, state.ReasonBusy
	case errors.Is(err, ipmi.ErrCipher0):
		return state.NotAuthenticated, state.ReasonCipher0Refused
	case errors.Is(err, ipmi.ErrNoCipherSuite):
		return state.NotAuthenticated, state.ReasonNoCipherSuite
	case errors.Is(err, ipmi.ErrIPMI15Only):
		return state.NotResponding, state.ReasonIPMI15Only
	case errors.Is(err, ipmi.ErrNoIPMI20), errors.Is(err, ipmi.ErrMalformed):
		return state.NotResponding, state.ReasonProtocol
	case answered:
		return state.NotResponding, state.ReasonStalled
	default:
		return state.NotResponding, state.ReasonSilent
	}
}

func message(o *Observation, t *Target, err error) string {
	user := fmt.Sprintf("%q", t.User)
	switch o.Reason {
	case state.ReasonSilent:
		if errors.Is(err, context.Canceled) {
			return "check cancelled before the BMC answered"
		}
		return fmt.Sprintf("no reply from %s within %v: check the address, the network path (cable, switch, UDP 623 filtering) and that the BMC is powered", t.Addr, t.timeout())
	case state.ReasonPortRefused:
		return fmt.Sprintf("%s refused UDP %d (ICMP port unreachable): a host is at that address but no IPMI service listens — IPMI over LAN disabled, BMC firmware hung, or the address now belongs to another device", t.Addr.Addr(), t.Addr.Port())
	case state.ReasonUnreachable:
		return fmt.Sprintf("%s is unreachable (ICMP host/network unreachable): check routing and the management VLAN", t.Addr.Addr())
	case state.ReasonStalled:
		if rtt := slowRTT(o); rtt > 0 {
			return fmt.Sprintf("the BMC answered slowly (about %.0f ms per reply), then nothing for %v during %s: overloaded or hanging BMC, or a congested path", rtt, t.timeout(), stageOf(err))
		}
		return fmt.Sprintf("the BMC answered at first, then nothing for %v during %s: overloaded or hung BMC, or heavy packet loss", t.timeout(), stageOf(err))
	case state.ReasonProtocol:
		return "the BMC answered with nothing usable (no IPMI 2.0 RMCP+, or malformed replies)"
	case state.ReasonIPMI15Only:
		return "IPMI 1.5 only, lightsout needs 2.0: the BMC's capabilities offer IPMI 1.5 only and it does not answer an RMCP+ Open Session — enable IPMI 2.0 / RMCP+ (\"IPMI over LAN\" with 2.0 sessions) on the BMC or update its firmware; a BMC that cannot do IPMI 2.0 can be monitored over Redfish if it has it"
	case state.ReasonWrongPassword:
		return fmt.Sprintf("the BMC refused the password of user %s: it was changed on the BMC or differs in the inventory", user)
	case state.ReasonUnknownUser:
		return fmt.Sprintf("the BMC does not know user %s: the account was removed or renamed (after a board replacement the BMC user must be re-created)", user)
	case state.ReasonPrivilege:
		return fmt.Sprintf("user %s may not log in at %s privilege: raise the user's privilege on the BMC or lower the requested level", user, t.privilege())
	case state.ReasonLocked:
		return fmt.Sprintf("the BMC knows user %s but has disabled or locked it (RAKP status 0x09): an account lockout after failed logins, or disabled by an administrator", user)
	case state.ReasonAuthRejected:
		return fmt.Sprintf("the BMC refused the login of user %s", user)
	case state.ReasonBusy:
		return "the BMC has no free session slot: another manager, agent or console holds its sessions (they expire after the BMC's idle timeout); identity not verified"
	case state.ReasonNoCipherSuite:
		allowed, offered := "17, 3", "none we could read"
		if n := o.Evidence.Negotiation; n != nil {
			allowed = joinSuites(n.Allowed)
			if n.Offered != nil {
				offered = joinSuites(n.Offered)
			}
		}
		return fmt.Sprintf("the BMC offers cipher suites %s, none of the allowed %s: enable suite 17 on the BMC (ipmitool lan set <channel> cipher_privs), or widen the allow-list (cipher_suites in the inventory, --cipher-suites)", offered, allowed)
	case state.ReasonCipher0Refused:
		return "cipher suite 0 (no authentication) was requested and is not allowed"
	}
	return err.Error()
}

func joinSuites(l []ipmi.CipherSuite) string {
	parts := make([]string, len(l))
	for i, s := range l {
		parts[i] = fmt.Sprint(uint8(s))
	}
	return strings.Join(parts, ", ")
}

func stageOf(err error) string {
	var se *ipmi.StageError
	if errors.As(err, &se) {
		return string(se.Stage)
	}
	return "the session"
}

func (t *Target) timeout() time.Duration {
	if t.Timeout <= 0 {
		return DefaultTimeout
	}
	return t.Timeout
}

// insecureFindings reads the security-relevant bits of the pre-login
// capabilities.
func insecureFindings(c ipmi.AuthCaps) []string {
	var f []string
	if c.Anonymous {
		f = append(f, "anonymous login enabled")
	}
	if c.NullUsers {
		f = append(f, "null user names enabled")
	}
	if c.AuthNone {
		f = append(f, "IPMI 1.5 authentication type none offered")
	}
	if c.AuthStraight {
		f = append(f, "IPMI 1.5 straight password authentication offered")
	}
	if c.AuthMD2 {
		f = append(f, "IPMI 1.5 MD2 authentication offered")
	}
	return f
}
