package diag

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/ipmi"
	"github.com/lightsout/lightsout/internal/probe"
	"github.com/lightsout/lightsout/internal/state"
)

var t0 = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

const (
	ourGUID   = "11111111-2222-3333-4444-555555555555"
	otherGUID = "99999999-8888-7777-6666-555555555555"
)

// base returns the facts of a channel in state s for reason r, as the
// executor fills them before any tree asks for more.
func base(s state.OOB, r state.Reason, conds ...state.Condition) Facts {
	return Facts{Machine: "web-1", Now: t0, State: s, Reason: r, Conditions: conds, Fresh: true,
		Message:  "observed " + string(s),
		Expected: ourGUID,
		Account:  Account{ID: 7, Address: "10.0.4.17:623", User: "admin", Privilege: "administrator"},
		History:  History{Stored: s, StoredReason: r, StoredSince: t0.Add(-time.Hour), CheckedAt: t0.Add(-time.Minute)},
	}
}

// world answers every Need with each of its variants: walking the trees
// with it reaches every branch.
var world = map[Need][]func(*Facts){
	NeedEM: {
		func(f *Facts) { f.EM = &Reach{Address: "10.0.9.1:623", Answered: true} },
		func(f *Facts) { f.EM = &Reach{Address: "10.0.9.1:623", Err: "no answer"} },
	},
	NeedSiblings: {
		func(f *Facts) { f.Siblings = &Siblings{} },
		func(f *Facts) { f.Siblings = &Siblings{Tried: 3, Silent: []string{"a", "b", "c"}} },
		func(f *Facts) {
			f.Siblings = &Siblings{Tried: 3, Answered: 1, Answers: []string{"a"}, Silent: []string{"b", "c"}}
		},
		func(f *Facts) { f.Siblings = &Siblings{Tried: 3, Answered: 3, Answers: []string{"a", "b", "c"}} },
	},
	NeedBladeView: {
		func(f *Facts) { f.BladeView = &BladeView{Err: "no credentials"} },
		func(f *Facts) { f.BladeView = &BladeView{Status: ipmi.BladeStatus{Slot: 3}} },
		func(f *Facts) {
			f.BladeView = &BladeView{Status: ipmi.BladeStatus{Slot: 3, Present: true, BMCAnswers: true, PowerOn: true}}
		},
		func(f *Facts) { f.BladeView = &BladeView{Status: ipmi.BladeStatus{Slot: 3, Present: true}} },
		// Standard bridging (kind ipmb): refusals, a silent controller
		// with the other blades' controllers answering, silent, not
		// asked, and a controller that answers without power.
		func(f *Facts) {
			f.BladeView = &BladeView{Refused: "Send Message to IPMB address 0x86 (Get Device ID) with completion code 0xd4 (insufficient privilege)", RefusedCode: 0xd4}
		},
		func(f *Facts) {
			f.BladeView = &BladeView{Refused: "Send Message to IPMB address 0x86 (Get Device ID) with completion code 0xc1 (invalid command)", RefusedCode: 0xc1}
		},
		func(f *Facts) {
			f.BladeView = &BladeView{Refused: "Send Message to IPMB address 0x86 (Get Device ID) with completion code 0xcc (invalid data field)", RefusedCode: 0xcc}
		},
		func(f *Facts) {
			f.BladeView = &BladeView{Status: ipmi.BladeStatus{Slot: 3, Present: true}, Silence: "completion code 0x83 (NAK on write)", SiblingsTried: 2, SiblingsAnswered: 2}
		},
		func(f *Facts) {
			f.BladeView = &BladeView{Status: ipmi.BladeStatus{Slot: 3, Present: true}, Silence: "completion code 0x83 (NAK on write)", SiblingsTried: 2}
		},
		func(f *Facts) {
			f.BladeView = &BladeView{Status: ipmi.BladeStatus{Slot: 3, Present: true}, Silence: "no answer came back"}
		},
		func(f *Facts) {
			f.BladeView = &BladeView{Status: ipmi.BladeStatus{Slot: 3, Present: true, BMCAnswers: true}, Device: "device 3, firmware 2.03"}
		},
	},
	NeedIdentify: {
		func(f *Facts) { f.Identify = &Identify{Err: "refused"} },
		func(f *Facts) { f.Identify = &Identify{Lit: true} },
		func(f *Facts) { f.Identify = &Identify{} },
	},
	NeedOldAddress: {
		func(f *Facts) {
			f.OldAddress = &OldAddress{Address: "10.0.4.16:623", Answered: true, Ours: true, GUID: ourGUID}
		},
		func(f *Facts) { f.OldAddress = &OldAddress{Address: "10.0.4.16:623", Answered: true, GUID: otherGUID} },
		func(f *Facts) { f.OldAddress = &OldAddress{Address: "10.0.4.16:623", Err: "silent"} },
	},
	NeedSubnet: {
		func(f *Facts) { f.Subnet = &Subnet{Prefix: "10.0.4.0/24"} },
		func(f *Facts) { f.Subnet = &Subnet{Prefix: "10.0.4.0/24", Peers: 4, NotResponding: 3} },
		func(f *Facts) { f.Subnet = &Subnet{Prefix: "10.0.4.0/24", Peers: 4, NotResponding: 1} },
	},
	NeedOwner: {
		func(f *Facts) { f.Owner = &Owner{} },
		func(f *Facts) { f.Owner = &Owner{Name: "web-2", AccountID: 8, Address: "10.0.4.18:623"} },
		func(f *Facts) { f.Owner = &Owner{Name: "web-2"} },
	},
	NeedSwapCheck: {
		func(f *Facts) { f.SwapCheck = &SwapCheck{GUID: ourGUID, Ours: true} },
		func(f *Facts) { f.SwapCheck = &SwapCheck{GUID: "22222222-2222-2222-2222-222222222222"} },
		func(f *Facts) { f.SwapCheck = &SwapCheck{Err: "silent"} },
		func(f *Facts) { f.SwapCheck = &SwapCheck{} },
	},
	NeedSuites: {
		func(f *Facts) { f.Suites = &Suites{Err: "no answer"} },
		func(f *Facts) { f.Suites = &Suites{Offered: []int{3, 17}} },
		func(f *Facts) { f.Suites = &Suites{Offered: []int{17}} },
		func(f *Facts) { f.Suites = &Suites{Offered: []int{1, 2}} },
		func(f *Facts) { f.Suites = &Suites{Offered: []int{0}} },
	},
	NeedSuiteTry: {
		func(f *Facts) { f.SuiteTry = &SuiteTry{Suite: SuiteCandidate(*f), OK: true} },
		func(f *Facts) { f.SuiteTry = &SuiteTry{Suite: SuiteCandidate(*f), Err: "wrong password"} },
	},
	NeedSessions: {
		func(f *Facts) { f.Sessions = &SessionsFacts{Attempts: 3, Waited: 2 * time.Second} },
		func(f *Facts) {
			f.Sessions = &SessionsFacts{Got: true, Attempts: 1, Slots: 4, Active: 4,
				Self: HeldSession{Handle: 4, UserID: 2, User: "admin", Console: "10.0.0.5:40000", SameHost: true, SameUser: true},
				Others: []HeldSession{
					{Handle: 1, UserID: 2, User: "admin", Console: "10.0.0.5:39000", SameHost: true, SameUser: true},
					{Handle: 2, UserID: 2, User: "admin", Console: "10.0.0.5:39001", SameHost: true, SameUser: true},
					{Handle: 3, UserID: 3, User: "monitor", Console: "10.0.7.7:623"}}}
		},
		func(f *Facts) {
			f.Sessions = &SessionsFacts{Got: true, Attempts: 2, Slots: 4, Active: 3,
				Self:   HeldSession{Handle: 4, UserID: 2, Console: "10.0.0.5:40000", SameHost: true, SameUser: true},
				Others: []HeldSession{{Handle: 1, UserID: 3, Console: "10.0.7.7:623"}, {Handle: 2, UserID: 3, Console: "10.0.7.8:623"}}}
		},
		func(f *Facts) {
			f.Sessions = &SessionsFacts{Got: true, Attempts: 1, Slots: 4, Active: 1,
				Self: HeldSession{Handle: 4, UserID: 2, Console: "10.0.0.5:40000", SameHost: true, SameUser: true}}
		},
		func(f *Facts) {
			f.Sessions = &SessionsFacts{Got: true, Attempts: 1, Slots: 4, Active: 2,
				Self:   HeldSession{Handle: 4, UserID: 2, SameHost: true, SameUser: true},
				Others: []HeldSession{{Handle: 1, UserID: 5, SameHost: true}}} // this host, another user: an operator's tool
		},
		func(f *Facts) {
			// Half-open sessions our retransmitted handshakes left: our
			// user, no address reported, or from our own sockets.
			f.Sessions = &SessionsFacts{Got: true, Attempts: 1, Slots: 4, Active: 3,
				Self:   HeldSession{Handle: 4, UserID: 2, Console: "10.0.0.5:40000", SameHost: true, SameUser: true, Ours: true},
				Others: []HeldSession{{Handle: 1, UserID: 2, SameUser: true}, {Handle: 2, UserID: 2, Console: "10.0.0.5:40000", SameHost: true, SameUser: true, Ours: true}}}
		},
		// A Redfish SessionService read with HTTP Basic (no own session):
		// one left by this host as the account's user, one another
		// client's; then only the stale one; then a census that failed.
		func(f *Facts) {
			f.Sessions = &SessionsFacts{Got: true, Attempts: 1, Active: 2,
				Others: []HeldSession{
					{Handle: 1, ID: "5", URI: "/redfish/v1/SessionService/Sessions/5", User: "admin", Console: "10.0.0.5", SameHost: true, SameUser: true},
					{Handle: 2, ID: "6", URI: "/redfish/v1/SessionService/Sessions/6", User: "nagios", Console: "10.0.7.7"}}}
		},
		func(f *Facts) {
			f.Sessions = &SessionsFacts{Got: true, Attempts: 1, Active: 1,
				Others: []HeldSession{{Handle: 1, ID: "5", URI: "/redfish/v1/SessionService/Sessions/5", User: "admin", Console: "10.0.0.5", SameHost: true, SameUser: true}}}
		},
		func(f *Facts) {
			f.Sessions = &SessionsFacts{Attempts: 1, Err: "reading the Redfish sessions: HTTP 503"}
		},
	},
	NeedRates: {
		func(f *Facts) { f.Rates = &Rates{Err: "address does not resolve"} },
		func(f *Facts) { f.Rates = &Rates{Requests: 8, Timeouts: 3, Retransmits: 9, Source: "sampled"} },
		func(f *Facts) { f.Rates = &Rates{Requests: 8, Retransmits: 1, Source: "sampled"} },
	},
	NeedFleet: {
		func(f *Facts) {
			f.Fleet = &Fleet{Spreads: []Spread{{"enclosure", "enc-1", 4, 3}, {"subnet", "10.0.4.0/24", 9, 3}}}
		},
		func(f *Facts) {
			f.Fleet = &Fleet{Spreads: []Spread{{"enclosure", "enc-1", 4, 1}, {"subnet", "10.0.4.0/24", 9, 6}}}
		},
		func(f *Facts) {
			f.Fleet = &Fleet{Spreads: []Spread{{"subnet", "10.0.4.0/24", 9, 1}, {"firmware", "Dell 4.40", 5, 4}}}
		},
		func(f *Facts) { f.Fleet = &Fleet{Spreads: []Spread{{"subnet", "10.0.4.0/24", 9, 0}}} },
		func(f *Facts) { f.Fleet = &Fleet{Err: "store down"} },
	},
	NeedLoss: {
		func(f *Facts) { f.Loss = &Loss{Requests: 12, Attempts: 12, Answered: 12} },
		func(f *Facts) { f.Loss = &Loss{Requests: 12, Attempts: 18, Lost: 6, Answered: 12} },
		func(f *Facts) { f.Loss = &Loss{Requests: 12, Attempts: 13, Lost: 1, Answered: 12} },
		func(f *Facts) { f.Loss = &Loss{Err: "address does not resolve"} },
	},
	NeedPrivilege: {
		func(f *Facts) { f.Privilege = &Privilege{Asked: "administrator", Granted: "operator"} },
		func(f *Facts) {
			f.Privilege = &Privilege{Asked: "administrator", Refused: []string{"operator"}, Granted: "user"}
		},
		func(f *Facts) {
			f.Privilege = &Privilege{Asked: "administrator", Refused: []string{"operator", "user"}}
		},
		func(f *Facts) {
			f.Privilege = &Privilege{Asked: "administrator", Err: "a login at operator privilege: no answer"}
		},
	},
}

