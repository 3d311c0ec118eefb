package gather

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lightsout/lightsout/internal/guid"
	"github.com/lightsout/lightsout/internal/ipmi"
	"github.com/lightsout/lightsout/internal/probe"
	"github.com/lightsout/lightsout/internal/protocol"
	"github.com/lightsout/lightsout/internal/redfish"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
)

// RateSource gives a channel's timeout and retry figures over a window.
// internal/events can satisfy it from every observation the monitor makes;
// without one the executor samples the BMC itself (a few pre-login
// requests).
type RateSource interface {
	ChannelRates(ctx context.Context, accountID int64) (Rates, error)
}

// FleetSource says how the trouble of a channel spreads over the machines
// sharing its enclosure, subnet and firmware. internal/events can satisfy
// it; without one the executor counts the stored states.
type FleetSource interface {
	Spread(ctx context.Context, accountID int64) ([]Spread, error)
}

// ErrNoFigures is what a RateSource or FleetSource returns (wrapped or
// not) when it knows nothing of the channel yet — the monitor has not
// checked it since the server started, or not within the source's window:
// the executor then measures it itself, as without a source.
var ErrNoFigures = errors.New("diag: no figures for this channel")

// Executor gathers the facts the trees ask for: a fresh check, the
// inventory's history, pings, logins, the enclosure manager's answers. It
// talks to BMCs through the shared engine (one request in flight and one
// session per BMC, whoever asks) and respects the lockout guard: a refused
// account is not logged in again before Schedule.AuthRetry unless its
// credentials were edited since.
type Executor struct {
	Store  Store
	Engine *ipmi.Engine
	// Prober checks an IPMI channel (default probe.IPMI(Engine)).
	Prober probe.Prober
	// Probers check a channel by its account's protocol ("ipmi",
	// "redfish": the monitor's); Prober and the IPMI default fill in for
	// "ipmi".
	Probers probe.Registry
	// Current is the monitor's view of a channel's declared state (nil:
	// the store's).
	Current func(accountID int64) (store.ChannelState, bool)
	// Guard is the monitor's lockout guard for a refused account (nil:
	// the schedule's rule from the stored refusal and edit times): may it
	// be tried now, else when. An attempt it allows only because of an
	// edit counts as that edit's one immediate attempt.
	Guard func(accountID int64, credentialsChanged, now time.Time) (bool, time.Time)
	// Schedule's AuthRetry is the lockout guard (default
	// state.DefaultSchedule).
	Schedule state.Schedule
	// Timeout is the silence limit of each step (default
	// probe.DefaultTimeout).
	Timeout time.Duration
	// RedfishCensus reads a Redfish BMC's session census: its sessions,
	// how many it lists, and the address it reports for the census's own
	// session (the manager sets probe.RedfishProber.Census; nil: a Redfish
	// channel's session table is not read).
	// Instances, when set, lists the lightsout instances sharing the
	// database (cluster.Node); Self is this one's name. A session from
	// another one's source address is named as its (HeldSession.Instance):
	// a dead one's is what a kill -9 left open (docs/scale-out.md).
	Instances     func() []store.Instance
	Self          string
	RedfishCensus func(ctx context.Context, t probe.Target) ([]redfish.SessionEntry, int, string, error)
	// RedfishClose deletes a Redfish BMC's sessions by URI — only those
	// its census, read again, lists from this host under the account's
	// user (probe.RedfishProber.CloseSessions; nil: not available).
	RedfishClose func(ctx context.Context, t probe.Target, uris []string) (int, error)
	// RedfishTransport carries requests to Redfish enclosure managers
	// (enclosure kind redfish), and EMPins pins their certificates by
	// enclosure ("enclosure/NAME"): without both, no credentials are sent
	// to one.
	RedfishTransport http.RoundTripper
	EMPins           probe.CertPins
	// Rates and Fleet, when set, replace the executor's own measurements.
	Rates RateSource
	Fleet FleetSource
	// BusyAttempts logins, BusyWait apart, are tried for a session slot
	// before the table is declared full (default 3, 1 s).
	BusyAttempts int
	BusyWait     time.Duration
	// IdentifyWait is how long the identify lamp is given to light before
	// it is read back (default 300 ms).
	IdentifyWait time.Duration
	// Security, when set, gives the latest security audit's findings on
	// an account's BMC (the manager's audit.Auditor).
	Security func(accountID int64) []SecurityFinding
	// MaxSiblings bounds the sibling blades pinged (default 4).
	MaxSiblings int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Report is one channel's diagnosis with the facts behind it.
type Report struct {
	Facts     Facts     `json:"facts"`
	Diagnosis Diagnosis `json:"diagnosis"`
	// Steps are the facts gathered after the base, in order.
	Steps []Need `json:"steps,omitempty"`
}

func (x *Executor) now() time.Time {
	if x.Now != nil {
		return x.Now()
	}
	return time.Now()
}

func (x *Executor) timeout() time.Duration {
	if x.Timeout > 0 {
		return x.Timeout
	}
	return probe.DefaultTimeout
}

// proberFor is the prober of protocol ("" counts as ipmi); nil when none
// checks it.
func (x *Executor) proberFor(protocol string) probe.Prober {
	if p := x.Probers.For(protocol); p != nil {
		return p
	}
	if protocol != "" && protocol != "ipmi" {
		return nil
	}
	if x.Prober != nil {
		return x.Prober
	}
	return probe.IPMI(x.Engine)
}

// Supports reports whether the executor can check channels of protocol.
func (x *Executor) Supports(protocol string) bool { return x.proberFor(protocol) != nil }

// observe checks target t with the prober of its protocol.
func (x *Executor) observe(ctx context.Context, t probe.Target) probe.Observation {
	p := x.proberFor(t.Protocol)
	if p == nil {
		return probe.Observation{Name: t.Name, Protocol: t.Protocol, At: x.now(),
			Message: fmt.Sprintf("no prober checks protocol %q", t.Protocol)}
	}
	return p(ctx, t)
}

// Run diagnoses account a of machine m.
// Under WithProgress each step is told as it starts and ends.
func (x *Executor) Run(ctx context.Context, m store.Machine, a store.Account) Report {
	step := Progress{Machine: m.Name, AccountID: a.ID}
	progress(ctx, step)
	f := x.base(ctx, m, a)
	step.Done = true
	progress(ctx, step)
	var steps []Need
	for round := 0; round < maxRounds; round++ {
		r := Decide(f)
		if r.Diagnosis != nil {
			return Report{Facts: f, Diagnosis: *r.Diagnosis, Steps: steps}
		}
		for _, n := range r.Need {
			if ctx.Err() != nil {
				break
			}
			step = Progress{Machine: m.Name, AccountID: a.ID, Step: len(steps) + 1, Need: n}
			progress(ctx, step)
			x.gather(ctx, n, m, a, &f)
			steps = append(steps, n)
			step.Done = true
			progress(ctx, step)
		}
		if ctx.Err() != nil {
			break
		}
	}
	why := "the diagnosis did not converge"
	if ctx.Err() != nil {
		why = "the diagnosis was cancelled: " + ctx.Err().Error()
	}
	return Report{Facts: f, Steps: steps, Diagnosis: Diagnosis{Cause: CauseIncomplete, Confidence: Low,
		Summary: why, Evidence: []string{fmt.Sprintf("state %s (%s)", f.State, nonEmpty(string(f.Reason), "-"))},
		Remedy: "run the diagnosis again; " + nonEmpty(state.Remedy(f.State, f.Reason), "check the machine")}}
}

// target builds the probe target of account a (expected GUID from m).
func (x *Executor) target(ctx context.Context, m store.Machine, a store.Account) (probe.Target, error) {
	t := probe.NewTarget(m.Name, a.Endpoint(), x.timeout()) // the account's allow-list (nil: the default)
	if m.GUID != "" && !m.Registering {
		if g, err := guid.Parse(m.GUID); err == nil {
			t.Expected = g
		}
	}
	addr, err := probe.Resolve(ctx, a.Address, a.Port)
	if err != nil {
		return t, err
	}
	t.Addr = netip.AddrPortFrom(addr.Addr(), addr.Port())
	return t, nil
}

func hostPort(addr string, port int) string {
	return net.JoinHostPort(addr, strconv.Itoa(port))
}

// Check observes a's channel afresh (no lockout guard: for re-checking a
// channel after a fix).
func (x *Executor) Check(ctx context.Context, m store.Machine, a store.Account) probe.Observation {
	t, err := x.target(ctx, m, a)
	if err != nil {
		return probe.Observation{Name: m.Name, State: state.NotResponding, Reason: state.ReasonUnreachable,
			Message: "the address does not resolve: " + err.Error(), At: x.now()}
	}
	return x.observe(ctx, t)
}

// base fills what every tree uses: the account, a fresh observation (or
// the stored one under the lockout guard), the history, the blade's place.
func (x *Executor) base(ctx context.Context, m store.Machine, a store.Account) Facts {
	now := x.now()
	f := Facts{Machine: m.Name, Now: now, Expected: m.GUID,
		Account: Account{ID: a.ID, Address: hostPort(a.Address, a.Port), User: a.User, Privilege: a.Privilege, CipherSuite: a.CipherSuite, Protocol: a.Protocol,
			Endpoint: store.EndpointOf(a)}}
	if m.Registering {
		f.Expected = ""
	}
	var cs store.ChannelState
	var ok bool
	if x.Current != nil {
		cs, ok = x.Current(a.ID)
	}
	stored, serr := x.Store.State(ctx, a.ID)
	if !ok && serr == nil {
		cs, ok = stored, true
	}
	if ok {
		f.History.Stored, f.History.StoredReason, f.History.StoredConditions = cs.State, cs.Reason, cs.Conditions
		f.History.StoredSince, f.History.CheckedAt = cs.Since, cs.CheckedAt
	}
	x.history(ctx, m, a, cs, &f.History)
	if x.Security != nil {
		f.Security = x.Security(a.ID)
	}
	sched := x.Schedule
	if sched.AuthRetry <= 0 {
		sched = state.DefaultSchedule
	}
	f.History.EditGrace = min(sched.Interval/2, 30*time.Second)
	if m.Enclosure != "" {
		b := &Blade{Enclosure: m.Enclosure, Slot: m.Slot}
		if e, err := x.Store.Enclosure(ctx, m.Enclosure); err == nil && e.Address != "" {
			b.EMAddress = hostPort(e.Address, e.Port)
			b.EMCredentials = e.User != "" && len(e.Password) > 0
			b.Kind = e.Kind
			if e.Kind == "ipmb" {
				r, err := ipmi.ParseIPMBRule(e.IPMB)
				if err == nil {
					b.IPMB, err = r.Address(m.Slot)
				}
				if err != nil {
					b.IPMBErr = err.Error()
				}
			}
		}
		f.Blade = b
	}

	// The lockout guard: a refused account is not tried again before
	// AuthRetry unless its credentials were edited since.
	if ok && cs.State == state.NotAuthenticated {
		allowed, next, _ := sched.AuthAttempt(cs.CheckedAt, a.CredentialsChangedAt, time.Time{}, now)
		if x.Guard != nil {
			allowed, next = x.Guard(a.ID, a.CredentialsChangedAt, now)
		}
		if !allowed {
			f.State, f.Reason, f.Conditions, f.Message, f.GUID = cs.State, cs.Reason, cs.Conditions, cs.Message, cs.GUID
			if serr == nil && len(stored.Evidence) > 0 {
				_ = json.Unmarshal(stored.Evidence, &f.Evidence)
			}
			f.NotRetried = fmt.Sprintf("the BMC refused this account at %s and its credentials have not changed since (or an edit already earned its one immediate attempt); to protect it from lockout it is not tried again before %s",
				when(cs.CheckedAt), when(next))
			return f
		}
	}
	t, err := x.target(ctx, m, a)
	if err != nil {
		f.State, f.Reason, f.Fresh = state.NotResponding, state.ReasonUnreachable, true
		f.Message = "the address does not resolve: " + err.Error()
		return f
	}
	o := x.observe(ctx, t)
	f.Fresh = true
	f.State, f.Reason, f.Conditions, f.Message, f.Evidence, f.GUID = o.State, o.Reason, o.Conditions, o.Message, o.Evidence, o.GUID
	return f
}

// history reads the stored transitions and the audit log.
func (x *Executor) history(ctx context.Context, m store.Machine, a store.Account, cs store.ChannelState, h *History) {
	// The store sets both to the same instant when the account is created:
	// any later credentials time is an edit, however soon after.
	if a.CredentialsChangedAt.After(a.CreatedAt) {
		h.CredentialsChangedAt = a.CredentialsChangedAt
	}
	if cs.State == state.Connectable {
		h.LastConnectable = cs.CheckedAt
	}
	ts, _ := x.Store.History(ctx, a.ID, 0, 200)
	for _, t := range ts { // newest first
		if h.LastConnectable.IsZero() && t.From == state.Connectable {
			h.LastConnectable, h.LeftConnectable = t.At, true
		}
		if cs.State == state.NotAuthenticated && h.RefusedFirst == "" && t.To == state.NotAuthenticated {
			h.RefusedFirst = t.Reason
		}
		if h.ManufacturerID == 0 && t.To == state.Connectable && len(t.Evidence) > 0 {
			var ev probe.Evidence
			if json.Unmarshal(t.Evidence, &ev) == nil {
				h.ManufacturerID, h.ProductID = ev.ManufacturerID, ev.ProductID
			}
		}
		if t.To == state.Invalid && t.At.After(h.HardwareChangedAt) && h.HardwareChangedAt.IsZero() {
			h.HardwareChangedAt, h.HardwareChange = t.At, "the BMC reported another System GUID"
		}
	}
	entries, _ := x.Store.AuditLog(ctx, m.Name, 200)
	cur := hostPort(a.Address, a.Port)
	addrDone := false
	for _, e := range entries { // newest first
		if e.Result != "ok" {
			continue
		}
		switch e.Action {
		case "account.update":
			if addrDone {
				continue
			}
			if old, nw, ok := ParseAddressChange(e.Detail); ok && nw == cur {
				h.AddressChangedAt, h.OldAddress, addrDone = e.At, old, true
			}
		case "machine.adopt", "machine.register":
			if e.At.After(h.HardwareChangedAt) {
				what := "the System GUID was adopted"
				if e.Action == "machine.register" {
					what = "the machine was re-registered"
				}
				h.HardwareChangedAt, h.HardwareChange = e.At, what
			}
		}
	}
}

// AddressChange is the audit detail of an account's address edit; the
// manager writes it and the diagnosis reads it back.
func AddressChange(old, new string) string { return "address " + old + " → " + new }

// ParseAddressChange finds an AddressChange in an audit detail (which may
// list other changes, comma-separated).
func ParseAddressChange(detail string) (old, new string, ok bool) {
	for _, part := range strings.Split(detail, ", ") {
		rest, found := strings.CutPrefix(part, "address ")
		if !found {
			continue
		}
		if o, n, found := strings.Cut(rest, " → "); found && o != "" && n != "" {
			return o, n, true
		}
	}
	return "", "", false
}

// gather fetches one fact into f. It always sets the fact's part, with
// Err when it could not be had, so a tree never asks twice.
func (x *Executor) gather(ctx context.Context, n Need, m store.Machine, a store.Account, f *Facts) {
	if f.Account.Redfish() && n == NeedSessions {
		f.Sessions = x.redfishSessions(ctx, m, a)
		return
	}
	if f.Blade != nil && f.Blade.Kind == "redfish" {
		switch n {
		case NeedSiblings:
			f.Siblings = x.siblings(ctx, m)
			return
		case NeedEM:
			f.EM = x.emRedfishReach(ctx, f.Blade)
			return
		case NeedBladeView:
			f.BladeView = x.redfishBladeView(ctx, f.Blade)
			return
		case NeedIdentify:
			chassis := ""
			if f.BladeView != nil {
				chassis = f.BladeView.Chassis
			}
			f.Identify = x.redfishIdentify(ctx, f.Blade, chassis)
			return
		}
	}
	if f.Account.Redfish() && x.ipmiOnly(ctx, n, a, f) {
		return
	}
	switch n {
	case NeedEM:
		f.EM = x.ping(ctx, f.Blade.EMAddress)
	case NeedSiblings:
		f.Siblings = x.siblings(ctx, m)
	case NeedBladeView:
		f.BladeView = x.bladeView(ctx, m, f.Blade)
	case NeedIdentify:
		f.Identify = x.identify(ctx, f.Blade)
	case NeedOldAddress:
		f.OldAddress = x.oldAddress(ctx, m, a, f.History.OldAddress)
	case NeedSubnet:
		f.Subnet = x.subnet(ctx, a)
	case NeedOwner:
		f.Owner = x.owner(ctx, m, a.Protocol, f.GUID)
	case NeedSwapCheck:
		f.SwapCheck = x.swapCheck(ctx, m, f.Owner)
	case NeedSuites:
		f.Suites = x.suites(ctx, m, a)
	case NeedSuiteTry:
		f.SuiteTry = x.trySuite(ctx, m, a, SuiteCandidate(*f))
	case NeedSessions:
		f.Sessions = x.sessions(ctx, m, a)
	case NeedRates:
		f.Rates = x.rates(ctx, m, a)
	case NeedFleet:
		f.Fleet = x.fleet(ctx, m, a, *f)
	case NeedPrivilege:
		f.Privilege = x.privilege(ctx, m, a)
	case NeedLoss:
		f.Loss = x.loss(ctx, m, a)
	}
}

// notApplicable is the error of an IPMI-only step asked for a Redfish
// channel.
const notApplicable = "not applicable to a Redfish channel (an IPMI-only step)"

// ipmiOnly marks an IPMI-only fact not applicable to a Redfish channel
// (the trees do not ask for them; this keeps a Redfish BMC from being
// sent IPMI packets if one did). It reports whether n was one.
func (x *Executor) ipmiOnly(ctx context.Context, n Need, a store.Account, f *Facts) bool {
	switch n {
	case NeedEM:
		f.EM = &Reach{Err: notApplicable}
	case NeedSiblings:
		f.Siblings = &Siblings{}
	case NeedBladeView:
		f.BladeView = &BladeView{Err: notApplicable}
	case NeedIdentify:
		f.Identify = &Identify{Err: notApplicable}
	case NeedSuites:
		f.Suites = &Suites{Err: notApplicable}
	case NeedSuiteTry:
		f.SuiteTry = &SuiteTry{Err: notApplicable}
	case NeedSessions:
		f.Sessions = &SessionsFacts{Err: notApplicable}
	case NeedPrivilege:
		f.Privilege = &Privilege{Asked: a.Privilege, Err: notApplicable}
	case NeedLoss:
		f.Loss = &Loss{Err: notApplicable}
	case NeedRates:
		if x.Rates != nil {
			if r, err := x.Rates.ChannelRates(ctx, a.ID); !errors.Is(err, ErrNoFigures) {
				if err != nil {
					r.Err = err.Error()
				}
				f.Rates = &r
				return true
			}
		}
		f.Rates = &Rates{Err: "sampling " + notApplicable}
	default:
		return false
	}
	return true
}

func (x *Executor) resolve(ctx context.Context, hp string) (netip.AddrPort, error) {
	return probe.Resolve(ctx, hp, protocol.IPMIPort)
}

// ping sends a presence ping to hp.
func (x *Executor) ping(ctx context.Context, hp string) *Reach {
	r := &Reach{Address: hp}
	ap, err := x.resolve(ctx, hp)
	if err != nil {
		r.Err = err.Error()
		return r
	}
	pctx, cancel := context.WithTimeout(ctx, x.timeout())
	defer cancel()
	rtt, err := x.Engine.Ping(pctx, ap)
	if err != nil {
		r.Err = errText(err)
		return r
	}
	r.Answered, r.RTTMS = true, float64(rtt.Microseconds())/1000
	return r
}

func errText(err error) string {
	switch {
	case errors.Is(err, ipmi.ErrNoResponse):
		return "no answer"
	case errors.Is(err, ipmi.ErrPortUnreachable):
		return "port unreachable"
	case errors.Is(err, ipmi.ErrHostUnreachable):
		return "host unreachable"
	}
	return err.Error()
}

// siblings pings the other blades of m's enclosure (MaxSiblings at most,
// nearest slots first), all at once.
func (x *Executor) siblings(ctx context.Context, m store.Machine) *Siblings {
	s := &Siblings{}
	ms, err := x.Store.Machines(ctx, store.MachineFilter{}, store.Page{})
	if err != nil {
		return s
	}
	var sib []store.Machine
	for _, o := range ms {
		if o.Enclosure == m.Enclosure && o.ID != m.ID {
			sib = append(sib, o)
		}
	}
	dist := func(o store.Machine) int {
		d := o.Slot - m.Slot
		if d < 0 {
			return -d
		}
		return d
	}
	slices.SortFunc(sib, func(p, q store.Machine) int { return dist(p) - dist(q) })
	max := x.MaxSiblings
	if max <= 0 {
		max = 4
	}
	type probeTo struct {
		name string
		hp   string
		// redfish: reached over HTTPS (a sibling with no IPMI account,
		// asked when the executor has a Redfish transport).
		redfish bool
	}
	var targets []probeTo
	for _, o := range sib {
		if len(targets) == max {
			break
		}
		as, err := x.Store.AccountsOf(ctx, o.ID)
		if err != nil {
			continue
		}
		var rf *probeTo
		found := false
		for _, oa := range as {
			if oa.Protocol == "ipmi" {
				targets = append(targets, probeTo{name: o.Name, hp: hostPort(oa.Address, oa.Port)})
				found = true
				break
			}
			if oa.Protocol == "redfish" && rf == nil && x.RedfishTransport != nil {
				rf = &probeTo{name: o.Name, hp: hostPort(oa.Address, oa.Port), redfish: true}
			}
		}
		if !found && rf != nil {
			targets = append(targets, *rf)
		}
	}
	res := make([]*Reach, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if t.redfish {
				res[i] = x.httpsReach(ctx, t.hp)
				return
			}
			res[i] = x.ping(ctx, t.hp)
		}()
	}
	wg.Wait()
	for i, t := range targets {
		s.Tried++
		if res[i].Answered {
			s.Answered++
			s.Answers = append(s.Answers, t.name)
		} else {
			s.Silent = append(s.Silent, t.name)
		}
	}
	return s
}

