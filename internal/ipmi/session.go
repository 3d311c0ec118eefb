package ipmi

import (
	"context"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"net/netip"
	"time"

	"github.com/bougou/go-ipmi/pkg/crypto"
	"github.com/bougou/go-ipmi/pkg/rmcpplus"
	"github.com/bougou/go-ipmi/pkg/types"
)

// Credentials say how to log in to a BMC.
type Credentials struct {
	User     string
	Password []byte // at most 20 bytes (IPMI 2.0 one-key login)
	// Privilege requested for the session (default Administrator).
	Privilege Privilege
	// Suites to try in order (default DefaultSuites). Suite 0 is refused
	// unless AllowCipher0 is set.
	Suites       []CipherSuite
	AllowCipher0 bool
}

// Session is an active RMCP+ session with one BMC. Use it from one
// goroutine at a time; always Close it.
type Session struct {
	e *Engine
	p *peer

	consoleID, bmcID uint32
	suite            CipherSuite
	algs             suiteAlgs
	k1, k2           []byte
	keyBuf           [2][sha256.Size]byte // K1 and K2's storage
	authLen          int
	hm               hash.Hash    // keyed integrity HMAC, built on first use
	blk              cipher.Block // AES-128 with K2, built on first use
	macBuf           [32]byte

	outSeq uint32
	// Inbound replay window: highest sequence seen and a bitmap of the 32
	// below it.
	inHigh uint32
	inMask uint32
	rqSeq  byte

	// RAKP2 told us the managed system's GUID and the privilege granted.
	RAKPGUID [16]byte
	// Conflicts are handshake steps that drew both an unauthenticated
	// refusal and a verified answer (the verified one won): a sign of a
	// forger on the path.
	Conflicts []Conflict
	Privilege Privilege
	Opened    time.Time

	// Negotiation says how the suite was chosen.
	Negotiation *Negotiation

	state   sessState
	tag     byte // last message tag used; see nextTag
	cipher0 bool // suite 0 may be adopted from a counter-proposal

	// gaps counts replies whose sequence number skipped one or more;
	// retrans0 is the peer's retransmission count when the session
	// opened (gaps without retransmissions are the BMC's: QuirkSeqGaps).
	gaps     uint32
	retrans0 uint32
}

// refusals remembers the last unauthenticated refusal of one handshake
// request, to report it as a Conflict if a verified answer follows.
type refusals struct {
	s     *Session
	stage Stage
	last  *Conflict
}

// refuse notes an unauthenticated refusal and returns it as tentative.
func (r *refusals) refuse(ev event, err error) (bool, error) {
	r.last = &Conflict{Stage: r.stage, Refusal: err.Error(), From: ev.src}
	return true, &tentative{err}
}

// verified notes a verified answer: a refusal before it was a conflict.
func (r *refusals) verified(ev event) {
	if r.last != nil {
		c := *r.last
		c.Verified = ev.src
		r.s.Conflicts = append(r.s.Conflicts, c)
		r.s.e.log.Warn("conflicting handshake replies: an unauthenticated refusal, then a verified answer", "bmc", r.s.p.addr,
			"stage", c.Stage, "refusal", c.Refusal, "from", c.From, "verified_from", c.Verified)
		r.last = nil
	}
}

// nextTag is a message tag unique within this session (a counter from a
// random start): every handshake reply — and every reply to an abort — is
// matched to exactly one message we sent, never to another by a chance
// collision of random tags.
func (s *Session) nextTag() byte {
	if s.tag == 0 {
		s.tag = randomTag() | 1
	}
	s.tag++
	return s.tag
}

type sessState uint8

const (
	sessHandshake sessState = iota
	sessActive
	sessClosed
)

// Suite is the cipher suite the session negotiated.
func (s *Session) Suite() CipherSuite { return s.suite }

// Addr is the BMC's address.
func (s *Session) Addr() netip.AddrPort { return s.p.addr }