// present reports whether f already holds the fact n.
func present(f Facts, n Need) bool {
	switch n {
	case NeedEM:
		return f.EM != nil
	case NeedSiblings:
		return f.Siblings != nil
	case NeedBladeView:
		return f.BladeView != nil
	case NeedPrivilege:
		return f.Privilege != nil
	case NeedLoss:
		return f.Loss != nil
	case NeedIdentify:
		return f.Identify != nil
	case NeedOldAddress:
		return f.OldAddress != nil
	case NeedSubnet:
		return f.Subnet != nil
	case NeedOwner:
		return f.Owner != nil
	case NeedSwapCheck:
		return f.SwapCheck != nil
	case NeedSuites:
		return f.Suites != nil
	case NeedSuiteTry:
		return f.SuiteTry != nil
	case NeedSessions:
		return f.Sessions != nil
	case NeedRates:
		return f.Rates != nil
	case NeedFleet:
		return f.Fleet != nil
	}
	return false
}

// bases are the starting points: every state, reason and condition, and
// the history and placement variants the trees look at.
func bases() []Facts {
	var out []Facts
	add := func(f Facts) { out = append(out, f) }
	blade := func(f Facts, em, creds bool) Facts {
		f.Blade = &Blade{Enclosure: "enc-1", Slot: 3}
		if em {
			f.Blade.EMAddress = "10.0.9.1:623"
		}
		f.Blade.EMCredentials = creds
		return f
	}
	// Connectable.
	for _, conds := range [][]state.Condition{nil, {state.Busy}, {state.Degraded}, {state.Insecure}, {state.Busy, state.Degraded}} {
		add(base(state.Connectable, "", conds...))
		f := base(state.Connectable, "", conds...)
		f.Evidence.Retransmits = 3
		add(f)
	}
	for _, h := range []History{
		{Stored: state.NotAuthenticated, StoredReason: state.ReasonWrongPassword, CheckedAt: t0.Add(-time.Hour), CredentialsChangedAt: t0.Add(-time.Minute)},
		{Stored: state.NotAuthenticated, StoredReason: state.ReasonWrongPassword, CheckedAt: t0.Add(-time.Minute), CredentialsChangedAt: t0.Add(-time.Hour)},
		{Stored: state.NotResponding, StoredReason: state.ReasonSilent, StoredSince: t0.Add(-time.Hour)},
		{Stored: state.Connectable, StoredConditions: []state.Condition{state.Busy}},
		{Stored: state.Connectable, StoredConditions: []state.Condition{state.Degraded}},
		{Stored: state.Unknown},
		{},
	} {
		f := base(state.Connectable, "")
		f.History = h
		add(f)
	}
	// NotResponding.
	for _, r := range []state.Reason{state.ReasonSilent, state.ReasonPortRefused, state.ReasonUnreachable, state.ReasonStalled, state.ReasonProtocol} {
		for _, addrEdit := range []bool{false, true} {
			f := base(state.NotResponding, r)
			f.Evidence.Attempts = 4
			if addrEdit {
				f.History.OldAddress, f.History.AddressChangedAt = "10.0.4.16:623", t0.Add(-10*time.Minute)
				f.History.LastConnectable = t0.Add(-time.Hour)
			}
			if r == state.ReasonStalled {
				f.Evidence.PingAnswered, f.Evidence.FailedStage = true, "rakp1_2"
			}
			add(f)
			add(blade(f, true, true))
			add(blade(f, true, false))
			add(blade(f, false, false))
			ib := blade(f, true, true)
			ib.Blade.Kind, ib.Blade.IPMB = "ipmb", 0x86
			add(ib)
			ib = blade(f, true, true)
			ib.Blade.Kind, ib.Blade.IPMBErr = "ipmb", "slot 3: the rule lists 2 addresses"
			add(ib)
			rb := blade(f, true, true) // a Redfish enclosure manager
			rb.Blade.Kind, rb.Blade.EMAddress = "redfish", "10.0.9.1:443"
			add(rb)
		}
	}
	add(base(state.NotResponding, state.ReasonIPMI15Only))
	dns := base(state.NotResponding, state.ReasonUnreachable)
	dns.Message = "the address does not resolve: \"bmc-7.example\" does not resolve"
	add(dns)
	// NotAuthenticated.
	reasons := []state.Reason{state.ReasonWrongPassword, state.ReasonUnknownUser, state.ReasonPrivilege, state.ReasonLocked,
		state.ReasonAuthRejected, state.ReasonNoCipherSuite, state.ReasonCipher0Refused}
	histories := []History{
		{}, // never logged in
		{LastConnectable: t0.Add(-time.Hour)},
		{LastConnectable: t0.Add(-time.Hour), CredentialsChangedAt: t0.Add(-30 * time.Minute)},
		{LastConnectable: t0.Add(-time.Hour), HardwareChangedAt: t0.Add(-30 * time.Minute), HardwareChange: "the System GUID was adopted"},
		{LastConnectable: t0.Add(-time.Hour), RefusedFirst: state.ReasonWrongPassword},
	}
	for _, r := range reasons {
		for _, h := range histories {
			for _, fresh := range []bool{true, false} {
				f := base(state.NotAuthenticated, r)
				h.Stored, h.StoredReason, h.StoredSince, h.CheckedAt = state.NotAuthenticated, r, t0.Add(-20*time.Minute), t0.Add(-time.Minute)
				f.History = h
				f.Evidence.RMCPStatus = 0x0d
				if !fresh {
					f.Fresh, f.NotRetried = false, "refused a minute ago"
				}
				add(f)
				g := f
				g.Account.CipherSuite = 3
				add(g)
				g.Expected = ""
				add(g)
			}
		}
	}
	// Invalid.
	for _, g := range []string{"", otherGUID} {
		for _, src := range []string{"get_system_guid", "rakp2"} {
			for _, model := range []uint32{0, 674, 11} {
				f := base(state.Invalid, state.ReasonGUIDMismatch)
				f.GUID, f.Evidence.GUIDSource = g, src
				f.History.ManufacturerID, f.History.ProductID = 674, 256
				if model != 0 {
					f.Evidence.ManufacturerID, f.Evidence.ProductID, f.Evidence.Manufacturer, f.Evidence.Firmware = model, 256, "X", "1.00"
				}
				add(f)
			}
		}
	}
	// Redfish: a changed certificate, a failed TLS handshake.
	for _, ev := range []*probe.RedfishEvidence{nil, {CertSHA256: strings.Repeat("ab", 32), PinnedSHA256: strings.Repeat("cd", 32),
		CertSubject: "CN=bmc", CertExpires: "2030-01-01T00:00:00Z", TLSVersion: "TLS 1.3"}, {CertExpires: "2020-01-01T00:00:00Z"}} {
		f := base(state.Invalid, state.ReasonCertChanged)
		f.Evidence.Redfish = ev
		add(f)
		f.History.HardwareChangedAt, f.History.HardwareChange, f.History.LastConnectable = t0.Add(-10*time.Minute), "the System GUID was adopted", t0.Add(-time.Hour)
		add(f)
		g := base(state.NotResponding, state.ReasonTLS)
		g.Evidence.Redfish = ev
		add(g)
	}
	// Redfish channels: no IPMI-only steps, the state and reason decide.
	rf := func(s state.OOB, r state.Reason, conds ...state.Condition) Facts {
		f := base(s, r, conds...)
		f.Account.Address, f.Account.Protocol = "10.0.4.17:443", "redfish"
		return f
	}
	for _, r := range []state.Reason{state.ReasonPortRefused, state.ReasonSilent, state.ReasonProtocol, state.ReasonTLS} {
		f := rf(state.NotResponding, r)
		add(f)
		f.Blade = &Blade{Enclosure: "enc-1", Slot: 3, EMAddress: "10.0.9.1:623", EMCredentials: true}
		f.History.AddressChangedAt, f.History.OldAddress, f.History.LastConnectable = t0.Add(-2*time.Hour), "10.0.4.18:443", t0.Add(-3*time.Hour)
		add(f)
		g := rf(state.NotResponding, r) // behind a Redfish enclosure manager
		g.Blade = &Blade{Enclosure: "enc-r", Slot: 2, EMAddress: "10.0.9.2:443", EMCredentials: true, Kind: "redfish"}
		add(g)
	}
	// A forced session login on a service without sessions.
	ns := rf(state.NotResponding, state.ReasonProtocol)
	ns.Evidence.Redfish = &probe.RedfishEvidence{NoSessions: true, Auth: "session"}
	add(ns)
	for _, h := range []History{{}, {LastConnectable: t0.Add(-time.Hour), CredentialsChangedAt: t0.Add(-30 * time.Minute)},
		{LastConnectable: t0.Add(-time.Hour), HardwareChangedAt: t0.Add(-30 * time.Minute), HardwareChange: "the System GUID was adopted"},
		{LastConnectable: t0.Add(-time.Hour), RefusedFirst: state.ReasonWrongPassword}} {
		// Every refusal a Redfish service can give: 401 without a reason,
		// and those its message names (locked, unknown user, wrong
		// password, a role without the privilege).
		for _, r := range []state.Reason{state.ReasonAuthRejected, state.ReasonWrongPassword, state.ReasonUnknownUser, state.ReasonLocked, state.ReasonPrivilege} {
			f := rf(state.NotAuthenticated, r)
			f.History = h
			f.Evidence.Redfish = &probe.RedfishEvidence{HTTPStatus: 401, FailedURL: "/redfish/v1/SessionService/Sessions", Auth: "session", MessageIDs: []string{"Base.1.8.NoValidSession"}}
			add(f)
		}
	}
	// TLS alerts: no TLS version in common, no cipher in common.
	for _, msg := range []string{"remote error: tls: protocol version not supported", "remote error: tls: handshake failure"} {
		f := rf(state.NotResponding, state.ReasonTLS)
		f.Message = msg
		add(f)
	}
	g := rf(state.Invalid, state.ReasonGUIDMismatch)
	g.GUID, g.Evidence.GUIDSource = otherGUID, "redfish_system_uuid"
	add(g)
	add(rf(state.Invalid, state.ReasonCertChanged))
	add(rf(state.Connectable, state.ReasonBusy, state.Busy))
	b := rf(state.Connectable, state.ReasonOK)
	b.History.Stored, b.History.StoredConditions = state.Connectable, []state.Condition{state.Busy}
	add(b)
	add(rf(state.Connectable, state.ReasonOK, state.Degraded))
	add(base(state.Unknown, ""))
	add(base("", ""))
	return out
}