// emSession logs in to the blade's enclosure manager (Operator: enough to
// drive an identify lamp).
func (x *Executor) emSession(ctx context.Context, b *Blade) (*ipmi.Session, error) {
	e, err := x.Store.Enclosure(ctx, b.Enclosure)
	if err != nil {
		return nil, fmt.Errorf("enclosure %s: %w", b.Enclosure, err)
	}
	if e.User == "" || len(e.Password) == 0 {
		return nil, fmt.Errorf("the inventory holds no user and password for enclosure %s's manager", b.Enclosure)
	}
	ap, err := x.resolve(ctx, hostPort(e.Address, e.Port))
	if err != nil {
		return nil, err
	}
	octx, cancel := context.WithTimeout(ctx, 3*x.timeout())
	defer cancel()
	s, err := x.Engine.Open(octx, ap, ipmi.Credentials{User: e.User, Password: e.Password, Privilege: ipmi.PrivilegeOperator})
	if err != nil {
		return nil, fmt.Errorf("logging in to the enclosure manager: %s", errText(err))
	}
	// An RMCP+ session starts at User privilege: raise it to Operator,
	// which bridged LED and chassis requests need on standard enclosure
	// managers. One that refuses is left at User (the requests then say
	// what they lack).
	pctx, cancel := context.WithTimeout(ctx, x.timeout())
	_ = s.SetPrivilege(pctx, ipmi.PrivilegeOperator)
	cancel()
	return s, nil
}