// Open establishes an RMCP+ session: Open Session, RAKP 1–4. At most one
// session per BMC exists at a time; Open waits for the previous one to be
// closed (or ctx). On any failure nothing is left open on our side, and a
// half-open session on the BMC is abandoned with a RAKP 3 error status.
func (e *Engine) Open(ctx context.Context, addr netip.AddrPort, cr Credentials) (*Session, error) {
	if len(cr.User) > 16 {
		return nil, fmt.Errorf("ipmi: user name %q is longer than 16 bytes", cr.User)
	}
	if len(cr.Password) > 20 {
		return nil, errors.New("ipmi: password is longer than 20 bytes")
	}
	if cr.Privilege == 0 {
		cr.Privilege = PrivilegeAdministrator
	}
	suiteList := cr.Suites
	if len(suiteList) == 0 {
		suiteList = DefaultSuites
	}
	for _, s := range suiteList {
		if !s.Supported() {
			return nil, fmt.Errorf("ipmi: %v is not supported", s)
		}
		if s == 0 && !cr.AllowCipher0 {
			return nil, &StageError{Stage: StageOpenSession, Err: ErrCipher0}
		}
	}
	p, err := e.peer(addr)
	if err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, &StageError{Stage: StageOpenSession, Err: ctxErr(ctx)}
	}

	// The BMC's session may be held by another of our operations (power,
	// diagnosis) for a few exchanges: wait up to three request limits for
	// it, as long as the three handshake messages may take.
	if err := p.sess.acquire(ctx, 3*requestTimeout(ctx)); err != nil {
		return nil, &StageError{Stage: StageOpenSession, Err: err}
	}
	s := &Session{e: e, p: p, Privilege: cr.Privilege, cipher0: cr.AllowCipher0}
	if s.consoleID, err = e.newConsoleID(s); err != nil {
		p.sess.release()
		return nil, err
	}
	n, err := s.openAt(ctx, cr, suiteList)
	if n != nil {
		p.quirks.Or(uint32(n.Quirks &^ QuirkNoSuiteList))
	}
	if err != nil {
		s.release()
		var se *StageError
		if errors.As(err, &se) && se.Negotiation == nil {
			se.Negotiation = n
		}
		return nil, err
	}
	s.Negotiation = n
	s.state = sessActive
	s.Opened = time.Now()
	s.retrans0 = p.retrans.Load()
	if len(suiteList) > 1 {
		// Learned only from a choice: a pinned suite or an audit's try of
		// one suite says nothing about what the BMC prefers.
		p.suite.Store(uint32(s.suite) + 1)
	}
	e.c.opened.Add(1)
	e.c.open.Add(1)
	return s, nil
}

// openAt negotiates the session at the account's privilege. A BMC that
// refuses RAKP 1 for a maximum privilege below the user's limit (status
// 0x0A, FreeIPMI bugs doc LAN Auth #24) is asked again at the next
// levels up, to Administrator: the maximum is a ceiling the session never
// reaches by itself — it starts at User and is raised only to the
// account's privilege (Set Session Privilege Level) — and RAKP 1 carries
// no password proof, so no failed login is counted. The level that worked
// is learned; a BMC refusing every level keeps the first refusal.
func (s *Session) openAt(ctx context.Context, cr Credentials, suites []CipherSuite) (*Negotiation, error) {
	if lp := learnedPrivilege(s.p.quirks.Load()); lp > cr.Privilege && Quirk(s.p.quirks.Load())&QuirkExactPrivilege != 0 {
		cr.Privilege = lp
	}
	n, err := s.negotiate(ctx, cr, suites)
	if err == nil || !privilegeRefused(err) || cr.Privilege >= PrivilegeAdministrator {
		return n, err
	}
	first := err
	for priv := cr.Privilege + 1; priv <= PrivilegeAdministrator && ctx.Err() == nil; priv++ {
		up := cr
		up.Privilege = priv
		n2, err2 := s.negotiate(ctx, up, suites)
		if err2 == nil {
			n2.Quirks |= QuirkExactPrivilege
			s.p.quirks.And(^uint32(0x0f << privShift))
			s.p.quirks.Or(uint32(priv) << privShift)
			s.e.log.Debug("RAKP 1 accepted only at the user's privilege limit", "bmc", s.p.addr, "asked", cr.Privilege, "accepted", priv)
			return n2, nil
		}
		if !privilegeRefused(err2) {
			return n2, err2
		}
	}
	return n, first
}

// privilegeRefused: RAKP 1 was refused for the privilege asked (RMCP+
// status 0x0A "unauthorized role or privilege level requested"; 0x09 is
// read as a locked account and never retried).
func privilegeRefused(err error) bool {
	var se *StageError
	return errors.As(err, &se) && se.Stage == StageRAKP1 && se.Status == 0x0a
}

// release forgets the session locally: its console ID and the BMC's
// session slot on our side.
func (s *Session) release() {
	if s.state == sessClosed {
		return
	}
	if s.state == sessActive {
		s.e.c.open.Add(-1)
	}
	s.state = sessClosed
	s.e.releaseConsoleID(s.consoleID)
	s.p.sess.release()
}

