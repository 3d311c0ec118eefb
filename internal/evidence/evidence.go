// Package evidence is what a check of one channel found (Observation) and
// saw (Evidence), for the operator, the monitor and the diagnosis: the
// probers (internal/probe) fill it, the diagnosis (internal/diag) reasons
// over it. It does no I/O and imports nothing that does, so the
// diagnosis's trees stay pure as a package. Package probe keeps aliases
// (probe.Observation, probe.Evidence, probe.Loss, probe.RedfishEvidence);
// this package is canonical.
package evidence

import (
	"fmt"
	"time"

	"github.com/lightsout/lightsout/internal/guid"
	"github.com/lightsout/lightsout/internal/ipmi/vocab"
	"github.com/lightsout/lightsout/internal/state"
)

// Evidence is what the check saw, for the operator and for diagnosis.
type Evidence struct {
	PingAnswered bool               `json:"ping_answered"`
	PingRTTMS    float64            `json:"ping_rtt_ms,omitempty"`
	RTTMS        map[string]float64 `json:"rtt_ms,omitempty"` // per stage
	FailedStage  string             `json:"failed_stage,omitempty"`
	RMCPStatus   int                `json:"rmcp_status,omitempty"`
	Attempts     int                `json:"attempts,omitempty"`
	Error        string             `json:"error,omitempty"`

	// PingSkipped: the BMC is known not to answer the presence ping
	// (learned profile), so none was sent.
	PingSkipped bool `json:"ping_skipped,omitempty"`

	AuthCaps    *vocab.AuthCaps `json:"auth_caps,omitempty"`
	CipherSuite int             `json:"cipher_suite,omitempty"`
	// SuiteWhy says why CipherSuite was used (or, on failure, what was
	// offered and tried); Negotiation has the details.
	SuiteWhy    string             `json:"cipher_suite_why,omitempty"`
	Negotiation *vocab.Negotiation `json:"negotiation,omitempty"`
	// Profile is what is known about the BMC after this check: the suite
	// that works and the quirks seen (kept in the store by the monitor).
	Profile *vocab.Profile `json:"profile,omitempty"`
	// Quirks names the BMC quirks this check met and worked around.
	Quirks []string `json:"quirks,omitempty"`
	// AuthCapsContradicted lists what Get Channel Authentication
	// Capabilities claimed and the session then proved wrong (quirk
	// auth_caps_misreported).
	AuthCapsContradicted []string `json:"auth_caps_contradicted,omitempty"`
	Insecure             []string `json:"insecure,omitempty"`

	Manufacturer   string               `json:"manufacturer,omitempty"`
	ManufacturerID uint32               `json:"manufacturer_id,omitempty"`
	ProductID      uint16               `json:"product_id,omitempty"`
	Firmware       string               `json:"firmware,omitempty"`
	IPMIVersion    string               `json:"ipmi_version,omitempty"`
	Chassis        *vocab.ChassisStatus `json:"chassis,omitempty"`
	Power          string               `json:"power,omitempty"` // on | off
	GUID           *guid.Renderings     `json:"guid,omitempty"`
	GUIDSource     string               `json:"guid_source,omitempty"` // get_system_guid | rakp2 | redfish_system_uuid
	// GUIDLayout is the layout Observation.GUID is rendered in; the BMC's
	// own layout is GUID.Layout (detected_layout).
	GUIDLayout guid.Layout `json:"guid_layout,omitempty"`
	// GUIDMatch says whether the reported GUID is the registered one
	// (absent when none is registered).
	GUIDMatch *bool `json:"guid_match,omitempty"`

	// Requests are the exchanges the check made (a retransmission is not
	// a new request), Retransmits their retransmissions, Timeouts the
	// exchanges that gave up (the engine's per-BMC counters over the
	// check; another user of the engine on the same BMC meanwhile counts
	// too).
	Requests    uint32 `json:"requests,omitempty"`
	Retransmits uint32 `json:"retransmits,omitempty"`
	Timeouts    uint32 `json:"timeouts,omitempty"`
	// Excused are the retransmissions and time-outs that say nothing about
	// the path: of a Close Session the BMC does not answer (LAN Session
	// #1). Loss estimates leave them out.
	Excused uint32 `json:"excused,omitempty"`
	// Loss is the channel's loss over its recent checks, as the monitor
	// measures it from the counters above (nil: not measured, or too few
	// datagrams to say).
	Loss *Loss `json:"loss,omitempty"`

	// ConflictingReplies are login steps that drew an unauthenticated
	// refusal and a verified answer (the verified one was taken): a sign
	// of a forger on the path (event oob.conflicting_replies).
	ConflictingReplies []vocab.Conflict `json:"conflicting_replies,omitempty"`

	// Redfish is what a Redfish check saw (nil for IPMI).
	Redfish *RedfishEvidence `json:"redfish,omitempty"`
}

