package diag

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/lightsout/lightsout/internal/agentstate"
)

// The agent tree (DecideAgent) diagnoses a host agent from the manager's
// view of it (agentstate.Status), as IBM's diagrmc does for RMC: the agent
// channel's trust, its certificates, the agent's host link to its own BMC
// and its version.

// Causes of the agent tree.
const (
	// The agent channel itself (Down, PendingUp).
	CauseAgentDown           Cause = "agent_down"            // Down: connection closed, or no heartbeat for N intervals
	CauseAgentNeverConnected Cause = "agent_never_connected" // Down: enrolled (or since the manager started), never heard from
	CauseAgentCertRevoked    Cause = "agent_cert_revoked"    // PendingUp: its certificate was revoked
	CauseAgentUnknownCert    Cause = "agent_unknown_cert"    // PendingUp: a certificate not issued by this manager's CA
	CauseAgentCertExpired    Cause = "agent_cert_expired"    // PendingUp: its certificate expired
	CauseAgentNoClientCert   Cause = "agent_no_client_cert"  // PendingUp: TLS without a client certificate
	CauseAgentClockSkew      Cause = "agent_clock_skew"      // PendingUp: its clock differs from the manager's
	CauseAgentTrustMismatch  Cause = "agent_trust_mismatch"  // PendingUp: the agent refused this manager's certificate (it pins another CA)
	CauseAgentUntrustedHost  Cause = "agent_untrusted_host"  // PendingUp: its address is not in --agent-allow
	CauseAgentPendingUp      Cause = "agent_pending_up"      // PendingUp for a reason this tree does not know

	// An Up agent, most severe first.
	CauseAgentCertExpiring     Cause = "agent_cert_expiring"      // its certificate expires within RenewBefore
	CauseAgentLinkCertExpired  Cause = "agent_link_cert_expired"  // the BMC refuses the link certificate: expired
	CauseAgentLinkCertExpiring Cause = "agent_link_cert_expiring" // the link certificate expires within RenewBefore
	CauseAgentLinkNotTrusted   Cause = "agent_link_not_trusted"   // the BMC refuses the link certificate, or its own changed
	CauseAgentLinkDown         Cause = "agent_link_down"          // every enabled link path failed
	CauseAgentLinkTimeouts     Cause = "agent_link_timeouts"      // the link's timeouts flood (IPMIDRV-1004)
	CauseAgentLinkDisabled     Cause = "agent_link_disabled"      // every link path is disabled in the agent's configuration
	CauseAgentLinkIPv6Fallback Cause = "agent_link_ipv6_fallback" // IPv4 failed, the link runs on IPv6
	CauseAgentVersionSkew      Cause = "agent_version_skew"       // its version differs from the manager's
	CauseAgentOpsQueued        Cause = "agent_ops_queued"         // informational: operations sent, not answered yet
)

// The agent fixes. They act through the agent channel (Hub.Do,
// Hub.RestartSession) and so need the agent Up, except ActReEnroll, which
// only mints a join token for a human to carry to the host.
const (
	// ActRenewCerts: the agent renews its own and its link's certificates
	// now (op renew-certs).
	ActRenewCerts ActionKind = "renew_agent_certs"
	// ActRefreshTrust: the agent re-reads its trusted CA (op refresh-trust).
	ActRefreshTrust ActionKind = "refresh_agent_trust"
	// ActRestartLink: the agent restarts its host link (op restart-link).
	ActRestartLink ActionKind = "restart_agent_link"
	// ActRestartSession: the manager closes the agent's connection; the
	// agent reconnects at once, presenting its (renewed) certificate.
	ActRestartSession ActionKind = "restart_agent_session"
	// ActReEnroll: a fresh one-time join token is minted (1h) and returned
	// with the command to run on the host. It cannot be pushed: the agent
	// cannot be reached authenticated. Admin only: Action has no field for
	// that (NeedsAdopt stays false); DiagnoseAgent's admin argument gates
	// it.
	ActReEnroll ActionKind = "re_enroll_agent"
)