// errRetryHandshake marks a RAKP 4 refusal that followed a verified RAKP 2
// and a retransmitted RAKP 1: the password is proven right, so the refusal
// is a handshake-state mismatch (BMCs re-randomize on a duplicate RAKP 1),
// not a verdict on the account.
var errRetryHandshake = errors.New("ipmi: handshake state lost to a retransmission")

type retryHandshake struct{ *StageError }

func (r *retryHandshake) Is(target error) bool { return target == errRetryHandshake }
func (r *retryHandshake) Unwrap() error        { return r.StageError }

func (s *Session) openSession(ctx context.Context, cr Credentials, suite CipherSuite, allow []CipherSuite, n *Negotiation) error {
	algs := suites[suite]
	tag := s.nextTag()
	req := rmcpplus.OpenSessionRequest{
		MessageTag:                     tag,
		RequestedMaximumPrivilegeLevel: types.PrivilegeLevel(cr.Privilege),
		RemoteConsoleSessionID:         s.consoleID,
	}
	req.AuthenticationPayload, req.IntegrityPayload, req.ConfidentialityPayload =
		rmcpplus.NewAlgorithmPayloads(algs.auth, algs.integ, algs.conf)
	pkt := buildRMCPPlus(payloadOpenSessReq, 0, 0, 0, req.Pack(), nil)
	var resp rmcpplus.OpenSessionResponse
	s.bmcID = 0
	// After a retransmission the BMC may open a session per copy: the first
	// success is ours, every other one is aborted while lingering. A
	// refusal is unauthenticated: tentative until the window closes.
	ref := refusals{s: s, stage: StageOpenSession}
	// A refusal that only moves the negotiation on to another allowed
	// suite is taken on sight: a forged one costs a round trip within the
	// allow-list, never a verdict, and waiting out the reply window there
	// would slow every BMC that does not do the strongest suite. The last
	// allowed suite's refusal would be the verdict: tentative.
	onSight := len(allow) > 1 && suite != allow[len(allow)-1]
	refuse := func(ev event, err error) (bool, error) {
		if onSight && negotiable(err) {
			return true, err
		}
		return ref.refuse(ev, err)
	}
	_, _, err := s.e.exchangeOpt(ctx, s.p, StageOpenSession, func() []byte { return pkt },
		func(ev event) (bool, error) {
			if ev.garbage {
				// An Open Session Response inside a session we no longer
				// have: the BMC kept our previous session for this source
				// port and answers within it (pyghmi). Only a sessionless
				// request resets it (see negotiate.go).
				if ev.stalePT == payloadOpenSessResp && s.bmcID == 0 {
					return true, &StageError{Stage: StageOpenSession, Err: errStaleSession}
				}
				return false, nil
			}
			if done, err := shortError(ev, payloadOpenSessResp, tag, StageOpenSession); done {
				if s.bmcID != 0 {
					return false, nil // a copy's refusal after our success
				}
				return refuse(ev, err)
			}
			if ev.d.class != classIPMI || ev.d.payloadType != payloadOpenSessResp || ev.d.consoleID != s.consoleID {
				return false, nil
			}
			if ev.d.payload[0] != tag {
				return false, nil // reply to an older attempt of another suite
			}
			if s.bmcID != 0 {
				s.orphan(ev)
				return false, nil
			}
			if err := guard("open session response", func() error { return resp.Unpack(ev.d.payload) }); err != nil {
				s.e.c.malformed.Add(1)
				return false, errBadReply
			}
			if resp.RmcpStatusCode != 0 {
				return refuse(ev, &StageError{Stage: StageOpenSession, Status: byte(resp.RmcpStatusCode), Err: statusErr(byte(resp.RmcpStatusCode))})
			}
			// Session ID 0 violates the protocol: garbage, not a verdict.
			if resp.ManagedSystemSessionID == 0 {
				s.e.c.malformed.Add(1)
				return false, errBadReply
			}
			s.bmcID = resp.ManagedSystemSessionID
			// A success naming other algorithms than proposed is the BMC's
			// counter-proposal (pyghmi answers suite 3's to anything): take
			// it when it is an allowed suite, else refuse it. The half-open
			// session is left to the BMC's timeout, as ipmitool leaves it:
			// a RAKP 3 abort for a session that saw no RAKP 1 crashes
			// pyghmi's BMC.
			if resp.AuthAlg != uint8(algs.auth) || resp.IntegrityAlg != uint8(algs.integ) || resp.CryptAlg != uint8(algs.conf) {
				alt, ok := counterSuite(allow, resp.AuthAlg, resp.IntegrityAlg, resp.CryptAlg, s.cipher0)
				if !ok {
					s.bmcID = 0
					return true, &StageError{Stage: StageOpenSession, Err: fmt.Errorf("%w: proposed %v, the BMC answered with algorithms %d/%d/%d (authentication/integrity/confidentiality), no allowed suite",
						ErrNoCipherSuite, suite, resp.AuthAlg, resp.IntegrityAlg, resp.CryptAlg)}
				}
				suite, algs = alt, suites[alt]
				if n != nil {
					n.Quirks |= QuirkCounterProposal
				}
			}
			ref.verified(ev)
			return true, nil
		}, true)
	if err != nil {
		return err
	}
	s.e.log.Debug("open session", "bmc", s.p.addr, "console_session", s.consoleID, "bmc_session", resp.ManagedSystemSessionID, "suite", suite)
	s.suite, s.algs, s.bmcID = suite, algs, resp.ManagedSystemSessionID
	s.authLen, _ = crypto.IntegrityAuthCodeLen(algs.integ)
	return nil
}