// TestRedfishTrees: a Redfish channel is never asked an IPMI-only step
// (the session census is the SessionService's there),
// and its causes are worded for HTTPS.
func TestRedfishTrees(t *testing.T) {
	// (NeedSessions is not among them: a Redfish BMC's census is its
	// SessionService's sessions.)
	ipmiOnly := []Need{NeedEM, NeedSiblings, NeedBladeView, NeedIdentify, NeedSuites, NeedSuiteTry}
	for _, b := range bases() {
		if !b.Account.Redfish() {
			continue
		}
		walk(t, b, nil, func(f Facts, d Diagnosis, path []Need) {
			for _, n := range path {
				if f.Blade != nil && f.Blade.Kind == "redfish" && n != NeedSuites && n != NeedSuiteTry {
					continue // isolated through a Redfish enclosure manager
				}
				if slices.Contains(ipmiOnly, n) {
					t.Fatalf("%s/%s: Redfish channel asked for %s (%v) → %s", f.State, f.Reason, n, path, d.Cause)
				}
			}
			all := strings.Join(append(append([]string{d.Summary, d.Remedy}, d.Evidence...), d.RuledOut...), "\n")
			if strings.Contains(all, "UDP 623") || strings.Contains(all, "IPMI service") || strings.Contains(all, "ICMP port unreachable") {
				t.Fatalf("%s/%s → %s: IPMI wording: %s", f.State, f.Reason, d.Cause, all)
			}
			switch f.Reason {
			case state.ReasonPortRefused:
				if d.Cause != CauseRedfishDown {
					t.Fatalf("port refused → %s", d.Cause)
				}
			case state.ReasonAuthRejected:
				if d.Cause != CauseAuthRejected || d.Confidence == High {
					t.Fatalf("auth rejected → %s (%s)", d.Cause, d.Confidence)
				}
			}
			if f.State == state.NotAuthenticated {
				// The remedy in the BMC's Redfish terms, never ipmitool's;
				// the service's answer in the evidence.
				if strings.Contains(d.Remedy, "ipmitool") || !strings.Contains(d.Remedy+strings.Join(d.Evidence, " "), "AccountService") && !strings.Contains(d.Remedy, "lightsout accounts set") {
					t.Fatalf("%s/%s → %s: remedy %q", f.State, f.Reason, d.Cause, d.Remedy)
				}
				if !strings.Contains(strings.Join(d.Evidence, "\n"), "HTTP 401 to /redfish/v1/SessionService/Sessions (authenticated by a session login)") {
					t.Fatalf("%s/%s → %s: evidence %v", f.State, f.Reason, d.Cause, d.Evidence)
				}
			}
			switch f.Reason {
			case state.ReasonTLS:
				if d.Cause != CauseTLSError {
					t.Fatalf("tls → %s", d.Cause)
				}
				if strings.Contains(f.Message, "protocol version") && (d.Confidence != High || !strings.Contains(d.Remedy, "TLS 1.2")) {
					t.Fatalf("protocol version alert → %s (%s): %s", d.Cause, d.Confidence, d.Remedy)
				}
			case state.ReasonProtocol:
				if rf := f.Evidence.Redfish; rf != nil && rf.NoSessions {
					if d.Cause != CauseNoSessions || !strings.Contains(d.Remedy, "--redfish-auth auto") {
						t.Fatalf("forced session, none offered → %s: %s", d.Cause, d.Remedy)
					}
				} else if d.Cause != CauseBMCHung {
					t.Fatalf("protocol error → %s", d.Cause)
				}
			}
		})
	}
}

