package probe

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/stmcginnis/gofish/schemas"

	"github.com/lightsout/lightsout/internal/guid"
	"github.com/lightsout/lightsout/internal/redfish"
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

// MaxIdleRedfishConns bounds the idle (kept-alive) connections of the
// shared transport across the fleet, and the TLS sessions it keeps for
// resumption; IdleRedfishConns lowers it to what the file descriptor limit
// allows. The idle pool evicts its oldest connection when full, so in a
// fleet larger than the bound every check of a monitor reconnects (and
// once the session cache is outgrown too, with a full handshake: ECDSA and
// ECDH on both sides, as a one-shot check pays).
const MaxIdleRedfishConns = 16384

// IdleRedfishConns is the bound NewRedfishTransport uses: MaxIdleRedfishConns,
// or half of RLIMIT_NOFILE when that is lower (Go raises the soft limit to
// the hard one at start), at least 64.
func IdleRedfishConns() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil && rl.Cur/2 < MaxIdleRedfishConns {
		return max(int(rl.Cur/2), 64)
	}
	return MaxIdleRedfishConns
}

// NewRedfishTransport is the one HTTP transport a fleet's Redfish checks
// share: one connection per BMC at most (so open connections ≤ checks in
// flight + IdleRedfishConns idle), kept alive between checks (90 s, more
// than the monitor's default interval), TLS sessions resumed from a cache
// of IdleRedfishConns entries. The certificate chain is not verified
// (BMCs present self-signed certificates); the probe pins the leaf instead.
func NewRedfishTransport() *http.Transport {
	idle := IdleRedfishConns()
	return &http.Transport{
		DialContext: (&net.Dialer{Timeout: DefaultTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12, //nolint:gosec // pinned by the probe
			ClientSessionCache: tls.NewLRUClientSessionCache(idle),
			// One key share, P-256: the group TLS 1.3 makes mandatory
			// (RFC 8446 §9.1) and every BMC's OpenSSL speaks. Go orders
			// the groups itself (the order here is ignored) and sends its
			// first one's key share, so listing X25519 would make every
			// handshake an X25519 one; P-256's key share comes from a
			// precomputed table and costs the client about 100 µs less
			// per full handshake (a one-shot check's, bench/check). Go's
			// default also offers the hybrid X25519MLKEM768 (about 150 µs
			// more), which BMC firmware (OpenSSL 1.1/3.0 era) never
			// takes. A service without P-256 gets P-384 after a
			// HelloRetryRequest.
			CurvePreferences: []tls.CurveID{tls.CurveP256, tls.CurveP384}},
		TLSHandshakeTimeout: DefaultTimeout,
		MaxIdleConns:        idle,
		MaxIdleConnsPerHost: 1,
		MaxConnsPerHost:     1,
		IdleConnTimeout:     90 * time.Second,
	}
}

// recorder wraps the shared transport for one check: it notes each
// request's status. It does not pass CloseIdleConnections on.
type recorder struct {
	rt http.RoundTripper
	mu sync.Mutex
	ev *RedfishEvidence
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.rt.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.ev.Statuses = append(r.ev.Statuses, fmt.Sprintf("%s %s %d", req.Method, req.URL.Path, resp.StatusCode))
	r.mu.Unlock()
	return resp, nil
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// RedfishProber checks BMCs over Redfish through the shared transport,
// and remembers per BMC (by target name) the authentication that worked
// (auto accounts) and, with KeepSessions, the open session, so that a
// monitor re-checking every minute logs in once, not 1,440 times a day.
// A change of address, user, password or forced authentication ends the
// remembered session and what was learned. Close deletes the sessions.
type RedfishProber struct {
	tr   http.RoundTripper
	pins CertPins
	// KeepSessions keeps a session open between checks (at most one per
	// BMC); without it each check logs out.
	KeepSessions bool
	// BasicFirst (a check that stands alone and keeps no session, as
	// lightsout check's) tries HTTP Basic before a session login on an
	// auto account: three requests instead of five, no session slot
	// taken. A diagnosis leaves it off: it checks the way the monitor
	// does, so that a BMC refusing sessions (503, slots full) reads Busy
	// there too, not Connectable over Basic.
	BasicFirst bool
	// Memo, for a one-shot prober (BasicFirst, not KeepSessions), is what
	// earlier runs learned per endpoint (RedfishOneShot).
	Memo *RedfishMemo

	mu   sync.Mutex
	bmcs map[string]*rfMemory
}

type rfMemory struct {
	mu sync.Mutex // one check of a BMC at a time
	// pinOK is the fingerprint last found equal to the pin: a light
	// check (Target.Light) that sees it again does not read the store.
	pinOK string

	account string // what the session and the learning are for
	base    string
	user    string
	pw      []byte
	learned redfish.Auth // auto accounts: what worked last
	// system is the ComputerSystem read last time, listed by the
	// collection at systems: a light check reads it directly.
	system, systems string
	stored          bool // learned comes from Target.RedfishLearned, not a check of this prober
	sess            *redfish.Session
}

// NewRedfishProber returns a prober over the shared transport tr. pins may
// be nil (no pinning). A request a check gives up on keeps its BMC's turn
// until the BMC answered it or its deadline passed (redfish.HoldOnCancel).
func NewRedfishProber(tr http.RoundTripper, pins CertPins) *RedfishProber {
	return &RedfishProber{tr: redfish.HoldOnCancel(tr), pins: pins, bmcs: map[string]*rfMemory{}}
}

// Redfish returns a Prober for one-shot checks (lightsout check): each
// BMC is checked once, keeping no session (HTTP Basic first, else a
// session logged out after the check; see RedfishProber for one that
// keeps sessions). Its requests are not held past a cancellation
// (redfish.HoldOnCancel): nothing else in the process sends to the BMC
// after its one check, and each request ends at its own deadline anyway.
func Redfish(tr http.RoundTripper, pins CertPins) Prober {
	return RedfishOneShot(tr, pins, nil)
}

// RedfishOneShot is Redfish with a memo of earlier runs (nil: none; see
// RedfishMemo and docs/redfish.md, "Learned between runs"): a BMC that
// took HTTP Basic last time is checked with one request, GET of the System
// read last time, over the TLS session it issued (tr from
// NewOneShotRedfishTransport resumes it), and only over a connection that
// presents the certificate remembered with it; anything unexpected falls
// back to the full check, which learns again.
func RedfishOneShot(tr http.RoundTripper, pins CertPins, memo *RedfishMemo) Prober {
	if tr == nil {
		tr = http.DefaultTransport
	}
	return (&RedfishProber{tr: tr, pins: pins, BasicFirst: true, Memo: memo, bmcs: map[string]*rfMemory{}}).Check
}

// Sessions is how many sessions the prober keeps open.
func (p *RedfishProber) Sessions() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, m := range p.bmcs {
		m.mu.Lock()
		if m.sess != nil {
			n++
		}
		m.mu.Unlock()
	}
	return n
}

// Learned is the authentication learned for the BMC named name ("" none).
func (p *RedfishProber) Learned(name string) redfish.Auth {
	p.mu.Lock()
	m := p.bmcs[name]
	p.mu.Unlock()
	if m == nil {
		return ""
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.learned
}

// Close deletes every session the prober keeps (each on its own deadline
// of DefaultTimeout, at most 64 at once: a server stopping with 10,000
// kept sessions) and forgets them.
func (p *RedfishProber) Close(ctx context.Context) error {
	p.mu.Lock()
	mems := make([]*rfMemory, 0, len(p.bmcs))
	for _, m := range p.bmcs {
		mems = append(mems, m)
	}
	p.mu.Unlock()
	var (
		wg   sync.WaitGroup
		emu  sync.Mutex
		errs []error
		sem  = make(chan struct{}, 64)
	)
	for _, m := range mems {
		wg.Add(1)
		sem <- struct{}{}
		go func(m *rfMemory) {
			defer wg.Done()
			defer func() { <-sem }()
			m.mu.Lock()
			defer m.mu.Unlock()
			if err := p.logout(ctx, m); err != nil {
				emu.Lock()
				errs = append(errs, err)
				emu.Unlock()
			}
		}(m)
	}
	wg.Wait()
	return errors.Join(errs...)
}

// logout deletes m's session, if any. m.mu is held.
func (p *RedfishProber) logout(ctx context.Context, m *rfMemory) error {
	if m.sess == nil {
		return nil
	}
	c := &redfish.Client{HTTP: &http.Client{Transport: p.tr, CheckRedirect: noRedirect}, Base: m.base,
		User: m.user, Password: m.pw, Timeout: DefaultTimeout}
	c.UseSession(*m.sess)
	m.sess = nil
	return c.Logout(context.WithoutCancel(ctx))
}

func (p *RedfishProber) memory(name string) *rfMemory {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := p.bmcs[name]
	if m == nil {
		m = &rfMemory{}
		p.bmcs[name] = m
	}
	return m
}

func accountKey(t Target, auth redfish.Auth) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00", t.Addr, t.User, auth)
	h.Write(t.Password)
	return hex.EncodeToString(h.Sum(nil))
}

// Check checks one BMC: GET the service root without credentials (TLS,
// certificate pin, what authentication it offers — one answer for all
// three), authenticate as the account says or the service offers, read
// Systems and the first System (UUID, PowerState). Credentials are never
// sent to a BMC whose certificate differs from the pinned one.
//
// A learned BMC's one request (RedfishOneShot) is sent first, before the
// rest of the check, from a shallow stack: the TLS handshake under it is
// deep, and a one-shot check's goroutine then fits in 16 KiB instead of
// growing to 32 KiB (a copy of the stack from deep in the dial, and 16
// KiB more memory touched per BMC checked at once).
func (p *RedfishProber) Check(ctx context.Context, t Target) Observation {
	start := time.Now()
	mem := p.memory(t.Name)
	mem.mu.Lock()
	defer mem.mu.Unlock()
	var r *rfRecall
	if p.Memo != nil && p.BasicFirst && !p.KeepSessions {
		r = p.recall(ctx, &t)
		ctx = withTLSSlot(ctx, r.slot)
		p.learnedGet(ctx, t, r)
	}
	return p.check(ctx, t, start, mem, r)
}

// rfRecall is what earlier runs learned of a BMC (a one-shot prober with
// a memo) and, when that says one request is the check, its answer.
type rfRecall struct {
	slot     *tlsSlot
	memo     RedfishMemoEntry
	fromMemo bool // memo.Cert is compatible with the pin: use what it says
	// The learned System's GET, when sent (learnedGet).
	sent  bool
	t0    time.Time
	resp  *redfish.Response
	err   error
	typed typedSystem // resp's body decoded (else derr)
	derr  error
}

// typedSystem is a System's answer as learnedSystem reads it: only a
// ComputerSystem's UUID is the machine's (a Manager, the service root and
// a Chassis have one too).
type typedSystem struct {
	Type string `json:"@odata.type"`
	rfSystem
}

// recall looks up what earlier runs learned: the authentication, the
// System, the TLS session — each only for the certificate it was learned
// with. It may set t.RedfishLearned.
func (p *RedfishProber) recall(ctx context.Context, t *Target) *rfRecall {
	r := &rfRecall{slot: &tlsSlot{timeout: t.timeout()}}
	var ok bool
	if r.memo, ok = p.Memo.Get(t.Addr.String()); ok && r.memo.Cert != "" {
		pinned := ""
		if p.pins != nil {
			pinned, _ = p.pins.CertPin(ctx, t.Name)
		}
		// Never resume, nor send credentials first, towards another
		// certificate than the pinned one.
		if r.fromMemo = pinned == "" || strings.EqualFold(pinned, r.memo.Cert); r.fromMemo {
			r.slot.ticket, r.slot.session = r.memo.Ticket, r.memo.Session
			if t.RedfishLearned == "" {
				t.RedfishLearned = r.memo.Auth
			}
		}
	}
	return r
}

// useLearned says whether the check of t is the learned System's GET.
func (r *rfRecall) useLearned(t Target) bool {
	want := t.RedfishAuth
	if want == "" {
		want = redfish.AuthAuto
	}
	return r != nil && r.fromMemo && r.memo.System != "" && !t.Light &&
		(want == redfish.AuthBasic || want == redfish.AuthAuto && r.memo.Auth == redfish.AuthBasic)
}

// learnedGet sends the learned System's GET with HTTP Basic over a
// connection of its own (OneShotTransport's dialer, redfish.Client.GetOn)
// when that is the check (learnedSystem reads the answer); with another
// transport learnedSystem sends it.
func (p *RedfishProber) learnedGet(ctx context.Context, t Target, r *rfRecall) {
	ot, ok := p.tr.(*OneShotTransport)
	if !ok || !r.useLearned(t) {
		return
	}
	c := &redfish.Client{Base: "https://" + t.Addr.String(), User: t.User, Password: t.Password, Timeout: t.timeout()}
	c.UseBasic()
	r.slot.setWant(r.memo.Cert)
	r.sent, r.t0 = true, time.Now()
	r.resp, r.err = ot.dialer.getOnce(ctx, c, t, r.slot, r.memo.System)
	r.slot.setWant("")
	if r.err == nil {
		// Here too, not under check: encoding/json's decoder is deep.
		r.derr = json.Unmarshal(r.resp.Body, &r.typed)
	}
}

// check is Check's all but the learned request; mem.mu is held.
func (p *RedfishProber) check(ctx context.Context, t Target, start time.Time, mem *rfMemory, r *rfRecall) (o Observation) {
	o = Observation{Name: t.Name, Host: t.Addr.String(), Protocol: "redfish", At: start}
	o.Evidence.RTTMS = map[string]float64{}
	ev := &RedfishEvidence{}
	o.Evidence.Redfish = ev
	if !t.Expected.Zero() {
		o.Expected = t.Expected.Spelling()
	}
	defer func() { o.ElapsedMS = ms(time.Since(start)) }()
	want := t.RedfishAuth
	if want == "" {
		want = redfish.AuthAuto
	}
	var (
		slot     *tlsSlot
		memo     RedfishMemoEntry
		fromMemo bool
	)
	if r != nil {
		slot, memo, fromMemo = r.slot, r.memo, r.fromMemo
	}
	if slot != nil {
		defer func() { p.remember(t, mem, ev, slot, memo, o) }()
	}
	if key := accountKey(t, want); mem.account != key {
		// Another account (or a first check): the old session is the old
		// account's, and what was learned may not hold — except what the
		// caller kept of an earlier run (the service's, not the password's).
		_ = p.logout(ctx, mem)
		mem.account, mem.learned, mem.stored = key, "", false
		mem.system, mem.systems = "", ""
		if l := t.RedfishLearned; want == redfish.AuthAuto && (l == redfish.AuthSession || l == redfish.AuthBasic) {
			mem.learned, mem.stored = l, true
		}
	}
	if want == redfish.AuthAuto {
		defer func() { ev.Learned = string(mem.learned) }()
	}
	base := "https://" + t.Addr.String()
	mem.base, mem.user, mem.pw = base, t.User, t.Password

	rec := &recorder{rt: p.tr, ev: ev}
	c := &redfish.Client{HTTP: &http.Client{Transport: rec, CheckRedirect: noRedirect}, Base: base,
		User: t.User, Password: t.Password, Timeout: t.timeout()}

	// 0. Learned in an earlier run: a BMC that took HTTP Basic is checked
	// with one request, GET of the System read then, with Basic, over a
	// connection that must present the certificate remembered (else it is
	// closed before the request is sent). A refusal with a Basic
	// challenge is the verdict (one failed attempt per check), as are no
	// answer and a refused connection; anything else (404: the System
	// moved, another certificate, not a System) falls back to the full
	// check below, which learns again.
	if r.useLearned(t) {
		why := "forced by the account"
		if want == redfish.AuthAuto {
			why = "learned from an earlier run (the check memo)"
		}
		if p.learnedSystem(ctx, &o, t, c, mem, ev, r, why) {
			return o
		}
		o.Evidence.Error = ""
		c = &redfish.Client{HTTP: c.HTTP, Base: base, User: t.User, Password: t.Password, Timeout: t.timeout()}
	}

	// 1. Service root, no credentials: reachability, TLS, certificate,
	// and whether sessions are offered, from one answer.
	t0 := time.Now()
	root, resp, err := c.GetRoot(ctx)
	o.Evidence.RTTMS["service_root"] = ms(time.Since(t0))
	if resp != nil && resp.TLS != nil {
		noteTLS(ev, resp.TLS)
	}
	rootAuth := false // the root itself wants credentials (not per DSP0266, but seen)
	if err != nil {
		if st := statusOf(err); st == http.StatusUnauthorized || st == http.StatusForbidden {
			rootAuth = true
		} else {
			return rfFail(o, t, "service_root", err)
		}
	}
	if p.comparePin(ctx, &o, t, mem, ev) {
		return o
	}

	// 2. Authentication: what the account forces, else what worked last
	// time, else what the service root offers.
	t0 = time.Now()
	use := want
	why := "forced by the account"
	if want == redfish.AuthAuto && mem.learned != "" {
		use, why = mem.learned, "learned from an earlier check"
		if mem.stored {
			why = "learned from an earlier check (kept with the BMC's profile)"
			if fromMemo && memo.Auth == mem.learned {
				why = "learned from an earlier run (the check memo)"
			}
		}
	}
	if rootAuth {
		// The root wants credentials: read it with Basic, or with a session
		// opened at the standard URI when the account forces sessions.
		if want == redfish.AuthSession {
			// (A kept session is not reused here: it is ended first.)
			_ = p.logout(ctx, mem)
			if err := c.Login(ctx, redfish.DefaultSessions); err != nil {
				return rfFail(o, t, "login", err)
			}
		} else {
			c.UseBasic()
			use, why = redfish.AuthBasic, "the service root answered HTTP 401 without credentials"
		}
		if root, _, err = c.GetRoot(ctx); err != nil {
			mem.learned = ""
			_ = c.Logout(context.WithoutCancel(ctx))
			return rfFail(o, t, "service_root", err)
		}
	}
	// A check that keeps no session (lightsout check, a diagnosis) tries
	// HTTP Basic first on an auto account: a session would be opened only
	// to be deleted three requests later — two requests more for the BMC,
	// a session slot taken meanwhile (and left behind by a check killed
	// in between). A 401 that offers no Basic challenge (DSP0266: a
	// service taking Basic sends WWW-Authenticate) falls back to a
	// session login below (basicFirst).
	basicFirst := false
	switch {
	case rootAuth && want == redfish.AuthSession:
		// Logged in above.
	case use == redfish.AuthBasic:
		c.UseBasic()
	case want == redfish.AuthAuto && p.BasicFirst && !p.KeepSessions && mem.learned == "" && root.SessionsPath() != "":
		c.UseBasic()
		use, why, basicFirst = redfish.AuthBasic, "a one-shot check keeps no session: HTTP Basic before a session login (DSP0266 services take both)", true
	case use == redfish.AuthSession && mem.sess != nil:
		c.UseSession(*mem.sess)
		ev.SessionReused = true
	default:
		if want == redfish.AuthAuto {
			use = redfish.AuthAuto // a learned session: the service root decides again
		}
		ch, err := c.Authenticate(ctx, root, use)
		if use == redfish.AuthAuto {
			why = ch.Why
		}
		use = ch.Auth
		ev.Auth, ev.AuthWhy = string(use), why
		if err != nil {
			mem.learned = "" // re-learned at the next check
			return rfFail(o, t, "login", err)
		}
		o.Evidence.RTTMS["login"] = ms(time.Since(t0))
	}
	ev.Auth, ev.AuthWhy = string(use), why
	if want == redfish.AuthAuto {
		mem.learned, mem.stored = use, false
	}
	mem.sess = nil // kept again below if still good
	defer func() {
		if s := c.Session(); s != nil {
			if p.KeepSessions {
				mem.sess = s
				return
			}
			ev.LoggedOut = c.Logout(context.WithoutCancel(ctx)) == nil
		}
	}()

	// 3. Identity and power: Systems, then the first System. A light
	// re-check goes straight to the System read last time (one request
	// fewer; the service root above still comes first, without
	// credentials, so a replaced certificate is seen before any are sent);
	// a System that is not there any more (404) is looked up again.
	t0 = time.Now()
	systems := root.Systems.ID
	if systems == "" {
		systems = "/redfish/v1/Systems"
	}
	loginFailed := false
	// get reads the first authenticated resource: a kept session the BMC
	// refuses (expired, or the BMC restarted) is replaced once.
	get := func(path, resource string, v any) error {
		err := c.Get(ctx, path, resource, v)
		var he *redfish.HTTPError
		if basicFirst && errors.As(err, &he) && he.Status == http.StatusUnauthorized && !he.BasicChallenged() && root.SessionsPath() != "" {
			// Basic refused without a Basic challenge: the service does
			// not take Basic; log in with a session instead.
			basicFirst = false
			if lerr := c.Login(ctx, root.SessionsPath()); lerr != nil {
				if errors.Is(lerr, redfish.ErrNoSessionService) {
					return err // neither: Basic's refusal is the answer
				}
				loginFailed = true
				return lerr
			}
			use, why = redfish.AuthSession, fmt.Sprintf("HTTP Basic answered %d without a Basic challenge: session login", he.Status)
			ev.Auth, ev.AuthWhy = string(use), why
			if want == redfish.AuthAuto {
				mem.learned = use
			}
			err = c.Get(ctx, path, resource, v)
		}
		if ev.SessionReused && statusOf(err) == http.StatusUnauthorized {
			ev.SessionExpired, ev.SessionReused = true, false
			if err := c.Login(ctx, root.SessionsPath()); err != nil {
				loginFailed = true
				return err
			}
			err = c.Get(ctx, path, resource, v)
		}
		return err
	}
	refused := func(err error) {
		if st := statusOf(err); st == http.StatusUnauthorized || st == http.StatusForbidden {
			mem.learned = ""
		}
	}
	var sys rfSystem
	sysURL := ""
	if t.Light && mem.system != "" && mem.systems == systems {
		sysURL = mem.system
		err = get(sysURL, "ComputerSystem", &sys)
		switch {
		case loginFailed:
			mem.learned = ""
			return rfFail(o, t, "login", err)
		case statusOf(err) == http.StatusNotFound:
			sysURL, mem.system = "", "" // moved: look it up
		case err != nil:
			refused(err)
			return rfFail(o, t, "system", err)
		}
	}
	if sysURL == "" {
		var coll struct {
			Members []redfish.Link
		}
		err = get(systems, "ComputerSystemCollection", &coll)
		if loginFailed {
			mem.learned = ""
			return rfFail(o, t, "login", err)
		}
		if err != nil {
			refused(err)
			return rfFail(o, t, "systems", err)
		}
		if len(coll.Members) == 0 || coll.Members[0].ID == "" {
			return rfFail(o, t, "systems", &redfish.BodyError{Resource: "ComputerSystemCollection", URL: systems, Err: errors.New("lists no ComputerSystem")})
		}
		sysURL = coll.Members[0].ID
		if err := c.Get(ctx, sysURL, "ComputerSystem", &sys); err != nil {
			return rfFail(o, t, "system", err)
		}
		mem.system, mem.systems = sysURL, systems
	}
	o.Evidence.RTTMS["system"] = ms(time.Since(t0))
	return systemVerdict(o, t, ev, sys, sysURL, use)
}

// learnedSystem is a check's one request for a BMC an earlier run learned
// (RedfishOneShot): GET the remembered System with HTTP Basic. true with
// the verdict in o, or false (o as it was) with ev.LearnedFallback saying
// why the full check follows.
func (p *RedfishProber) learnedSystem(ctx context.Context, o *Observation, t Target, c *redfish.Client, mem *rfMemory,
	ev *RedfishEvidence, r *rfRecall, why string) bool {
	slot, memo := r.slot, r.memo
	c.UseBasic()
	t0, resp, err := r.t0, r.resp, r.err
	if r.sent { // by learnedGet
		if resp != nil {
			ev.Statuses = append(ev.Statuses, fmt.Sprintf("GET %s %d", memo.System, resp.Status))
		}
	} else {
		slot.setWant(memo.Cert)
		t0 = time.Now()
		resp, err = c.Do(ctx, http.MethodGet, memo.System, nil)
		slot.setWant("")
	}
	if resp != nil && resp.TLS != nil {
		noteTLS(ev, resp.TLS)
	}
	ev.Auth, ev.AuthWhy = string(redfish.AuthBasic), why
	var (
		he  *redfish.HTTPError
		sys rfSystem
	)
	switch {
	case err == nil && !strings.EqualFold(ev.CertSHA256, memo.Cert):
		// (A connection opened earlier in this run, by another target
		// at the same address.)
		ev.LearnedFallback = "the connection presents another certificate than the one remembered"
	case err == nil:
		// Only a ComputerSystem's UUID is the machine's (a Manager, the
		// service root and a Chassis have one too).
		typed, derr := r.typed, r.derr
		if !r.sent {
			derr = json.Unmarshal(resp.Body, &typed)
		}
		if derr != nil || typed.UUID == "" || !strings.HasPrefix(typed.Type, "#ComputerSystem.") {
			ev.LearnedFallback = fmt.Sprintf("GET %s answered no ComputerSystem with a UUID", memo.System)
			break
		}
		sys = typed.rfSystem
		if p.comparePin(ctx, o, t, mem, ev) {
			return true
		}
		ev.LearnedSystem = memo.System
		mem.system, mem.systems = memo.System, memo.Systems
		if t.RedfishAuth == "" || t.RedfishAuth == redfish.AuthAuto {
			mem.learned = redfish.AuthBasic
		}
		o.Evidence.RTTMS["system"] = ms(time.Since(t0))
		systemVerdictTo(o, t, ev, &sys, memo.System, redfish.AuthBasic)
		return true
	case errors.Is(err, errNotLearnedCert):
		// Closed before the request: nothing was sent to it.
		ev.Statuses = append(ev.Statuses, fmt.Sprintf("GET %s not sent: %v", memo.System, err))
		ev.LearnedFallback = errNotLearnedCert.Error()
		slot.mu.Lock()
		slot.ticket, slot.session = nil, nil
		slot.mu.Unlock()
	case errors.As(err, &he) && (he.Status == http.StatusUnauthorized || he.Status == http.StatusForbidden) && he.BasicChallenged():
		// The password refused: the verdict, as a Basic-first check's.
		if p.comparePin(ctx, o, t, mem, ev) {
			return true
		}
		mem.learned = ""
		rfFailTo(o, t, "system", err)
		return true
	case errors.As(err, &he):
		ev.LearnedFallback = fmt.Sprintf("GET %s answered HTTP %d", memo.System, he.Status)
	default:
		var nr *redfish.NoReplyError
		if errors.As(err, &nr) || errors.Is(err, context.Canceled) || errors.Is(err, syscall.ECONNREFUSED) ||
			errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH) {
			// Nothing (usable) answered: asking again would only wait again.
			rfFailTo(o, t, "system", err)
			return true
		}
		ev.LearnedFallback = fmt.Sprintf("GET %s: %v", memo.System, err)
	}
	ev.Auth, ev.AuthWhy = "", ""
	return false
}

