// Package diag diagnoses a broken management channel: from what was
// observed (a Facts value) a decision tree per state names the most likely
// cause, the evidence for it, the alternatives it ruled out, the remedy in
// the operator's words, and the safe fixes autocorrect may apply.
//
// The trees are pure (Decide: no I/O, no clock): when a tree needs a fact
// it does not have — the enclosure manager's answer to a ping, the blade's
// identify lamp read back, the owner of a GUID — it returns a Need, and the
// executor (Executor, gather.go) fetches it and asks again. The trees are
// tested exhaustively without a network; the executor end to end against
// the simulator.
package diag

import (
	"time"

	"github.com/lightsout/lightsout/internal/evidence"
	"github.com/lightsout/lightsout/internal/ipmi/vocab"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
)

// Cause is a diagnosis's stable code: what went wrong, for machines and
// for grouping. Summary and Remedy say it in words.
type Cause string

// The causes, by tree.
const (
	// Healthy or not (yet) diagnosable.
	CauseHealthy          Cause = "healthy"           // Connectable, nothing to fix
	CauseInsecure         Cause = "insecure"          // Connectable, but the BMC accepts insecure logins
	CauseRecovered        Cause = "recovered"         // works now; the declared state is older
	CauseCredentialsFixed Cause = "credentials_fixed" // refused before, works after the credentials were edited
	CauseNotChecked       Cause = "not_checked"       // no check could be made
	CauseIncomplete       Cause = "incomplete"        // the facts could not be gathered

	// NotResponding.
	CausePortClosed     Cause = "ipmi_service_down"    // ICMP port unreachable: host up, IPMI-over-LAN off
	CauseNoRoute        Cause = "no_route"             // ICMP host/net unreachable
	CauseBMCHung        Cause = "bmc_hung"             // answered, then stalled or sent garbage
	CausePacketLoss     Cause = "packet_loss"          // the path loses session-less requests too, at a measured rate
	CauseAddressChanged Cause = "address_changed"      // silent since its address was edited
	CauseEnclosureDown  Cause = "enclosure_down"       // EM card and every blade silent: EM card / enclosure path
	CauseEMCard         Cause = "em_card"              // EM card silent, the other blades answer
	CauseEnclosureTray  Cause = "enclosure_tray"       // EM answers, the blades behind it do not
	CauseBladeLAN       Cause = "blade_lan"            // the EM sees the BMC fine; the network does not
	CauseEMBMCPath      Cause = "em_bmc_path"          // the EM cannot reach the BMC, but its identify lamp lights
	CauseBMCFailed      Cause = "bmc_failed"           // the EM cannot reach the BMC, and its lamp stays dark
	CauseBladeBMC       Cause = "blade_bmc"            // this blade's BMC, not confirmed through the EM
	CauseNetworkSegment Cause = "network_segment"      // most of its subnet is silent
	CauseBMCUnreachable Cause = "bmc_unreachable"      // an isolated silent rack server
	CauseNoCommonSuite  Cause = "no_common_suite"      // no acceptable cipher suite offered
	CauseSuiteMismatch  Cause = "cipher_suite_pinned"  // the pinned suite is gone, another strong one works
	CauseCipher0Only    Cause = "cipher0_only"         // only cipher suite 0 would work
	CauseTLSError       Cause = "tls_error"            // Redfish: the TLS handshake failed
	CauseRedfishDown    Cause = "redfish_service_down" // Redfish: TCP refused: host up, no HTTPS service
	CauseNoSessions     Cause = "redfish_no_sessions"  // Redfish: the account forces session login, the service offers none
	CauseIPMI15Only     Cause = "ipmi15_only"          // the BMC speaks IPMI 1.5 only; lightsout needs 2.0

	// NotAuthenticated.
	CausePasswordChanged      Cause = "password_changed_on_bmc"
	CausePasswordEditWrong    Cause = "password_edit_wrong"
	CausePasswordNeverWorked  Cause = "password_never_worked"
	CauseReplacedCredentials  Cause = "credentials_after_replacement"
	CauseUserRemoved          Cause = "user_removed"
	CauseUserNameWrong        Cause = "user_name_wrong"
	CauseUserMissingAfterSwap Cause = "user_missing_after_replacement"
	CausePrivilegeTooLow      Cause = "privilege_too_low"
	CauseAccountLocked        Cause = "account_locked"
	CauseAuthRejected         Cause = "auth_rejected"

	// Invalid.
	CauseAddressesSwapped     Cause = "addresses_swapped"
	CauseAddressReused        Cause = "address_reused"
	CauseMotherboardReplaced  Cause = "motherboard_replaced"
	CauseUnknownBMC           Cause = "unknown_bmc"
	CauseIdentityUnverifiable Cause = "identity_unverifiable"
	CauseCertChanged          Cause = "cert_changed" // Redfish: the BMC's certificate differs from the pinned one

	// Busy.
	CauseSessionTableFull  Cause = "session_table_full"
	CauseStaleOwnSessions  Cause = "stale_own_sessions"
	CauseCompetingConsoles Cause = "competing_consoles"
	CauseBusyCleared       Cause = "busy_cleared"

	// Degraded.
	CauseEnclosureWide    Cause = "degraded_enclosure"
	CauseSubnetWide       Cause = "degraded_subnet"
	CauseFirmwareWide     Cause = "degraded_firmware"
	CauseCompetingPollers Cause = "competing_pollers"
	CauseBMCOverloaded    Cause = "bmc_overloaded"
	CauseOccasionalRetry  Cause = "occasional_retries"
)