// DefaultRenewBefore is the renewal window when AgentFacts.RenewBefore is
// zero: a certificate expiring within it is due for renewal.
const DefaultRenewBefore = 30 * 24 * time.Hour

// LinkTimeoutFlood is the link timeout rate (per minute) from which the
// timeouts count as flooding without the events detector's word.
const LinkTimeoutFlood = 10.0

// AgentFacts is what DecideAgent knows about one agent.
type AgentFacts struct {
	// Status is the manager's view (internal/agent).
	Status         agentstate.Status `json:"status"`
	Now            time.Time         `json:"now"`
	ManagerVersion string            `json:"manager_version,omitempty"`
	// RenewBefore: a certificate expiring within this is due for renewal
	// (DefaultRenewBefore when zero).
	RenewBefore time.Duration `json:"renew_before,omitempty"`
	// Flooding: the link's timeouts are flooding per the events flood
	// detector (optional; false when unknown).
	Flooding bool `json:"flooding,omitempty"`
}

func (f AgentFacts) renewBefore() time.Duration {
	if f.RenewBefore <= 0 {
		return DefaultRenewBefore
	}
	return f.RenewBefore
}

// dueForRenewal reports whether a certificate expiring at t is within the
// renewal window (exactly RenewBefore left counts as due).
func (f AgentFacts) dueForRenewal(t time.Time) bool {
	return !t.IsZero() && t.Sub(f.Now) <= f.renewBefore()
}

// AgentLabel names an agent for the operator: "agent web-1 (0x0001)", or
// the address of a peer the manager cannot place.
func AgentLabel(st agentstate.Status) string {
	if st.ID == 0 {
		return "the unplaced peer at " + nonEmpty(st.Address, "an unknown address")
	}
	return fmt.Sprintf("agent %s (0x%04x)", nonEmpty(st.Name, "?"), st.ID)
}

// agentName is the short form for Action.What.
func agentName(st agentstate.Status) string {
	if st.ID == 0 {
		return "the unplaced peer at " + nonEmpty(st.Address, "an unknown address")
	}
	return "agent " + nonEmpty(st.Name, fmt.Sprint(st.ID))
}

// agentsThing is "agent web-1's THING", or "the THING of the unplaced
// peer at ADDR".
func agentsThing(st agentstate.Status, thing string) string {
	if st.ID == 0 {
		return "the " + thing + " of " + agentName(st)
	}
	return agentName(st) + "'s " + thing
}

// opCmd is the command that runs op on the agent by hand.
func opCmd(st agentstate.Status, op string) string {
	return fmt.Sprintf("`lightsout agent op %d %s`", st.ID, op)
}