// remember keeps what this check learned of t's endpoint in p.Memo: the
// certificate, the System and authentication when the check read the
// System, the TLS session the BMC issued. A certificate other than the
// remembered one replaces the entry (its session and System were the
// other certificate's); a refused login forgets the authentication; a
// changed certificate against the pin drops the entry. mem.mu is held.
func (p *RedfishProber) remember(t Target, mem *rfMemory, ev *RedfishEvidence, slot *tlsSlot, old RedfishMemoEntry, o Observation) {
	key := t.Addr.String()
	if ev.CertSHA256 == "" {
		return // nothing answered over TLS: keep what was known
	}
	if o.Reason == state.ReasonCertChanged {
		p.Memo.Forget(key)
		return
	}
	e := old
	if !strings.EqualFold(e.Cert, ev.CertSHA256) {
		e = RedfishMemoEntry{Cert: ev.CertSHA256}
	}
	e.At = o.At
	if ticket, session, ok := slot.issued(); ok {
		e.Ticket, e.Session = ticket, session
	}
	if o.Evidence.FailedStage == "" && o.Evidence.GUIDSource != "" {
		e.System, e.Systems = mem.system, mem.systems // mem.mu is held
	}
	switch {
	case ev.Learned != "":
		e.Auth = redfish.Auth(ev.Learned)
	case t.RedfishAuth == "" || t.RedfishAuth == redfish.AuthAuto:
		if st := ev.HTTPStatus; st == http.StatusUnauthorized || st == http.StatusForbidden {
			e.Auth = ""
		}
	}
	p.Memo.Put(key, e)
}