func (x *Executor) bladeView(ctx context.Context, m store.Machine, b *Blade) *BladeView {
	v := &BladeView{}
	if b.Bridged() && b.IPMBErr != "" {
		v.Err = b.IPMBErr
		return v
	}
	s, err := x.emSession(ctx, b)
	if err != nil {
		v.Err = err.Error()
		return v
	}
	defer s.Close(ctx)
	v.LoggedIn = true
	if b.Bridged() {
		x.bridgedView(ctx, s, m, b, v)
		return v
	}
	cctx, cancel := context.WithTimeout(ctx, x.timeout())
	defer cancel()
	st, err := s.BladeStatus(cctx, b.Slot)
	var ce *ipmi.CompletionError
	if errors.As(err, &ce) && (ce.Code == 0xc1 || ce.Code == 0xcc || ce.Code == 0xd4 || ce.Code == 0xd5) {
		v.Refused = fmt.Sprintf("lightsout's Get Blade Status (NetFn 0x30) for slot %d with completion code %#02x", b.Slot, ce.Code)
		v.RefusedCode = ce.Code
		x.guessIPMB(ctx, s, m, b, v)
		return v
	}
	if err != nil {
		v.Err = "the enclosure manager did not report the slot: " + err.Error()
		return v
	}
	v.Status = st
	return v
}