func (s *Session) rakp(ctx context.Context, cr Credentials) error {
	var consoleRand [16]byte
	if _, err := rand.Read(consoleRand[:]); err != nil {
		return err
	}
	role := byte(cr.Privilege) | 0x10 // name-only lookup, like ipmitool
	tag := s.nextTag()
	r1 := rmcpplus.RAKPMessage1{
		MessageTag:                     tag,
		ManagedSystemSessionID:         s.bmcID,
		RemoteConsoleRandomNumber:      consoleRand,
		NameOnlyLookup:                 true,
		RequestedMaximumPrivilegeLevel: types.PrivilegeLevel(cr.Privilege),
		UsernameLength:                 uint8(len(cr.User)),
		Username:                       []byte(cr.User),
	}
	pkt1 := buildRMCPPlus(payloadRAKP1, 0, 0, 0, r1.Pack(), nil)
	var kuidBuf [20]byte
	copy(kuidBuf[:], cr.Password)
	kuid := kuidBuf[:]
	var r2 rmcpplus.RAKPMessage2
	// Every RAKP 2 that answers one of our copies is decoded and its
	// key-exchange code verified here; the last verified one wins
	// (exchangeOpt lingers after a retransmission): a BMC draws a new
	// random number for each copy of RAKP 1, and only the last counts. An
	// error status or a code that does not verify (a wrong password, or a
	// forgery) is tentative: a verified RAKP 2 in the window wins.
	ref := refusals{s: s, stage: StageRAKP1}
	rakp1Attempts, _, err := s.e.exchangeOpt(ctx, s.p, StageRAKP1, func() []byte { return pkt1 },
		func(ev event) (bool, error) {
			if s.orphan(ev) {
				return false, nil
			}
			if done, err := shortError(ev, payloadRAKP2, tag, StageRAKP1); done {
				return ref.refuse(ev, err)
			}
			if ev.d.class != classIPMI || ev.d.payloadType != payloadRAKP2 || ev.d.consoleID != s.consoleID || ev.d.payload[0] != tag {
				return false, nil
			}
			m := rmcpplus.RAKPMessage2{AuthAlg: s.algs.auth}
			if err := guard("RAKP 2", func() error { return m.Unpack(ev.d.payload) }); err != nil {
				s.e.c.malformed.Add(1)
				return false, errBadReply
			}
			if m.RmcpStatusCode != 0 {
				return ref.refuse(ev, &StageError{Stage: StageRAKP1, Status: byte(m.RmcpStatusCode), Err: statusErr(byte(m.RmcpStatusCode))})
			}
			var in [128]byte
			var code [sha256.Size]byte
			want, err := authHMAC(s.algs.auth, kuid, rakp2Input(in[:], s.consoleID, s.bmcID, consoleRand[:], m.ManagedSystemRandomNumber[:],
				m.ManagedSystemGUID[:], role, cr.User), &code)
			if err != nil {
				return true, err
			}
			if !crypto.Equal(want, m.KeyExchangeAuthenticationCode) {
				return ref.refuse(ev, &StageError{Stage: StageRAKP1, Err: ErrWrongPassword, BMCGUID: m.ManagedSystemGUID})
			}
			r2 = m
			if ev.d.longLen {
				s.p.quirks.Or(uint32(QuirkRAKP2Length))
			}
			ref.verified(ev)
			return true, nil
		}, true)
	if err != nil {
		// No RAKP 3 proof after a RAKP 2 that did not verify: only an
		// abort carrying status 0x0F, as ipmitool sends.
		switch {
		case errors.Is(err, ErrWrongPassword):
			s.abort(0x0f)
		case ctx.Err() != nil:
			s.abort(0x01)
		}
		return err
	}
	s.RAKPGUID = r2.ManagedSystemGUID
	s.e.log.Debug("rakp2", "bmc", s.p.addr, "bmc_session", s.bmcID, "attempts", rakp1Attempts, "status", r2.RmcpStatusCode)
	var in [128]byte
	var sikBuf, code3Buf [sha256.Size]byte
	sik, err := authHMAC(s.algs.auth, kuid, sikInput(in[:], consoleRand[:], r2.ManagedSystemRandomNumber[:], role, cr.User), &sikBuf)
	if err != nil {
		return fmt.Errorf("derive SIK: %w", err)
	}
	if s.k1, err = authHMAC(s.algs.auth, sik, constK1[:], &s.keyBuf[0]); err != nil {
		return fmt.Errorf("derive K1: %w", err)
	}
	if s.k2, err = authHMAC(s.algs.auth, sik, constK2[:], &s.keyBuf[1]); err != nil {
		return fmt.Errorf("derive K2: %w", err)
	}
	code3, err := authHMAC(s.algs.auth, kuid, rakp3Input(in[:], r2.ManagedSystemRandomNumber[:], s.consoleID, role, cr.User), &code3Buf)
	if err != nil {
		return err
	}
	tag3 := s.nextTag()
	r3 := rmcpplus.RAKPMessage3{MessageTag: tag3, ManagedSystemSessionID: s.bmcID, KeyExchangeAuthenticationCode: code3}
	pkt3 := buildRMCPPlus(payloadRAKP3, 0, 0, 0, r3.Pack(), nil)
	// After a retransmitted RAKP 3 the BMC may answer one copy with success
	// and the other with an error (the session is already active): a
	// success, whenever it comes while lingering, wins.
	var icvBuf [sha256.Size]byte
	icv, err := authHMAC(s.algs.auth, sik, rakp4Input(in[:], consoleRand[:], s.bmcID, r2.ManagedSystemGUID[:]), &icvBuf)
	if err != nil {
		return err
	}
	icv = icv[:rakp4ICVLen(s.algs.auth)]
	// An error status, or an integrity check value that does not verify,
	// is tentative: a verified RAKP 4 in the window wins.
	ref = refusals{s: s, stage: StageRAKP3}
	r4ok := false
	_, _, err = s.e.exchangeOpt(ctx, s.p, StageRAKP3, func() []byte { return pkt3 },
		func(ev event) (bool, error) {
			if done, err := shortError(ev, payloadRAKP4, tag3, StageRAKP3); done && !r4ok {
				return ref.refuse(ev, err)
			}
			if ev.d.class != classIPMI || ev.d.payloadType != payloadRAKP4 || ev.d.consoleID != s.consoleID || ev.d.payload[0] != tag3 {
				return false, nil
			}
			if r4ok {
				return true, nil // a duplicate after the success: keep the success
			}
			r4 := rmcpplus.RAKPMessage4{AuthAlg: s.algs.auth}
			if err := guard("RAKP 4", func() error { return r4.Unpack(ev.d.payload) }); err != nil {
				s.e.c.malformed.Add(1)
				return false, errBadReply
			}
			var se *StageError
			if st := byte(r4.RmcpStatusCode); st != 0 {
				se = &StageError{Stage: StageRAKP3, Status: st, Err: statusErr(st)}
				if rakp1Attempts > 1 && !errors.Is(se.Err, ErrPrivilege) && !errors.Is(se.Err, ErrLocked) && !errors.Is(se.Err, ErrNoSessionSlot) {
					return ref.refuse(ev, &retryHandshake{se})
				}
				return ref.refuse(ev, se)
			}
			if s.algs.auth != types.AuthAlg_None && (len(r4.IntegrityCheckValue) < len(icv) || !crypto.Equal(icv, r4.IntegrityCheckValue[:len(icv)])) {
				s.e.c.badAuth.Add(1)
				se = &StageError{Stage: StageRAKP3, Err: fmt.Errorf("%w: RAKP 4 integrity check value does not verify", ErrRejected)}
				if rakp1Attempts > 1 {
					return ref.refuse(ev, &retryHandshake{se})
				}
				return ref.refuse(ev, se)
			}
			if s.algs.auth == types.AuthAlg_None && len(ev.d.payload) > 8 {
				// Suite 0 has no integrity check value; some BMCs send
				// one anyway (FreeIPMI "integritycheckvalue").
				s.p.quirks.Or(uint32(QuirkICVCipher0))
			}
			r4ok = true
			ref.verified(ev)
			return true, nil
		}, true)
	if err != nil {
		// Given up without an answer (cancelled, or out of time): the BMC
		// may have taken RAKP 3 and opened the session all the same.
		// Abort it rather than leave it to the BMC's timeout, where the
		// next check's session would be a second one of ours.
		if ctx.Err() != nil || errors.Is(err, ErrNoResponse) {
			s.abort(0x01)
		}
		return err
	}
	return nil
}