// walk explores every path through the trees from f, answering each Need
// with each variant, and calls leaf with every diagnosis reached and the
// needs asked on the way.
func walk(t *testing.T, f Facts, path []Need, leaf func(Facts, Diagnosis, []Need)) {
	t.Helper()
	if len(path) > MaxRounds {
		t.Fatalf("path too long: %v", path)
	}
	r := Decide(f)
	if r.Diagnosis != nil {
		if len(r.Need) != 0 {
			t.Fatalf("%v: both a diagnosis and needs", path)
		}
		leaf(f, *r.Diagnosis, path)
		return
	}
	if len(r.Need) == 0 {
		t.Fatalf("%s/%s after %v: neither a diagnosis nor a need", f.State, f.Reason, path)
	}
	// The first need is branched over; the others are asked again later
	// if still needed.
	n := r.Need[0]
	if present(f, n) {
		t.Fatalf("%s/%s: asked again for %s (path %v)", f.State, f.Reason, n, path)
	}
	vs := world[n]
	if len(vs) == 0 {
		t.Fatalf("no variants for %s", n)
	}
	for _, v := range vs {
		g := f
		v(&g)
		walk(t, g, append(slices.Clone(path), n), leaf)
	}
}

// TestTreesExhaustive walks every tree from every base over every answer
// to every need: each leaf is a complete diagnosis, actions are sound, and
// every cause is reachable.
func TestTreesExhaustive(t *testing.T) {
	reached := map[Cause]int{}
	leaves := 0
	for _, b := range bases() {
		walk(t, b, nil, func(f Facts, d Diagnosis, path []Need) {
			leaves++
			reached[d.Cause]++
			where := fmt.Sprintf("%s/%s via %v → %s", f.State, f.Reason, path, d.Cause)
			if d.Cause == "" || d.Summary == "" || d.Remedy == "" || len(d.Evidence) == 0 {
				t.Fatalf("%s: incomplete diagnosis %+v", where, d)
			}
			switch d.Confidence {
			case High, Medium, Low:
			default:
				t.Fatalf("%s: confidence %q", where, d.Confidence)
			}
			for _, l := range append(append([]string{d.Summary, d.Remedy}, d.Evidence...), d.RuledOut...) {
				if l == "" || strings.Contains(l, "%!") || strings.Contains(l, "<nil>") {
					t.Fatalf("%s: bad line %q", where, l)
				}
			}
			if d.Confidence == High && strings.Contains(strings.Join(d.Evidence, "\n"), "live alternative") {
				t.Fatalf("%s: high confidence while the evidence lists a live alternative: %v", where, d.Evidence)
			}
			if !f.Fresh && !strings.Contains(d.Evidence[0], "not logged in again") {
				t.Fatalf("%s: a stored observation is not said so: %v", where, d.Evidence)
			}
			for _, a := range d.Actions {
				line := a.Line()
				if a.What == "" || a.From == "" || a.To == "" || a.Because == "" || a.AccountID != f.Account.ID {
					t.Fatalf("%s: action %+v", where, a)
				}
				if !strings.HasPrefix(line, "changed ") || !strings.Contains(line, " because ") {
					t.Fatalf("%s: action line %q", where, line)
				}
				switch a.Kind {
				case ActSwapAddresses:
					if d.Cause != CauseAddressesSwapped || a.OtherAccountID == 0 || f.SwapCheck == nil || !f.SwapCheck.Ours {
						t.Fatalf("%s: swap without a verified swap: %+v", where, a)
					}
				case ActCipherSuite:
					if f.SuiteTry == nil || !f.SuiteTry.OK || !slices.Contains(strongSuites, a.Suite) || !slices.Contains(f.Suites.Offered, a.Suite) {
						t.Fatalf("%s: suite change not proven: %+v", where, a)
					}
				case ActCloseSessions:
					if f.Account.Redfish() {
						if len(a.Sessions) == 0 || len(a.Handles) != 0 {
							t.Fatalf("%s: Redfish close %+v", where, a)
						}
						for _, u := range a.Sessions {
							for _, o := range append([]HeldSession{f.Sessions.Self}, f.Sessions.Others...) {
								if o.URI == u && (!o.SameHost || !o.SameUser || o.Ours) {
									t.Fatalf("%s: would delete a session not left by this host: %+v", where, o)
								}
							}
						}
						break
					}
					if len(a.Handles) == 0 || len(a.Sessions) != 0 {
						t.Fatalf("%s: close nothing", where)
					}
					for _, h := range a.Handles {
						for _, o := range f.Sessions.Others {
							if int(o.Handle) == h && (!o.SameHost || !o.SameUser) {
								t.Fatalf("%s: would close another console's session %+v", where, o)
							}
						}
						if h == int(f.Sessions.Self.Handle) {
							t.Fatalf("%s: would close its own session", where)
						}
					}
				case ActRecheck:
					if f.State != state.Connectable {
						t.Fatalf("%s: recheck of a failing channel", where)
					}
				case ActAdopt:
					if !a.NeedsAdopt || a.GUID != f.GUID || f.Owner == nil || f.Owner.Name != "" {
						t.Fatalf("%s: adopt %+v", where, a)
					}
				default:
					t.Fatalf("%s: unknown action %q", where, a.Kind)
				}
			}
			if d.Healthy() && f.State != state.Connectable {
				t.Fatalf("%s: healthy while %s", where, f.State)
			}
		})
	}
	all := []Cause{CauseHealthy, CauseInsecure, CauseRecovered, CauseCredentialsFixed, CauseNotChecked,
		CausePortClosed, CauseNoRoute, CauseBMCHung, CausePacketLoss, CauseAddressChanged, CauseEnclosureDown, CauseEMCard,
		CauseEnclosureTray, CauseBladeLAN, CauseEMBMCPath, CauseBMCFailed, CauseBladeBMC, CauseNetworkSegment,
		CauseBMCUnreachable, CauseNoCommonSuite, CauseSuiteMismatch, CauseCipher0Only,
		CausePasswordChanged, CausePasswordEditWrong, CausePasswordNeverWorked, CauseReplacedCredentials,
		CauseUserRemoved, CauseUserNameWrong, CauseUserMissingAfterSwap, CausePrivilegeTooLow, CauseAccountLocked, CauseAuthRejected,
		CauseAddressesSwapped, CauseAddressReused, CauseMotherboardReplaced, CauseUnknownBMC, CauseIdentityUnverifiable,
		CauseCertChanged, CauseTLSError, CauseRedfishDown, CauseNoSessions, CauseIPMI15Only,
		CauseSessionTableFull, CauseStaleOwnSessions, CauseCompetingConsoles, CauseBusyCleared,
		CauseEnclosureWide, CauseSubnetWide, CauseFirmwareWide, CauseCompetingPollers, CauseBMCOverloaded, CauseOccasionalRetry}
	for _, c := range all {
		if reached[c] == 0 {
			t.Errorf("cause %s is never reached", c)
		}
	}
	if len(reached) != len(all) {
		t.Errorf("reached %d causes, listed %d: %v", len(reached), len(all), reached)
	}
	t.Logf("%d leaves over %d bases, %d causes", leaves, len(bases()), len(reached))
}