// rfSystem is what a check decodes of the ComputerSystem.
type rfSystem struct {
	UUID         string
	PowerState   string
	Manufacturer string
	Model        string
	BiosVersion  string
}

// systemVerdict is the verdict from the System read at sysURL: its UUID
// compared with the registered GUID, after authenticating with use. Not
// inlined, as rfFail.
//
//go:noinline
func systemVerdict(o Observation, t Target, ev *RedfishEvidence, sys rfSystem, sysURL string, use redfish.Auth) Observation {
	systemVerdictTo(&o, t, ev, &sys, sysURL, use)
	return o
}

// systemVerdictTo is systemVerdict in place.
func systemVerdictTo(o *Observation, t Target, ev *RedfishEvidence, sys *rfSystem, sysURL string, use redfish.Auth) {
	ev.UUID, ev.PowerState, ev.Model, ev.BIOSVersion = sys.UUID, sys.PowerState, sys.Model, sys.BiosVersion
	o.Evidence.Manufacturer, o.Evidence.Firmware = sys.Manufacturer, sys.BiosVersion
	switch sys.PowerState {
	case "On":
		o.Evidence.Power = "on"
	case "Off":
		o.Evidence.Power = "off"
	}
	if sys.UUID == "" {
		rfFailTo(o, t, "system", &redfish.BodyError{Resource: "ComputerSystem", URL: sysURL, Err: errors.New("has no UUID")})
		return
	}
	g, perr := guid.Parse(sys.UUID)
	if perr != nil {
		rfFailTo(o, t, "system", &redfish.BodyError{Resource: "ComputerSystem", URL: sysURL, Err: fmt.Errorf("UUID %q: %w", sys.UUID, perr)})
		return
	}
	// Redfish spells the UUID as text (RFC 4122 layout): no guessing.
	r := g.Renderings()
	r.Layout = guid.LayoutRFC4122
	o.Evidence.GUIDSource = "redfish_system_uuid"
	if !identity(o, &t, g, r) {
		mismatch(o, &t, "reports System UUID")
		return
	}
	o.State = state.Connectable
	how := "Redfish session"
	if use == redfish.AuthBasic {
		how = "Redfish HTTP Basic login"
	}
	o.Message = fmt.Sprintf("%s accepted over %s, identity confirmed", how, ev.TLSVersion)
	if t.Expected.Zero() {
		o.Message = fmt.Sprintf("%s accepted over %s (no GUID registered to compare)", how, ev.TLSVersion)
	}
}

