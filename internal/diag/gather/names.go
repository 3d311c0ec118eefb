package gather

// The diagnosis's names, so that the executor reads as it did inside
// package diag. Package diag is canonical: these are aliases of its facts,
// needs, causes and actions (as os.FileMode is of fs.FileMode); callers
// outside this package use diag's names.

import (
	"time"

	"github.com/lightsout/lightsout/internal/diag"
)

type (
	Account         = diag.Account
	Action          = diag.Action
	ActionKind      = diag.ActionKind
	AgentFacts      = diag.AgentFacts
	Blade           = diag.Blade
	BladeView       = diag.BladeView
	Diagnosis       = diag.Diagnosis
	Facts           = diag.Facts
	Fleet           = diag.Fleet
	HeldSession     = diag.HeldSession
	History         = diag.History
	Identify        = diag.Identify
	Loss            = diag.Loss
	Need            = diag.Need
	OldAddress      = diag.OldAddress
	Owner           = diag.Owner
	Privilege       = diag.Privilege
	Rates           = diag.Rates
	Reach           = diag.Reach
	SecurityFinding = diag.SecurityFinding
	SessionsFacts   = diag.SessionsFacts
	Siblings        = diag.Siblings
	Spread          = diag.Spread
	Subnet          = diag.Subnet
	SuiteTry        = diag.SuiteTry
	Suites          = diag.Suites
	SwapCheck       = diag.SwapCheck
)

const (
	ActReEnroll       = diag.ActReEnroll
	ActRefreshTrust   = diag.ActRefreshTrust
	ActRenewCerts     = diag.ActRenewCerts
	ActRestartLink    = diag.ActRestartLink
	ActRestartSession = diag.ActRestartSession
	CauseIncomplete   = diag.CauseIncomplete
	Low               = diag.Low
	NeedBladeView     = diag.NeedBladeView
	NeedEM            = diag.NeedEM
	NeedFleet         = diag.NeedFleet
	NeedIdentify      = diag.NeedIdentify
	NeedLoss          = diag.NeedLoss
	NeedOldAddress    = diag.NeedOldAddress
	NeedOwner         = diag.NeedOwner
	NeedPrivilege     = diag.NeedPrivilege
	NeedRates         = diag.NeedRates
	NeedSessions      = diag.NeedSessions
	NeedSiblings      = diag.NeedSiblings
	NeedSubnet        = diag.NeedSubnet
	NeedSuiteTry      = diag.NeedSuiteTry
	NeedSuites        = diag.NeedSuites
	NeedSwapCheck     = diag.NeedSwapCheck
)

var (
	Decide         = diag.Decide
	DecideAgent    = diag.DecideAgent
	SuiteCandidate = diag.SuiteCandidate
)

func nonEmpty(s, def string) string { return diag.NonEmpty(s, def) }

func when(t time.Time) string { return diag.When(t) }

func reasonSuffix(r string) string { return diag.ReasonSuffix(r) }

// maxRounds is diag.MaxRounds, where the trees that it bounds live.
const maxRounds = diag.MaxRounds
