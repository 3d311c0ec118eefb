package gather

import (
	"slices"
	"time"

	"github.com/lightsout/lightsout/internal/agent"
	"github.com/lightsout/lightsout/internal/agentstate"
	"github.com/lightsout/lightsout/internal/diag"
	"github.com/lightsout/lightsout/internal/state"
)

// Fixtures as in package diag's tests (agents_test.go, trees_test.go), and
// the names of diag the executor's tests use.

const day = 24 * time.Hour

// upAgent is a healthy Up agent with a healthy in-band host link.
func upAgent() agent.Status {
	return agent.Status{ID: 1, Name: "web-1", State: agent.Up, Since: t0.Add(-time.Hour), Version: "0.5.0",
		Capabilities: slices.Clone(agent.Ops), Address: "10.0.0.11", LastHeartbeat: t0.Add(-2 * time.Second),
		CertNotAfter: t0.Add(200 * day),
		Link: &agent.LinkStatus{State: agent.LinkUp, Path: agent.PathInBand, Address: "/dev/ipmi0",
			CertNotAfter: t0.Add(300 * day), Checked: t0.Add(-time.Minute)}}
}

func facts(st agent.Status) AgentFacts {
	return AgentFacts{Status: st, Now: t0, ManagerVersion: "0.5.0"}
}

func with(mod func(*agent.Status)) AgentFacts {
	st := upAgent()
	mod(&st)
	return facts(st)
}

// pending and down make an agent's status with the reason the hub would
// give it: its code and its message (which the trees do not parse).
func pending(code agentstate.ReasonCode, reason string) AgentFacts {
	return facts(agent.Status{ID: 3, Name: "db-1", State: agent.PendingUp, Reason: reason, Code: code, Since: t0.Add(-3 * time.Minute),
		Version: "0.5.0", Address: "10.0.0.13", LastHeartbeat: t0.Add(-time.Hour)})
}

func down(code agentstate.ReasonCode, reason string, hb time.Time) AgentFacts {
	return facts(agent.Status{ID: 2, Name: "web-2", State: agent.Down, Reason: reason, Code: code, Since: t0.Add(-41 * time.Second),
		Version: "0.5.0", Address: "10.0.0.12", LastHeartbeat: hb})
}

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

type (
	Cause      = diag.Cause
	Confidence = diag.Confidence
)

const (
	ActAdopt                 = diag.ActAdopt
	ActSwapAddresses         = diag.ActSwapAddresses
	CauseAddressReused       = diag.CauseAddressReused
	CauseAddressesSwapped    = diag.CauseAddressesSwapped
	CauseAgentDown           = diag.CauseAgentDown
	CauseAgentLinkNotTrusted = diag.CauseAgentLinkNotTrusted
	CauseBMCFailed           = diag.CauseBMCFailed
	ActCloseSessions         = diag.ActCloseSessions
	CauseTLSError            = diag.CauseTLSError
	CauseAuthRejected        = diag.CauseAuthRejected
	CauseCertChanged         = diag.CauseCertChanged
	CauseRedfishDown         = diag.CauseRedfishDown
	CauseBMCHung             = diag.CauseBMCHung
	CauseCompetingConsoles   = diag.CauseCompetingConsoles
	CauseSessionTableFull    = diag.CauseSessionTableFull
	CauseStaleOwnSessions    = diag.CauseStaleOwnSessions
	CauseBladeBMC            = diag.CauseBladeBMC
	CauseBladeLAN            = diag.CauseBladeLAN
	CauseCompetingPollers    = diag.CauseCompetingPollers
	CauseEMBMCPath           = diag.CauseEMBMCPath
	CauseEMCard              = diag.CauseEMCard
	CauseEnclosureDown       = diag.CauseEnclosureDown
	CauseEnclosureTray       = diag.CauseEnclosureTray
	CauseHealthy             = diag.CauseHealthy
	CauseIPMI15Only          = diag.CauseIPMI15Only
	CauseMotherboardReplaced = diag.CauseMotherboardReplaced
	CausePacketLoss          = diag.CausePacketLoss
	CausePasswordChanged     = diag.CausePasswordChanged
	CausePasswordEditWrong   = diag.CausePasswordEditWrong
	CausePrivilegeTooLow     = diag.CausePrivilegeTooLow
	High                     = diag.High
	Medium                   = diag.Medium
)
