package vocab

import "net/netip"

// AuthCaps is the answer to Get Channel Authentication Capabilities: what
// the BMC accepts before any session, and the first evidence for the
// security audit.
type AuthCaps struct {
	Channel byte `json:"channel"`
	// IPMI 1.5 authentication types offered.
	AuthNone     bool `json:"auth_none"`
	AuthMD2      bool `json:"auth_md2"`
	AuthMD5      bool `json:"auth_md5"`
	AuthStraight bool `json:"auth_straight_password"`
	AuthOEM      bool `json:"auth_oem"`
	// Login status.
	KGNonZero       bool   `json:"kg_set"`
	PerMsgAuthOff   bool   `json:"per_message_auth_disabled"`
	UserLevelAuthOf bool   `json:"user_level_auth_disabled"`
	NonNullUsers    bool   `json:"non_null_users"`
	NullUsers       bool   `json:"null_users"`
	Anonymous       bool   `json:"anonymous_login"`
	IPMI15          bool   `json:"ipmi15"`
	IPMI20          bool   `json:"ipmi20"`
	OEMID           uint32 `json:"oem_id"`
}

// ChassisStatus is the answer to Get Chassis Status.
type ChassisStatus struct {
	PowerOn       bool   `json:"power_on"`
	PowerOverload bool   `json:"power_overload,omitempty"`
	PowerFault    bool   `json:"power_fault,omitempty"`
	ControlFault  bool   `json:"control_fault,omitempty"`
	RestorePolicy string `json:"restore_policy"`
	Intrusion     bool   `json:"intrusion,omitempty"`
	Identify      string `json:"identify,omitempty"` // off, timed, on; empty if not reported
}

// BladeStatus is an enclosure manager's view of one slot.
type BladeStatus struct {
	Slot    int  `json:"slot"`
	Present bool `json:"present"`
	// BMCAnswers: the blade's BMC answers the enclosure manager over the
	// enclosure's internal link. When false, the power state is unknown
	// (the manager's console shows the blade's power lamp as unknown).
	BMCAnswers bool `json:"bmc_answers"`
	PowerOn    bool `json:"power_on"`
}

// Stage names a step of talking to a BMC.
type Stage string

const (
	StagePing        Stage = "presence_ping"
	StageAuthCaps    Stage = "auth_capabilities"
	StageOpenSession Stage = "open_session"
	StageRAKP1       Stage = "rakp1_2"
	StageRAKP3       Stage = "rakp3_4"
	StageCommand     Stage = "command"
	StageClose       Stage = "close_session"
)

// Conflict is a handshake request that drew an unauthenticated refusal
// (an error status, or a proof that did not verify) and a verified answer:
// one of them was forged, or mangled on the way. The verified one is taken.
type Conflict struct {
	Stage Stage `json:"stage"`
	// Refusal is what the unverified reply said.
	Refusal string `json:"refusal"`
	// From is the unverified reply's source, Verified the verified one's
	// (the same address when the forger spoofs the BMC's).
	From     netip.AddrPort `json:"from"`
	Verified netip.AddrPort `json:"verified_from"`
}