// Confidence says how sure a diagnosis is: high when the evidence points
// one way only, medium when one alternative could not be ruled out, low
// when a step that would decide could not be made.
type Confidence string

const (
	High   Confidence = "high"
	Medium Confidence = "medium"
	Low    Confidence = "low"
)

// Diagnosis is a tree's verdict.
type Diagnosis struct {
	Cause Cause `json:"cause"`
	// Summary names the cause in one sentence.
	Summary    string     `json:"summary"`
	Evidence   []string   `json:"evidence"`
	RuledOut   []string   `json:"ruled_out,omitempty"`
	Remedy     string     `json:"remedy"`
	Confidence Confidence `json:"confidence"`
	// Actions are the safe, reversible fixes autocorrect may apply.
	Actions []Action `json:"actions,omitempty"`
}

// Healthy reports whether the channel works now (nothing to fix).
func (d Diagnosis) Healthy() bool {
	switch d.Cause {
	case CauseHealthy, CauseRecovered, CauseCredentialsFixed, CauseBusyCleared:
		return true
	}
	return false
}

// ActionKind names a fix.
type ActionKind string

// The fixes. Each is safe (it cannot make a working channel fail) and
// reversible (applying it again, or editing the account back, undoes it).
const (
	// ActSwapAddresses: two accounts' addresses are exchanged, when each
	// address answers with the other machine's System GUID.
	ActSwapAddresses ActionKind = "swap_addresses"
	// ActCipherSuite: the account's pinned cipher suite becomes one the
	// BMC offers and that just worked (encrypted and integrity-protected
	// only).
	ActCipherSuite ActionKind = "set_cipher_suite"
	// ActCloseSessions: sessions this host left open on the BMC, under the
	// account's own user, are closed (IPMI: Close Session by handle;
	// Redfish: DELETE of the session's URI).
	ActCloseSessions ActionKind = "close_stale_sessions"
	// ActRecheck: the channel is checked once more, because its
	// credentials were edited after the refusal the monitor still holds.
	ActRecheck ActionKind = "recheck"
	// ActAdopt: the System GUID the BMC reports is adopted (motherboard
	// replaced). Only with --adopt, by an admin.
	ActAdopt ActionKind = "adopt_guid"
)

