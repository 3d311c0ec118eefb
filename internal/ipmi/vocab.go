package ipmi

// The IPMI vocabulary lives in internal/ipmi/vocab, which does no I/O, so
// that the pure cores can name it; package vocab is canonical and these
// are its aliases (as os.FileMode is of fs.FileMode), so the engine and
// its callers read as before.

import "github.com/lightsout/lightsout/internal/ipmi/vocab"

type (
	AuthCaps      = vocab.AuthCaps
	BladeStatus   = vocab.BladeStatus
	ChassisStatus = vocab.ChassisStatus
	CipherSuite   = vocab.CipherSuite
	Conflict      = vocab.Conflict
	IPMBRule      = vocab.IPMBRule
	Negotiation   = vocab.Negotiation
	Privilege     = vocab.Privilege
	Profile       = vocab.Profile
	Quirk         = vocab.Quirk
	Stage         = vocab.Stage
	SuiteTry      = vocab.SuiteTry
)

const (
	DefaultIPMBRule        = vocab.DefaultIPMBRule
	PrivilegeAdministrator = vocab.PrivilegeAdministrator
	PrivilegeCallback      = vocab.PrivilegeCallback
	PrivilegeOperator      = vocab.PrivilegeOperator
	PrivilegeUser          = vocab.PrivilegeUser
	QuirkAuthCaps          = vocab.QuirkAuthCaps
	QuirkBadChecksum       = vocab.QuirkBadChecksum
	QuirkCipherTags        = vocab.QuirkCipherTags
	QuirkCounterProposal   = vocab.QuirkCounterProposal
	QuirkExactPrivilege    = vocab.QuirkExactPrivilege
	QuirkICVCipher0        = vocab.QuirkICVCipher0
	QuirkNoCloseReply      = vocab.QuirkNoCloseReply
	QuirkNoPing            = vocab.QuirkNoPing
	QuirkNoSuiteList       = vocab.QuirkNoSuiteList
	QuirkNoSystemGUID      = vocab.QuirkNoSystemGUID
	QuirkPrivilegeShift    = vocab.QuirkPrivilegeShift
	QuirkRAKP2GUID         = vocab.QuirkRAKP2GUID
	QuirkRAKP2Length       = vocab.QuirkRAKP2Length
	QuirkSeqGaps           = vocab.QuirkSeqGaps
	QuirkStaleSession      = vocab.QuirkStaleSession
	QuirkStatus01          = vocab.QuirkStatus01
	StageAuthCaps          = vocab.StageAuthCaps
	StageClose             = vocab.StageClose
	StageCommand           = vocab.StageCommand
	StageOpenSession       = vocab.StageOpenSession
	StagePing              = vocab.StagePing
	StageRAKP1             = vocab.StageRAKP1
	StageRAKP3             = vocab.StageRAKP3
)

// DefaultSuites is vocab.DefaultSuites (the same slice).
var DefaultSuites = vocab.DefaultSuites

var (
	LearnedPrivilege = vocab.LearnedPrivilege
	ParseIPMBRule    = vocab.ParseIPMBRule
	ParsePrivilege   = vocab.ParsePrivilege
	ParseQuirks      = vocab.ParseQuirks
	PrivilegeOf      = vocab.PrivilegeOf
)

// privShift and learnedPrivilege: the learned maximum privilege in the top
// bits of a Quirk word, which the session updates in place.
const privShift = vocab.QuirkPrivilegeShift

func learnedPrivilege(q uint32) Privilege { return vocab.LearnedPrivilege(q) }
