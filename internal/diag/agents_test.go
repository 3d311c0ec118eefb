package diag

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/agent"
	"github.com/lightsout/lightsout/internal/agentstate"
)

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

type agentCase struct {
	name     string
	f        AgentFacts
	cause    Cause
	conf     Confidence
	actions  []ActionKind
	evidence []string // substrings some evidence line must hold
	summary  string   // substring of the summary
}

func agentCases() []agentCase {
	return []agentCase{
		// Healthy.
		{name: "healthy", f: facts(upAgent()), cause: CauseHealthy, conf: High,
			evidence: []string{"state: Up since", "last heartbeat: 2026-11-21 09:59:58 UTC (2s ago)", "agent certificate expires on 2027-06-09 10:00:00 UTC (200 days left)", "host link: Up on inband to /dev/ipmi0", "link certificate expires"}},
		{name: "healthy without a link", f: with(func(s *agent.Status) { s.Link = nil }), cause: CauseHealthy, conf: High,
			summary: "reports no host link", evidence: []string{"host link: not reported by the agent"}},
		{name: "healthy on ipv6 by choice", f: with(func(s *agent.Status) { s.Link.Path = agent.PathIPv6 }), cause: CauseHealthy, conf: High},
		{name: "healthy link not checked yet", f: with(func(s *agent.Status) { s.Link = &agent.LinkStatus{State: agent.LinkUnknown} }), cause: CauseHealthy, conf: High,
			evidence: []string{"host link: Unknown"}},
		{name: "timeouts below the flood", f: with(func(s *agent.Status) { s.Link.Timeouts, s.Link.TimeoutRate = 40, 9.9 }), cause: CauseHealthy, conf: High,
			evidence: []string{"link timeouts: 40 since the agent started, 9.9/min"}},
		{name: "cert 30 days + 1s", f: with(func(s *agent.Status) { s.CertNotAfter = t0.Add(30*day + time.Second) }), cause: CauseHealthy, conf: High,
			evidence: []string{"30 days left"}},
		{name: "link cert 30 days + 1s", f: with(func(s *agent.Status) { s.Link.CertNotAfter = t0.Add(30*day + time.Second) }), cause: CauseHealthy, conf: High},

		// Zero value and unknown states.
		{name: "zero status", f: AgentFacts{}, cause: CauseNotChecked, conf: Low,
			evidence: []string{"state: none", "last heartbeat: never"}},
		{name: "unknown state", f: facts(agent.Status{ID: 9, Name: "x", State: "Weird"}), cause: CauseNotChecked, conf: Low},

		// PendingUp.
		{name: "untrusted host", f: pending(agentstate.NotTrusted, "address not in the trusted host list (10.0.0.0/24)"), cause: CauseAgentUntrustedHost, conf: High,
			evidence: []string{"state: PendingUp (address not in the trusted host list (10.0.0.0/24)) since"}},
		{name: "revoked", f: pending(agentstate.Revoked, agent.ReasonRevoked), cause: CauseAgentCertRevoked, conf: High, actions: []ActionKind{ActReEnroll},
			evidence: []string{"(certificate revoked)", "address: 10.0.0.13"}},
		{name: "revoked flag wins over another reason", f: func() AgentFacts {
			f := pending(agentstate.UnknownCert, agent.ReasonUnknownCert)
			f.Status.Revoked = true
			return f
		}(), cause: CauseAgentCertRevoked, conf: High, actions: []ActionKind{ActReEnroll}, evidence: []string{"revoked in the store"}},
		{name: "unknown cert", f: pending(agentstate.UnknownCert, agent.ReasonUnknownCert), cause: CauseAgentUnknownCert, conf: Medium, actions: []ActionKind{ActReEnroll},
			evidence: []string{"CA was replaced"}},
		{name: "unknown cert, unplaced peer", f: facts(agent.Status{ID: 0, Name: "?", State: agent.PendingUp, Reason: agent.ReasonUnknownCert, Code: agentstate.UnknownCert, Address: "10.9.9.9:51234", Since: t0}),
			cause: CauseAgentUnknownCert, conf: Medium, actions: []ActionKind{ActReEnroll},
			summary: "the unplaced peer at 10.9.9.9:51234", evidence: []string{"the unplaced peer at 10.9.9.9:51234, state: PendingUp", "last heartbeat: never"}},
		{name: "no client cert, unplaced peer", f: facts(agent.Status{ID: 0, Name: "?", State: agent.PendingUp, Reason: agent.ReasonNoCert, Code: agentstate.NoCert, Address: "10.9.9.8:40000"}),
			cause: CauseAgentNoClientCert, conf: Medium, summary: "unplaced peer at 10.9.9.8:40000"},
		{name: "cert expired", f: pending(agentstate.CertExpired, agent.ReasonExpired), cause: CauseAgentCertExpired, conf: High, actions: []ActionKind{ActReEnroll}},
		// The reasons exactly as the hub words them (a prefix and details).
		{name: "unknown cert, hub's wording", f: pending(agentstate.UnknownCert, agent.ReasonUnknownCert+" (not issued by this manager: enroll the agent again with a join token)"),
			cause: CauseAgentUnknownCert, conf: Medium, actions: []ActionKind{ActReEnroll}},
		{name: "unknown cert, verification detail", f: pending(agentstate.UnknownCert, agent.ReasonUnknownCert+": x509: certificate signed by unknown authority"),
			cause: CauseAgentUnknownCert, conf: Medium, actions: []ActionKind{ActReEnroll}},
		{name: "untrusted host, hub's wording", f: pending(agentstate.NotTrusted, agent.ReasonNotTrusted+": 10.0.0.13"), cause: CauseAgentUntrustedHost, conf: High},
		{name: "trust mismatch", f: facts(agent.Status{ID: 0, Name: "?", State: agent.PendingUp, Address: "10.9.9.7",
			Reason: agent.ReasonTrustMismatch + " (remote error: tls: bad certificate)", Code: agentstate.TrustMismatch}),
			cause: CauseAgentTrustMismatch, conf: High, actions: []ActionKind{ActReEnroll}, evidence: []string{"pins the CA it enrolled with"}},
		{name: "no client cert", f: pending(agentstate.NoCert, agent.ReasonNoCert), cause: CauseAgentNoClientCert, conf: Medium},
		{name: "clock skew", f: pending(agentstate.ClockSkew, agent.ReasonClockSkew+" 45s beyond 30s"), cause: CauseAgentClockSkew, conf: High,
			evidence: []string{"clock skew 45s beyond 30s"}},
		{name: "pending, other reason", f: pending("", "hello refused"), cause: CauseAgentPendingUp, conf: Low, summary: "hello refused"},
		{name: "pending hides link and skew", f: func() AgentFacts {
			f := pending(agentstate.CertExpired, agent.ReasonExpired)
			f.Status.VersionSkew = true
			f.Status.Link = &agent.LinkStatus{State: agent.LinkDown}
			return f
		}(), cause: CauseAgentCertExpired, conf: High, actions: []ActionKind{ActReEnroll}, evidence: []string{"(skew)"}},

		// Down.
		{name: "never connected", f: down(agentstate.NeverConnected, "enrolled, not connected yet", time.Time{}), cause: CauseAgentNeverConnected, conf: High,
			evidence: []string{"last heartbeat: never"}},
		{name: "not since the manager started", f: down(agentstate.NeverConnected, "not connected since the manager started", time.Time{}), cause: CauseAgentNeverConnected, conf: High},
		{name: "not since restart, but heard before", f: down(agentstate.NeverConnected, "not connected since the manager started", t0.Add(-time.Hour)), cause: CauseAgentDown, conf: Medium},
		{name: "connection closed", f: down(agentstate.ConnectionClosed, "connection closed", t0.Add(-41*time.Second)), cause: CauseAgentDown, conf: Medium,
			evidence: []string{"state: Down (connection closed)", "(41s ago)"}},
		{name: "no heartbeat", f: down(agentstate.NoHeartbeat, "no heartbeat for 3 intervals (30s)", t0.Add(-35*time.Second)), cause: CauseAgentDown, conf: Medium,
			summary: "no heartbeat for 3 intervals"},
		{name: "session restarted", f: down(agentstate.SessionRestarted, "session restarted by the manager", t0.Add(-time.Second)), cause: CauseAgentDown, conf: Medium,
			summary: "reconnect within seconds"},
		{name: "down with a stale link report", f: func() AgentFacts {
			f := down(agentstate.ConnectionClosed, "connection closed", t0.Add(-time.Minute))
			f.Status.Link = &agent.LinkStatus{State: agent.LinkDown}
			return f
		}(), cause: CauseAgentDown, conf: Medium},

		// Up: certificates.
		{name: "cert exactly 30 days", f: with(func(s *agent.Status) { s.CertNotAfter = t0.Add(30 * day) }), cause: CauseAgentCertExpiring, conf: High,
			actions: []ActionKind{ActRenewCerts, ActRestartSession}, evidence: []string{"30 days left"}},
		{name: "cert already past while connected", f: with(func(s *agent.Status) { s.CertNotAfter = t0.Add(-2 * day) }), cause: CauseAgentCertExpiring, conf: High,
			actions: []ActionKind{ActRenewCerts, ActRestartSession}, summary: "expired on", evidence: []string{"agent certificate expired on 2026-11-19 10:00:00 UTC (2 days ago)"}},
		{name: "custom renewal window", f: func() AgentFacts {
			f := with(func(s *agent.Status) { s.CertNotAfter = t0.Add(8 * day) })
			f.RenewBefore = 7 * day
			return f
		}(), cause: CauseHealthy, conf: High},
		{name: "custom renewal window reached", f: func() AgentFacts {
			f := with(func(s *agent.Status) { s.CertNotAfter = t0.Add(6 * day) })
			f.RenewBefore = 7 * day
			return f
		}(), cause: CauseAgentCertExpiring, conf: High, actions: []ActionKind{ActRenewCerts, ActRestartSession}},
		{name: "link cert expired", f: with(func(s *agent.Status) {
			s.Link.State, s.Link.Reason, s.Link.CertNotAfter = agent.LinkCertExpired, "certificate expired", t0.Add(-day)
		}), cause: CauseAgentLinkCertExpired, conf: High, actions: []ActionKind{ActRenewCerts, ActRestartLink},
			evidence: []string{"host link: CertExpired on inband to /dev/ipmi0 (certificate expired)", "(1 day ago)"}},
		{name: "link cert exactly 30 days", f: with(func(s *agent.Status) { s.Link.CertNotAfter = t0.Add(30 * day) }), cause: CauseAgentLinkCertExpiring, conf: High,
			actions: []ActionKind{ActRenewCerts}},

		// Up: the link.
		{name: "link not trusted", f: with(func(s *agent.Status) { s.Link.State, s.Link.Reason = agent.LinkNotTrusted, "BMC certificate changed" }),
			cause: CauseAgentLinkNotTrusted, conf: Medium, actions: []ActionKind{ActRefreshTrust, ActRestartLink}, summary: "BMC certificate changed"},
		{name: "link down", f: with(func(s *agent.Status) {
			s.Link.State, s.Link.Path, s.Link.Reason = agent.LinkDown, "", "inband: timeout; ipv4: no address"
		}),
			cause: CauseAgentLinkDown, conf: Medium, actions: []ActionKind{ActRestartLink}, evidence: []string{"host link: Down to /dev/ipmi0 (inband: timeout; ipv4: no address)"}},
		{name: "link timeouts flooding", f: func() AgentFacts {
			f := with(func(s *agent.Status) { s.Link.Timeouts, s.Link.TimeoutRate = 500, 4 })
			f.Flooding = true
			return f
		}(), cause: CauseAgentLinkTimeouts, conf: Medium, summary: "flood detector", evidence: []string{"link timeouts: 500", "flood detector reports a flood"}},
		{name: "link timeouts at 10/min", f: with(func(s *agent.Status) { s.Link.Timeouts, s.Link.TimeoutRate = 3000, 10 }), cause: CauseAgentLinkTimeouts, conf: Medium},
		{name: "link disabled", f: with(func(s *agent.Status) { s.Link.State, s.Link.Path = agent.LinkDisabled, "" }), cause: CauseAgentLinkDisabled, conf: High},
		{name: "ipv6 fallback", f: with(func(s *agent.Status) {
			s.Link.Path, s.Link.Address, s.Link.IPv4Failed, s.Link.Reason = agent.PathIPv6, "fe80::1%usb0", true, "ipv4: no link-local address"
		}), cause: CauseAgentLinkIPv6Fallback, conf: High, evidence: []string{"on ipv6 to fe80::1%usb0 (ipv4: no link-local address); IPv4 failed"}},

		// Up: version, queue.
		{name: "version skew", f: with(func(s *agent.Status) { s.Version, s.VersionSkew = "0.4.0", true }), cause: CauseAgentVersionSkew, conf: High,
			summary: "runs version 0.4.0, the manager 0.5.0", evidence: []string{"version: 0.4.0, manager 0.5.0 (skew)"}},
		{name: "ops queued", f: with(func(s *agent.Status) { s.Queued = 2 }), cause: CauseAgentOpsQueued, conf: High, summary: "2 operation(s)"},

		// Precedence on an Up agent.
		{name: "everything at once", f: func() AgentFacts {
			f := with(func(s *agent.Status) {
				s.CertNotAfter = t0.Add(10 * day)
				s.Link.State = agent.LinkDown
				s.Link.TimeoutRate = 20
				s.VersionSkew, s.Version = true, "0.4.0"
				s.Queued = 1
			})
			return f
		}(), cause: CauseAgentCertExpiring, conf: High, actions: []ActionKind{ActRenewCerts, ActRestartLink, ActRestartSession},
			evidence: []string{"also agent_link_down:", "also agent_link_timeouts:", "also agent_version_skew:", "also agent_ops_queued:"}},
		{name: "link cert expired before skew", f: with(func(s *agent.Status) {
			s.Link.State = agent.LinkCertExpired
			s.Version, s.VersionSkew = "0.4.0", true
		}), cause: CauseAgentLinkCertExpired, conf: High, actions: []ActionKind{ActRenewCerts, ActRestartLink}, evidence: []string{"also agent_version_skew:"}},
		{name: "link cert expiring before link not trusted", f: with(func(s *agent.Status) {
			s.Link.State = agent.LinkNotTrusted
			s.Link.CertNotAfter = t0.Add(5 * day)
		}), cause: CauseAgentLinkCertExpiring, conf: High, actions: []ActionKind{ActRenewCerts, ActRefreshTrust, ActRestartLink},
			evidence: []string{"also agent_link_not_trusted:"}},
		{name: "link down before timeouts", f: with(func(s *agent.Status) { s.Link.State, s.Link.TimeoutRate = agent.LinkDown, 50 }),
			cause: CauseAgentLinkDown, conf: Medium, actions: []ActionKind{ActRestartLink}, evidence: []string{"also agent_link_timeouts:"}},
		{name: "timeouts before ipv6 fallback", f: with(func(s *agent.Status) {
			s.Link.Path, s.Link.IPv4Failed, s.Link.TimeoutRate = agent.PathIPv6, true, 12
		}), cause: CauseAgentLinkTimeouts, conf: Medium, evidence: []string{"also agent_link_ipv6_fallback:"}},
		{name: "skew before queued", f: with(func(s *agent.Status) { s.Version, s.VersionSkew, s.Queued = "0.4.1", true, 3 }), cause: CauseAgentVersionSkew, conf: High,
			evidence: []string{"also agent_ops_queued:"}},

		// Capabilities.
		{name: "no renew capability", f: with(func(s *agent.Status) {
			s.CertNotAfter = t0.Add(3 * day)
			s.Capabilities = []string{"heartbeat", agent.OpRestartLink}
			s.Link.State = agent.LinkDown
		}), cause: CauseAgentCertExpiring, conf: High, actions: []ActionKind{ActRestartLink},
			evidence: []string{"does not report the renew-certs capability"}},
		{name: "no capabilities at all", f: with(func(s *agent.Status) {
			s.Capabilities = nil
			s.Link.State = agent.LinkNotTrusted
		}), cause: CauseAgentLinkNotTrusted, conf: Medium, evidence: []string{"does not report the refresh-trust capability"}},
	}
}