// Action is one fix, described for the operator ("changed What from From
// to To because Because") and with what the executor needs to apply it.
type Action struct {
	Kind    ActionKind `json:"kind"`
	What    string     `json:"what"`
	From    string     `json:"from"`
	To      string     `json:"to"`
	Because string     `json:"because"`
	// NeedsAdopt: applied only with --adopt by an admin.
	NeedsAdopt bool `json:"needs_adopt,omitempty"`

	AccountID      int64 `json:"account_id,omitempty"`
	OtherAccountID int64 `json:"other_account_id,omitempty"`
	Suite          int   `json:"suite,omitempty"`
	Handles        []int `json:"handles,omitempty"` // session handles
	// Sessions are Redfish session URIs (a Redfish channel's
	// close_stale_sessions: each is DELETEd).
	Sessions []string `json:"sessions,omitempty"`
	// At and OtherAt, for a swap, are the two endpoints whose BMCs'
	// GUIDs the diagnosis just verified (the one at At answers as the
	// other account's machine, the one at OtherAt as this one's): the swap
	// moves the accounts (and their passwords) only between these two.
	At, OtherAt store.Endpoint `json:"-"`
	// GUIDAt and GUIDOther are the System GUIDs the BMCs at At and
	// OtherAt reported: the other account's machine's and this one's.
	GUIDAt, GUIDOther string `json:"-"`

	GUID string `json:"guid,omitempty"`
}

// Line says what the fix changes, in the autocorrect's words.
func (a Action) Line() string {
	return "changed " + a.What + " from " + a.From + " to " + a.To + " because " + a.Because
}

// Need names a fact a tree asks the executor for.
type Need string

// The facts a tree may ask for.
const (
	NeedEM         Need = "em_ping"       // does the enclosure manager answer a presence ping?
	NeedSiblings   Need = "siblings"      // do the other blades' BMCs answer?
	NeedBladeView  Need = "blade_view"    // the enclosure manager's status of this blade
	NeedIdentify   Need = "identify"      // the identify lamp, driven through the enclosure manager and read back
	NeedOldAddress Need = "old_address"   // does the address before the last edit answer?
	NeedSubnet     Need = "subnet"        // the states of the other machines on the same subnet
	NeedOwner      Need = "guid_owner"    // which registered machine owns the GUID that answered
	NeedSwapCheck  Need = "swap_check"    // what answers at the owner's address
	NeedSuites     Need = "cipher_suites" // the cipher suites the BMC offers
	NeedSuiteTry   Need = "suite_try"     // a login with SuiteCandidate
	NeedSessions   Need = "sessions"      // the BMC's session table
	NeedRates      Need = "rates"         // timeout and retry rates
	NeedFleet      Need = "fleet"         // how the condition spreads over the fleet
	NeedPrivilege  Need = "privilege"     // the highest privilege a login gets, below the one refused
	NeedLoss       Need = "loss"          // the loss rate of session-less requests, sampled now
)

// Result is what Decide returns: a diagnosis, or the facts still needed.
type Result struct {
	Diagnosis *Diagnosis
	Need      []Need
}