// comparePin compares the certificate the check saw (ev.CertSHA256) with
// the BMC's pin, pinning it on first contact; true when o is the verdict
// (Invalid / cert_changed: no credentials are to be sent).
func (p *RedfishProber) comparePin(ctx context.Context, o *Observation, t Target, mem *rfMemory, ev *RedfishEvidence) bool {
	if pins := p.pins; pins != nil && ev.CertSHA256 != "" && !(t.Light && mem.pinOK == ev.CertSHA256) {
		pinned, err := pins.CertPin(ctx, t.Name)
		switch {
		case err != nil:
			// Cannot compare: go on, say so.
			o.Evidence.Error = "certificate pin unavailable: " + err.Error()
		case pinned == "":
			if pins.PinCert(ctx, t.Name, ev.CertSHA256) == nil {
				mem.pinOK = ev.CertSHA256
			}
		case strings.EqualFold(pinned, ev.CertSHA256):
			mem.pinOK = ev.CertSHA256
		case pinned == AwaitingPin:
			mem.pinOK = ""
			o.State, o.Reason = state.Invalid, state.ReasonCertChanged
			o.Message = fmt.Sprintf("new address: the BMC at %s presents a certificate with SHA-256 %s; the account's address was changed, so its certificate is not trusted on first use and no credentials were sent. An admin accepts it once verified (lightsout accept-cert)",
				t.Addr, short(ev.CertSHA256))
			return true
		default:
			mem.pinOK = ""
			ev.PinnedSHA256 = pinned
			o.State, o.Reason = state.Invalid, state.ReasonCertChanged
			o.Message = fmt.Sprintf("certificate changed: the BMC at %s presents a certificate with SHA-256 %s, but %s was pinned on first contact: the BMC was replaced or reset, its certificate regenerated, or something intercepts the connection; no credentials were sent. An admin accepts the new certificate once verified",
				t.Addr, short(ev.CertSHA256), short(pinned))
			return true
		}
	}
	return false
}