// orphan recognizes an Open Session Response for our console ID naming a
// BMC session other than ours — the BMC answered a retransmitted Open
// Session Request with a second session — and tells the BMC to drop it, so
// no half-open session of ours lingers in its table.
func (s *Session) orphan(ev event) bool {
	d := ev.d
	if d.class != classIPMI || d.payloadType != payloadOpenSessResp || d.consoleID != s.consoleID || len(d.payload) < 12 || d.payload[1] != 0 {
		return false
	}
	id := binary.LittleEndian.Uint32(d.payload[8:12])
	if id == 0 || id == s.bmcID {
		return false
	}
	msg := make([]byte, 8)
	msg[0] = s.nextTag()
	msg[1] = 0x02 // invalid session ID: not the one we continue with
	binary.LittleEndian.PutUint32(msg[4:8], id)
	_ = s.e.sendExtra(s.p, buildRMCPPlus(payloadRAKP3, 0, 0, 0, msg, nil))
	return true
}

// abort tells the BMC to drop a half-open session: a RAKP 3 carrying an
// error status. It waits briefly (abortWait) for the BMC's RAKP 4 answer so
// the slot is known to be free; a BMC that stays silent frees it on its own
// timeout.
func (s *Session) abort(status byte) {
	msg := make([]byte, 8)
	tag := s.nextTag()
	msg[0] = tag
	msg[1] = status
	binary.LittleEndian.PutUint32(msg[4:8], s.bmcID)
	pkt := buildRMCPPlus(payloadRAKP3, 0, 0, 0, msg, nil)
	// The slot may still be held for the request the abort follows (its
	// answer owed until its retransmission timeout): wait that out first.
	s.p.awaitHold(s.e.rto(s.p) + handshakeMinRTO)
	ctx, cancel := context.WithTimeout(context.Background(), abortWait)
	defer cancel()
	_, _, _ = s.e.exchange(ctx, s.p, StageRAKP3, func() []byte { return pkt }, func(ev event) (bool, error) {
		return ev.d.class == classIPMI && ev.d.payloadType == payloadRAKP4 && ev.d.consoleID == s.consoleID && ev.d.payload[0] == tag, nil
	})
}