// Facts is everything known about one channel when a tree runs. The
// executor fills the base (the observation, the account, the history) and
// then the optional parts as trees ask for them; a nil part has not been
// gathered, a part with Err set could not be.
type Facts struct {
	Machine string    `json:"machine"`
	Now     time.Time `json:"now"`
	Account Account   `json:"account"`

	// The observation diagnosed: a fresh check unless the lockout guard
	// forbade logging in again (Fresh false, NotRetried says why).
	State      state.OOB         `json:"state"`
	Reason     state.Reason      `json:"reason,omitempty"`
	Conditions []state.Condition `json:"conditions,omitempty"`
	Message    string            `json:"message,omitempty"`
	Evidence   evidence.Evidence `json:"evidence"`
	GUID       string            `json:"guid,omitempty"`     // reported (SMBIOS rendering)
	Expected   string            `json:"expected,omitempty"` // registered; "" while registering
	Fresh      bool              `json:"fresh"`
	NotRetried string            `json:"not_retried,omitempty"`

	History History `json:"history"`
	// Security are the BMC's insecure settings: the latest security
	// audit's findings (Executor.Security), else what the check's
	// authentication capabilities showed.
	Security []SecurityFinding `json:"security,omitempty"`
	// Blade is set for a machine in an enclosure slot.
	Blade *Blade `json:"blade,omitempty"`

	EM         *Reach         `json:"em,omitempty"`
	Siblings   *Siblings      `json:"siblings,omitempty"`
	BladeView  *BladeView     `json:"blade_view,omitempty"`
	Identify   *Identify      `json:"identify,omitempty"`
	OldAddress *OldAddress    `json:"old_address,omitempty"`
	Subnet     *Subnet        `json:"subnet,omitempty"`
	Owner      *Owner         `json:"owner,omitempty"`
	SwapCheck  *SwapCheck     `json:"swap_check,omitempty"`
	Suites     *Suites        `json:"suites,omitempty"`
	SuiteTry   *SuiteTry      `json:"suite_try,omitempty"`
	Sessions   *SessionsFacts `json:"sessions,omitempty"`
	Rates      *Rates         `json:"rates,omitempty"`
	Fleet      *Fleet         `json:"fleet,omitempty"`
	Privilege  *Privilege     `json:"privilege,omitempty"`
	Loss       *Loss          `json:"loss,omitempty"`
}

// Loss is the path's loss measured with session-less requests (Get
// Channel Authentication Capabilities, before any login): a hung BMC
// answers them promptly while it stalls in session; a lossy path loses
// them as it loses everything else. Every retransmission is an attempt
// lost (the request or its reply); an exchange that gave up lost all its
// attempts.
type Loss struct {
	Requests int    `json:"requests"`
	Attempts int    `json:"attempts"`
	Lost     int    `json:"lost"`
	Answered int    `json:"answered"`
	Err      string `json:"error,omitempty"`
}

// Rate is the share of attempts lost (0 with none made).
func (l Loss) Rate() float64 {
	if l.Attempts == 0 {
		return 0
	}
	return float64(l.Lost) / float64(l.Attempts)
}

// Privilege is what the BMC grants the account's user: the privilege it
// refused (Asked) and the highest below it a login got (Granted; "" when
// none did), each such login closed at once.
type Privilege struct {
	Asked   string   `json:"asked"`
	Granted string   `json:"granted,omitempty"`
	Refused []string `json:"refused,omitempty"` // the levels tried below Asked that were refused too
	Err     string   `json:"error,omitempty"`
}

// SecurityFinding is one insecure setting of the BMC, with its remedy in
// the BMC's own terms (internal/audit's findings; see
// docs/security-audit.md).
type SecurityFinding struct {
	Code    string `json:"code"`
	Subject string `json:"subject,omitempty"`
	Message string `json:"message"`
	Remedy  string `json:"remedy"`
	// Source: "audit" (the latest security audit) or "check" (the fresh
	// check's authentication capabilities).
	Source string `json:"source"`
}

// Account is the OOB account diagnosed (never its password).
type Account struct {
	ID          int64  `json:"id"`
	Address     string `json:"address"` // host:port
	User        string `json:"user"`
	Privilege   string `json:"privilege"`
	CipherSuite int    `json:"cipher_suite"` // 0: automatic
	// Protocol is the account's protocol ("ipmi", "redfish"; "" counts as
	// ipmi).
	Protocol string `json:"protocol,omitempty"`
	// Endpoint is where the check was sent.
	Endpoint store.Endpoint `json:"-"`
}

// Redfish reports whether the channel is a Redfish one: the IPMI-only
// steps (presence pings, the enclosure manager, cipher suites, the session
// table, sampled pre-login requests) do not apply to it.
func (a Account) Redfish() bool { return a.Protocol == "redfish" }