// fill answers needs with the given variant index per need.
func fill(f Facts, pick map[Need]int) (Diagnosis, []Need) {
	var path []Need
	for i := 0; i < MaxRounds; i++ {
		r := Decide(f)
		if r.Diagnosis != nil {
			return *r.Diagnosis, path
		}
		n := r.Need[0]
		world[n][pick[n]](&f)
		path = append(path, n)
	}
	return Diagnosis{}, path
}

// TestTreeBranches pins the important branches to their cause and the
// steps taken, in the seed's order for enclosures.
func TestTreeBranches(t *testing.T) {
	silentBlade := func() Facts {
		f := base(state.NotResponding, state.ReasonSilent)
		f.Blade = &Blade{Enclosure: "enc-1", Slot: 3, EMAddress: "10.0.9.1:623", EMCredentials: true}
		return f
	}
	ipmbBlade := func() Facts {
		f := silentBlade()
		f.Blade.Kind, f.Blade.IPMB = "ipmb", 0x86
		return f
	}
	addrEdited := func() Facts {
		f := base(state.NotResponding, state.ReasonSilent)
		f.History.OldAddress, f.History.AddressChangedAt, f.History.LastConnectable = "10.0.4.16:623", t0.Add(-5*time.Minute), t0.Add(-time.Hour)
		return f
	}
	notAuth := func(r state.Reason, h History) Facts {
		f := base(state.NotAuthenticated, r)
		h.Stored, h.StoredReason, h.CheckedAt = state.NotAuthenticated, r, t0.Add(-time.Minute)
		f.History = h
		return f
	}
	credsFixed := base(state.Connectable, "")
	credsFixed.History = History{Stored: state.NotAuthenticated, StoredReason: state.ReasonWrongPassword, CheckedAt: t0.Add(-time.Hour), CredentialsChangedAt: t0.Add(-time.Minute)}
	invalid := func(src string, model uint32) Facts {
		f := base(state.Invalid, state.ReasonGUIDMismatch)
		f.GUID, f.Evidence.GUIDSource = otherGUID, src
		f.History.ManufacturerID, f.History.ProductID = 674, 256
		f.Evidence.ManufacturerID, f.Evidence.ProductID = model, 256
		return f
	}
	tests := []struct {
		name  string
		f     Facts
		pick  map[Need]int
		cause Cause
		path  []Need
	}{
		{"EM silent, siblings silent", silentBlade(), map[Need]int{NeedEM: 1, NeedSiblings: 1}, CauseEnclosureDown, []Need{NeedEM, NeedSiblings}},
		{"EM silent, siblings answer", silentBlade(), map[Need]int{NeedEM: 1, NeedSiblings: 3}, CauseEMCard, []Need{NeedEM, NeedSiblings}},
		{"EM answers, siblings silent", silentBlade(), map[Need]int{NeedSiblings: 1}, CauseEnclosureTray, []Need{NeedEM, NeedSiblings}},
		{"EM sees the BMC", silentBlade(), map[Need]int{NeedSiblings: 3, NeedBladeView: 2}, CauseBladeLAN, []Need{NeedEM, NeedSiblings, NeedBladeView}},
		{"lamp lights", silentBlade(), map[Need]int{NeedSiblings: 3, NeedBladeView: 3, NeedIdentify: 1}, CauseEMBMCPath,
			[]Need{NeedEM, NeedSiblings, NeedBladeView, NeedIdentify}},
		{"lamp dark", silentBlade(), map[Need]int{NeedSiblings: 3, NeedBladeView: 3, NeedIdentify: 2}, CauseBMCFailed,
			[]Need{NeedEM, NeedSiblings, NeedBladeView, NeedIdentify}},
		{"no sibling in the inventory", silentBlade(), map[Need]int{NeedSiblings: 0, NeedBladeView: 3, NeedIdentify: 2}, CauseBMCFailed,
			[]Need{NeedEM, NeedSiblings, NeedBladeView, NeedIdentify}},
		{"EM refuses", silentBlade(), map[Need]int{NeedSiblings: 3, NeedBladeView: 0}, CauseBladeBMC, []Need{NeedEM, NeedSiblings, NeedBladeView}},
		{"ipmb: the controller answers through the EM", ipmbBlade(), map[Need]int{NeedSiblings: 3, NeedBladeView: 10}, CauseBladeLAN, []Need{NeedEM, NeedSiblings, NeedBladeView}},
		{"ipmb: the controller NAKs, its siblings answer", ipmbBlade(), map[Need]int{NeedSiblings: 3, NeedBladeView: 7}, CauseBMCFailed, []Need{NeedEM, NeedSiblings, NeedBladeView}},
		{"ipmb: no controller answers the EM", ipmbBlade(), map[Need]int{NeedSiblings: 3, NeedBladeView: 8}, CauseEMBMCPath, []Need{NeedEM, NeedSiblings, NeedBladeView}},
		{"ipmb: nothing to compare with", ipmbBlade(), map[Need]int{NeedSiblings: 3, NeedBladeView: 9}, CauseBladeBMC, []Need{NeedEM, NeedSiblings, NeedBladeView}},
		{"ipmb: the EM refuses the request", ipmbBlade(), map[Need]int{NeedSiblings: 3, NeedBladeView: 4}, CauseBladeBMC, []Need{NeedEM, NeedSiblings, NeedBladeView}},
		{"port refused", base(state.NotResponding, state.ReasonPortRefused), nil, CausePortClosed, nil},
		{"stalled, clean path", base(state.NotResponding, state.ReasonStalled), nil, CauseBMCHung, []Need{NeedLoss}},
		{"stalled, lossy path", base(state.NotResponding, state.ReasonStalled), map[Need]int{NeedLoss: 1}, CausePacketLoss, []Need{NeedLoss}},
		{"stalled, a little loss", base(state.NotResponding, state.ReasonStalled), map[Need]int{NeedLoss: 2}, CauseBMCHung, []Need{NeedLoss}},
		{"rack silent, neighbours fine", base(state.NotResponding, state.ReasonSilent), map[Need]int{NeedSubnet: 2}, CauseBMCUnreachable, []Need{NeedSubnet}},
		{"rack silent, subnet silent", base(state.NotResponding, state.ReasonSilent), map[Need]int{NeedSubnet: 1}, CauseNetworkSegment, []Need{NeedSubnet}},
		{"still at the old address", addrEdited(), nil, CauseAddressChanged, []Need{NeedOldAddress}},
		{"old address silent too", addrEdited(), map[Need]int{NeedOldAddress: 2, NeedSubnet: 2}, CauseBMCUnreachable, []Need{NeedOldAddress, NeedSubnet}},
		{"password changed on the BMC", notAuth(state.ReasonWrongPassword, History{LastConnectable: t0.Add(-time.Hour)}), nil, CausePasswordChanged, nil},
		{"password edited wrong", notAuth(state.ReasonWrongPassword, History{LastConnectable: t0.Add(-time.Hour), CredentialsChangedAt: t0.Add(-10 * time.Minute)}), nil, CausePasswordEditWrong, nil},
		{"password edited just before the first refusal", notAuth(state.ReasonWrongPassword, History{LastConnectable: t0.Add(-time.Hour), LeftConnectable: true,
			EditGrace: 30 * time.Second, CredentialsChangedAt: t0.Add(-time.Hour - 2*time.Second)}), nil, CausePasswordEditWrong, nil},
		{"password edited long before the first refusal", notAuth(state.ReasonWrongPassword, History{LastConnectable: t0.Add(-time.Hour), LeftConnectable: true,
			EditGrace: 30 * time.Second, CredentialsChangedAt: t0.Add(-2 * time.Hour)}), nil, CausePasswordChanged, nil},
		{"user gone after a board swap", notAuth(state.ReasonUnknownUser, History{LastConnectable: t0.Add(-time.Hour), HardwareChangedAt: t0.Add(-10 * time.Minute)}), nil, CauseUserMissingAfterSwap, nil},
		{"user removed", notAuth(state.ReasonUnknownUser, History{LastConnectable: t0.Add(-time.Hour)}), nil, CauseUserRemoved, nil},
		{"locked", notAuth(state.ReasonLocked, History{LastConnectable: t0.Add(-time.Hour)}), nil, CauseAccountLocked, nil},
		{"privilege, operator granted", notAuth(state.ReasonPrivilege, History{}), nil, CausePrivilegeTooLow, []Need{NeedPrivilege}},
		{"privilege, none granted", notAuth(state.ReasonPrivilege, History{}), map[Need]int{NeedPrivilege: 2}, CausePrivilegeTooLow, []Need{NeedPrivilege}},
		{"suite gone, 17 works", notAuth(state.ReasonNoCipherSuite, History{}), map[Need]int{NeedSuites: 2}, CauseSuiteMismatch, []Need{NeedSuites, NeedSuiteTry}},
		{"only weak suites", notAuth(state.ReasonNoCipherSuite, History{}), map[Need]int{NeedSuites: 3}, CauseNoCommonSuite, []Need{NeedSuites}},
		{"only suite 0 offered", notAuth(state.ReasonNoCipherSuite, History{}), map[Need]int{NeedSuites: 4}, CauseCipher0Only, []Need{NeedSuites}},
		{"only suite 0 would do", notAuth(state.ReasonCipher0Refused, History{}), nil, CauseCipher0Only, nil},
		{"credentials fixed", credsFixed, nil, CauseCredentialsFixed, nil},
		{"swapped", invalid("get_system_guid", 674), map[Need]int{NeedOwner: 1}, CauseAddressesSwapped, []Need{NeedOwner, NeedSwapCheck}},
		{"reused", invalid("get_system_guid", 674), map[Need]int{NeedOwner: 1, NeedSwapCheck: 2}, CauseAddressReused, []Need{NeedOwner, NeedSwapCheck}},
		{"board replaced", invalid("get_system_guid", 674), nil, CauseMotherboardReplaced, []Need{NeedOwner}},
		{"stranger refuses our password", invalid("rakp2", 674), nil, CauseUnknownBMC, []Need{NeedOwner}},
		{"stranger of another make", invalid("get_system_guid", 11), nil, CauseUnknownBMC, []Need{NeedOwner}},
		{"certificate changed", base(state.Invalid, state.ReasonCertChanged), nil, CauseCertChanged, nil},
		{"TLS handshake failed", base(state.NotResponding, state.ReasonTLS), nil, CauseTLSError, nil},
		{"busy, no slot", base(state.Connectable, state.ReasonBusy, state.Busy), nil, CauseSessionTableFull, []Need{NeedSessions}},
		{"busy, our leftovers", base(state.Connectable, state.ReasonBusy, state.Busy), map[Need]int{NeedSessions: 1}, CauseStaleOwnSessions, []Need{NeedSessions}},
		{"busy, other consoles", base(state.Connectable, state.ReasonBusy, state.Busy), map[Need]int{NeedSessions: 2}, CauseCompetingConsoles, []Need{NeedSessions}},
		{"busy cleared", base(state.Connectable, state.ReasonBusy, state.Busy), map[Need]int{NeedSessions: 3}, CauseBusyCleared, []Need{NeedSessions}},
		{"degraded enclosure", base(state.Connectable, "", state.Degraded), map[Need]int{NeedRates: 1}, CauseEnclosureWide, []Need{NeedRates, NeedFleet}},
		{"degraded firmware", base(state.Connectable, "", state.Degraded), map[Need]int{NeedRates: 1, NeedFleet: 2}, CauseFirmwareWide, []Need{NeedRates, NeedFleet}},
		{"degraded alone, high rate", base(state.Connectable, "", state.Degraded), map[Need]int{NeedRates: 1, NeedFleet: 3, NeedSessions: 3}, CauseBMCOverloaded,
			[]Need{NeedRates, NeedFleet, NeedSessions}},
		{"degraded, pollers", base(state.Connectable, "", state.Degraded), map[Need]int{NeedRates: 2, NeedFleet: 3, NeedSessions: 2}, CauseCompetingPollers,
			[]Need{NeedRates, NeedFleet, NeedSessions}},
		{"degraded, occasional", base(state.Connectable, "", state.Degraded), map[Need]int{NeedRates: 2, NeedFleet: 3, NeedSessions: 3}, CauseOccasionalRetry,
			[]Need{NeedRates, NeedFleet, NeedSessions}},
		{"degraded, our own half-open sessions are not pollers", base(state.Connectable, "", state.Degraded), map[Need]int{NeedRates: 2, NeedFleet: 3, NeedSessions: 5}, CauseOccasionalRetry,
			[]Need{NeedRates, NeedFleet, NeedSessions}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, path := fill(tt.f, tt.pick)
			if d.Cause != tt.cause || !slices.Equal(path, tt.path) {
				t.Fatalf("cause %s via %v, want %s via %v\n%s", d.Cause, path, tt.cause, tt.path, strings.Join(d.Evidence, "\n"))
			}
		})
	}
}