// bridgedView asks the enclosure manager, by standard bridging, whether
// the blade's controller answers at its IPMB address (Get Device ID), and
// its power where the controller is a chassis device. When it does not
// answer, up to two other blades' controllers are asked over the same IPMB:
// they tell the enclosure manager's path from this blade.
func (x *Executor) bridgedView(ctx context.Context, s *ipmi.Session, m store.Machine, b *Blade, v *BladeView) {
	e, err := x.Store.Enclosure(ctx, b.Enclosure)
	if err != nil {
		v.Err = err.Error()
		return
	}
	rule, err := ipmi.ParseIPMBRule(e.IPMB)
	if err != nil {
		v.Err = err.Error()
		return
	}
	x.bridgedViewRule(ctx, s, m, b, v, rule)
}

func (x *Executor) bridgedViewRule(ctx context.Context, s *ipmi.Session, m store.Machine, b *Blade, v *BladeView, rule ipmi.IPMBRule) {
	v.Status.Slot = b.Slot
	br := ipmi.Bridge{Target: b.IPMB}
	step := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, x.timeout()) }
	c, cancel := step()
	d, err := s.BridgedDeviceID(c, br)
	cancel()
	if err != nil {
		var be *ipmi.BridgeError
		switch {
		case errors.As(err, &be) && be.Refused():
			v.Refused = fmt.Sprintf("Send Message to IPMB address %#02x (Get Device ID) with completion code %#02x (%s)", b.IPMB, be.Code, be.Reason())
			v.RefusedCode = be.Code
			return
		case errors.As(err, &be):
			v.Silence = fmt.Sprintf("completion code %#02x (%s)", be.Code, be.Reason())
		case errors.Is(err, ipmi.ErrBridgedNoAnswer):
			v.Silence = "the enclosure manager accepted the request; no answer came back"
		default:
			var ce *ipmi.CompletionError
			if !errors.As(err, &ce) {
				v.Err = "the enclosure manager did not carry the request: " + errText(err)
				return
			}
			// The controller answered, with an error: it is alive.
			v.Status.Present, v.Status.BMCAnswers = true, true
			v.Device = fmt.Sprintf("it answers with completion code %#02x", ce.Code)
			return
		}
		v.Status.Present = true // unknown; the trees read BMCAnswers
		v.SiblingsTried, v.SiblingsAnswered = x.bridgedSiblings(ctx, s, m, b, rule)
		return
	}
	v.Status.Present, v.Status.BMCAnswers = true, true
	v.Device = fmt.Sprintf("device %d, firmware %s, manufacturer %d, product %#04x", d.DeviceID.DeviceID, d.Firmware(), d.ManufacturerID, d.ProductID)
	if d.Chassis {
		c, cancel := step()
		cs, err := s.BridgedChassisStatus(c, br)
		cancel()
		if err == nil {
			v.PowerKnown, v.Status.PowerOn = true, cs.PowerOn
		}
	}
}