// service names the channel's management service for the operator.
func (a Account) service() string {
	if a.Redfish() {
		return "Redfish (HTTPS)"
	}
	return "IPMI"
}

// History is what the inventory and the stored states say about the
// channel's past.
type History struct {
	// The declared state the monitor holds, and since when.
	Stored           state.OOB         `json:"stored"`
	StoredReason     state.Reason      `json:"stored_reason,omitempty"`
	StoredConditions []state.Condition `json:"stored_conditions,omitempty"`
	StoredSince      time.Time         `json:"stored_since,omitzero"`
	// CheckedAt is the monitor's last check; for a refused account, the
	// last refusal.
	CheckedAt time.Time `json:"checked_at,omitzero"`
	// LastConnectable is the last time the channel was known Connectable
	// (zero: never). With LeftConnectable it is when the check that first
	// failed ran: the channel worked until shortly before.
	LastConnectable time.Time `json:"last_connectable,omitzero"`
	LeftConnectable bool      `json:"left_connectable,omitempty"`
	// EditGrace: a change at most this long before the first failed check
	// is taken as its cause (the monitor checks at once after an edit,
	// and otherwise not before its interval).
	EditGrace time.Duration `json:"edit_grace,omitempty"`
	// RefusedFirst is the reason the BMC first gave when it started
	// refusing the account (the transition into NotAuthenticated).
	RefusedFirst state.Reason `json:"refused_first,omitempty"`
	// CredentialsChangedAt: the account's user or password was edited.
	CredentialsChangedAt time.Time `json:"credentials_changed_at,omitzero"`
	// AddressChangedAt and OldAddress: the account's last address edit.
	AddressChangedAt time.Time `json:"address_changed_at,omitzero"`
	OldAddress       string    `json:"old_address,omitempty"`
	// HardwareChangedAt and HardwareChange: the last adoption, replacement
	// or re-registration of the machine.
	HardwareChangedAt time.Time `json:"hardware_changed_at,omitzero"`
	HardwareChange    string    `json:"hardware_change,omitempty"`
	// Manufacturer and ProductID the BMC reported when it was last
	// Connectable (0: unknown).
	ManufacturerID uint32 `json:"manufacturer_id,omitempty"`
	ProductID      uint16 `json:"product_id,omitempty"`
}

// Blade locates a blade.
type Blade struct {
	Enclosure string `json:"enclosure"`
	Slot      int    `json:"slot"`
	// EMAddress is the enclosure manager's host:port; "" when the
	// enclosure is not in the inventory.
	EMAddress string `json:"em_address,omitempty"`
	// EMCredentials: the inventory holds a user and password for it.
	EMCredentials bool `json:"em_credentials"`
	// Kind is how the enclosure manager is asked about the blade: "ipmb"
	// (standard IPMI bridging to the blade's controller at IPMB), "oem"
	// (lightsout's NetFn 0x30 enclosure commands) or "redfish" (the
	// manager's Redfish Chassis: Links.Contains, the blade's Status,
	// PowerState and LocationIndicatorActive).
	Kind string `json:"kind,omitempty"`
	// IPMB is the blade's controller's IPMB address (kind ipmb; 0 with
	// IPMBErr when the enclosure's rule gives none for the slot).
	IPMB    byte   `json:"ipmb,omitempty"`
	IPMBErr string `json:"ipmb_error,omitempty"`
	// Guessed: the enclosure is recorded as oem, its manager refused
	// lightsout's commands (Refused says how), and standard bridging at the
	// default rule reached its blades' controllers: the blade was asked
	// that way instead.
	Guessed string `json:"guessed,omitempty"`
}

// ipmb reports whether the blade is asked about by standard bridging.
func (b *Blade) ipmb() bool { return b != nil && b.Kind == "ipmb" }