// daysLeft renders the time from now to t in days ("12 days left", "3
// days ago").
func daysLeft(now, t time.Time) string {
	d := t.Sub(now)
	if d < 0 {
		return plural(int(math.Ceil(-d.Hours()/24)), "day") + " ago"
	}
	days := int(math.Floor(d.Hours() / 24))
	if days == 0 {
		return "less than a day left"
	}
	return plural(days, "day") + " left"
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func certLine(what string, now, t time.Time) string {
	return fmt.Sprintf("%s %s (%s)", what, expPhrase(now, t), daysLeft(now, t))
}

// agentEvidence quotes the status fields every agent diagnosis starts with.
func agentEvidence(f AgentFacts) []string {
	st := f.Status
	line := "state: " + nonEmpty(st.State, "none")
	if st.Reason != "" {
		line += " (" + st.Reason + ")"
	}
	if !st.Since.IsZero() {
		line += " since " + when(st.Since)
	}
	ev := []string{AgentLabel(st) + ", " + line}
	if st.Address != "" {
		ev = append(ev, "address: "+st.Address)
	}
	if st.LastHeartbeat.IsZero() {
		ev = append(ev, "last heartbeat: never (since the manager started)")
	} else {
		ev = append(ev, fmt.Sprintf("last heartbeat: %s (%s ago)", when(st.LastHeartbeat), f.Now.Sub(st.LastHeartbeat).Round(time.Second)))
	}
	if st.Version != "" || f.ManagerVersion != "" {
		v := "version: " + nonEmpty(st.Version, "not reported")
		if f.ManagerVersion != "" {
			v += ", manager " + f.ManagerVersion
		}
		if st.VersionSkew {
			v += " (skew)"
		}
		ev = append(ev, v)
	}
	if !st.CertNotAfter.IsZero() {
		ev = append(ev, certLine("agent certificate", f.Now, st.CertNotAfter))
	}
	if st.Revoked {
		ev = append(ev, "the agent is revoked in the store")
	}
	return ev
}

// linkEvidence quotes the host link report (nil: none yet).
func linkEvidence(f AgentFacts) []string {
	l := f.Status.Link
	if l == nil {
		return []string{"host link: not reported by the agent (none configured, or an agent without the host link)"}
	}
	line := "host link: " + nonEmpty(l.State, agentstate.LinkUnknown)
	if l.Path != "" {
		line += " on " + l.Path
	}
	if l.Address != "" {
		line += " to " + l.Address
	}
	if l.Reason != "" {
		line += " (" + l.Reason + ")"
	}
	if l.IPv4Failed {
		line += "; IPv4 failed"
	}
	if !l.Checked.IsZero() {
		line += ", checked " + when(l.Checked)
	}
	ev := []string{line}
	if !l.CertNotAfter.IsZero() {
		ev = append(ev, certLine("link certificate", f.Now, l.CertNotAfter))
	}
	if l.Timeouts > 0 || l.TimeoutRate > 0 || f.Flooding {
		t := fmt.Sprintf("link timeouts: %d since the agent started, %.1f/min over 5 min", l.Timeouts, l.TimeoutRate)
		if f.Flooding {
			t += "; the events flood detector reports a flood"
		}
		ev = append(ev, t)
	}
	if l.Remedy != "" {
		ev = append(ev, "the agent suggests: "+l.Remedy)
	}
	return ev
}

// DecideAgent diagnoses one agent. It is pure: the same facts give the
// same diagnosis. The agent channel's own problems come first (PendingUp,
// Down: nothing else can be trusted or fixed through it), then, for an Up
// agent, certificates, the host link, version skew and queued operations;
// the most severe problem is the Cause, every other one is an evidence
// line ("also: …"), and the fixes of all of them are the Actions.
func DecideAgent(f AgentFacts) Diagnosis {
	st := f.Status
	ev := agentEvidence(f)
	var d Diagnosis
	switch st.State {
	case agentstate.PendingUp:
		d = pendingUp(f)
	case agentstate.Down:
		d = agentDown(f)
	case agentstate.Up:
		d = agentUp(f)
		ev = append(ev, linkEvidence(f)...)
	default:
		d = Diagnosis{Cause: CauseNotChecked, Confidence: Low,
			Summary: "the manager reports no state for this agent",
			Remedy:  "check that the agent is enrolled with this manager (`lightsout domain status`) and run the diagnosis again"}
	}
	d.Evidence = append(ev, d.Evidence...)
	return d
}

func pendingUp(f AgentFacts) Diagnosis {
	st := f.Status
	who := AgentLabel(st)
	unplaced := ""
	if st.ID == 0 {
		unplaced = "; the manager cannot tie its certificate to an enrolled agent"
	}
	reenroll := func(because string) []Action {
		return []Action{{Kind: ActReEnroll, What: agentsThing(st, "enrollment"), From: nonEmpty(st.Reason, agentstate.PendingUp),
			To: "a fresh one-time join token (1h) to enroll with", Because: because}}
	}
	const reenrollRemedy = "re-enroll it: mint a join token (`lightsout agent token create --ttl 1h --out join.token`, admin, or `lightsout diag --agent ID --autocorrect` as admin) and write it, mode 0600, to the file given as the agent's `--join-token-file` on the host; " +
		"the running agent re-reads that file whenever a manager refuses its certificate and enrolls again with a new key under the same node (no need to move agent.key aside); " +
		"an agent started without `--join-token-file` must be restarted with `lightsout agent run --manager ADDR --data DIR --join-token-file FILE`; `lightsout agent status --data DIR` on the host shows the manager's refusal and the new enrollment"
	r := st.Reason
	switch {
	case st.Code == agentstate.NotTrusted:
		return Diagnosis{Cause: CauseAgentUntrustedHost, Confidence: High,
			Summary: who + " connects from an address the manager does not trust",
			Remedy:  "if the host is yours, add its address (or its network) to the manager's `--agent-allow` and restart the server; if not, find what runs an agent there"}
	case st.Code == agentstate.Revoked || st.Revoked:
		return Diagnosis{Cause: CauseAgentCertRevoked, Confidence: High,
			Summary: who + " keeps connecting with a revoked certificate" + unplaced,
			Remedy:  "if the revocation (`lightsout agent revoke`) was intended, stop `lightsout agent run` on the host; if the host should come back, " + reenrollRemedy,
			Actions: reenroll("its certificate was revoked: only a new enrollment lets it in again (do not run it if the revocation was intended)")}
	case st.Code == agentstate.TrustMismatch:
		return Diagnosis{Cause: CauseAgentTrustMismatch, Confidence: High,
			Summary:  who + " refused this manager's certificate: it trusts another manager CA",
			Evidence: []string{"the agent aborted the TLS handshake with a certificate alert; it pins the CA it enrolled with (manager-ca.pem in its data directory)"},
			Remedy:   "if the agent belongs to another manager, point it there (`--manager`); if this manager's CA was replaced, " + reenrollRemedy + " (it then pins this CA; until it holds a token it cannot trust this manager)",
			Actions:  reenroll("it pins another CA: only a new enrollment with this manager's join token (which carries this CA's fingerprint) makes it trust this manager")}
	case st.Code == agentstate.UnknownCert:
		return Diagnosis{Cause: CauseAgentUnknownCert, Confidence: Medium,
			Summary:  who + " presents a certificate this manager's CA did not issue" + unplaced,
			Evidence: []string{"either the manager's CA was replaced (agent-ca.pem / agent-ca.key in its data directory) or the agent enrolled with another manager"},
			Remedy:   "if the agent belongs to another manager, point it there (`--manager`); otherwise " + reenrollRemedy,
			Actions:  reenroll("the manager's CA did not issue its certificate: a new enrollment gives it one this CA signs")}
	case st.Code == agentstate.CertExpired:
		return Diagnosis{Cause: CauseAgentCertExpired, Confidence: High,
			Summary: who + "'s certificate has expired: the manager no longer accepts it",
			Remedy:  "an expired certificate cannot be renewed over the channel: " + reenrollRemedy + "; keep agents Up so they renew before expiry (`lightsout agent op ID renew-certs`)",
			Actions: reenroll("its certificate expired, and renewal needs an authenticated channel")}
	case st.Code == agentstate.NoCert:
		return Diagnosis{Cause: CauseAgentNoClientCert, Confidence: Medium,
			Summary:  who + " completed TLS without a client certificate",
			Evidence: []string{"an enrolled agent always presents its certificate; an enrolling one sends a join token instead"},
			Remedy:   "if it is an agent, its agent.pem is missing or unreadable: re-enroll it with a join token (`lightsout agent token create`, written, mode 0600, to the file given as its `--join-token-file` on the host; `lightsout agent status --data DIR` there shows its certificates); otherwise something other than an agent (a scanner, a health check) connects to the agent port"}
	case st.Code == agentstate.ClockSkew:
		return Diagnosis{Cause: CauseAgentClockSkew, Confidence: High,
			Summary: who + "'s clock differs from the manager's beyond the allowed skew",
			Remedy:  "synchronize the host's clock (NTP: `chronyc tracking`, `timedatectl`; enable chronyd or systemd-timesyncd) and check the manager's; the agent is let in at its next hello"}
	}
	return Diagnosis{Cause: CauseAgentPendingUp, Confidence: Low,
		Summary: who + " is connected but not trusted: " + nonEmpty(r, "no reason given"),
		Remedy:  "read the reason above and the manager's log; `lightsout domain status` lists the agent's state"}
}

func agentDown(f AgentFacts) Diagnosis {
	st := f.Status
	who := AgentLabel(st)
	if st.LastHeartbeat.IsZero() && st.Code == agentstate.NeverConnected {
		return Diagnosis{Cause: CauseAgentNeverConnected, Confidence: High,
			Summary: who + " has not connected to this manager yet",
			Remedy:  "on the host, start `lightsout agent run --manager ADDR --data DIR` (as a service); `lightsout agent status --data DIR` there shows the agent's view of its managers (Connecting, Refused with the reason, Unreachable), its certificates and host link; check that the host can reach the manager's agent port (`--agent-listen`, default 8624) through the firewall; `lightsout domain status` shows it Up once it does"}
	}
	sum := who + " is Down: " + nonEmpty(st.Reason, "the connection is gone")
	if st.Code == agentstate.SessionRestarted {
		sum = who + " is Down since the manager restarted its session; it should reconnect within seconds"
	}
	return Diagnosis{Cause: CauseAgentDown, Confidence: Medium,
		Summary:  sum,
		RuledOut: []string{"trust and certificates: the agent was let in before (it would be PendingUp otherwise)"},
		Remedy: "nothing can be done through the agent while it is Down: on the host, check the agent service (is `lightsout agent run` running; its output; `lightsout agent status --data DIR` shows its view of its managers, certificates and host link), " +
			"the network path and firewall to the manager's agent port, and the host itself — if it does not answer, check the machine's OOB channel and power state (`lightsout diag MACHINE`, `lightsout power status MACHINE`); `lightsout domain status` shows it Up again once it reconnects"}
}

// problem is one thing wrong with an Up agentstate.
type problem struct {
	cause   Cause
	summary string
	remedy  string
	actions []Action
	conf    Confidence
}

// capable reports whether the agent offers op; when it does not, a line
// saying so is added to the notes.
func capable(st agentstate.Status, op string, notes *[]string) bool {
	if slices.Contains(st.Capabilities, op) {
		return true
	}
	*notes = append(*notes, fmt.Sprintf("the agent does not report the %s capability: autocorrect cannot run it (upgrade the agent)", op))
	return false
}

// actionOrder is the order fixes run in: renew before anything that
// reconnects, the session last (it drops the connection).
var actionOrder = []ActionKind{ActRenewCerts, ActRefreshTrust, ActRestartLink, ActRestartSession}

func agentUp(f AgentFacts) Diagnosis {
	st := f.Status
	who := AgentLabel(st)
	name := agentName(st)
	var ps []problem
	var notes []string
	l := st.Link

	renew := func(what, from, because string) []Action {
		if !capable(st, agentstate.OpRenewCerts, &notes) {
			return nil
		}
		return []Action{{Kind: ActRenewCerts, What: what, From: from, To: "renewed", Because: because}}
	}
	restartLink := func(because string) []Action {
		if !capable(st, agentstate.OpRestartLink, &notes) {
			return nil
		}
		return []Action{{Kind: ActRestartLink, What: name + "'s host link", From: nonEmpty(l.State, agentstate.LinkUnknown), To: "restarted", Because: because}}
	}

	// Certificates.
	if f.dueForRenewal(st.CertNotAfter) {
		left := daysLeft(f.Now, st.CertNotAfter)
		because := fmt.Sprintf("it %s (%s), within the %s renewal window", expPhrase(f.Now, st.CertNotAfter), left, window(f.renewBefore()))
		if st.CertNotAfter.Before(f.Now) {
			because = fmt.Sprintf("it expired on %s (%s) and the agent is still connected: renewing now spares a re-enrollment", when(st.CertNotAfter), left)
		}
		acts := renew(name+"'s certificate", "expiring "+st.CertNotAfter.UTC().Format(time.DateOnly), because)
		if len(acts) > 0 {
			acts = append(acts, Action{Kind: ActRestartSession, What: name + "'s session", From: "connected with the old certificate", To: "reconnected with the renewed one",
				Because: "the manager reads a certificate's expiry when the agent connects"})
		}
		ps = append(ps, problem{cause: CauseAgentCertExpiring, conf: High,
			summary: fmt.Sprintf("%s's certificate %s (%s)", who, expPhrase(f.Now, st.CertNotAfter), left),
			remedy:  fmt.Sprintf("renew it while the agent is Up: %s (autocorrect does, then restarts the session); once expired it needs a new enrollment", opCmd(st, agentstate.OpRenewCerts)),
			actions: acts})
	}
	if l != nil && l.State == agentstate.LinkCertExpired {
		acts := renew(name+"'s host link certificate", "expired"+dateSuffix(f.Now, l.CertNotAfter), "the BMC refuses the link certificate: it has expired")
		if len(acts) > 0 {
			acts = append(acts, restartLink("the link stays down until it reconnects with the renewed certificate")...)
		}
		ps = append(ps, problem{cause: CauseAgentLinkCertExpired, conf: High,
			summary: who + "'s host link is down: the BMC refuses its expired link certificate",
			remedy:  fmt.Sprintf("renew the link certificate and restart the link: %s, then %s (autocorrect does both)", opCmd(st, agentstate.OpRenewCerts), opCmd(st, agentstate.OpRestartLink)),
			actions: acts})
	} else if l != nil && f.dueForRenewal(l.CertNotAfter) {
		ps = append(ps, problem{cause: CauseAgentLinkCertExpiring, conf: High,
			summary: fmt.Sprintf("%s's host link certificate %s (%s)", who, expPhrase(f.Now, l.CertNotAfter), daysLeft(f.Now, l.CertNotAfter)),
			remedy:  fmt.Sprintf("renew it: %s (autocorrect does)", opCmd(st, agentstate.OpRenewCerts)),
			actions: renew(name+"'s host link certificate", "expiring "+l.CertNotAfter.UTC().Format(time.DateOnly),
				fmt.Sprintf("it expires within the %s renewal window", window(f.renewBefore())))})
	}

	// The host link.
	if l != nil {
		switch l.State {
		case agentstate.LinkNotTrusted:
			var acts []Action
			if capable(st, agentstate.OpRefreshTrust, &notes) {
				acts = append(acts, Action{Kind: ActRefreshTrust, What: name + "'s trusted certificates", From: "stale", To: "re-read",
					Because: "the BMC refuses the link certificate, or presents one the agent does not trust: " + nonEmpty(l.Reason, "no reason given")})
				acts = append(acts, restartLink("the link is re-established with the refreshed trust")...)
			}
			ps = append(ps, problem{cause: CauseAgentLinkNotTrusted, conf: Medium,
				summary: who + "'s host link is not trusted: " + nonEmpty(l.Reason, "the BMC and the agent do not accept each other's certificates"),
				remedy: fmt.Sprintf("refresh the agent's trust and restart the link: %s, then %s (autocorrect does); if it persists, the BMC's certificate changed (replaced board, firmware update): verify it and re-provision the link certificate on the BMC",
					opCmd(st, agentstate.OpRefreshTrust), opCmd(st, agentstate.OpRestartLink)),
				actions: acts})
		case agentstate.LinkDown:
			ps = append(ps, problem{cause: CauseAgentLinkDown, conf: Medium,
				summary: who + "'s host link to its BMC is down: " + nonEmpty(l.Reason, "every enabled path failed"),
				remedy: fmt.Sprintf("restart the link: %s (autocorrect does); if it stays down, check on the host that the IPMI driver is loaded (/dev/ipmi0) and the host's USB NIC to the BMC has its link-local address, and the BMC's own state (`lightsout diag MACHINE`)",
					opCmd(st, agentstate.OpRestartLink)),
				actions: restartLink("every enabled path failed: " + nonEmpty(l.Reason, "no reason given"))})
		}
		if f.Flooding || l.TimeoutRate >= LinkTimeoutFlood {
			why := fmt.Sprintf("%.1f timeouts a minute", l.TimeoutRate)
			if f.Flooding {
				why = "the events flood detector reports a flood (" + why + ")"
			}
			ps = append(ps, problem{cause: CauseAgentLinkTimeouts, conf: Medium,
				summary: who + "'s host link requests time out in a flood: " + why,
				remedy: "the IPMIDRV-1004 case: look for competing in-band pollers on the host (ipmitool loops, vendor agents, monitoring plugins) and stop all but one; " +
					"a BMC leaking memory answers ever slower: cold-reset it and update its firmware; meanwhile raise the agent's `--link-timeout`"})
		}
		switch {
		case l.State == agentstate.LinkDisabled:
			ps = append(ps, problem{cause: CauseAgentLinkDisabled, conf: High,
				summary: who + "'s host link is disabled: every path is off in the agent's configuration",
				remedy:  "if the host link is wanted, enable a path (in-band, IPv4 or IPv6) in the agent's configuration and restart `lightsout agent run`; otherwise nothing to do"})
		case l.State == agentstate.LinkUp && l.Path == agentstate.PathIPv6 && l.IPv4Failed:
			ps = append(ps, problem{cause: CauseAgentLinkIPv6Fallback, conf: High,
				summary: who + "'s host link works on IPv6 only: IPv4 failed" + reasonSuffix(l.Reason),
				remedy:  "the link works, but BMC features that need IPv4 on the host interface (iSM-like OS-to-BMC passthrough) are limited: fix the IPv4 link-local address on the host's USB NIC to the BMC (169.254.0.0/16, e.g. `ip addr` on the host, the BMC's host-interface setting)"})
		}
	}

	// Version.
	if st.VersionSkew {
		ps = append(ps, problem{cause: CauseAgentVersionSkew, conf: High,
			summary: fmt.Sprintf("%s runs version %s, the manager %s", who, nonEmpty(st.Version, "unknown"), nonEmpty(f.ManagerVersion, "another")),
			remedy:  "upgrade the older of the two (the agent package on the host, or the manager) so both run the same version; newer ops may be missing from an older agent's capabilities"})
	}
	if st.Queued > 0 {
		ps = append(ps, problem{cause: CauseAgentOpsQueued, conf: High,
			summary: fmt.Sprintf("%s is Up with %d operation(s) sent and not answered yet", who, st.Queued),
			remedy:  "informational: they complete or time out on their own (the manager waits at most its op timeout); if they never drain, restart the agent on the host"})
	}

	if len(ps) == 0 {
		d := Diagnosis{Cause: CauseHealthy, Confidence: High,
			Summary: who + " is Up, trusted, with current certificates and no skew",
			Remedy:  "nothing to fix"}
		if l == nil {
			d.Summary += "; it reports no host link"
		}
		return d
	}
	p := ps[0]
	d := Diagnosis{Cause: p.cause, Summary: p.summary, Remedy: p.remedy, Confidence: p.conf}
	var acts []Action
	for _, q := range ps {
		acts = append(acts, q.actions...)
	}
	for _, q := range ps[1:] {
		d.Evidence = append(d.Evidence, "also "+string(q.cause)+": "+q.summary+" — "+q.remedy)
	}
	d.Evidence = append(d.Evidence, dedupe(notes)...)
	d.Actions = orderActions(acts)
	return d
}

// orderActions keeps the first action of each kind, in actionOrder.
func orderActions(acts []Action) []Action {
	var out []Action
	for _, k := range actionOrder {
		for _, a := range acts {
			if a.Kind == k {
				out = append(out, a)
				break
			}
		}
	}
	return out
}

func dedupe(ss []string) []string {
	var out []string
	for _, s := range ss {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func expPhrase(now, t time.Time) string {
	if t.Before(now) {
		return "expired on " + when(t)
	}
	return "expires on " + when(t)
}

// dateSuffix is " DATE" for a t before now.
func dateSuffix(now, t time.Time) string {
	if t.IsZero() || !t.Before(now) {
		return ""
	}
	return " " + t.UTC().Format(time.DateOnly)
}

func reasonSuffix(r string) string {
	if r == "" {
		return ""
	}
	return " (" + r + ")"
}

// window renders a renewal window in days when it is whole days.
func window(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%d-day", d/(24*time.Hour))
	}
	return d.String()
}