// Loss is a channel's datagram loss over a window of checks: Sent datagrams
// (requests and their retransmissions), of which Lost went unanswered
// (each retransmission follows one, each exchange that gave up ends with
// one), over Checks checks.
type Loss struct {
	Sent   uint32  `json:"sent"`
	Lost   uint32  `json:"lost"`
	Checks int     `json:"checks"`
	Rate   float64 `json:"rate"` // Lost/Sent, 0..1
}

// String is the loss as an operator reads it.
func (l Loss) String() string {
	return fmt.Sprintf("%.0f%% of %d datagrams lost over the last %d checks", 100*l.Rate, l.Sent, l.Checks)
}

// RedfishEvidence is what a Redfish check saw.
type RedfishEvidence struct {
	// Statuses are the HTTP status codes, in order ("GET /redfish/v1 200").
	Statuses     []string `json:"statuses,omitempty"`
	TLSVersion   string   `json:"tls_version,omitempty"`
	TLSResumed   bool     `json:"tls_resumed,omitempty"`
	TLSGroup     string   `json:"tls_group,omitempty"` // key exchange of a full handshake (CurveP256)
	CertSHA256   string   `json:"cert_sha256,omitempty"`
	PinnedSHA256 string   `json:"pinned_sha256,omitempty"`
	CertSubject  string   `json:"cert_subject,omitempty"`
	CertExpires  string   `json:"cert_expires,omitempty"`
	// Auth is how the check authenticated (session, basic) and AuthWhy
	// why: forced by the account, learned from an earlier check, what the
	// service root links, or a session creation refused with 404/405/501.
	Auth          string `json:"auth,omitempty"`
	AuthWhy       string `json:"auth_why,omitempty"`
	SessionReused bool   `json:"session_reused,omitempty"`
	// SessionExpired: a kept session was refused, and a new one opened.
	SessionExpired bool `json:"session_expired,omitempty"`
	// Learned is, for an auto account, the authentication the next check
	// starts from ("": it is learned again), for the monitor to keep with
	// the BMC's profile (Target.RedfishLearned after a restart).
	Learned string `json:"learned,omitempty"`
	// LearnedSystem: a one-shot check read this System directly, as an
	// earlier run learned it (one request); LearnedFallback says why what
	// an earlier run learned was not used and the full check followed.
	LearnedSystem   string `json:"learned_system,omitempty"`
	LearnedFallback string `json:"learned_fallback,omitempty"`
	// The failed request, and what the service said.
	FailedURL  string   `json:"failed_url,omitempty"`
	HTTPStatus int      `json:"http_status,omitempty"`
	MessageIDs []string `json:"message_ids,omitempty"`
	RetryAfter string   `json:"retry_after,omitempty"`
	// NoSessions: a session login was required (redfish_auth: session)
	// but the service offers none.
	NoSessions bool `json:"no_sessions,omitempty"`

	UUID        string `json:"uuid,omitempty"` // as the service reported it
	PowerState  string `json:"power_state,omitempty"`
	Model       string `json:"model,omitempty"`
	BIOSVersion string `json:"bios_version,omitempty"`
	LoggedOut   bool   `json:"logged_out,omitempty"`
}

// Observation is the result of one check.
type Observation struct {
	Name       string            `json:"name"`
	Host       string            `json:"host"`
	Protocol   string            `json:"protocol"`
	State      state.OOB         `json:"state"`
	Reason     state.Reason      `json:"reason,omitempty"`
	Conditions []state.Condition `json:"conditions,omitempty"`
	// Message says what happened in the operator's words.
	Message string `json:"message"`
	// GUID is what the BMC reported, rendered in the layout the registered
	// GUID is written in when they match (so equal GUIDs print equal), else
	// in the operator's last-seen layout or the BMC's own (Evidence.GUIDLayout).
	GUID string `json:"guid,omitempty"`
	// Expected is the registered GUID as the operator registered it.
	Expected  string    `json:"expected_guid,omitempty"`
	ElapsedMS float64   `json:"elapsed_ms"`
	At        time.Time `json:"at"`
	Evidence  Evidence  `json:"evidence"`
	// Err is the underlying error, for errors.Is/As by callers; not
	// serialized (Evidence.Error has its text).
	Err error `json:"-"`
}