// Reach is whether something answered a presence ping.
type Reach struct {
	Address  string  `json:"address"`
	Answered bool    `json:"answered"`
	RTTMS    float64 `json:"rtt_ms,omitempty"`
	Err      string  `json:"error,omitempty"`
}

// Siblings are the other blades of the enclosure, pinged.
type Siblings struct {
	Tried    int      `json:"tried"`
	Answered int      `json:"answered"`
	Silent   []string `json:"silent,omitempty"`
	Answers  []string `json:"answers,omitempty"`
}

// BladeView is the enclosure manager's status of the blade's slot.
type BladeView struct {
	Status vocab.BladeStatus `json:"status"`
	Err    string            `json:"error,omitempty"`

	// Through standard bridging (kind ipmb): PowerKnown says whether
	// Status.PowerOn was read (only a controller that is a chassis device
	// answers Get Chassis Status); Device describes the controller that
	// answered Get Device ID.
	PowerKnown bool   `json:"power_known,omitempty"`
	Device     string `json:"device,omitempty"`
	// Chassis is the blade's Redfish Chassis (kind redfish).
	Chassis string `json:"chassis,omitempty"`
	// Refused: the enclosure manager logged us in but refused the request
	// (Send Message, or an OEM enclosure command: not supported, invalid
	// data or channel, insufficient privilege); it names the request and
	// the completion code. A finding about that request, not about the
	// account.
	// LoggedIn: the enclosure manager accepted its account (what failed
	// after that is not about the account).
	LoggedIn    bool   `json:"logged_in,omitempty"`
	Refused     string `json:"refused,omitempty"`
	RefusedCode byte   `json:"refused_code,omitempty"`
	// Silence says how the controller did not answer: a NAK on the IPMB
	// (nothing acknowledged its address), a bus error, or no answer.
	Silence string `json:"silence,omitempty"`
	// SiblingsTried and SiblingsAnswered: the other blades' controllers
	// asked over the same IPMB when this one did not answer.
	SiblingsTried    int `json:"siblings_tried,omitempty"`
	SiblingsAnswered int `json:"siblings_answered,omitempty"`
}

// Identify is the identify-lamp step: lit through the enclosure manager,
// then read back (and turned off again).
type Identify struct {
	Lit bool   `json:"lit"`
	Err string `json:"error,omitempty"`
}

// OldAddress is what answers at the address the account had before its
// last edit.
type OldAddress struct {
	Address  string `json:"address"`
	Answered bool   `json:"answered"`
	// Ours: it answers with this machine's registered GUID.
	Ours bool   `json:"ours"`
	GUID string `json:"guid,omitempty"`
	Err  string `json:"error,omitempty"`
}

// Subnet counts the other channels on the same subnet by state.
type Subnet struct {
	Prefix        string `json:"prefix"`
	Peers         int    `json:"peers"`
	NotResponding int    `json:"not_responding"`
}

// Owner is the registered machine whose GUID answered (Name "" if none).
type Owner struct {
	Name      string `json:"name,omitempty"`
	AccountID int64  `json:"account_id,omitempty"`
	Address   string `json:"address,omitempty"`
}

// SwapCheck is what answers at the owner's address.
type SwapCheck struct {
	GUID string `json:"guid,omitempty"`
	// At is the owner's account's endpoint that was checked.
	At store.Endpoint `json:"-"`
	// Ours: the owner's address answers with this machine's GUID.
	Ours bool   `json:"ours"`
	Err  string `json:"error,omitempty"`
}

// Suites are the cipher suites the BMC offers.
type Suites struct {
	Offered []int  `json:"offered"`
	Err     string `json:"error,omitempty"`
}

// SuiteTry is one login with another cipher suite.
type SuiteTry struct {
	Suite int    `json:"suite"`
	OK    bool   `json:"ok"`
	Err   string `json:"error,omitempty"`
}