func TestActionLineAndHealthy(t *testing.T) {
	a := Action{What: "the cipher suite of web-1's account 7", From: "3", To: "17", Because: "the BMC offers only 17"}
	if a.Line() != "changed the cipher suite of web-1's account 7 from 3 to 17 because the BMC offers only 17" {
		t.Errorf("%q", a.Line())
	}
	for c, want := range map[Cause]bool{CauseHealthy: true, CauseBusyCleared: true, CauseBMCFailed: false, CauseAddressesSwapped: false} {
		if (Diagnosis{Cause: c}).Healthy() != want {
			t.Errorf("%s healthy %v", c, !want)
		}
	}
	var r Rates
	if r.TimeoutRate() != 0 || r.RetryRate() != 0 {
		t.Error("rates of nothing")
	}
	_ = probe.Evidence{}
}

// TestBladeRefusedIsNotTheAccount: an enclosure manager that logs the
// diagnosis in and then refuses the bridged request is a finding about the
// request — the remedy never sends the operator to the EM's account.
func TestBladeRefusedIsNotTheAccount(t *testing.T) {
	for code, want := range map[byte]string{0xd4: "privilege that may ask about the blades", 0xc1: "set the enclosure's kind to oem", 0xcc: "ipmb rule and channel"} {
		f := base(state.NotResponding, state.ReasonSilent)
		f.Blade = &Blade{Enclosure: "enc-1", Slot: 3, EMAddress: "10.0.9.1:623", EMCredentials: true, Kind: "ipmb", IPMB: 0x86}
		f.EM = &Reach{Address: "10.0.9.1:623", Answered: true}
		f.Siblings = &Siblings{Tried: 2, Answered: 2}
		f.BladeView = &BladeView{Refused: fmt.Sprintf("Send Message to IPMB address 0x86 (Get Device ID) with completion code %#02x", code), RefusedCode: code}
		d := Decide(f).Diagnosis
		text := strings.Join(append([]string{d.Summary, d.Remedy}, d.Evidence...), "\n")
		if d.Cause != CauseBladeBMC || d.Confidence != Low || !strings.Contains(d.Remedy, want) || !strings.Contains(d.Remedy, "credentials are fine") ||
			strings.Contains(text, "lightsout enclosures set") || !strings.Contains(text, "not the account") {
			t.Errorf("%#02x: %s (%s)\n%s", code, d.Cause, d.Confidence, text)
		}
	}
	// An OEM-kind enclosure manager that does not know lightsout's
	// commands: the remedy is the ipmb kind.
	f := base(state.NotResponding, state.ReasonSilent)
	f.Blade = &Blade{Enclosure: "enc-1", Slot: 3, EMAddress: "10.0.9.1:623", EMCredentials: true, Kind: "oem"}
	f.EM, f.Siblings = &Reach{Address: "10.0.9.1:623", Answered: true}, &Siblings{Tried: 2, Answered: 2}
	f.BladeView = &BladeView{LoggedIn: true, Refused: "lightsout's Get Blade Status (NetFn 0x30) for slot 3 with completion code 0xc1", RefusedCode: 0xc1}
	if d := Decide(f).Diagnosis; d.Cause != CauseBladeBMC || !strings.Contains(d.Remedy, "set the enclosure's kind to ipmb") || strings.Contains(d.Remedy, "lightsout enclosures set") {
		t.Errorf("oem refused: %s\n%s", d.Cause, d.Remedy)
	}
	// ... and when standard bridging at the default addresses answered
	// instead, its result stands, and the evidence says to set the kind.
	f.Blade = &Blade{Enclosure: "enc-1", Slot: 3, EMAddress: "10.0.9.1:623", EMCredentials: true, Kind: "ipmb", IPMB: 0x86,
		Guessed: "lightsout's Get Blade Status (NetFn 0x30) for slot 3 with completion code 0xd4"}
	f.BladeView = &BladeView{LoggedIn: true, Status: ipmi.BladeStatus{Slot: 3, Present: true, BMCAnswers: true}, Device: "device 3"}
	d := Decide(f).Diagnosis
	if text := strings.Join(d.Evidence, "\n"); d.Cause != CauseBladeLAN || !strings.Contains(text, "asked instead by standard IPMI bridging at the default IPMB addresses (0x82+2)") {
		t.Errorf("guessed: %s\n%s", d.Cause, text)
	}
}