func kinds(as []Action) []ActionKind {
	var out []ActionKind
	for _, a := range as {
		out = append(out, a.Kind)
	}
	return out
}

func TestDecideAgent(t *testing.T) {
	for _, c := range agentCases() {
		t.Run(c.name, func(t *testing.T) {
			d := DecideAgent(c.f)
			if d.Cause != c.cause || d.Confidence != c.conf {
				t.Fatalf("cause %s (%s), want %s (%s)\n%s", d.Cause, d.Confidence, c.cause, c.conf, dump(d))
			}
			if got := kinds(d.Actions); !slices.Equal(got, c.actions) {
				t.Errorf("actions %v, want %v", got, c.actions)
			}
			if d.Summary == "" || d.Remedy == "" || len(d.Evidence) == 0 {
				t.Errorf("incomplete diagnosis:\n%s", dump(d))
			}
			if !strings.Contains(d.Evidence[0], "state: ") {
				t.Errorf("first evidence line %q does not quote the state", d.Evidence[0])
			}
			if c.summary != "" && !strings.Contains(d.Summary, c.summary) {
				t.Errorf("summary %q lacks %q", d.Summary, c.summary)
			}
			for _, want := range c.evidence {
				if !slices.ContainsFunc(d.Evidence, func(l string) bool { return strings.Contains(l, want) }) {
					t.Errorf("no evidence line holds %q:\n%s", want, dump(d))
				}
			}
			for _, a := range d.Actions {
				if a.What == "" || a.From == "" || a.To == "" || a.Because == "" {
					t.Errorf("action %s incomplete: %+v", a.Kind, a)
				}
				if a.NeedsAdopt {
					t.Errorf("action %s: NeedsAdopt set", a.Kind)
				}
			}
			if (d.Cause == CauseHealthy) != d.Healthy() {
				t.Errorf("Healthy() %v for %s", d.Healthy(), d.Cause)
			}
		})
	}
}