// SessionsFacts is the BMC's session table as one of our sessions sees it.
type SessionsFacts struct {
	// Got: a session could be opened (after Attempts tries over Waited).
	Got      bool          `json:"got"`
	Attempts int           `json:"attempts"`
	Waited   time.Duration `json:"waited"`
	Err      string        `json:"error,omitempty"`
	Slots    int           `json:"slots,omitempty"`
	Active   int           `json:"active,omitempty"`
	// Self is the session this diagnosis opened; Others every other one.
	Self   HeldSession   `json:"self"`
	Others []HeldSession `json:"others,omitempty"`
}

// HeldSession is one entry of a BMC's session table.
type HeldSession struct {
	Handle byte `json:"handle"`
	// ID is a Redfish session's Id (IPMI sessions have a Handle), URI
	// its address (what is DELETEd to close it).
	ID        string `json:"id,omitempty"`
	URI       string `json:"uri,omitempty"`
	User      string `json:"user,omitempty"` // name, or "user N"
	UserID    byte   `json:"user_id"`
	Privilege string `json:"privilege,omitempty"`
	Console   string `json:"console,omitempty"` // address:port; "" when not reported
	// SameHost: from the address our own session comes from; SameUser:
	// logged in as the account's user.
	SameHost bool `json:"same_host"`
	SameUser bool `json:"same_user"`
	// Ours: from one of this manager's own sockets (address and port) —
	// the diagnosis's own session or one our retransmitted handshakes
	// left half-open.
	Ours bool `json:"ours,omitempty"`
	// Instance: from the source address of another lightsout instance
	// sharing the database (docs/scale-out.md); InstanceLive: its lease
	// was valid. A dead instance's session is one a kill -9 left open
	// in the middle of a check.
	Instance     string `json:"instance,omitempty"`
	InstanceLive bool   `json:"instance_live,omitempty"`
}

// Whose says whose session h is, as the census shows it: "ours" (this
// manager's own socket or session), "this host as this account's user",
// or "another console".
func (h HeldSession) Whose() string {
	switch {
	case h.Ours:
		return "ours"
	case h.Instance != "" && h.InstanceLive:
		return "lightsout instance " + h.Instance + "'s"
	case h.Instance != "":
		return "lightsout instance " + h.Instance + "'s, left open when it died"
	case !h.foreign():
		return "this host as this account's user"
	}
	return "another console"
}

// foreign reports whether h is another console's: not from this
// manager's sockets, and either from another address or, when the BMC
// does not report the address, under another user.
func (h HeldSession) foreign() bool {
	if h.Ours || h.Instance != "" {
		return false
	}
	if h.Console == "" {
		return !h.SameUser
	}
	return !h.SameHost || !h.SameUser
}

// Rates are a channel's timeout and retry figures over a window. The
// events package computes them from every check the monitor makes (a
// RateSource); without one the executor samples the BMC.
type Rates struct {
	Window      time.Duration `json:"window"`
	Requests    int           `json:"requests"`
	Timeouts    int           `json:"timeouts"`
	Retransmits int           `json:"retransmits"`
	Source      string        `json:"source"`
	Err         string        `json:"error,omitempty"`
}

// TimeoutRate is timeouts per request (0 with no requests).
func (r Rates) TimeoutRate() float64 {
	if r.Requests == 0 {
		return 0
	}
	return float64(r.Timeouts) / float64(r.Requests)
}

// RetryRate is retransmissions per request.
func (r Rates) RetryRate() float64 {
	if r.Requests == 0 {
		return 0
	}
	return float64(r.Retransmits) / float64(r.Requests)
}

// Fleet is how the channel's condition spreads over the machines that
// share something with it.
type Fleet struct {
	Spreads []Spread `json:"spreads"`
	Err     string   `json:"error,omitempty"`
}

// Spread counts, among the other channels sharing Value along Dimension
// (enclosure, subnet, firmware), those with the same trouble.
type Spread struct {
	Dimension string `json:"dimension"`
	Value     string `json:"value"`
	Peers     int    `json:"peers"`
	Affected  int    `json:"affected"`
}