// guessIPMB: an enclosure recorded as oem whose manager refused
// lightsout's commands is asked by standard bridging at the default rule
// (ipmi.DefaultIPMBRule). The result stands only if some blade controller
// answered that way (this one, or a sibling): then the blade becomes an
// ipmb blade with Guessed set, and v the bridged view. Otherwise v keeps
// the refusal.
func (x *Executor) guessIPMB(ctx context.Context, s *ipmi.Session, m store.Machine, b *Blade, v *BladeView) {
	rule, _ := ipmi.ParseIPMBRule(ipmi.DefaultIPMBRule)
	addr, err := rule.Address(b.Slot)
	if err != nil {
		return
	}
	g := *b
	g.Kind, g.IPMB = "ipmb", addr
	gv := &BladeView{LoggedIn: true}
	x.bridgedViewRule(ctx, s, m, &g, gv, rule)
	if gv.Refused != "" || gv.Err != "" || !gv.Status.BMCAnswers && gv.SiblingsAnswered == 0 {
		return
	}
	g.Guessed = v.Refused
	*b, *v = g, *gv
}

// bridgedSiblings asks up to two other blades' controllers of m's
// enclosure, nearest slots first, for their device ID over the enclosure
// manager's IPMB.
func (x *Executor) bridgedSiblings(ctx context.Context, s *ipmi.Session, m store.Machine, b *Blade, rule ipmi.IPMBRule) (tried, answered int) {
	ms, err := x.Store.Machines(ctx, store.MachineFilter{}, store.Page{})
	if err != nil {
		return 0, 0
	}
	var slots []int
	for _, o := range ms {
		if o.Enclosure == m.Enclosure && o.ID != m.ID && o.Slot > 0 {
			slots = append(slots, o.Slot)
		}
	}
	dist := func(a int) int {
		if a < b.Slot {
			return b.Slot - a
		}
		return a - b.Slot
	}
	slices.SortFunc(slots, func(p, q int) int { return dist(p) - dist(q) })
	for _, sl := range slots {
		if tried == 2 {
			break
		}
		a, err := rule.Address(sl)
		if err != nil {
			continue
		}
		tried++
		c, cancel := context.WithTimeout(ctx, x.timeout())
		_, err = s.BridgedDeviceID(c, ipmi.Bridge{Target: a})
		cancel()
		var ce *ipmi.CompletionError
		if err == nil || errors.As(err, &ce) {
			answered++
		}
	}
	return tried, answered
}

// identify lights the blade's identify lamp through the enclosure manager,
// reads it back, and restores it.
func (x *Executor) identify(ctx context.Context, b *Blade) *Identify {
	id := &Identify{}
	s, err := x.emSession(ctx, b)
	if err != nil {
		id.Err = err.Error()
		return id
	}
	defer s.Close(ctx)
	step := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, x.timeout()) }
	c1, cancel := step()
	before, err := s.BladeIdentify(c1, b.Slot)
	cancel()
	if err != nil {
		id.Err = "reading the lamp: " + err.Error()
		return id
	}
	c2, cancel := step()
	err = s.SetBladeIdentify(c2, b.Slot, true)
	cancel()
	if err != nil {
		id.Err = "turning the lamp on: " + err.Error()
		return id
	}
	wait := x.IdentifyWait
	if wait <= 0 {
		wait = 300 * time.Millisecond
	}
	select {
	case <-time.After(wait):
	case <-ctx.Done():
	}
	c3, cancel := step()
	lit, err := s.BladeIdentify(c3, b.Slot)
	cancel()
	if !before {
		c4, cancel := step()
		_ = s.SetBladeIdentify(c4, b.Slot, false)
		cancel()
	}
	if err != nil {
		id.Err = "reading the lamp back: " + err.Error()
		return id
	}
	id.Lit = lit
	return id
}

func (x *Executor) oldAddress(ctx context.Context, m store.Machine, a store.Account, old string) *OldAddress {
	o := &OldAddress{Address: old}
	host, port, err := net.SplitHostPort(old)
	if err != nil {
		o.Err = err.Error()
		return o
	}
	p, _ := strconv.Atoi(port)
	oa := a
	oa.Address, oa.Port = host, p
	t, err := x.target(ctx, m, oa)
	if err != nil {
		o.Err = err.Error()
		return o
	}
	obs := x.observe(ctx, t)
	switch obs.State {
	case state.Connectable:
		o.Answered, o.Ours, o.GUID = true, !t.Expected.Zero(), obs.GUID
	case state.Invalid, state.NotAuthenticated:
		o.Answered, o.GUID = true, obs.GUID
	default:
		o.Answered = obs.Evidence.PingAnswered
		o.Err = obs.Message
	}
	return o
}