// TestDecideAgentReachesEveryCause: the table covers every agent cause.
func TestDecideAgentReachesEveryCause(t *testing.T) {
	all := []Cause{CauseHealthy, CauseNotChecked,
		CauseAgentDown, CauseAgentNeverConnected, CauseAgentCertRevoked, CauseAgentUnknownCert, CauseAgentCertExpired,
		CauseAgentNoClientCert, CauseAgentClockSkew, CauseAgentUntrustedHost, CauseAgentTrustMismatch, CauseAgentPendingUp,
		CauseAgentCertExpiring, CauseAgentLinkCertExpired, CauseAgentLinkCertExpiring, CauseAgentLinkNotTrusted,
		CauseAgentLinkDown, CauseAgentLinkTimeouts, CauseAgentLinkDisabled, CauseAgentLinkIPv6Fallback,
		CauseAgentVersionSkew, CauseAgentOpsQueued}
	seen := map[Cause]bool{}
	for _, c := range agentCases() {
		seen[DecideAgent(c.f).Cause] = true
	}
	for _, c := range all {
		if !seen[c] {
			t.Errorf("no case reaches %s", c)
		}
	}
}

func TestDecideAgentActionLines(t *testing.T) {
	d := DecideAgent(with(func(s *agent.Status) { s.CertNotAfter = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC) }))
	want := "changed agent web-1's certificate from expiring 2026-12-01 to renewed because it expires on 2026-12-01 00:00:00 UTC (9 days left), within the 30-day renewal window"
	if got := d.Actions[0].Line(); got != want {
		t.Errorf("line\n %s\nwant\n %s", got, want)
	}
	d = DecideAgent(pending(agentstate.Revoked, agent.ReasonRevoked))
	if got := d.Actions[0].Line(); !strings.HasPrefix(got, "changed agent db-1's enrollment from certificate revoked to a fresh one-time join token") {
		t.Errorf("re-enroll line %q", got)
	}
	d = DecideAgent(with(func(s *agent.Status) { s.Link.State, s.Link.Reason = agent.LinkDown, "timeout" }))
	if got := d.Actions[0].Line(); got != "changed agent web-1's host link from Down to restarted because every enabled path failed: timeout" {
		t.Errorf("restart-link line %q", got)
	}
}

// TestDecideAgentPure: the same facts give the same diagnosis, and the
// facts are not changed.
func TestDecideAgentPure(t *testing.T) {
	for _, c := range agentCases() {
		a, b := DecideAgent(c.f), DecideAgent(c.f)
		if dump(a) != dump(b) {
			t.Errorf("%s: two runs differ", c.name)
		}
	}
}

func dump(d Diagnosis) string {
	var b strings.Builder
	b.WriteString(string(d.Cause) + " (" + string(d.Confidence) + "): " + d.Summary + "\n")
	for _, e := range d.Evidence {
		b.WriteString("  - " + e + "\n")
	}
	b.WriteString("  remedy: " + d.Remedy + "\n")
	for _, a := range d.Actions {
		b.WriteString("  " + a.Line() + "\n")
	}
	return b.String()
}