// abortWait bounds how long abort waits for the BMC's acknowledgement.
const abortWait = 500 * time.Millisecond

// mac is the session's integrity code over b (K1-keyed HMAC, truncated).
// The keyed HMAC state is built once per session and reset per packet:
// building it is most of the cost for packets this small.
func (s *Session) mac(b []byte) []byte {
	if s.hm == nil {
		switch s.algs.integ {
		case types.IntegrityAlg_HMAC_SHA1_96:
			s.hm = hmac.New(sha1.New, s.k1)
		case types.IntegrityAlg_HMAC_SHA256_128:
			s.hm = hmac.New(sha256.New, s.k1)
		case types.IntegrityAlg_HMAC_MD5_128:
			s.hm = hmac.New(md5.New, s.k1)
		default:
			return make([]byte, s.authLen)
		}
	}
	s.hm.Reset()
	s.hm.Write(b)
	return s.hm.Sum(s.macBuf[:0])[:s.authLen]
}

// seal wraps an IPMI message for this session: encrypt, then authenticate.
func (s *Session) seal(msg []byte) ([]byte, error) {
	payload, flags := msg, byte(0)
	if s.algs.conf == types.CryptAlg_AES_CBC_128 {
		enc, err := s.encrypt(msg)
		if err != nil {
			return nil, err
		}
		payload, flags = enc, flagEncrypted
	}
	s.outSeq++
	if s.outSeq == 0 {
		s.outSeq = 1
	}
	var mac func([]byte) []byte
	if s.algs.integ != types.IntegrityAlg_None {
		flags |= flagAuthenticated
		mac = s.mac
	}
	return buildRMCPPlus(payloadIPMI, flags, s.bmcID, s.outSeq, payload, mac), nil
}