// prefix is the subnet of an address literal: /24 for IPv4, /64 for IPv6.
func prefix(addr string) (netip.Prefix, bool) {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return netip.Prefix{}, false
	}
	bits := 64
	if ip.Unmap().Is4() {
		ip, bits = ip.Unmap(), 24
	}
	p, err := ip.Prefix(bits)
	return p, err == nil
}

// states are every channel's declared state (the monitor's when known),
// without evidence.
func (x *Executor) states(ctx context.Context) map[int64]store.ChannelState {
	out := map[int64]store.ChannelState{}
	if sts, err := x.Store.States(ctx); err == nil {
		for _, s := range sts {
			out[s.AccountID] = s
		}
	}
	if x.Current != nil {
		for id, s := range out {
			if c, ok := x.Current(id); ok {
				out[id] = c
			} else {
				out[id] = s
			}
		}
	}
	return out
}

func (x *Executor) subnet(ctx context.Context, a store.Account) *Subnet {
	p, ok := prefix(a.Address)
	if !ok {
		return &Subnet{Prefix: a.Address}
	}
	s := &Subnet{Prefix: p.String()}
	accts, err := x.Store.Accounts(ctx, store.MachineFilter{}, store.Page{})
	if err != nil {
		return s
	}
	sts := x.states(ctx)
	for _, o := range accts {
		if o.ID == a.ID {
			continue
		}
		op, ok := prefix(o.Address)
		if !ok || op != p {
			continue
		}
		st, ok := sts[o.ID]
		if !ok || st.State == state.Unknown || st.State == "" {
			continue
		}
		s.Peers++
		if st.State == state.NotResponding {
			s.NotResponding++
		}
	}
	return s
}

func (x *Executor) owner(ctx context.Context, m store.Machine, protocol, reported string) *Owner {
	o := &Owner{}
	g, err := guid.Parse(reported)
	if err != nil {
		return o
	}
	ms, err := x.Store.Machines(ctx, store.MachineFilter{}, store.Page{})
	if err != nil {
		return o
	}
	for _, c := range ms {
		if c.ID == m.ID || c.GUID == "" {
			continue
		}
		cg, err := guid.Parse(c.GUID)
		if err != nil || !guid.Same(cg, g) {
			continue
		}
		o.Name = c.Name
		if as, err := x.Store.AccountsOf(ctx, c.ID); err == nil {
			// The owner's account of the same protocol (the swap check
			// compares like with like), else any it can check.
			var pick *store.Account
			for i, ca := range as {
				if ca.Protocol == protocol {
					pick = &as[i]
					break
				}
				if pick == nil && x.Supports(ca.Protocol) {
					pick = &as[i]
				}
			}
			if pick != nil {
				o.AccountID, o.Address = pick.ID, hostPort(pick.Address, pick.Port)
			}
		}
		break
	}
	return o
}

// swapCheck asks what answers at the owner's address, with the owner's
// account: a swap shows there as this machine's GUID.
func (x *Executor) swapCheck(ctx context.Context, m store.Machine, o *Owner) *SwapCheck {
	sc := &SwapCheck{}
	oa, err := x.Store.Account(ctx, o.AccountID)
	if err != nil {
		sc.Err = err.Error()
		return sc
	}
	sc.At = store.EndpointOf(oa)
	om, err := x.Store.MachineByID(ctx, oa.MachineID)
	if err != nil {
		sc.Err = err.Error()
		return sc
	}
	t, err := x.target(ctx, om, oa)
	if err != nil {
		sc.Err = err.Error()
		return sc
	}
	obs := x.observe(ctx, t)
	if obs.GUID == "" {
		if obs.State != state.Connectable {
			sc.Err = obs.Message
		}
		return sc
	}
	sc.GUID = obs.GUID
	mine, err1 := guid.Parse(m.GUID)
	got, err2 := guid.Parse(obs.GUID)
	sc.Ours = err1 == nil && err2 == nil && guid.Same(mine, got)
	return sc
}

func (x *Executor) suites(ctx context.Context, m store.Machine, a store.Account) *Suites {
	s := &Suites{}
	t, err := x.target(ctx, m, a)
	if err != nil {
		s.Err = err.Error()
		return s
	}
	cctx, cancel := context.WithTimeout(ctx, x.timeout())
	defer cancel()
	ss, err := x.Engine.CipherSuites(cctx, t.Addr)
	if err != nil {
		s.Err = errText(err)
		return s
	}
	for _, c := range ss {
		s.Offered = append(s.Offered, int(c))
	}
	return s
}

// trySuite logs in once with suite and logs out.
func (x *Executor) trySuite(ctx context.Context, m store.Machine, a store.Account, suite int) *SuiteTry {
	st := &SuiteTry{Suite: suite}
	if err := x.TrySuite(ctx, m, a, suite); err != nil {
		st.Err = err.Error()
		return st
	}
	st.OK = true
	return st
}

// TrySuite logs in to a's BMC with cipher suite suite and logs out again.
func (x *Executor) TrySuite(ctx context.Context, m store.Machine, a store.Account, suite int) error {
	t, err := x.target(ctx, m, a)
	if err != nil {
		return err
	}
	octx, cancel := context.WithTimeout(ctx, 3*x.timeout())
	defer cancel()
	s, err := x.Engine.Open(octx, t.Addr, ipmi.Credentials{User: a.User, Password: a.Password, Privilege: t.Privilege,
		Suites: []ipmi.CipherSuite{ipmi.CipherSuite(suite)}})
	if err != nil {
		return err
	}
	return s.Close(ctx)
}

// privilege logs in at each privilege below the one the BMC refused, from
// the highest, until one is granted; each session is closed at once. The
// refusal came before any password check, and a wrong password is caught
// in RAKP 2 (the engine then aborts without proving anything): these
// logins cannot count against the account.
func (x *Executor) privilege(ctx context.Context, m store.Machine, a store.Account) *Privilege {
	asked := ipmi.PrivilegeOf(a.Privilege)
	p := &Privilege{Asked: asked.String()}
	t, err := x.target(ctx, m, a)
	if err != nil {
		p.Err = err.Error()
		return p
	}
	for _, lvl := range []ipmi.Privilege{ipmi.PrivilegeAdministrator, ipmi.PrivilegeOperator, ipmi.PrivilegeUser} {
		if lvl >= asked {
			continue
		}
		cr := ipmi.Credentials{User: a.User, Password: a.Password, Privilege: lvl}
		if a.CipherSuite != 0 {
			cr.Suites = []ipmi.CipherSuite{ipmi.CipherSuite(a.CipherSuite)}
		}
		octx, cancel := context.WithTimeout(ctx, 3*x.timeout())
		s, err := x.Engine.Open(octx, t.Addr, cr)
		cancel()
		if err == nil {
			s.Close(ctx)
			p.Granted = lvl.String()
			return p
		}
		if !errors.Is(err, ipmi.ErrPrivilege) && !errors.Is(err, ipmi.ErrLocked) {
			p.Err = fmt.Sprintf("a login at %s privilege: %s", lvl, errText(err))
			return p
		}
		p.Refused = append(p.Refused, lvl.String())
	}
	return p
}