func noteTLS(ev *RedfishEvidence, st *tls.ConnectionState) {
	ev.TLSVersion = tls.VersionName(st.Version)
	ev.TLSResumed = st.DidResume
	if st.CurveID != 0 {
		ev.TLSGroup = st.CurveID.String()
	}
	if len(st.PeerCertificates) > 0 {
		leaf := st.PeerCertificates[0]
		sum := sha256.Sum256(leaf.Raw)
		ev.CertSHA256 = hex.EncodeToString(sum[:])
		ev.CertSubject = leaf.Subject.String()
		ev.CertExpires = leaf.NotAfter.UTC().Format(time.RFC3339)
	}
}

func short(fp string) string {
	if len(fp) > 16 {
		return fp[:16] + "…"
	}
	return fp
}

func statusOf(err error) int {
	var he *redfish.HTTPError
	if errors.As(err, &he) {
		return he.Status
	}
	var re *schemas.Error
	if errors.As(err, &re) {
		return re.HTTPReturnedStatusCode
	}
	return 0
}

// ClassifyRedfish maps the outcome of a Redfish exchange to a state and
// reason (pure). An answer is never silence: any HTTP status, TLS alert,
// refusal or unusable body names what answered; silent is only a request
// nothing answered (not even a TLS handshake).
func ClassifyRedfish(err error) (state.OOB, state.Reason) {
	var (
		he *redfish.HTTPError
		be *redfish.BodyError
		nr *redfish.NoReplyError
		re *schemas.Error
		te *tls.RecordHeaderError
		ae tls.AlertError
		ce *tls.CertificateVerificationError
	)
	if !errors.As(err, &he) && errors.As(err, &re) {
		// gofish's error (power): only the status is known.
		he = &redfish.HTTPError{Status: re.HTTPReturnedStatusCode}
	}
	switch {
	case err == nil:
		return state.Connectable, state.ReasonOK
	case he != nil:
		switch {
		case he.Status == http.StatusUnauthorized || he.Status == http.StatusForbidden:
			switch he.Cause() {
			case redfish.CauseWrongPassword:
				return state.NotAuthenticated, state.ReasonWrongPassword
			case redfish.CauseUnknownUser:
				return state.NotAuthenticated, state.ReasonUnknownUser
			case redfish.CauseLocked:
				return state.NotAuthenticated, state.ReasonLocked
			}
			return state.NotAuthenticated, state.ReasonAuthRejected
		case he.Status == http.StatusServiceUnavailable,
			he.Status == http.StatusTooManyRequests && he.RetryAfter != "":
			return state.Connectable, state.ReasonBusy
		}
		return state.NotResponding, state.ReasonProtocol
	case errors.Is(err, redfish.ErrNoSessionService), errors.As(err, &be):
		return state.NotResponding, state.ReasonProtocol
	case errors.As(err, &nr):
		if nr.Answered {
			return state.NotResponding, state.ReasonStalled
		}
		return state.NotResponding, state.ReasonSilent
	case errors.Is(err, syscall.ECONNREFUSED):
		return state.NotResponding, state.ReasonPortRefused
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return state.NotResponding, state.ReasonUnreachable
	case errors.As(err, &te), errors.As(err, &ae), errors.As(err, &ce), strings.Contains(err.Error(), "tls: "):
		return state.NotResponding, state.ReasonTLS
	case errors.Is(err, context.Canceled):
		return state.NotResponding, state.ReasonSilent
	case errors.Is(err, context.DeadlineExceeded):
		return state.NotResponding, state.ReasonSilent
	}
	// Reset, closed or not HTTP: something answered, with nothing usable.
	return state.NotResponding, state.ReasonProtocol
}