// TestInsecureNamesEachFinding: a working channel on an insecure BMC is
// not "healthy, nothing to do": every finding is an evidence line and a
// numbered remedy step in the BMC's terms, from the audit when it has
// reported, else from the check's authentication capabilities.
func TestInsecureNamesEachFinding(t *testing.T) {
	f := base(state.Connectable, "", state.Insecure)
	f.Evidence.Insecure = []string{"anonymous login enabled", "IPMI 1.5 straight password authentication offered", "IPMI 1.5 MD2 authentication offered"}
	d := Decide(f).Diagnosis
	if d.Cause != CauseInsecure || d.Healthy() || d.Confidence != High ||
		!strings.Contains(d.Summary, "anonymous_login, weak_auth") ||
		!strings.Contains(d.Remedy, "1) anonymous_login: disable the null user (user ID 1)") || !strings.Contains(d.Remedy, "ipmitool user disable 1") ||
		!strings.Contains(d.Remedy, "2) weak_auth: allow only MD5") || strings.Contains(d.Remedy, "3)") || len(d.Evidence) != 4 {
		t.Fatalf("from the check: %s (%s)\n%s\n%s", d.Cause, d.Confidence, d.Remedy, strings.Join(d.Evidence, "\n"))
	}
	// The audit's findings win: cipher suite 0 and a default password
	// are seen only by it.
	f.Security = []SecurityFinding{
		{Code: "cipher0_enabled", Message: "the BMC accepts RMCP+ cipher suite 0", Remedy: "disable cipher suite 0 on the BMC — ipmitool lan set 1 cipher_privs Xaaaaaaaaaaaaaa", Source: "audit"},
		{Code: "default_password", Subject: "ADMIN", Message: `user "ADMIN" logs in with the Supermicro factory default password`, Remedy: `change the password of "ADMIN" on the BMC (ipmitool user set password ID)`, Source: "audit"},
	}
	d = Decide(f).Diagnosis
	if d.Cause != CauseInsecure || !strings.Contains(d.Remedy, "1) cipher0_enabled: disable cipher suite 0 on the BMC — ipmitool lan set 1 cipher_privs") ||
		!strings.Contains(d.Remedy, "2) default_password (ADMIN): change the password") || !strings.Contains(strings.Join(d.Evidence, "\n"), "found by the security audit") {
		t.Fatalf("from the audit: %s\n%s\n%s", d.Cause, d.Remedy, strings.Join(d.Evidence, "\n"))
	}
	// Redfish: the default password is changed in the AccountService.
	rf := CheckFindings([]string{"default password of root"}, true)
	if len(rf) != 1 || !strings.Contains(rf[0].Remedy, "/redfish/v1/AccountService/Accounts/") {
		t.Fatalf("redfish: %+v", rf)
	}
	// Marked insecure with nothing at hand: medium, and the audit to run.
	g := base(state.Connectable, "", state.Insecure)
	if d := Decide(g).Diagnosis; d.Cause != CauseInsecure || d.Confidence != Medium || !strings.Contains(d.Remedy, "lightsout security web-1 --run") {
		t.Fatalf("no findings: %+v", d)
	}
}

// TestSessionWording: an unnamed user is "with user ID N", never "user
// user N"; an unreported console address is said so, never "?".
func TestSessionWording(t *testing.T) {
	f := base(state.Connectable, "", state.Degraded)
	f.Rates, f.Fleet = &Rates{Requests: 8, Retransmits: 1, Source: "sampled"}, &Fleet{}
	f.Sessions = &SessionsFacts{Got: true, Slots: 4, Active: 3, Self: HeldSession{Handle: 4, UserID: 2, SameHost: true, SameUser: true},
		Others: []HeldSession{{Handle: 1, UserID: 3}, {Handle: 2, UserID: 5, User: "nagios", Console: "10.0.7.7:623"}}}
	d := Decide(f).Diagnosis
	text := strings.Join(append([]string{d.Summary, d.Remedy}, d.Evidence...), "\n")
	if d.Cause != CauseCompetingPollers || strings.Contains(text, "user user") || strings.Contains(text, "?") ||
		!strings.Contains(text, "with user ID 3") || !strings.Contains(text, "user nagios") ||
		!strings.Contains(d.Remedy, "10.0.7.7 (and 1 session(s) whose address the BMC does not report)") {
		t.Fatalf("%s\n%s", d.Cause, text)
	}
}