// open logs in with a's credentials, trying BusyAttempts times while the
// BMC has no free slot.
func (x *Executor) open(ctx context.Context, m store.Machine, a store.Account) (*ipmi.Session, int, time.Duration, error) {
	t, err := x.target(ctx, m, a)
	if err != nil {
		return nil, 0, 0, err
	}
	attempts := x.BusyAttempts
	if attempts <= 0 {
		attempts = 3
	}
	wait := x.BusyWait
	if wait <= 0 {
		wait = time.Second
	}
	cr := ipmi.Credentials{User: a.User, Password: a.Password, Privilege: t.Privilege, Suites: t.Suites}
	if a.CipherSuite != 0 {
		cr.Suites = []ipmi.CipherSuite{ipmi.CipherSuite(a.CipherSuite)}
	}
	start := time.Now()
	var lastErr error
	for i := 1; i <= attempts; i++ {
		octx, cancel := context.WithTimeout(ctx, 3*x.timeout())
		s, err := x.Engine.Open(octx, t.Addr, cr)
		cancel()
		if err == nil {
			return s, i, time.Since(start), nil
		}
		lastErr = err
		if !errors.Is(err, ipmi.ErrNoSessionSlot) || i == attempts {
			return nil, i, time.Since(start), err
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, i, time.Since(start), ctx.Err()
		}
	}
	return nil, attempts, time.Since(start), lastErr
}

// instanceAt names the other lightsout instance whose source address is
// addr, when exactly one has it.
func (x *Executor) instanceAt(addr netip.Addr) (name string, live bool) {
	if x.Instances == nil {
		return "", false
	}
	n := 0
	for _, in := range x.Instances() {
		src, err := netip.ParseAddr(in.Source)
		if err != nil || src.Unmap() != addr.Unmap() {
			continue
		}
		n++
		name, live = in.Name, in.Live
	}
	if n != 1 || name == x.Self {
		return "", false // ours (a predecessor of this name), or ambiguous
	}
	return name, live
}

func (x *Executor) sessions(ctx context.Context, m store.Machine, a store.Account) *SessionsFacts {
	sf := &SessionsFacts{}
	s, n, waited, err := x.open(ctx, m, a)
	sf.Attempts, sf.Waited = n, waited
	if err != nil {
		if !errors.Is(err, ipmi.ErrNoSessionSlot) {
			sf.Err = errText(err)
		}
		return sf
	}
	defer s.Close(ctx)
	sf.Got = true
	cctx, cancel := context.WithTimeout(ctx, 4*x.timeout())
	defer cancel()
	self, all, err := s.Sessions(cctx)
	if err != nil {
		sf.Err = "reading the session table: " + errText(err)
		return sf
	}
	sf.Slots, sf.Active = self.Slots, self.Active
	ours := x.Engine.LocalPorts()
	names := map[byte]string{}
	name := func(id byte) string {
		if n, ok := names[id]; ok {
			return n
		}
		n, err := s.UserName(cctx, id)
		if err != nil {
			n = "" // heldLines says "with user ID N"
		}
		names[id] = n
		return n
	}
	held := func(si ipmi.SessionInfo) HeldSession {
		h := HeldSession{Handle: si.Handle, UserID: si.UserID, User: name(si.UserID), Privilege: si.Privilege.String()}
		if si.Remote.IsValid() && !si.Remote.Addr().IsUnspecified() {
			h.Console = si.Remote.String()
		}
		h.SameHost = si.Remote.IsValid() && self.Remote.IsValid() && si.Remote.Addr() == self.Remote.Addr()
		h.SameUser = si.UserID == self.UserID
		h.Ours = h.SameHost && slices.Contains(ours, si.Remote.Port())
		if !h.Ours && si.Remote.IsValid() {
			h.Instance, h.InstanceLive = x.instanceAt(si.Remote.Addr())
		}
		return h
	}
	sf.Self = held(self)
	for _, si := range all {
		if si.Handle == self.Handle {
			continue
		}
		sf.Others = append(sf.Others, held(si))
	}
	return sf
}

// redfishSessions is the session census of a Redfish channel: every
// session of the SessionService with its user and client address; ours
// (the census's own) marked, sessions from our address under the
// account's user (the monitor's kept session) told from other clients'.
func (x *Executor) redfishSessions(ctx context.Context, m store.Machine, a store.Account) *SessionsFacts {
	sf := &SessionsFacts{}
	if x.RedfishCensus == nil {
		sf.Err = "the Redfish session census is not available here"
		return sf
	}
	t, err := x.target(ctx, m, a)
	if err != nil {
		sf.Err = errText(err)
		return sf
	}
	cctx, cancel := context.WithTimeout(ctx, 4*x.timeout())
	defer cancel()
	es, total, self, err := x.RedfishCensus(cctx, t)
	sf.Attempts = 1
	if err != nil {
		sf.Err = "reading the Redfish sessions: " + errText(err)
		return sf
	}
	sf.Got, sf.Active = true, total
	for _, e := range es {
		h := HeldSession{ID: e.ID, URI: e.URI, User: e.User, Console: e.Client, Ours: e.Ours,
			SameHost: probe.SameClient(e.Client, self), SameUser: e.User == a.User}
		if h.ID == "" {
			h.ID = e.URI
		}
		if e.Ours {
			sf.Self = h
			continue
		}
		sf.Others = append(sf.Others, h)
	}
	return sf
}