// rfFail is o failed at stage with err. Not inlined: inlined, each call
// site kept its own copies of o (RedfishProber.check's frame went from
// 3 to 9 KiB).
//
//go:noinline
func rfFail(o Observation, t Target, stage string, err error) Observation {
	rfFailTo(&o, t, stage, err)
	return o
}

// rfFailTo is rfFail in place (a smaller stack frame than rfFail's two
// Observations: see RedfishProber.Check).
func rfFailTo(o *Observation, t Target, stage string, err error) {
	o.Err = err
	o.Evidence.Error = err.Error()
	o.Evidence.FailedStage = stage
	ev := o.Evidence.Redfish
	var he *redfish.HTTPError
	if errors.As(err, &he) {
		ev.FailedURL, ev.HTTPStatus, ev.MessageIDs, ev.RetryAfter = he.URL, he.Status, he.MessageIDs, he.RetryAfter
	}
	ev.NoSessions = errors.Is(err, redfish.ErrNoSessionService)
	o.State, o.Reason = ClassifyRedfish(err)
	user := fmt.Sprintf("%q", t.User)
	said := ""
	if he != nil && he.Detail() != "" {
		said = fmt.Sprintf(" (the service says: %s)", he.Detail())
	}
	var nr *redfish.NoReplyError
	switch o.Reason {
	case state.ReasonBusy:
		o.Conditions = append(o.Conditions, state.Busy)
		o.Message = fmt.Sprintf("the Redfish service answers HTTP %d to %s %s (busy or out of sessions", he.Status, he.Method, he.URL)
		if he.RetryAfter != "" {
			o.Message += "; Retry-After " + he.RetryAfter
		}
		o.Message += "); identity not verified"
	case state.ReasonWrongPassword:
		o.Message = fmt.Sprintf("the BMC refused the password of user %s (HTTP %d to %s %s)%s", user, he.Status, he.Method, he.URL, said)
	case state.ReasonUnknownUser:
		o.Message = fmt.Sprintf("the BMC does not know user %s (HTTP %d to %s %s)%s", user, he.Status, he.Method, he.URL, said)
	case state.ReasonLocked:
		o.Message = fmt.Sprintf("the BMC has locked or disabled user %s (HTTP %d to %s %s)%s", user, he.Status, he.Method, he.URL, said)
	case state.ReasonAuthRejected:
		o.Message = fmt.Sprintf("the BMC refused the Redfish %s login of user %s (HTTP %d to %s %s): wrong password, or the user was removed or locked%s",
			nonEmpty(ev.Auth, "session"), user, he.Status, he.Method, he.URL, said)
	case state.ReasonPortRefused:
		o.Message = fmt.Sprintf("%s refused TCP %d: a host is at that address but no Redfish (HTTPS) service listens", t.Addr.Addr(), t.Addr.Port())
	case state.ReasonUnreachable:
		o.Message = fmt.Sprintf("%s is unreachable: check routing and the management VLAN", t.Addr.Addr())
	case state.ReasonTLS:
		o.Message = fmt.Sprintf("the TLS handshake with %s failed: %v", t.Addr, err)
	case state.ReasonStalled:
		errors.As(err, &nr)
		o.Message = fmt.Sprintf("the Redfish service at %s answered, then sent nothing for %v (%s %s): its web service hangs", t.Addr, t.timeout(), nr.Method, nr.URL)
	case state.ReasonSilent:
		switch {
		case errors.Is(err, context.Canceled):
			o.Message = "check cancelled before the BMC answered"
		case errors.As(err, &nr) && nr.Connected:
			o.Message = fmt.Sprintf("no answer from %s within %v: TCP %d accepted the connection, but no TLS handshake or HTTP answer came (a hung BMC web server, or a proxy in the path)", t.Addr, t.timeout(), t.Addr.Port())
		default:
			o.Message = fmt.Sprintf("no answer from %s within %v: check the address, the network path (TCP %d filtering) and that the BMC is powered", t.Addr, t.timeout(), t.Addr.Port())
		}
	case state.ReasonProtocol:
		var be *redfish.BodyError
		switch {
		case errors.Is(err, redfish.ErrNoSessionService):
			o.Message = fmt.Sprintf("the account forces session login (redfish_auth: session) but the service at %s offers none: %v; set redfish_auth to auto or basic", t.Addr, err)
		case he != nil:
			o.Message = fmt.Sprintf("the Redfish service at %s answered HTTP %d to %s %s%s", t.Addr, he.Status, he.Method, he.URL, said)
		case errors.As(err, &be):
			o.Message = fmt.Sprintf("the Redfish service at %s answered with an unusable %s: %v", t.Addr, be.Resource, err)
		default:
			o.Message = fmt.Sprintf("the Redfish service at %s answered with nothing usable: %v", t.Addr, err)
		}
	default:
		o.Message = err.Error()
	}
}

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