// open verifies an in-session reply and returns the IPMI message inside.
// errNotOurs: some other traffic, ignore. errBadReply: meant for this
// session but forged, corrupted or replayed; drop it and count it.
func (s *Session) open(ev event) ([]byte, error) {
	d := ev.d
	if d.class != classIPMI || d.authType != authTypeRMCPP || d.payloadType != payloadIPMI || d.sessionID != s.consoleID {
		return nil, errNotOurs
	}
	if s.algs.integ != types.IntegrityAlg_None {
		if d.flags&flagAuthenticated == 0 || d.authEnd == 0 || len(ev.pkt)-d.authEnd != s.authLen ||
			!crypto.Equal(s.mac(ev.pkt[4:d.authEnd]), ev.pkt[d.authEnd:]) {
			s.e.c.badAuth.Add(1)
			return nil, errBadReply
		}
	}
	if !s.acceptSeq(d.seq) {
		s.e.c.badAuth.Add(1)
		return nil, errBadReply
	}
	msg := d.payload
	if s.algs.conf == types.CryptAlg_AES_CBC_128 {
		if d.flags&flagEncrypted == 0 {
			s.e.c.badAuth.Add(1)
			return nil, errBadReply
		}
		plain, err := s.decrypt(msg)
		if err != nil {
			s.e.c.malformed.Add(1)
			return nil, errBadReply
		}
		msg = plain
	}
	return msg, nil
}

// errNotOurs marks a datagram that is not a reply to this session.
var errNotOurs = errors.New("ipmi: not for this session")

// acceptSeq enforces the inbound sequence window: zero is never valid, a
// number already seen or more than 32 behind the highest is a replay.
func (s *Session) acceptSeq(seq uint32) bool {
	if seq == 0 {
		return false
	}
	switch {
	case s.inHigh == 0 || seq > s.inHigh:
		if s.inHigh != 0 && seq > s.inHigh+1 {
			s.gaps++
		}
		shift := seq - s.inHigh
		if s.inHigh == 0 || shift >= 32 {
			s.inMask = 0
		} else {
			s.inMask <<= shift
		}
		s.inMask |= 1
		s.inHigh = seq
		return true
	default:
		back := s.inHigh - seq
		if back >= 32 || s.inMask&(1<<back) != 0 {
			return false
		}
		s.inMask |= 1 << back
		return true
	}
}

// Do sends one IPMI request in the session and returns the response data
// (after the completion code). A non-zero completion code is a
// *CompletionError.
func (s *Session) Do(ctx context.Context, netFn, cmd byte, data []byte) ([]byte, error) {
	if s.state != sessActive {
		return nil, ErrClosed
	}
	return s.do(ctx, StageCommand, netFn, cmd, data)
}