// CloseSessions closes the sessions with the given handles on a's BMC, from
// a session of a's own (Administrator privilege needed). It returns how
// many it closed.
func (x *Executor) CloseSessions(ctx context.Context, m store.Machine, a store.Account, handles []int) (int, error) {
	s, _, _, err := x.open(ctx, m, a)
	if err != nil {
		return 0, err
	}
	defer s.Close(ctx)
	// An RMCP+ session starts at User privilege (ipmi_sim shows it in its
	// session table); closing another session needs Administrator.
	pctx, cancel := context.WithTimeout(ctx, x.timeout())
	perr := s.SetPrivilege(pctx, ipmi.PrivilegeOf(a.Privilege))
	cancel()
	if perr != nil {
		return 0, fmt.Errorf("raising the session to %s privilege to close sessions: %w", ipmi.PrivilegeOf(a.Privilege), perr)
	}
	n := 0
	var errs []error
	for _, h := range handles {
		if h < 1 || h > 0xfe {
			errs = append(errs, fmt.Errorf("session handle %d is out of range", h))
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, x.timeout())
		err := s.CloseHandle(cctx, byte(h))
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("session %d: %w", h, err))
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// CloseRedfishSessions deletes the Redfish sessions at uris on a's BMC
// (autocorrect's close_stale_sessions on a Redfish channel): the census is
// read again first, and only sessions it lists from this host's address
// under a's user are deleted — never another console's. It returns how
// many it deleted.
func (x *Executor) CloseRedfishSessions(ctx context.Context, m store.Machine, a store.Account, uris []string) (int, error) {
	if x.RedfishClose == nil {
		return 0, errors.New("closing Redfish sessions is not available here")
	}
	t, err := x.target(ctx, m, a)
	if err != nil {
		return 0, err
	}
	cctx, cancel := context.WithTimeout(ctx, (4+time.Duration(len(uris)))*x.timeout())
	defer cancel()
	return x.RedfishClose(cctx, t, uris)
}

// sampleRequests is how many pre-login requests measure a BMC's loss rate.
const sampleRequests = 8

func (x *Executor) rates(ctx context.Context, m store.Machine, a store.Account) *Rates {
	if x.Rates != nil {
		r, err := x.Rates.ChannelRates(ctx, a.ID)
		if !errors.Is(err, ErrNoFigures) {
			if err != nil {
				r.Err = err.Error()
			}
			return &r
		}
	}
	r := &Rates{Source: fmt.Sprintf("sampled now with %d pre-login requests", sampleRequests)}
	t, err := x.target(ctx, m, a)
	if err != nil {
		r.Err = err.Error()
		return r
	}
	before := x.Engine.PeerCounters(t.Addr)
	start := time.Now()
	for i := 0; i < sampleRequests; i++ {
		cctx, cancel := context.WithTimeout(ctx, x.timeout())
		_, _, err := x.Engine.AuthCaps(cctx, t.Addr, t.Privilege)
		cancel()
		r.Requests++
		if err != nil && !errors.Is(err, ipmi.ErrNoIPMI20) {
			r.Timeouts++
		}
		if ctx.Err() != nil {
			break
		}
	}
	after := x.Engine.PeerCounters(t.Addr)
	r.Window = time.Since(start).Round(time.Millisecond)
	r.Retransmits = int(after.Retransmits - before.Retransmits)
	return r
}

// lossRequests is how many session-less requests measure a path's loss.
const lossRequests = 12

// loss sends lossRequests session-less requests (Get Channel
// Authentication Capabilities) one after the other and counts the
// attempts the engine made and lost for them.
func (x *Executor) loss(ctx context.Context, m store.Machine, a store.Account) *Loss {
	l := &Loss{}
	t, err := x.target(ctx, m, a)
	if err != nil {
		l.Err = err.Error()
		return l
	}
	before := x.Engine.PeerCounters(t.Addr)
	garbage := 0
	for i := 0; i < lossRequests && ctx.Err() == nil; i++ {
		cctx, cancel := context.WithTimeout(ctx, x.timeout())
		_, _, err := x.Engine.AuthCaps(cctx, t.Addr, t.Privilege)
		cancel()
		l.Requests++
		switch {
		case err == nil || errors.Is(err, ipmi.ErrNoIPMI20):
			l.Answered++
		case errors.Is(err, ipmi.ErrMalformed):
			garbage++
		}
		if garbage > 0 {
			break // garbage decides: no need to wait out more of it
		}
	}
	if garbage > 0 {
		// Garbage is not loss: the BMC answers, unusably.
		l.Err = fmt.Sprintf("%d of the %d session-less requests drew malformed replies (the BMC answers, with garbage)", garbage, l.Requests)
	}
	after := x.Engine.PeerCounters(t.Addr)
	retrans, timeouts := int(after.Retransmits-before.Retransmits), int(after.Timeouts-before.Timeouts)
	l.Attempts = l.Requests + retrans
	l.Lost = retrans + timeouts
	if l.Lost > l.Attempts {
		l.Lost = l.Attempts // another user of the engine on this BMC meanwhile
	}
	return l
}

func (x *Executor) fleet(ctx context.Context, m store.Machine, a store.Account, _ Facts) *Fleet {
	if x.Fleet != nil {
		ss, err := x.Fleet.Spread(ctx, a.ID)
		if !errors.Is(err, ErrNoFigures) {
			fl := &Fleet{Spreads: ss}
			if err != nil {
				fl.Err = err.Error()
			}
			return fl
		}
	}
	// Without a fleet source (or one that does not know the channel): the
	// enclosure and the subnet, from the
	// stored states (which carry no evidence, so no firmware: the event
	// detectors' correlator knows it).
	fl := &Fleet{}
	accts, err := x.Store.Accounts(ctx, store.MachineFilter{}, store.Page{})
	if err != nil {
		fl.Err = err.Error()
		return fl
	}
	ms, err := x.Store.Machines(ctx, store.MachineFilter{}, store.Page{})
	if err != nil {
		fl.Err = err.Error()
		return fl
	}
	encl := map[int64]string{}
	for _, c := range ms {
		encl[c.ID] = c.Enclosure
	}
	sts := x.states(ctx)
	myNet, netOK := prefix(a.Address)
	dims := []*Spread{{Dimension: "enclosure", Value: m.Enclosure}, {Dimension: "subnet"}}
	if netOK {
		dims[1].Value = myNet.String()
	}
	for _, o := range accts {
		if o.ID == a.ID {
			continue
		}
		st, ok := sts[o.ID]
		if !ok || st.State == "" || st.State == state.Unknown {
			continue
		}
		troubled := st.State == state.NotResponding || slices.Contains(st.Conditions, state.Degraded)
		count := func(d *Spread) {
			d.Peers++
			if troubled {
				d.Affected++
			}
		}
		if m.Enclosure != "" && encl[o.MachineID] == m.Enclosure {
			count(dims[0])
		}
		if p, ok := prefix(o.Address); netOK && ok && p == myNet {
			count(dims[1])
		}
	}
	for _, d := range dims {
		if d.Value != "" && d.Peers > 0 {
			fl.Spreads = append(fl.Spreads, *d)
		}
	}
	return fl
}