func (s *Session) do(ctx context.Context, stage Stage, netFn, cmd byte, data []byte) ([]byte, error) {
	rqSeq := s.nextSeq()
	var out []byte
	var cc byte
	err := s.exchangeIn(ctx, stage, buildRequest(netFn, cmd, rqSeq, data), func(_ []byte, r response) (bool, error) {
		if r.rqSeq != rqSeq || r.cmd != cmd || r.netFn != netFn|1 {
			s.e.c.stale.Add(1)
			return false, nil
		}
		cc, out = r.cc, append([]byte(nil), r.data...)
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	if cc != 0 {
		return out, &CompletionError{NetFn: netFn, Cmd: cmd, Code: cc}
	}
	return out, nil
}

// nextSeq is the session's next request sequence number (1–63).
func (s *Session) nextSeq() byte {
	s.rqSeq = (s.rqSeq + 1) & 0x3f
	if s.rqSeq == 0 {
		s.rqSeq = 1
	}
	return s.rqSeq
}

// exchangeIn sends msg sealed in the session and hands every reply that
// opens and parses as an IPMI response to match (with the opened message,
// for its addresses), as exchange's accept: the in-session request that
// Do and Bridged share.
func (s *Session) exchangeIn(ctx context.Context, stage Stage, msg []byte, match func(m []byte, r response) (bool, error)) error {
	var sealErr error
	_, _, err := s.e.exchange(ctx, s.p, stage, func() []byte {
		pkt, err := s.seal(msg)
		if err != nil {
			sealErr = err
		}
		return pkt
	}, func(ev event) (bool, error) {
		m, err := s.open(ev)
		if err == errNotOurs {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		r, err := parseResponse(m)
		if errors.Is(err, errChecksum) && s.algs.integ != types.IntegrityAlg_None {
			// The session's HMAC proved the message: only its checksum
			// is wrong, a Supermicro bug (FreeIPMI "nochecksumcheck").
			if r, err = parseResponseSums(m, false); err == nil {
				s.p.quirks.Or(uint32(QuirkBadChecksum))
			}
		}
		if err != nil {
			s.e.c.malformed.Add(1)
			return false, errBadReply
		}
		return match(m, r)
	})
	if sealErr != nil {
		return sealErr
	}
	return err
}

// Close ends the session with Close Session. It runs even if ctx is done
// (on a fresh deadline of Config.CloseTimeout) so a session we opened is
// never leaked by a cancelled caller. Closing twice is a no-op.
func (s *Session) Close(ctx context.Context) error {
	if s.state != sessActive {
		return nil
	}
	if s.gaps >= 2 && s.p.retrans.Load() == s.retrans0 {
		// Replies skipped sequence numbers though none was lost: the
		// BMC's numbering (LAN Session #9), tolerated by the window.
		s.p.quirks.Or(uint32(QuirkSeqGaps))
	}
	var id [4]byte
	binary.LittleEndian.PutUint32(id[:], s.bmcID)
	if Quirk(s.p.quirks.Load())&QuirkNoCloseReply != 0 {
		return s.closeUnanswered(id[:])
	}
	cctx := WithRequestTimeout(context.WithoutCancel(ctx), s.e.cfg.CloseTimeout)
	_, err := s.do(cctx, StageClose, 0x06, 0x3c, id[:])
	s.release()
	var ce *CompletionError
	if err != nil && !errors.As(err, &ce) {
		s.e.c.closeFailed.Add(1)
		if errors.Is(err, ErrNoResponse) {
			// The BMC answered the session's requests, but not its
			// Close (LAN Session #1): learned, later sessions do not
			// wait for it.
			s.p.quirks.Or(uint32(QuirkNoCloseReply))
		}
		return err
	}
	s.e.c.closed.Add(1)
	return nil
}

// closeUnanswered sends Close Session once, without waiting for a reply
// the BMC is known not to send (QuirkNoCloseReply).
func (s *Session) closeUnanswered(id []byte) error {
	pkt, err := s.seal(buildRequest(0x06, 0x3c, s.nextSeq(), id))
	if err == nil {
		err = s.e.send(s.p, pkt)
	}
	s.release()
	if err != nil {
		s.e.c.closeFailed.Add(1)
		return err
	}
	s.e.c.closed.Add(1)
	return nil
}

// unpackHandshake decodes a handshake reply with go-ipmi's codecs under
// guard; it exists so the fuzzer reaches those decoders directly.
// shortError recognises a handshake error reply cut to tag and status
// (ipmi_sim sends no console ID with it): when it is of type pt and carries
// tag, it is the BMC's verdict on our request.
func shortError(ev event, pt, tag byte, stage Stage) (bool, error) {
	if !ev.d.shortError || ev.d.class != classIPMI || ev.d.payloadType != pt || ev.d.payload[0] != tag {
		return false, nil
	}
	st := ev.d.payload[1]
	return true, &StageError{Stage: stage, Status: st, Err: statusErr(st)}
}

func unpackHandshake(d datagram) error {
	switch d.payloadType {
	case payloadOpenSessResp:
		var r rmcpplus.OpenSessionResponse
		return guard("open session response", func() error { return r.Unpack(d.payload) })
	case payloadRAKP2:
		for _, alg := range []types.AuthAlg{types.AuthAlg_None, types.AuthAlg_HMAC_SHA1, types.AuthAlg_HMAC_SHA256} {
			r := rmcpplus.RAKPMessage2{AuthAlg: alg}
			if err := guard("RAKP 2", func() error { return r.Unpack(d.payload) }); err != nil {
				return err
			}
		}
	case payloadRAKP4:
		r := rmcpplus.RAKPMessage4{AuthAlg: types.AuthAlg_HMAC_SHA256}
		return guard("RAKP 4", func() error { return r.Unpack(d.payload) })
	}
	return nil
}
