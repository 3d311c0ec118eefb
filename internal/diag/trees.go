package diag

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lightsout/lightsout/internal/ipmi/vocab"
	"github.com/lightsout/lightsout/internal/state"
)

// Decide runs the tree for f's state. It is pure: the same facts give the
// same result. When a fact the tree needs is missing (its part of Facts is
// nil) it returns the Need instead of a diagnosis.
func Decide(f Facts) Result {
	var r Result
	switch f.State {
	case state.NotResponding:
		r = notResponding(f)
	case state.NotAuthenticated:
		r = notAuthenticated(f)
	case state.Invalid:
		r = invalid(f)
	case state.Connectable:
		switch {
		case has(f.Conditions, state.Busy) || storedConnectable(f) && has(f.History.StoredConditions, state.Busy):
			r = busy(f)
		case has(f.Conditions, state.Degraded) || storedConnectable(f) && has(f.History.StoredConditions, state.Degraded):
			r = degraded(f)
		default:
			r = healthy(f)
		}
	default:
		r = done(&Diagnosis{Cause: CauseNotChecked, Confidence: Low,
			Summary:  "the channel could not be checked",
			Evidence: []string{nonEmpty(f.Message, "no check result")},
			Remedy:   "make sure the account's protocol is one this manager checks (ipmi or redfish) and its address resolves, then run the diagnosis again"})
	}
	if r.Diagnosis != nil {
		r.Diagnosis.Evidence = append(notes(f), r.Diagnosis.Evidence...)
	}
	return r
}

// notes are evidence lines every diagnosis of f starts with.
func notes(f Facts) []string {
	var out []string
	if !f.Fresh && f.NotRetried != "" {
		out = append(out, "not logged in again: "+f.NotRetried)
	}
	return out
}

func done(d *Diagnosis) Result { return Result{Diagnosis: d} }

func nonEmptyLines(ls ...string) []string {
	var out []string
	for _, l := range ls {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}
func need(n ...Need) Result { return Result{Need: n} }

func has(cs []state.Condition, c state.Condition) bool { return slices.Contains(cs, c) }

func storedConnectable(f Facts) bool { return f.History.Stored == state.Connectable }

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// when renders a time for the operator (UTC, to the second).
func when(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

// after reports whether a is set and later than b (b zero counts as
// "never", so any set a is after it).
func after(a, b time.Time) bool { return !a.IsZero() && (b.IsZero() || a.After(b)) }

// beforeFailure reports whether a change at t can explain the channel's
// failure: it came after the channel last worked, or just before the check
// that first failed (the monitor checks at once after an edit, so that
// check is the first the change could fail).
func (h History) beforeFailure(t time.Time) bool {
	if after(t, h.LastConnectable) {
		return true
	}
	return !t.IsZero() && h.LeftConnectable && h.LastConnectable.Sub(t) <= h.EditGrace
}

// ---------------------------------------------------------------------------
// Connectable

func healthy(f Facts) Result {
	h := f.History
	switch {
	case h.Stored == state.NotAuthenticated && after(h.CredentialsChangedAt, h.CheckedAt):
		return done(&Diagnosis{Cause: CauseCredentialsFixed, Confidence: High,
			Summary: "the account works again since its credentials were edited",
			Evidence: []string{
				fmt.Sprintf("the monitor still holds NotAuthenticated (%s) from the refusal at %s", nonEmpty(string(h.StoredReason), "refused"), when(h.CheckedAt)),
				fmt.Sprintf("the credentials were edited at %s, after that refusal", when(h.CredentialsChangedAt)),
				"a login now succeeds: " + f.Message,
			},
			Remedy: "nothing to fix on the BMC; re-check the channel once (autocorrect does) so its declared state follows",
			Actions: []Action{{Kind: ActRecheck, AccountID: f.Account.ID,
				What: "the declared state of " + f.Machine, From: string(state.NotAuthenticated), To: "a fresh check",
				Because: fmt.Sprintf("its credentials were edited at %s, after the last refusal at %s", when(h.CredentialsChangedAt), when(h.CheckedAt))}},
		})
	case h.Stored != "" && h.Stored != state.Connectable && h.Stored != state.Unknown:
		return done(&Diagnosis{Cause: CauseRecovered, Confidence: High,
			Summary: fmt.Sprintf("the channel works now; the monitor declared it %s at %s", h.Stored, when(h.StoredSince)),
			Evidence: []string{"a check now succeeds: " + f.Message,
				fmt.Sprintf("declared %s (%s) since %s", h.Stored, nonEmpty(string(h.StoredReason), "-"), when(h.StoredSince))},
			Remedy: "nothing to do: the monitor declares the channel Connectable after its next confirming check; if it keeps flapping, look at its history (lightsout history " + f.Machine + ")",
		})
	}
	if has(f.Conditions, state.Insecure) || len(f.Security) > 0 {
		return done(insecure(f))
	}
	return done(&Diagnosis{Cause: CauseHealthy, Confidence: High,
		Summary:  "the channel is Connectable: a session opens and the identity matches",
		Evidence: []string{nonEmpty(f.Message, "session opened")},
		Remedy:   "nothing to do",
	})
}

// insecure: the channel works, and the BMC lets others in too. Each
// finding is named with its remedy in the BMC's terms.
func insecure(f Facts) *Diagnosis {
	fs := f.Security
	if len(fs) == 0 {
		fs = CheckFindings(f.Evidence.Insecure, f.Account.Redfish())
	}
	d := &Diagnosis{Cause: CauseInsecure, Confidence: High,
		Evidence: []string{nonEmpty(f.Message, "session opened")},
		RuledOut: []string{"a broken channel: a session opens and the identity matches"},
	}
	if len(fs) == 0 {
		d.Confidence = Medium
		d.Summary = "the channel works, but it is marked insecure and the findings are not at hand"
		d.Remedy = "run the security audit on the BMC (lightsout security " + f.Machine + " --run) to see each finding and its fix"
		return d
	}
	var codes, steps []string
	for i, s := range fs {
		if !slices.Contains(codes, s.Code) {
			codes = append(codes, s.Code)
		}
		src := "found by the security audit"
		if s.Source == "check" {
			src = "seen by this check"
		}
		line := s.Code
		if s.Subject != "" {
			line += " (" + s.Subject + ")"
		}
		d.Evidence = append(d.Evidence, fmt.Sprintf("%s: %s — %s", line, s.Message, src))
		if !slices.ContainsFunc(fs[:i], func(o SecurityFinding) bool { return o.Remedy == s.Remedy }) {
			steps = append(steps, fmt.Sprintf("%d) %s: %s", len(steps)+1, line, s.Remedy))
		}
	}
	d.Summary = fmt.Sprintf("the channel works, but the BMC accepts insecure logins (%s): anyone who reaches its %s may get in", strings.Join(codes, ", "), f.Account.service())
	d.Remedy = strings.Join(steps, "; ") + "; then re-run the security audit (lightsout security " + f.Machine + " --run)"
	return d
}

// CheckFindings turns a check's insecure authentication capabilities
// (evidence.Evidence.Insecure) into findings with the audit's remedies, for a
// BMC the security audit has not reported on.
func CheckFindings(seen []string, redfish bool) []SecurityFinding {
	var out []SecurityFinding
	for _, s := range seen {
		f := SecurityFinding{Message: s, Source: "check"}
		switch {
		case strings.Contains(s, "anonymous") || strings.Contains(s, "null user"):
			f.Code = "anonymous_login"
			f.Remedy = "disable the null user (user ID 1) on the LAN channel: ipmitool user disable 1; ipmitool channel setaccess 1 1 ipmi=off; and give every enabled user a name and a password (vendor UIs: disable anonymous login)"
		case strings.Contains(s, "IPMI 1.5"):
			f.Code = "weak_auth"
			f.Remedy = "allow only MD5 for IPMI 1.5 at every privilege level — ipmitool lan set 1 auth ADMIN MD5 (and CALLBACK, USER, OPERATOR) — or better, disable IPMI 1.5 and use RMCP+ (IPMI 2.0) only"
		case strings.Contains(s, "cipher suite 0"):
			f.Code = "cipher0_enabled"
			f.Remedy = "disable cipher suite 0 on the BMC — ipmitool lan set 1 cipher_privs with X as the first character (suite 0), e.g. Xaaaaaaaaaaaaaa, or in the vendor's IPMI over LAN settings"
		case strings.Contains(s, "default password"):
			f.Code = "default_password"
			f.Remedy = "change the user's password on the BMC (ipmitool user set password ID), or disable the user (ipmitool user disable ID)"
			if redfish {
				f.Remedy = "change the account's password in the BMC's Redfish AccountService (PATCH /redfish/v1/AccountService/Accounts/ID {\"Password\": …}), or disable it ({\"Enabled\": false})"
			}
		default:
			f.Code = "insecure"
			f.Remedy = "run the security audit on the BMC for the exact fix"
		}
		out = append(out, f)
	}
	return out
}

// ---------------------------------------------------------------------------
// NotResponding

func notResponding(f Facts) Result {
	addr := f.Account.Address
	switch f.Reason {
	case state.ReasonPortRefused:
		if f.Account.Redfish() {
			d := &Diagnosis{Cause: CauseRedfishDown, Confidence: High,
				Summary:  fmt.Sprintf("something at %s is up but no Redfish (HTTPS) service listens on its port", hostOf(addr)),
				Evidence: []string{fmt.Sprintf("%s refused the TCP connection", addr)},
				RuledOut: []string{"a network path problem or a dead BMC: the host answered (TCP reset), so the path and the device are up"},
				Remedy:   "enable the Redfish / HTTPS service on the BMC — its web UI's network services, or PATCH /redfish/v1/Managers/ID/NetworkProtocol {\"HTTPS\": {\"ProtocolEnabled\": true}} from wherever it still answers — or restart its web server / cold-reset the BMC (from the host: ipmitool mc reset cold); if the BMC serves HTTPS on another port (NetworkProtocol's HTTPS.Port), or the address now belongs to another device, correct the account's address and port",
			}
			if f.History.beforeFailure(f.History.AddressChangedAt) {
				d.Evidence = append(d.Evidence, fmt.Sprintf("the account's address was edited at %s (from %s): it may point at another device", when(f.History.AddressChangedAt), f.History.OldAddress))
				d.Confidence = Medium
			}
			return done(d)
		}
		d := &Diagnosis{Cause: CausePortClosed, Confidence: High,
			Summary:  fmt.Sprintf("something at %s is up but no IPMI service listens on its port", hostOf(addr)),
			Evidence: []string{fmt.Sprintf("%s answered with ICMP port unreachable", addr)},
			RuledOut: []string{"a network path problem or a dead BMC: the host answered (ICMP), so the path and the device are up"},
			Remedy:   "enable IPMI over LAN on the BMC (or restart its IPMI service / cold-reset the BMC); if the address now belongs to another device, correct the account's address",
		}
		if f.History.beforeFailure(f.History.AddressChangedAt) {
			d.Evidence = append(d.Evidence, fmt.Sprintf("the account's address was edited at %s (from %s): it may point at another device", when(f.History.AddressChangedAt), f.History.OldAddress))
			d.Confidence = Medium
		}
		return done(d)
	case state.ReasonUnreachable:
		if strings.Contains(f.Message, "does not resolve") {
			return done(&Diagnosis{Cause: CauseNoRoute, Confidence: High,
				Summary:  fmt.Sprintf("the account's address %s does not resolve", hostOf(addr)),
				Evidence: []string{f.Message},
				Remedy:   "correct the account's address, or make the name resolve from the manager (DNS, /etc/hosts)",
			})
		}
		return done(&Diagnosis{Cause: CauseNoRoute, Confidence: High,
			Summary:  fmt.Sprintf("the manager has no route to %s", hostOf(addr)),
			Evidence: []string{nonEmpty(f.Message, "ICMP host or network unreachable")},
			RuledOut: []string{"the BMC itself: packets never reach its network"},
			Remedy:   "check the address in the account, the manager's routes to the management network, and the management VLAN; a host name must resolve from the manager",
		})
	case state.ReasonIPMI15Only:
		d := &Diagnosis{Cause: CauseIPMI15Only, Confidence: High,
			Summary:  "the BMC speaks IPMI 1.5 only, and lightsout needs IPMI 2.0 (RMCP+)",
			Evidence: []string{nonEmpty(f.Message, "its capabilities offer IPMI 1.5 only, and it does not answer an RMCP+ Open Session")},
			RuledOut: []string{"the network path and the BMC's power: it answered the capabilities request", "the account: no login was possible to try"},
			Remedy:   "enable IPMI 2.0 / RMCP+ sessions on the BMC (its IPMI over LAN settings) or update its firmware; a BMC that cannot do IPMI 2.0 can be monitored over Redfish if it offers it",
		}
		if f.Evidence.PingAnswered {
			d.Evidence = append(d.Evidence, "it answers presence pings")
		}
		return done(d)
	case state.ReasonTLS:
		return done(tlsError(f))
	case state.ReasonStalled, state.ReasonProtocol:
		if rf := f.Evidence.Redfish; f.Account.Redfish() && rf != nil && rf.NoSessions {
			return done(&Diagnosis{Cause: CauseNoSessions, Confidence: High,
				Summary:  "the account forces a Redfish session login, and the service offers no sessions (no SessionService, or session creation refused)",
				Evidence: []string{nonEmpty(f.Message, string(f.Reason))},
				RuledOut: []string{"the network path and the service: it answered", "the BMC's health: it answered as it was built to"},
				Remedy:   fmt.Sprintf("let lightsout choose (lightsout accounts set %d --redfish-auth auto: HTTP Basic when the service offers no sessions), or force basic", f.Account.ID),
			})
		}
		if f.Reason == state.ReasonStalled && !f.Account.Redfish() {
			if f.Loss == nil {
				return need(NeedLoss)
			}
			if l := f.Loss; l.Err == "" && l.Attempts > 0 && l.Rate() >= lossyRate {
				return done(packetLoss(f))
			}
		}
		d := &Diagnosis{Cause: CauseBMCHung, Confidence: Medium,
			Summary:  fmt.Sprintf("the BMC answers, but its %s service stalls or sends unusable replies", f.Account.service()),
			Evidence: []string{nonEmpty(f.Message, string(f.Reason))},
			RuledOut: []string{"the network path and the BMC's power: it answered at first"},
			Remedy:   "cold-reset the BMC (from the host with ipmitool mc reset cold, or through the enclosure manager for a blade); if it recurs, update its firmware",
		}
		if f.Evidence.PingAnswered {
			d.Evidence = append(d.Evidence, "it answers presence pings (the network side of the BMC is alive)")
			d.Confidence = High
		}
		if f.Evidence.FailedStage != "" {
			d.Evidence = append(d.Evidence, "it stopped during "+f.Evidence.FailedStage)
		}
		if l := f.Loss; l != nil {
			switch {
			case l.Err != "":
				// The path could not be measured: loss stays possible.
				d.Evidence = append(d.Evidence, "the path's loss could not be measured: "+l.Err)
				d.Confidence = Medium
			case l.Lost > 0:
				// Some loss, below the lossy threshold: a live alternative.
				d.Evidence = append(d.Evidence, lossLine(l)+": some packet loss on the path is a live alternative")
				d.Confidence = Medium
			default:
				d.Evidence = append(d.Evidence, lossLine(l)+": the path is clean, the controller stalls in session")
				d.RuledOut = append(d.RuledOut, "packet loss on the path: every session-less request was answered at its first attempt")
			}
		}
		return done(d)
	}

	// Silent.
	base := []string{fmt.Sprintf("no reply from %s (no ICMP error either)", addr)}
	filtered := "UDP 623"
	if f.Account.Redfish() {
		base[0] = fmt.Sprintf("no answer from %s over HTTPS (no connection refusal either)", addr)
		filtered = "TCP " + portOf(addr)
	}
	if f.Evidence.Attempts > 1 {
		base[0] += fmt.Sprintf(", %d attempts", f.Evidence.Attempts)
	}
	var ruled []string
	h := f.History
	if h.OldAddress != "" && h.beforeFailure(h.AddressChangedAt) {
		if f.OldAddress == nil {
			return need(NeedOldAddress)
		}
		o := f.OldAddress
		edit := fmt.Sprintf("the account's address was edited at %s from %s to %s", when(h.AddressChangedAt), h.OldAddress, addr)
		switch {
		case o.Answered && o.Ours:
			return done(&Diagnosis{Cause: CauseAddressChanged, Confidence: High,
				Summary:  fmt.Sprintf("the BMC is still at its previous address %s; nothing answers at the new one", h.OldAddress),
				Evidence: append(base, edit, fmt.Sprintf("%s answers with this machine's System GUID", h.OldAddress)),
				RuledOut: []string{"a dead BMC or a broken path: the BMC answers at its old address"},
				Remedy:   fmt.Sprintf("set the account's address back to %s, or finish moving the BMC to %s (change its LAN settings) first", h.OldAddress, hostOf(addr)),
			})
		case o.Answered:
			return done(&Diagnosis{Cause: CauseAddressChanged, Confidence: Medium,
				Summary:  fmt.Sprintf("nothing answers at the new address, and the previous address %s now belongs to another BMC", h.OldAddress),
				Evidence: append(base, edit, fmt.Sprintf("%s answers with System GUID %s, not this machine's", h.OldAddress, nonEmpty(o.GUID, "(unknown)"))),
				Remedy:   "find the address the BMC really has now (its LAN settings, DHCP leases, the switch's ARP table) and correct the account",
			})
		}
		ruled = append(ruled, fmt.Sprintf("a wrong address edit: the previous address %s is silent too", h.OldAddress))
	}
	// The enclosure isolation pings and drives the enclosure manager over
	// IPMI, or over Redfish for an enclosure of kind redfish: a Redfish
	// channel is isolated through a Redfish enclosure manager only.
	if f.Blade != nil && (!f.Account.Redfish() || f.Blade.Kind == "redfish") {
		return bladeSilent(f, base, ruled)
	}
	if f.Subnet == nil {
		return need(NeedSubnet)
	}
	s := f.Subnet
	if s.Peers >= 3 && s.NotResponding*2 > s.Peers {
		return done(&Diagnosis{Cause: CauseNetworkSegment, Confidence: High,
			Summary:  fmt.Sprintf("most of subnet %s is silent: a switch, VLAN or uplink problem rather than this BMC", s.Prefix),
			Evidence: append(base, fmt.Sprintf("%d of the %d other channels on %s are NotResponding too", s.NotResponding, s.Peers, s.Prefix)),
			RuledOut: append(ruled, "this BMC alone: its neighbours are silent as well"),
			Remedy:   fmt.Sprintf("check the management switch and VLAN serving %s, its uplink, and any firewall between the manager and it (%s)", s.Prefix, filtered),
		})
	}
	if s.Peers > 0 {
		ruled = append(ruled, fmt.Sprintf("the management network: %d of the %d other channels on %s answer", s.Peers-s.NotResponding, s.Peers, s.Prefix))
	}
	d := &Diagnosis{Cause: CauseBMCUnreachable, Confidence: Medium,
		Summary:  fmt.Sprintf("this BMC does not answer at all: powered off, dead, unplugged, or %s filtered on its path", filtered),
		Evidence: base,
		RuledOut: ruled,
		Remedy:   fmt.Sprintf("check that the server has standby power, the BMC's network cable and switch port (link light, VLAN), and that no firewall drops %s to it; if all is fine, the BMC is dead: reset it from the host (ipmitool mc reset cold) or call the vendor", filtered),
	}
	if s.Peers == 0 {
		d.Confidence = Low
		d.Evidence = append(d.Evidence, "no other channel on "+s.Prefix+" to compare with")
	}
	return done(d)
}

// lossyRate: a path that loses this share of session-less attempts or more
// is lossy, whatever the BMC does in session.
const lossyRate = 0.1

func lossLine(l *Loss) string {
	return fmt.Sprintf("%d session-less requests sampled now: %d of %d attempts lost (%.0f%%), %d answered", l.Requests, l.Lost, l.Attempts, 100*l.Rate(), l.Answered)
}

// packetLoss: the check stalled, and session-less requests — which a
// hung controller answers promptly — are lost too: the path.
func packetLoss(f Facts) *Diagnosis {
	l := f.Loss
	return &Diagnosis{Cause: CausePacketLoss, Confidence: Medium,
		Summary: fmt.Sprintf("the path to the BMC loses about %.0f%% of packets: a lossy network, not a hung BMC", 100*l.Rate()),
		Evidence: []string{nonEmpty(f.Message, string(f.Reason)), lossLine(l),
			"a hung BMC answers session-less requests promptly and stalls only in session; these are lost as well"},
		RuledOut: []string{"a dead BMC or a broken path: it answers most requests"},
		Remedy:   fmt.Sprintf("find where %s loses packets: the switch port's error counters and duplex (a duplex mismatch loses about a third), the cable, congestion or rate limits on the management VLAN, a firewall dropping UDP 623 now and then; lightsout's retries absorb it meanwhile. If the path is clean, the BMC's own network stack drops them: cold-reset it", hostOf(f.Account.Address)),
	}
}

// bladeSilent is the enclosure isolation: the EM card first, then the
// sibling blades, then the enclosure manager's view of this blade and its
// identify lamp.
func bladeSilent(f Facts, base, ruled []string) Result {
	b := f.Blade
	enc := "enclosure " + b.Enclosure
	if b.EMAddress == "" {
		// The enclosure is not in the inventory: compare with the siblings only.
		if f.Siblings == nil {
			return need(NeedSiblings)
		}
		s := f.Siblings
		if s.Tried > 0 && s.Answered == 0 {
			return done(&Diagnosis{Cause: CauseEnclosureDown, Confidence: Medium,
				Summary:  fmt.Sprintf("every blade of %s is silent: its EM card or enclosure path", enc),
				Evidence: append(base, siblingLine(s, enc), "the enclosure manager is not in the inventory, so it could not be asked"),
				RuledOut: ruled,
				Remedy:   fmt.Sprintf("add %s's enclosure manager to the inventory (lightsout enclosures add) so the diagnosis can check it; meanwhile check the enclosure's power, EM card and uplink", enc),
			})
		}
		return done(&Diagnosis{Cause: CauseBladeBMC, Confidence: Low,
			Summary:  fmt.Sprintf("this blade's BMC (slot %d of %s) does not answer", b.Slot, enc),
			Evidence: append(base, siblingLine(s, enc), "the enclosure manager is not in the inventory, so the blade could not be checked through it"),
			RuledOut: append(ruled, siblingRuledOut(s, enc)...),
			Remedy:   fmt.Sprintf("add %s's enclosure manager to the inventory and run the diagnosis again, or check the blade's BMC from the enclosure manager's console", enc),
		})
	}
	if f.EM == nil {
		return need(NeedEM)
	}
	emLine := fmt.Sprintf("the enclosure manager (EM card) at %s answers a ping", b.EMAddress)
	if b.Kind == "redfish" {
		emLine = fmt.Sprintf("the enclosure manager (EM card) at %s answers a ping over HTTPS (its Redfish service root)", b.EMAddress)
	}
	if !f.EM.Answered {
		emLine = fmt.Sprintf("the enclosure manager (EM card) at %s does not answer a ping", b.EMAddress)
		if b.Kind == "redfish" {
			emLine = fmt.Sprintf("the enclosure manager (EM card) at %s does not answer a ping over HTTPS (its Redfish service root)", b.EMAddress)
		}
		if f.Siblings == nil {
			return need(NeedSiblings)
		}
		s := f.Siblings
		if s.Tried == 0 || s.Answered == 0 {
			d := &Diagnosis{Cause: CauseEnclosureDown, Confidence: High,
				Summary:  fmt.Sprintf("the EM card of %s and the blades behind it are silent: the EM card or the enclosure tray failed", enc),
				Evidence: append(base, emLine, siblingLine(s, enc)),
				RuledOut: append(ruled, "this blade alone: its enclosure manager is silent too"),
				Remedy:   fmt.Sprintf("check %s: its power, the EM card (status LEDs, reseat it) and the enclosure's uplink switch; then call the enclosure's support with these results", enc),
			}
			if s.Tried == 0 {
				d.Confidence = Medium
			}
			return done(d)
		}
		return done(&Diagnosis{Cause: CauseEMCard, Confidence: Medium,
			Summary:  fmt.Sprintf("the EM card of %s does not answer, while other blades do: the EM card itself is failing, and this blade's BMC with it", enc),
			Evidence: append(base, emLine, siblingLine(s, enc)),
			RuledOut: append(ruled, "the enclosure tray's network path: other blades behind it answer"),
			Remedy:   fmt.Sprintf("reset or reseat the EM card of %s (from its serial console or front panel); if this blade stays silent afterwards, reseat the blade; call the enclosure's support with these results", enc),
		})
	}
	if f.Siblings == nil {
		return need(NeedSiblings)
	}
	s := f.Siblings
	if s.Tried > 0 && s.Answered*2 < s.Tried {
		conf := High
		if s.Answered > 0 {
			conf = Medium
		}
		return done(&Diagnosis{Cause: CauseEnclosureTray, Confidence: conf,
			Summary:  fmt.Sprintf("the EM card of %s answers but the blades behind it do not: the enclosure tray (the path from the EM card to the blades)", enc),
			Evidence: append(base, emLine, siblingLine(s, enc)),
			RuledOut: append(ruled, "the EM card itself: it answers", "this blade alone: most of its siblings are silent too"),
			Remedy:   fmt.Sprintf("check %s's tray: its internal switch module and midplane; reseating the EM card resets the path on most enclosures; then call the enclosure's support with these results", enc),
		})
	}
	ruled = append(ruled, "the EM card: it answers")
	ruled = append(ruled, siblingRuledOut(s, enc)...)
	ev := append(base, emLine, siblingLine(s, enc))
	if f.BladeView == nil {
		return need(NeedBladeView)
	}
	if b.ipmb() && b.IPMBErr != "" {
		return done(&Diagnosis{Cause: CauseBladeBMC, Confidence: Low,
			Summary:  fmt.Sprintf("this blade's BMC (slot %d of %s) does not answer; the inventory gives no IPMB address to ask its enclosure manager about it", b.Slot, enc),
			Evidence: append(ev, "the enclosure's ipmb rule: "+b.IPMBErr),
			RuledOut: ruled,
			Remedy:   fmt.Sprintf("correct the ipmb rule of %s (\"0x82+2\", or one address per slot \"0x82,0x84,…\"; ipmitool -b 0 -t ADDR mc info on the enclosure manager finds them), then run the diagnosis again", enc),
		})
	}
	if f.BladeView.Refused != "" {
		return done(bladeRefused(f, ev, ruled))
	}
	if b.Guessed != "" {
		ev = append(ev, fmt.Sprintf("the enclosure manager refused %s; asked instead by standard IPMI bridging at the default IPMB addresses (%s) — set the enclosure's kind to ipmb (lightsout enclosures, the inventory's kind: ipmb) to ask it that way directly", b.Guessed, vocab.DefaultIPMBRule))
	}
	if f.BladeView.Err != "" {
		d := &Diagnosis{Cause: CauseBladeBMC, Confidence: Low,
			Summary:  fmt.Sprintf("this blade's BMC (slot %d of %s) does not answer; its enclosure manager could not be asked about it", b.Slot, enc),
			Evidence: append(ev, "asking the enclosure manager failed: "+f.BladeView.Err),
			RuledOut: ruled,
			Remedy:   fmt.Sprintf("check the enclosure manager's account in the inventory (lightsout enclosures set %s), or look at slot %d on the enclosure manager's console: if its power lamp shows unknown, press its identify button — lit means the EM↔BMC link, dark means the BMC", b.Enclosure, b.Slot),
		}
		if f.BladeView.LoggedIn {
			d.Remedy = fmt.Sprintf("the enclosure manager's account works (it logged in); the request about the blade failed: reset the enclosure manager if it keeps failing, and look at slot %d on its console: if its power lamp shows unknown, press its identify button — lit means the EM↔BMC link, dark means the BMC", b.Slot)
		}
		return done(d)
	}
	v := f.BladeView.Status
	if !v.Present {
		return done(&Diagnosis{Cause: CauseBladeBMC, Confidence: Medium,
			Summary:  fmt.Sprintf("the enclosure manager sees no blade in slot %d of %s", b.Slot, enc),
			Evidence: append(ev, fmt.Sprintf("the enclosure manager reports slot %d empty", b.Slot)),
			RuledOut: ruled,
			Remedy:   fmt.Sprintf("check that the blade is seated in slot %d (or correct the machine's slot in the inventory)", b.Slot),
		})
	}
	if v.BMCAnswers {
		power := "off"
		if v.PowerOn {
			power = "on"
		}
		seen := fmt.Sprintf("the enclosure manager reports the BMC in slot %d answering (power %s)", b.Slot, power)
		if b.ipmb() {
			if !f.BladeView.PowerKnown {
				power = "not reported: the controller is not a chassis device"
			}
			seen = fmt.Sprintf("through the enclosure manager (Send Message to IPMB address %#02x) the blade's controller answers Get Device ID: %s (power %s)", b.IPMB, nonEmpty(f.BladeView.Device, "a controller"), power)
		}
		if b.Kind == "redfish" {
			seen = fmt.Sprintf("the enclosure manager's Redfish %s reports the BMC in slot %d answering (power %s)", nonEmpty(f.BladeView.Device, "blade Chassis"), b.Slot, power)
		}
		return done(&Diagnosis{Cause: CauseBladeLAN, Confidence: High,
			Summary:  "the enclosure manager talks to this blade's BMC fine, but the BMC is not reachable on the management network",
			Evidence: append(ev, seen),
			RuledOut: append(ruled, "a dead BMC: it answers the enclosure manager", "the EM↔BMC link: it works"),
			Remedy:   "check the BMC's LAN settings from the enclosure manager's console (IP address, netmask, VLAN, IPMI over LAN enabled) against the account's address, and the enclosure switch port it maps to",
		})
	}
	if b.ipmb() {
		return done(bladeIPMBSilent(f, ev, ruled))
	}
	if b.Kind == "redfish" {
		ev = append(ev, fmt.Sprintf("the enclosure manager's Redfish %s reports no answer from the BMC in slot %d (no power state)", nonEmpty(f.BladeView.Device, "blade Chassis"), b.Slot))
	} else {
		ev = append(ev, fmt.Sprintf("the enclosure manager gets no answer from the BMC in slot %d (its power state is unknown to it)", b.Slot))
	}
	if f.Identify == nil {
		return need(NeedIdentify)
	}
	if f.Identify.Err != "" {
		return done(&Diagnosis{Cause: CauseBladeBMC, Confidence: Medium,
			Summary:  fmt.Sprintf("this blade's BMC (slot %d of %s) answers neither the network nor the enclosure manager", b.Slot, enc),
			Evidence: append(ev, "the identify-lamp test through the enclosure manager failed: "+f.Identify.Err),
			RuledOut: ruled,
			Remedy:   fmt.Sprintf("press the identify button of slot %d on the enclosure manager's console: lit means the EM↔BMC link is at fault (reseat the blade), dark means the BMC failed (cold-reset it through the enclosure manager, or replace the board)", b.Slot),
		})
	}
	if f.Identify.Lit {
		return done(&Diagnosis{Cause: CauseEMBMCPath, Confidence: High,
			Summary:  fmt.Sprintf("the link between the enclosure manager and this blade's BMC (slot %d) is broken; the BMC itself runs", b.Slot),
			Evidence: append(ev, "its identify lamp lit when the enclosure manager drove it, and was read back on (then turned off again)"),
			RuledOut: append(ruled, "a dead BMC: it lit its identify lamp"),
			Remedy:   fmt.Sprintf("reseat the blade in slot %d (the midplane connector); if the link stays down, call the enclosure's support with these results", b.Slot),
		})
	}
	return done(&Diagnosis{Cause: CauseBMCFailed, Confidence: High,
		Summary:  fmt.Sprintf("this blade's BMC (slot %d of %s) has failed", b.Slot, enc),
		Evidence: append(ev, "its identify lamp stayed dark when the enclosure manager drove it"),
		RuledOut: append(ruled, "the EM↔BMC link alone: the BMC did not even light its lamp"),
		Remedy:   "cold-reset the BMC through the enclosure manager (or pull the blade to drain its standby power); if it stays dark, the board needs replacing: call the server's support",
	})
}

// bladeRefused: the enclosure manager logged in and refused to ask the
// blade (Send Message not supported, invalid channel, not at this
// privilege) — a finding about that request, not about its account.
func bladeRefused(f Facts, ev, ruled []string) *Diagnosis {
	b, v := f.Blade, f.BladeView
	enc := "enclosure " + b.Enclosure
	remedy := "the enclosure manager's account logged in, so its credentials are fine: the request itself is refused. "
	switch {
	case b.Kind == "redfish":
		remedy += fmt.Sprintf("Give the account of %s's manager a Redfish role that may read its Chassis (ReadOnly) and set a blade's LocationIndicatorActive (Operator: ConfigureComponents), in the manager's AccountService (PATCH /redfish/v1/AccountService/Accounts/ID {\"RoleId\": \"Operator\"}), ", enc)
	case !b.ipmb():
		remedy += "This enclosure manager does not take lightsout's enclosure commands (NetFn 0x30, which only lightsout sim speaks; a standard one refuses them, 0xD4 from ipmi_sim as from real shelf managers): set the enclosure's kind to ipmb, so it is asked by standard IPMI bridging (ipmitool -b 0 -t ADDR mc info on it shows which IPMB addresses answer; give them as its ipmb rule); "
		if v.RefusedCode == 0xd4 || v.RefusedCode == 0xd5 {
			remedy += "if it is a lightsout sim enclosure manager, its account needs operator privilege; "
		}
	case v.RefusedCode == 0xd4 || v.RefusedCode == 0xd5:
		remedy += fmt.Sprintf("Give the account of %s a privilege that may ask about the blades (operator or administrator on the enclosure manager; some allow Send Message to administrators only), ", enc)
	case v.RefusedCode == 0xc1:
		remedy += "This enclosure manager does not bridge to its blades with Send Message: if it speaks lightsout's enclosure commands (lightsout sim), set the enclosure's kind to oem; "
	default:
		remedy += "Check the enclosure's ipmb rule and channel (ipmitool -b 0 -t ADDR mc info on the enclosure manager shows which addresses answer), "
	}
	remedy += fmt.Sprintf("and meanwhile look at slot %d on the enclosure manager's console: if its power lamp shows unknown, press its identify button — lit means the EM↔BMC link, dark means the BMC", b.Slot)
	return &Diagnosis{Cause: CauseBladeBMC, Confidence: Low,
		Summary:  fmt.Sprintf("this blade's BMC (slot %d of %s) does not answer, and its enclosure manager refused to ask it", b.Slot, enc),
		Evidence: append(ev, "the enclosure manager refused "+v.Refused+" (its account logged in: this is about the request, not the account)"),
		RuledOut: ruled,
		Remedy:   remedy,
	}
}

// bladeIPMBSilent: over standard bridging the blade's controller does not
// answer its IPMB address either. The other blades' controllers on the
// same IPMB tell the enclosure manager's path from this blade.
func bladeIPMBSilent(f Facts, ev, ruled []string) *Diagnosis {
	b, v := f.Blade, f.BladeView
	enc := "enclosure " + b.Enclosure
	ev = append(ev, fmt.Sprintf("through the enclosure manager (Send Message to IPMB address %#02x) the blade's controller does not answer Get Device ID: %s", b.IPMB, nonEmpty(v.Silence, "no answer")))
	switch {
	case v.SiblingsTried > 0 && v.SiblingsAnswered > 0:
		return &Diagnosis{Cause: CauseBMCFailed, Confidence: Medium,
			Summary:  fmt.Sprintf("this blade's BMC (slot %d of %s) answers neither the network nor the enclosure manager, which reaches the other blades' controllers: the BMC has failed or is unseated", b.Slot, enc),
			Evidence: append(ev, fmt.Sprintf("%d of the %d other blades' controllers answer the enclosure manager over the same IPMB", v.SiblingsAnswered, v.SiblingsTried)),
			RuledOut: append(ruled, "the enclosure manager's IPMB: it reaches the other blades' controllers"),
			Remedy:   fmt.Sprintf("reseat the blade in slot %d (that drains its standby power and reseats its IPMB connector); if its controller still does not answer at IPMB %#02x (ipmitool -b 0 -t %#02x mc info on the enclosure manager), the BMC has failed: replace the board or call the server's support. A standard enclosure manager cannot light the lamp of a controller that does not answer: its identify button on the console tells a dead BMC (dark) from a broken connector (lit)", b.Slot, b.IPMB, b.IPMB),
		}
	case v.SiblingsTried > 0:
		return &Diagnosis{Cause: CauseEMBMCPath, Confidence: Medium,
			Summary:  fmt.Sprintf("the enclosure manager of %s reaches none of its blades' controllers over its IPMB, though the other blades answer on the network: the link between the enclosure manager and the blades is broken", enc),
			Evidence: append(ev, fmt.Sprintf("none of the %d other blades' controllers answers the enclosure manager over the IPMB, while they answer on the management network", v.SiblingsTried)),
			RuledOut: append(ruled, "the other blades' BMCs: they answer on the network, so only their path from the enclosure manager fails"),
			Remedy:   fmt.Sprintf("reseat the enclosure manager of %s (its IPMB connector to the midplane) or reset it; then, if slot %d stays silent on the network, reseat that blade; call the enclosure's support with these results", enc, b.Slot),
		}
	}
	return &Diagnosis{Cause: CauseBladeBMC, Confidence: Medium,
		Summary:  fmt.Sprintf("this blade's BMC (slot %d of %s) answers neither the network nor the enclosure manager", b.Slot, enc),
		Evidence: append(ev, "no other blade of "+enc+" could be asked over the IPMB to compare with"),
		RuledOut: ruled,
		Remedy:   fmt.Sprintf("press the identify button of slot %d on the enclosure manager's console: lit means the EM↔BMC link is at fault (reseat the blade), dark means the BMC failed (reseat the blade to drain its standby power, or replace the board)", b.Slot),
	}
}

func siblingLine(s *Siblings, enc string) string {
	if s == nil || s.Tried == 0 {
		return "no other blade of " + enc + " is in the inventory to compare with"
	}
	return fmt.Sprintf("%d of the %d other blades of %s answer a ping", s.Answered, s.Tried, enc)
}

func siblingRuledOut(s *Siblings, enc string) []string {
	if s == nil || s.Answered == 0 {
		return nil
	}
	return []string{fmt.Sprintf("the enclosure tray: the other blades of %s answer", enc)}
}

// portOf is the port of a host:port ("443" when there is none), as
// net.SplitHostPort splits it (TestPortOf holds them equal; diag does not
// import net).
func portOf(addr string) string {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return "443"
	}
	host := addr[:i]
	if strings.HasPrefix(host, "[") {
		if !strings.HasSuffix(host, "]") || strings.ContainsAny(host[1:len(host)-1], "[]") {
			return "443"
		}
	} else if strings.ContainsAny(host, ":[]") {
		return "443"
	}
	if strings.ContainsAny(addr[i+1:], "[]") {
		return "443"
	}
	return addr[i+1:]
}

func hostOf(addr string) string {
	if i := strings.LastIndex(addr, ":"); i > 0 && !strings.HasSuffix(addr, "]") {
		h := addr[:i]
		return strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	}
	return addr
}

// ---------------------------------------------------------------------------
// NotAuthenticated

// strongSuites are the cipher suites autocorrect may pin: authenticated,
// integrity-protected and encrypted, in order of preference.
var strongSuites = []int{17, 3}

// SuiteCandidate is the cipher suite worth a login: the first strong suite
// the BMC offers that is not the pinned one; 0 if none.
func SuiteCandidate(f Facts) int {
	if f.Suites == nil {
		return 0
	}
	for _, s := range strongSuites {
		if s != f.Account.CipherSuite && slices.Contains(f.Suites.Offered, s) {
			return s
		}
	}
	return 0
}

func suiteList(ss []int) string {
	if len(ss) == 0 {
		return "none"
	}
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = fmt.Sprint(s)
	}
	return strings.Join(parts, ", ")
}

func notAuthenticated(f Facts) Result {
	r := notAuthenticatedTree(f)
	if r.Diagnosis != nil && f.Account.Redfish() {
		redfishAuth(f, r.Diagnosis)
	}
	return r
}

// accountsURI is the Redfish AccountService's account collection.
const accountsURI = "/redfish/v1/AccountService/Accounts"

// redfishAuth words a refused Redfish login in the service's terms: what
// it answered (HTTP status, the request, its message), and the remedies as
// AccountService changes instead of ipmitool's.
func redfishAuth(f Facts, d *Diagnosis) {
	user := f.Account.User
	if rf := f.Evidence.Redfish; rf != nil && rf.HTTPStatus != 0 {
		line := fmt.Sprintf("HTTP %d to %s", rf.HTTPStatus, nonEmpty(rf.FailedURL, "the service"))
		if rf.Auth != "" {
			line += " (authenticated by " + map[string]string{"basic": "HTTP Basic", "session": "a session login"}[rf.Auth]
			if rf.AuthWhy != "" {
				line += ": " + rf.AuthWhy
			}
			line += ")"
		}
		d.Evidence = append(d.Evidence, line)
		if len(rf.MessageIDs) > 0 {
			d.Evidence = append(d.Evidence, "the service's message: "+strings.Join(rf.MessageIDs, ", "))
		}
	}
	find := fmt.Sprintf("the account whose UserName is %s (GET %s as an administrator, or the BMC's web console)", user, accountsURI)
	create := fmt.Sprintf(" (in Redfish: POST %s {\"UserName\": \"%s\", \"Password\": …, \"RoleId\": \"Administrator\"})", accountsURI, user)
	switch d.Cause {
	case CauseAccountLocked:
		fix := fmt.Sprintf("unlock %s: PATCH %s/ID {\"Locked\": false} (and {\"Enabled\": true} if it was disabled), or wait out the AccountService's AccountLockoutDuration; lightsout does not retry the account before then unless its credentials are edited", find, accountsURI)
		if f.History.RefusedFirst == state.ReasonWrongPassword {
			fix = fmt.Sprintf("first set the account's password to the BMC's (lightsout accounts set %d --password-file FILE), then %s", f.Account.ID, fix)
		}
		d.Remedy = fix
	case CauseUserMissingAfterSwap, CauseUserRemoved, CauseUserNameWrong:
		d.Remedy += create
	case CauseReplacedCredentials:
		d.Remedy += fmt.Sprintf(" (in Redfish: PATCH %s/ID {\"Password\": …} on %s)", accountsURI, find)
	case CausePrivilegeTooLow:
		d.Remedy = fmt.Sprintf("give %s a role that may do what the account needs: PATCH %s/ID {\"RoleId\": \"Operator\"} (ReadOnly is enough to monitor; power and identify need Operator), the roles' privileges are under /redfish/v1/AccountService/Roles", find, accountsURI)
	case CauseAuthRejected:
		d.Remedy = fmt.Sprintf("check %s: it must exist, be Enabled and not Locked, with a RoleId that has the Login privilege; then set its password (PATCH %s/ID {\"Password\": …}) or the account's to match (lightsout accounts set %d --password-file FILE). Redfish answers 401 alike for a wrong password, an unknown user and a locked account, so which one it is can only be read on the BMC", find, accountsURI, f.Account.ID)
	}
}

func notAuthenticatedTree(f Facts) Result {
	h := f.History
	refused := nonEmpty(f.Message, "the BMC refused the account")
	ev := []string{refused}
	if f.Evidence.RMCPStatus != 0 {
		ev = append(ev, fmt.Sprintf("RMCP+ status %#02x during %s", f.Evidence.RMCPStatus, nonEmpty(f.Evidence.FailedStage, "the login")))
	}
	lastOK := "it has never logged in"
	if !h.LastConnectable.IsZero() {
		lastOK = "it last logged in at " + when(h.LastConnectable)
	}
	switch f.Reason {
	case state.ReasonNoCipherSuite:
		return cipherTree(f, ev)
	case state.ReasonCipher0Refused:
		return done(cipher0Only(ev))
	case state.ReasonLocked:
		d := &Diagnosis{Cause: CauseAccountLocked, Confidence: High,
			Summary:  fmt.Sprintf("the BMC knows user %s but has disabled or locked it", f.Account.User),
			Evidence: append(ev, lastOK),
			RuledOut: []string{"an unknown user: the BMC answers with a disabled account's status, not an unknown name", "a wrong password: the BMC refused before checking it"},
			Remedy:   fmt.Sprintf("unlock or re-enable user %s on the BMC (its web console, or ipmitool user enable from the host), or wait out its lockout interval; lightsout does not retry the account before then unless its credentials are edited", f.Account.User),
		}
		if h.RefusedFirst == state.ReasonWrongPassword {
			d.Summary += " — after it refused a wrong password"
			d.Evidence = append(d.Evidence, fmt.Sprintf("the refusals began with a wrong password (since %s): failed logins locked the account", when(h.StoredSince)))
			d.Remedy = fmt.Sprintf("first set the account's password to the BMC's (lightsout accounts set %d --password-file FILE), then unlock user %s on the BMC or wait out its lockout interval", f.Account.ID, f.Account.User)
		}
		return done(d)
	case state.ReasonPrivilege:
		return privilegeTooLow(f, ev)
	case state.ReasonUnknownUser:
		switch {
		case h.beforeFailure(h.HardwareChangedAt) && !h.LastConnectable.IsZero():
			return done(&Diagnosis{Cause: CauseUserMissingAfterSwap, Confidence: High,
				Summary:  fmt.Sprintf("the BMC does not know user %s since the hardware was changed (%s at %s)", f.Account.User, h.HardwareChange, when(h.HardwareChangedAt)),
				Evidence: append(ev, lastOK, fmt.Sprintf("%s at %s", h.HardwareChange, when(h.HardwareChangedAt))),
				RuledOut: []string{"a mistyped user name: the same name worked before the hardware change"},
				Remedy:   fmt.Sprintf("re-create user %s on the new BMC with the same password and privilege as before", f.Account.User),
			})
		case h.beforeFailure(h.CredentialsChangedAt):
			return done(&Diagnosis{Cause: CauseUserNameWrong, Confidence: High,
				Summary:  fmt.Sprintf("the BMC does not know user %s, set in the account at %s", f.Account.User, when(h.CredentialsChangedAt)),
				Evidence: append(ev, lastOK, "the account's credentials were edited at "+when(h.CredentialsChangedAt)),
				Remedy:   fmt.Sprintf("correct the user name (lightsout accounts set %d --user NAME) to one the BMC has", f.Account.ID),
			})
		case h.LastConnectable.IsZero():
			return done(&Diagnosis{Cause: CauseUserNameWrong, Confidence: Medium,
				Summary:  fmt.Sprintf("the BMC does not know user %s, and this account never logged in", f.Account.User),
				Evidence: append(ev, lastOK),
				Remedy:   fmt.Sprintf("correct the user name (lightsout accounts set %d --user NAME), or create user %s on the BMC", f.Account.ID, f.Account.User),
			})
		}
		return done(&Diagnosis{Cause: CauseUserRemoved, Confidence: Medium,
			Summary:  fmt.Sprintf("user %s was removed or renamed on the BMC", f.Account.User),
			Evidence: append(ev, lastOK, "neither the account nor the hardware was changed in the inventory since"),
			RuledOut: []string{"a mistyped user name: the same name worked before"},
			Remedy:   fmt.Sprintf("re-create user %s on the BMC (or a BMC reset to factory settings lost it); some BMCs also report a locked-out user as unknown: check its lockout state", f.Account.User),
		})
	case state.ReasonWrongPassword:
		ev = append(ev, lastOK)
		sameBMC := "another BMC at the address: its RAKP 2 names the registered System GUID"
		if f.Expected == "" {
			sameBMC = ""
		}
		switch {
		case h.beforeFailure(h.CredentialsChangedAt) && !h.LastConnectable.IsZero():
			return done(&Diagnosis{Cause: CausePasswordEditWrong, Confidence: High,
				Summary:  fmt.Sprintf("the password set in the account at %s is not the BMC's", when(h.CredentialsChangedAt)),
				Evidence: append(ev, "the account's credentials were edited at "+when(h.CredentialsChangedAt)+", after its last login"),
				RuledOut: []string{"a password change on the BMC alone: the refusals follow the edit in the inventory"},
				Remedy:   fmt.Sprintf("set the account's password back to the BMC's (lightsout accounts set %d --password-file FILE); it is retried at once after the edit", f.Account.ID),
			})
		case h.beforeFailure(h.HardwareChangedAt) && !h.LastConnectable.IsZero():
			return done(&Diagnosis{Cause: CauseReplacedCredentials, Confidence: High,
				Summary:  fmt.Sprintf("since the hardware was changed (%s at %s) the BMC has other credentials", h.HardwareChange, when(h.HardwareChangedAt)),
				Evidence: append(ev, fmt.Sprintf("%s at %s", h.HardwareChange, when(h.HardwareChangedAt))),
				Remedy:   fmt.Sprintf("set user %s's password on the new BMC to the one in the account (a new board comes with factory credentials), or update the account", f.Account.User),
			})
		case h.LastConnectable.IsZero():
			return done(&Diagnosis{Cause: CausePasswordNeverWorked, Confidence: Medium,
				Summary:  fmt.Sprintf("the BMC refuses the password of user %s, and this account never logged in", f.Account.User),
				Evidence: ev,
				Remedy:   fmt.Sprintf("set the account's password to the BMC's (lightsout accounts set %d --password-file FILE)", f.Account.ID),
			})
		}
		return done(&Diagnosis{Cause: CausePasswordChanged, Confidence: High,
			Summary:  fmt.Sprintf("the password of user %s was changed on the BMC", f.Account.User),
			Evidence: append(ev, "neither the account nor the hardware was changed in the inventory since"),
			RuledOut: nonEmptyLines("a mistyped password in the inventory: the same password worked before", sameBMC),
			Remedy:   fmt.Sprintf("find who changed it (the BMC's event log, other tools' configuration) and set the account's password to the new one (lightsout accounts set %d --password-file FILE); lightsout retries at once after the edit", f.Account.ID),
		})
	}
	if f.Account.Redfish() {
		d := &Diagnosis{Cause: CauseAuthRejected, Confidence: Medium,
			Summary:  fmt.Sprintf("the Redfish service refused the login of user %s: a wrong password, or the user was removed, disabled or locked", f.Account.User),
			Evidence: append(ev, lastOK),
			RuledOut: []string{"the network path and the service: the HTTPS service answered and the certificate matches the pinned one"},
			Remedy:   fmt.Sprintf("check user %s on the BMC (its web console): that it exists, is enabled and not locked out, may use Redfish, and that its password matches the account's (lightsout accounts set %d --password-file FILE); Redfish answers 401 alike for a wrong password and an unknown user", f.Account.User, f.Account.ID),
		}
		switch {
		case h.beforeFailure(h.CredentialsChangedAt) && !h.LastConnectable.IsZero():
			d.Evidence = append(d.Evidence, "the account's credentials were edited at "+when(h.CredentialsChangedAt)+", after its last login: the edit is the likely culprit")
		case h.beforeFailure(h.HardwareChangedAt) && !h.LastConnectable.IsZero():
			d.Evidence = append(d.Evidence, fmt.Sprintf("%s at %s: a new BMC comes with factory credentials", h.HardwareChange, when(h.HardwareChangedAt)))
		}
		return done(d)
	}
	return done(&Diagnosis{Cause: CauseAuthRejected, Confidence: Low,
		Summary:  fmt.Sprintf("the BMC refused the login of user %s without saying why", f.Account.User),
		Evidence: append(ev, lastOK),
		Remedy:   fmt.Sprintf("check user %s on the BMC: that it exists, is enabled for IPMI over LAN, has the account's privilege, and that the password matches", f.Account.User),
	})
}

// privilegeTooLow: the BMC refused the privilege asked for. A login at
// each lower level (closed at once) says which one it grants.
func privilegeTooLow(f Facts, ev []string) Result {
	asked := nonEmpty(f.Account.Privilege, "administrator")
	d := &Diagnosis{Cause: CausePrivilegeTooLow, Confidence: High,
		Summary:  fmt.Sprintf("user %s may not log in at %s privilege", f.Account.User, asked),
		Evidence: ev,
		RuledOut: []string{"the password and the user name: the BMC refused the privilege before checking the password"},
		Remedy:   fmt.Sprintf("raise user %s's privilege limit on the BMC's LAN channel, or lower the account's privilege (lightsout accounts set %d --privilege operator: enough for power and identify)", f.Account.User, f.Account.ID),
	}
	if f.Account.Redfish() || !f.Fresh {
		return done(d)
	}
	if f.Privilege == nil {
		return need(NeedPrivilege)
	}
	p := f.Privilege
	switch {
	case p.Err != "":
		d.Evidence = append(d.Evidence, "which privilege it grants could not be found: "+p.Err)
	case p.Granted != "":
		d.Summary = fmt.Sprintf("the BMC grants user %s %s privilege, not the %s the account asks for", f.Account.User, p.Granted, asked)
		d.Evidence = append(d.Evidence, fmt.Sprintf("asked for %s: refused", asked))
		for _, r := range p.Refused {
			d.Evidence = append(d.Evidence, fmt.Sprintf("asked for %s: refused", r))
		}
		d.Evidence = append(d.Evidence, fmt.Sprintf("asked for %s: granted (a login with the account's password succeeded, and was closed)", p.Granted))
		d.RuledOut = append(d.RuledOut, "a disabled user or a wrong password: a login at "+p.Granted+" privilege works")
		fix := "lightsout accounts set " + fmt.Sprint(f.Account.ID) + " --privilege " + p.Granted
		if p.Granted == "user" {
			fix += " (enough to monitor; power and identify need operator)"
		} else {
			fix += " (operator is enough for power and identify)"
		}
		d.Remedy = fmt.Sprintf("lower the account's privilege to what the BMC grants: %s; or raise user %s's limit on the BMC to %s (ipmitool channel setaccess 1 ID privilege=%d, ID being the user's number in ipmitool user list 1)", fix, f.Account.User, asked, vocab.PrivilegeOf(asked))
	default:
		d.Confidence = Medium
		d.Summary = fmt.Sprintf("user %s may not log in at %s privilege, nor at any lower one", f.Account.User, asked)
		d.Evidence = append(d.Evidence, fmt.Sprintf("asked for %s: refused", asked))
		for _, r := range p.Refused {
			d.Evidence = append(d.Evidence, fmt.Sprintf("asked for %s: refused", r))
		}
		d.Remedy = fmt.Sprintf("user %s has no IPMI over LAN access at any privilege: enable it on the LAN channel (ipmitool channel setaccess 1 ID ipmi=on privilege=%d) or check that the user is enabled (ipmitool user enable ID)", f.Account.User, vocab.PrivilegeOf(asked))
	}
	return done(d)
}

// cipher0Only: the BMC would let a session in only with cipher suite 0.
func cipher0Only(ev []string) *Diagnosis {
	return &Diagnosis{Cause: CauseCipher0Only, Confidence: High,
		Summary:  "the BMC would only accept cipher suite 0 (no authentication), which lightsout refuses",
		Evidence: ev,
		RuledOut: []string{"the credentials: the BMC refused before they were checked"},
		Remedy:   "enable cipher suite 17 (or 3) on the BMC and disable suite 0: suite 0 lets anyone in with any password",
	}
}

func cipherTree(f Facts, ev []string) Result {
	pinned := "automatic (17, then 3)"
	if f.Account.CipherSuite != 0 {
		pinned = fmt.Sprint(f.Account.CipherSuite)
	}
	ev = append(ev, "the account's cipher suite: "+pinned)
	if f.Suites == nil {
		return need(NeedSuites)
	}
	if f.Suites.Err != "" {
		return done(&Diagnosis{Cause: CauseNoCommonSuite, Confidence: Low,
			Summary:  "the BMC accepts none of the cipher suites asked for, and did not say which it offers",
			Evidence: append(ev, "listing its cipher suites failed: "+f.Suites.Err),
			Remedy:   "look up the cipher suites enabled on the BMC (ipmitool channel getciphers ipmi) and enable 17 or 3, or pin one it offers in the account",
		})
	}
	ev = append(ev, "the BMC offers cipher suites "+suiteList(f.Suites.Offered))
	cand := SuiteCandidate(f)
	if cand == 0 && len(f.Suites.Offered) > 0 && !slices.ContainsFunc(f.Suites.Offered, func(s int) bool { return s != 0 }) {
		return done(cipher0Only(ev))
	}
	if cand == 0 {
		return done(&Diagnosis{Cause: CauseNoCommonSuite, Confidence: High,
			Summary:  "the BMC offers no cipher suite that both authenticates and encrypts",
			Evidence: ev,
			RuledOut: []string{"the credentials: the BMC refused before they were checked"},
			Remedy:   "enable cipher suite 17 (or 3) on the BMC (its LAN security settings, or ipmitool lan set 1 cipher_privs); lightsout does not fall back to weaker suites by itself",
		})
	}
	if f.SuiteTry == nil {
		return need(NeedSuiteTry)
	}
	if !f.SuiteTry.OK {
		return done(&Diagnosis{Cause: CauseNoCommonSuite, Confidence: Medium,
			Summary:  fmt.Sprintf("the BMC offers cipher suite %d, but a login with it failed too", cand),
			Evidence: append(ev, fmt.Sprintf("a login with suite %d: %s", cand, nonEmpty(f.SuiteTry.Err, "refused"))),
			Remedy:   fmt.Sprintf("fix what the login with suite %d reports, then pin suite %d in the account (lightsout accounts set %d --cipher-suite %d)", cand, cand, f.Account.ID, cand),
		})
	}
	return done(&Diagnosis{Cause: CauseSuiteMismatch, Confidence: High,
		Summary:  fmt.Sprintf("the BMC no longer offers the account's cipher suite %s; suite %d, which it offers, works", pinned, cand),
		Evidence: append(ev, fmt.Sprintf("a login with suite %d succeeded", cand)),
		RuledOut: []string{"the credentials: they work with suite " + fmt.Sprint(cand)},
		Remedy:   fmt.Sprintf("pin cipher suite %d in the account (autocorrect does; or lightsout accounts set %d --cipher-suite %d)", cand, f.Account.ID, cand),
		Actions: []Action{{Kind: ActCipherSuite, AccountID: f.Account.ID, Suite: cand,
			What: fmt.Sprintf("the cipher suite of %s's account %d", f.Machine, f.Account.ID), From: pinned, To: fmt.Sprint(cand),
			Because: fmt.Sprintf("the BMC offers only %s and a login with %d succeeded", suiteList(f.Suites.Offered), cand)}},
	})
}

// ---------------------------------------------------------------------------
// Invalid

func invalid(f Facts) Result {
	if f.Reason == state.ReasonCertChanged {
		return done(certChanged(f))
	}
	reported := nonEmpty(f.GUID, "(unknown)")
	ev := []string{fmt.Sprintf("%s answers with System GUID %s; %s is registered with %s", f.Account.Address, reported, f.Machine, nonEmpty(f.Expected, "(none)"))}
	if f.GUID == "" {
		return done(&Diagnosis{Cause: CauseIdentityUnverifiable, Confidence: Low,
			Summary:  "the identity check failed but the BMC's GUID is not known",
			Evidence: ev,
			Remedy:   "check the machine again (lightsout check " + f.Machine + ") and run the diagnosis on the fresh result",
		})
	}
	if f.Owner == nil {
		return need(NeedOwner)
	}
	if f.Owner.Name != "" {
		o := f.Owner
		ev = append(ev, fmt.Sprintf("that GUID is registered to %s, whose account is at %s", o.Name, nonEmpty(o.Address, "(no account)")))
		if o.Address != "" {
			if f.SwapCheck == nil {
				return need(NeedSwapCheck)
			}
			sc := f.SwapCheck
			if sc.Ours {
				d := &Diagnosis{Cause: CauseAddressesSwapped, Confidence: High,
					Summary:  fmt.Sprintf("the addresses of %s and %s are swapped: each BMC answers at the other's address", f.Machine, o.Name),
					Evidence: append(ev, fmt.Sprintf("%s answers with %s's GUID %s", o.Address, f.Machine, f.Expected)),
					RuledOut: []string{"a motherboard replacement: both GUIDs are registered, just at each other's address"},
					Remedy:   "swap the two accounts' addresses (autocorrect does), or swap the BMCs' LAN settings back if they were meant to stay",
					Actions: []Action{{Kind: ActSwapAddresses, AccountID: f.Account.ID, OtherAccountID: o.AccountID, At: f.Account.Endpoint, OtherAt: sc.At, GUIDAt: f.GUID, GUIDOther: sc.GUID,
						What: fmt.Sprintf("the addresses of %s and %s", f.Machine, o.Name),
						From: fmt.Sprintf("%s and %s", f.Account.Address, o.Address), To: fmt.Sprintf("%s and %s", o.Address, f.Account.Address),
						Because: fmt.Sprintf("%s answers with %s's System GUID and %s with %s's", f.Account.Address, o.Name, o.Address, f.Machine)}},
				}
				// Autocorrect swaps only between the two addresses whose
				// BMCs both just answered (a fresh check here, the swap
				// check there), never on a remembered observation.
				if !f.Fresh {
					d.Actions = nil
					d.Remedy = "check the machine again (lightsout check " + f.Machine + "), then " + d.Remedy
				}
				return done(d)
			}
			what := "is silent"
			if sc.Err != "" {
				what = "could not be checked: " + sc.Err
			}
			if sc.GUID != "" {
				what = "answers with System GUID " + sc.GUID
			}
			ev = append(ev, fmt.Sprintf("%s's own address %s %s", o.Name, o.Address, what))
		}
		return done(&Diagnosis{Cause: CauseAddressReused, Confidence: High,
			Summary:  fmt.Sprintf("%s's BMC now answers at %s's address", o.Name, f.Machine),
			Evidence: ev,
			RuledOut: []string{"a motherboard replacement: the GUID belongs to another registered machine", "a simple swap: " + o.Name + "'s own address does not answer as " + f.Machine},
			Remedy:   fmt.Sprintf("find where %s's BMC went: correct %s's account to %s's real address, or give %s's BMC back its own address; then look for %s's BMC", o.Name, o.Name, o.Name, o.Name, f.Machine),
		})
	}
	ev = append(ev, "no machine in the inventory is registered with that GUID")
	// The GUID came after a login (IPMI Get System GUID in a session, the
	// Redfish System's UUID): the BMC accepts this machine's credentials.
	credsOK := f.Evidence.GUIDSource == "get_system_guid" || f.Evidence.GUIDSource == "redfish_system_uuid"
	vendor := ""
	if f.Evidence.ManufacturerID != 0 {
		vendor = fmt.Sprintf("%s product %d firmware %s", nonEmpty(f.Evidence.Manufacturer, fmt.Sprint(f.Evidence.ManufacturerID)), f.Evidence.ProductID, f.Evidence.Firmware)
	}
	sameModel := f.History.ManufacturerID == 0 || f.Evidence.ManufacturerID == 0 ||
		(f.History.ManufacturerID == f.Evidence.ManufacturerID && f.History.ProductID == f.Evidence.ProductID)
	if credsOK && sameModel {
		if vendor != "" {
			ev = append(ev, "it is a "+vendor+", the same model as before")
		}
		ev = append(ev, "it accepts this machine's credentials")
		return done(&Diagnosis{Cause: CauseMotherboardReplaced, Confidence: Medium,
			Summary:  fmt.Sprintf("%s's motherboard (or BMC) was most likely replaced: same model, same credentials, new GUID", f.Machine),
			Evidence: ev,
			RuledOut: []string{"a swapped or reused address: no registered machine has this GUID"},
			Remedy:   fmt.Sprintf("confirm the board swap, then adopt the new GUID (lightsout adopt %s, admin; or diag --autocorrect --adopt)", f.Machine),
			Actions: []Action{{Kind: ActAdopt, NeedsAdopt: true, AccountID: f.Account.ID, GUID: f.GUID,
				What: "the System GUID of " + f.Machine, From: nonEmpty(f.Expected, "(none)"), To: f.GUID,
				Because: "its BMC answers with a GUID no machine owns, accepts its credentials and is the same model (motherboard replaced)"}},
		})
	}
	d := &Diagnosis{Cause: CauseUnknownBMC, Confidence: Medium,
		Summary:  fmt.Sprintf("a BMC that is not in the inventory answers at %s's address", f.Machine),
		Evidence: ev,
		RuledOut: []string{"a swap with a registered machine: nobody registered owns this GUID"},
		Remedy:   fmt.Sprintf("find which device has %s now (the switch's ARP table, DHCP leases) and where %s's BMC went; correct the account's address", hostOf(f.Account.Address), f.Machine),
	}
	if !credsOK {
		d.Evidence = append(d.Evidence, "it refuses this machine's credentials")
		d.RuledOut = append(d.RuledOut, "a motherboard replacement: the new board would normally be set up with the same credentials")
	} else if !sameModel {
		d.Evidence = append(d.Evidence, fmt.Sprintf("it is a %s, not the model %s had (manufacturer %d product %d)", vendor, f.Machine, f.History.ManufacturerID, f.History.ProductID))
		d.RuledOut = append(d.RuledOut, "a motherboard replacement by the same model")
	}
	return done(d)
}

// ---------------------------------------------------------------------------
// Busy

func busy(f Facts) Result {
	ev := []string{}
	if has(f.Conditions, state.Busy) {
		ev = append(ev, "the BMC refused a new session: no free session slot (RMCP+ status 0x01)")
	} else {
		ev = append(ev, fmt.Sprintf("the monitor saw the BMC without a free session slot (declared %s)", when(f.History.CheckedAt)))
	}
	if f.Account.Redfish() {
		return redfishBusy(f)
	}
	if f.Sessions == nil {
		return need(NeedSessions)
	}
	s := f.Sessions
	if !s.Got {
		return done(&Diagnosis{Cause: CauseSessionTableFull, Confidence: Medium,
			Summary:  "every session slot of the BMC is held, and who holds them cannot be read without a slot",
			Evidence: append(ev, fmt.Sprintf("%d login attempts over %s were all refused for want of a slot%s", s.Attempts, s.Waited.Round(time.Millisecond), errSuffix(s.Err))),
			RuledOut: []string{"an authentication problem: the BMC refuses before any password is checked"},
			Remedy:   "sessions are freed when their holders close them or after the BMC's idle timeout (often 60 s to 30 min): look for tools that log in and never log out (scripts killed mid-session, monitoring agents, other managers), list the sessions from the host (ipmitool session info all) or the BMC's web console, or cold-reset the BMC to clear the table",
		})
	}
	table := fmt.Sprintf("%d of the BMC's %d session slots are in use (ours included)", s.Active, s.Slots)
	ev = append(ev, table)
	var stale, other, orphans []HeldSession
	for _, o := range s.Others {
		switch {
		case o.Instance != "" && !o.InstanceLive:
			// A kill -9 of another instance in the middle of a check
			// (docs/scale-out.md): nobody will close it but the BMC's
			// idle timeout, or us.
			orphans = append(orphans, o)
		case o.Instance != "":
			// A live peer's: a forwarded operation or a hand-over.
		case o.SameHost && o.SameUser:
			stale = append(stale, o)
		case o.foreign() && !o.SameHost:
			other = append(other, o)
		}
	}
	if len(orphans) > 0 {
		var hs []int
		var names []string
		for _, o := range orphans {
			hs = append(hs, int(o.Handle))
			if !slices.Contains(names, o.Instance) {
				names = append(names, o.Instance)
			}
		}
		who := strings.Join(names, ", ")
		return done(&Diagnosis{Cause: CauseStaleOwnSessions, Confidence: High,
			Summary:  fmt.Sprintf("%d session(s) left open by lightsout instance %s, which died in the middle of a check, hold the BMC's slots", len(orphans), who),
			Evidence: append(ev, heldLines("left open by lightsout instance "+who+" (dead: its lease lapsed)", orphans)...),
			RuledOut: []string{"another console: these sessions come from the source address of a lightsout instance sharing this database"},
			Remedy:   "close them (autocorrect does: Close Session by handle); otherwise the BMC frees them at its session idle timeout",
			Actions: []Action{{Kind: ActCloseSessions, AccountID: f.Account.ID, Handles: hs,
				What: fmt.Sprintf("the sessions lightsout instance %s left open on %s's BMC (handles %s)", who, f.Machine, handleList(hs)), From: "open", To: "closed",
				Because: fmt.Sprintf("they hold %d of its %d session slots, and %s is dead: nobody else will close them", len(orphans), s.Slots, who)}},
		})
	}
	if len(stale) > 0 {
		var hs []int
		for _, o := range stale {
			hs = append(hs, int(o.Handle))
		}
		return done(&Diagnosis{Cause: CauseStaleOwnSessions, Confidence: High,
			Summary:  fmt.Sprintf("%d session(s) left open by this host under %s's own user hold the BMC's slots", len(stale), f.Machine),
			Evidence: append(ev, heldLines("left open by this host as "+f.Account.User, stale)...),
			RuledOut: []string{"another console or agent alone: these sessions come from this host, as this account's user"},
			Remedy:   "close them (autocorrect does: Close Session by handle); they come from an earlier run killed before it logged out, or from a tool on this host using the same account",
			Actions: []Action{{Kind: ActCloseSessions, AccountID: f.Account.ID, Handles: hs,
				What: fmt.Sprintf("the sessions this host left open on %s's BMC (handles %s)", f.Machine, handleList(hs)), From: "open", To: "closed",
				Because: fmt.Sprintf("they hold %d of its %d session slots, from this host as user %s, and none is ours", len(stale), s.Slots, f.Account.User)}},
		})
	}
	if len(other) > 0 {
		return done(&Diagnosis{Cause: CauseCompetingConsoles, Confidence: High,
			Summary:  fmt.Sprintf("other consoles hold %d of the BMC's %d session slots", len(other), s.Slots),
			Evidence: append(ev, heldLines("held by another console", other)...),
			RuledOut: []string{"sessions of this host: the holders come from other addresses"},
			Remedy:   "find the tools at " + consoles(other) + " (another manager, a monitoring agent, an operator's ipmitool loop): have them log out after each use or poll less often; raise the BMC's session limit if it allows",
		})
	}
	return done(&Diagnosis{Cause: CauseBusyCleared, Confidence: Medium,
		Summary:  "the BMC had no free session slot, but slots are free again now",
		Evidence: ev,
		Remedy:   "nothing to do now; if it recurs, diagnose again while it is busy to see who holds the slots",
	})
}

// redfishBusy: the Redfish service answered HTTP 503. Its
// SessionService's sessions (read with HTTP Basic when no session can be
// opened) say who holds them: sessions this host left open under the
// account's user are closed by autocorrect (DELETE of their URIs), other
// clients are named by address and user.
func redfishBusy(f Facts) Result {
	const sessionsURI = "/redfish/v1/SessionService/Sessions"
	if !has(f.Conditions, state.Busy) {
		return done(&Diagnosis{Cause: CauseBusyCleared, Confidence: Medium,
			Summary: "the Redfish service answered HTTP 503 (busy) before, but accepts a session again now",
			Evidence: []string{fmt.Sprintf("the monitor saw the service answer HTTP 503 (declared %s)", when(f.History.CheckedAt)),
				nonEmpty(f.Message, "a session opened")},
			Remedy: "nothing to do now; if it recurs, diagnose again while it is busy to see who holds its sessions (GET " + sessionsURI + ")",
		})
	}
	ev := []string{nonEmpty(f.Message, "HTTP 503")}
	limit := false
	if rf := f.Evidence.Redfish; rf != nil {
		for _, id := range rf.MessageIDs {
			if strings.Contains(id, "SessionLimitExceeded") {
				limit = true
			}
		}
		if len(rf.MessageIDs) > 0 {
			ev = append(ev, "the service's message: "+strings.Join(rf.MessageIDs, ", "))
		}
	}
	remedy := "Redfish sessions are freed when their clients delete them (DELETE " + sessionsURI + "/ID) or after the SessionService's SessionTimeout: have the clients that log in and never log out (scripts, monitoring agents, other managers) delete their sessions, shorten the timeout (PATCH /redfish/v1/SessionService {\"SessionTimeout\": 600}), or reset the BMC (its Manager's Actions/Manager.Reset, or from the host: ipmitool mc reset cold)"
	if f.Fresh && f.Sessions == nil {
		return need(NeedSessions)
	}
	s := f.Sessions
	if s == nil || !s.Got {
		d := &Diagnosis{Cause: CauseSessionTableFull, Confidence: Medium,
			Summary:  "the Redfish service answers HTTP 503: it is out of sessions or busy as a whole, and who holds its sessions could not be read",
			Evidence: ev,
			RuledOut: []string{"an authentication problem: the service refused before checking any password"},
			Remedy:   "list the sessions on the BMC's web console (or GET " + sessionsURI + " with HTTP Basic from the host); " + remedy,
		}
		if s != nil {
			d.Evidence = append(d.Evidence, "the session census failed"+errSuffix(s.Err))
		}
		if limit {
			d.Summary = "the Redfish service refuses new sessions: its session limit is reached (SessionLimitExceeded), and who holds them could not be read"
		}
		return done(d)
	}
	ev = append(ev, fmt.Sprintf("the SessionService lists %d session(s)", s.Active))
	var stale, other, unsure []HeldSession
	var uris []string
	for _, o := range s.Others {
		switch {
		case o.Ours:
		case o.SameHost && o.SameUser:
			stale = append(stale, o)
			uris = append(uris, nonEmpty(o.URI, sessionsURI+"/"+o.ID))
		case o.foreign():
			other = append(other, o)
		case o.Console == "":
			// The account's user, from an address the service does not
			// report: this host's or another client's with the same
			// account. Never deleted automatically.
			unsure = append(unsure, o)
		}
	}
	if len(stale) == 0 && len(other) == 0 && len(unsure) > 0 {
		var list []string
		for _, o := range unsure {
			list = append(list, nonEmpty(o.URI, sessionsURI+"/"+o.ID))
		}
		return done(&Diagnosis{Cause: CauseSessionTableFull, Confidence: Medium,
			Summary:  fmt.Sprintf("%d Redfish session(s) under %s's own user hold the service's sessions, from addresses it does not report", len(unsure), f.Machine),
			Evidence: append(ev, heldLines("under this account's user", unsure)...),
			RuledOut: []string{"another user's client: every session listed is under the account's user"},
			Remedy:   fmt.Sprintf("they are this host's left-overs (an earlier run killed before it logged out) or another client's using the same account; the service does not say which, so lightsout does not delete them: if no other tool uses user %s, delete them as an administrator (DELETE %s), or give the other tool its own account; %s", f.Account.User, strings.Join(list, ", "), remedy),
		})
	}
	if len(stale) > 0 {
		d := &Diagnosis{Cause: CauseStaleOwnSessions, Confidence: High,
			Summary:  fmt.Sprintf("%d Redfish session(s) left open by this host under %s's own user hold the service's sessions", len(stale), f.Machine),
			Evidence: append(ev, heldLines("left open by this host as "+f.Account.User, stale)...),
			RuledOut: []string{"another client alone: these sessions come from this host, as this account's user"},
			Remedy:   "delete them (autocorrect does: DELETE of each session's URI, only those from this host as " + f.Account.User + "); they come from an earlier run killed before it logged out, or from a tool on this host using the same account",
			Actions: []Action{{Kind: ActCloseSessions, AccountID: f.Account.ID, Sessions: uris,
				What: fmt.Sprintf("the Redfish sessions this host left open on %s's BMC (%s)", f.Machine, strings.Join(uris, ", ")), From: "open", To: "deleted",
				Because: fmt.Sprintf("the service answers HTTP 503 and lists %d session(s), %d of them from this host as user %s and none in use by this manager", s.Active, len(stale), f.Account.User)}},
		}
		if len(other) > 0 {
			d.Confidence = Medium
			d.Evidence = append(d.Evidence, heldLines("held by another client", other)...)
			d.Evidence = append(d.Evidence, "other clients hold sessions too: they may fill the service again (a live alternative)")
		}
		return done(d)
	}
	if len(other) > 0 {
		d := &Diagnosis{Cause: CauseCompetingConsoles, Confidence: High,
			Summary:  fmt.Sprintf("other Redfish clients hold %d of the service's %d sessions", len(other), s.Active),
			Evidence: append(ev, heldLines("held by another client", other)...),
			RuledOut: []string{"sessions of this host: the holders come from other addresses"},
			Remedy:   "find the clients at " + consoles(other) + " (another manager, a monitoring agent, a script): have them delete their sessions after use (DELETE " + sessionsURI + "/ID) or use HTTP Basic; an administrator may delete them on the BMC; " + remedy,
		}
		if len(unsure) > 0 {
			d.Confidence, d.RuledOut = Medium, nil
			d.Evidence = append(d.Evidence, heldLines("under this account's user", unsure)...)
			d.Evidence = append(d.Evidence, fmt.Sprintf("%d session(s) under this account's user come from addresses the service does not report: left-overs of this host are a live alternative", len(unsure)))
		}
		return done(d)
	}
	return done(&Diagnosis{Cause: CauseSessionTableFull, Confidence: Low,
		Summary:  fmt.Sprintf("the Redfish service answers HTTP 503 though its SessionService lists only %d session(s): it is busy rather than out of sessions", s.Active),
		Evidence: ev,
		RuledOut: []string{"other clients' sessions: none is listed"},
		Remedy:   "the service itself is overloaded or restarting: wait for its Retry-After and diagnose again; if it persists, reset the BMC (its Manager's Actions/Manager.Reset, or ipmitool mc reset cold from the host)",
	})
}

func errSuffix(e string) string {
	if e == "" {
		return ""
	}
	return " (" + e + ")"
}

func heldLines(what string, hs []HeldSession) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		who := nonEmpty(h.User, fmt.Sprintf("with user ID %d", h.UserID))
		if h.User != "" {
			who = "user " + h.User
		}
		if h.ID != "" { // Redfish: no privilege per session
			out[i] = fmt.Sprintf("Redfish session %s %s: %s, from %s", h.ID, what, who, nonEmpty(h.Console, "an address the service does not report"))
			continue
		}
		out[i] = fmt.Sprintf("session %d %s: %s, %s privilege, from %s", h.Handle, what, who, nonEmpty(h.Privilege, "unknown"), nonEmpty(h.Console, "an address the BMC does not report"))
	}
	return out
}

func handleListOf(hs []HeldSession) string {
	ids := make([]int, len(hs))
	for i, h := range hs {
		ids[i] = int(h.Handle)
	}
	return "handles " + handleList(ids)
}

func handleList(hs []int) string {
	parts := make([]string, len(hs))
	for i, h := range hs {
		parts[i] = fmt.Sprint(h)
	}
	return strings.Join(parts, ", ")
}

func consoles(hs []HeldSession) string {
	var out []string
	unknown := 0
	for _, h := range hs {
		if h.Console == "" {
			unknown++
			continue
		}
		c := hostOf(h.Console)
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	s := strings.Join(out, ", ")
	switch {
	case unknown > 0 && s == "":
		s = "addresses the BMC does not report (list them on its console)"
	case unknown > 0:
		s += fmt.Sprintf(" (and %d session(s) whose address the BMC does not report)", unknown)
	}
	return s
}

// ---------------------------------------------------------------------------
// Degraded

// Thresholds of the Degraded tree.
const (
	// A condition shared by at least this share of at least minPeers peers
	// is the group's, not the machine's.
	spreadShare = 0.5
	minPeers    = 2
	// A timeout rate or a retry rate at or above these is an overloaded
	// BMC; below, occasional retries.
	highTimeoutRate = 0.1
	highRetryRate   = 0.5
)

func degraded(f Facts) Result {
	ev := []string{}
	if has(f.Conditions, state.Degraded) {
		ev = append(ev, fmt.Sprintf("the BMC answers only after retries (%d retransmissions in this check)", f.Evidence.Retransmits))
	} else {
		ev = append(ev, "the monitor declared the channel Degraded (answers only after retries)")
	}
	if f.Rates == nil {
		return need(NeedRates)
	}
	if f.Fleet == nil {
		return need(NeedFleet)
	}
	r := f.Rates
	if r.Err == "" {
		ev = append(ev, fmt.Sprintf("%s: %d requests, %d timeouts (%.0f%%), %d retransmissions", r.Source, r.Requests, r.Timeouts, 100*r.TimeoutRate(), r.Retransmits))
	} else {
		ev = append(ev, "the timeout rate could not be measured: "+r.Err)
	}
	var ruled []string
	order := []struct {
		dim    string
		cause  Cause
		remedy string
	}{
		{"enclosure", CauseEnclosureWide, "the enclosure's EM card or internal switch is congested or failing: check its uplink and error counters, update the EM card's firmware"},
		{"subnet", CauseSubnetWide, "the management network serving that subnet drops or delays packets: check the switch and uplink (errors, congestion, a port in half duplex)"},
		{"firmware", CauseFirmwareWide, "BMCs running that firmware answer slowly (a firmware bug or memory leak): update or roll back the firmware, cold-reset the BMCs meanwhile"},
	}
	for _, o := range order {
		for _, s := range f.Fleet.Spreads {
			if s.Dimension != o.dim {
				continue
			}
			if s.Peers >= minPeers && float64(s.Affected) >= spreadShare*float64(s.Peers) {
				return done(&Diagnosis{Cause: o.cause, Confidence: High,
					Summary:  fmt.Sprintf("the whole %s %s is degraded, not just this BMC", s.Dimension, s.Value),
					Evidence: append(ev, fmt.Sprintf("%d of the %d other machines in %s %s are degraded or not responding too", s.Affected, s.Peers, s.Dimension, s.Value)),
					RuledOut: ruled,
					Remedy:   o.remedy,
				})
			}
			if s.Peers > 0 {
				ruled = append(ruled, fmt.Sprintf("the %s %s as a whole: %d of its %d other machines are affected", s.Dimension, s.Value, s.Affected, s.Peers))
			}
		}
	}
	if f.Sessions == nil {
		return need(NeedSessions)
	}
	var other, mine []HeldSession
	for _, o := range f.Sessions.Others {
		if o.foreign() {
			other = append(other, o)
		} else {
			mine = append(mine, o)
		}
	}
	if len(mine) > 0 {
		ev = append(ev, fmt.Sprintf("%d other session(s) are this manager's or its user's, not another console's (handshakes our retransmissions left half-open, or another of our operations): %s", len(mine), handleListOf(mine)))
	}
	if len(other) > 0 {
		return done(&Diagnosis{Cause: CauseCompetingPollers, Confidence: Medium,
			Summary:  "other consoles are logged in to the BMC at the same time: competing pollers slow it down",
			Evidence: append(ev, heldLines("held by another console", other)...),
			RuledOut: ruled,
			Remedy:   "find the tools at " + consoles(other) + " (a second monitoring agent, another manager) and have one of them poll less often; BMCs answer slowly when several pollers query sensors at once",
		})
	}
	if f.Sessions.Got {
		ruled = append(ruled, "competing pollers: no other session is open on the BMC")
	}
	if r.Err == "" && (r.TimeoutRate() >= highTimeoutRate || r.RetryRate() >= highRetryRate) {
		return done(&Diagnosis{Cause: CauseBMCOverloaded, Confidence: Medium,
			Summary:  "this BMC alone loses or delays many requests: it is overloaded or its firmware is sick",
			Evidence: ev,
			RuledOut: ruled,
			Remedy:   "cold-reset the BMC (a memory leak in its firmware is a common cause, and comes back: update the firmware); if the host runs an agent that polls the BMC in-band, check it does not flood it",
		})
	}
	return done(&Diagnosis{Cause: CauseOccasionalRetry, Confidence: Medium,
		Summary:  "the BMC answers, with occasional retries",
		Evidence: ev,
		RuledOut: ruled,
		Remedy:   "nothing urgent: occasional losses are absorbed by retries; if the rate grows, diagnose again (a rising rate on one BMC points at its firmware)",
	})
}

// tlsError: the Redfish service's TLS handshake failed (the TCP port
// answered, so the path and the service are up). The TLS alert says which
// side of the handshake failed: the protocol version, the cipher or key
// exchange, or the certificate; without one every kind stays possible.
func tlsError(f Facts) *Diagnosis {
	const https = "/redfish/v1/Managers/ID/NetworkProtocol (HTTPS)"
	const certs = "the CertificateService (ReplaceCertificate, or GenerateCSR and install the signed one) or the vendor's web UI"
	what := strings.ToLower(f.Message + " " + f.Evidence.Error)
	d := &Diagnosis{Cause: CauseTLSError, Confidence: Medium,
		Summary:  fmt.Sprintf("the TLS handshake with the Redfish service at %s failed: a protocol or cipher mismatch, or a broken or expired certificate", f.Account.Address),
		Evidence: []string{nonEmpty(f.Message, "TLS handshake failed")},
		RuledOut: []string{"a network path problem or a dead BMC: the HTTPS port accepted the connection"},
		Remedy:   "check the BMC's TLS settings (the manager needs TLS 1.2 or later and a common cipher; " + https + ") and its certificate's validity; update the firmware or regenerate the certificate through " + certs + ", then check again (a new certificate must then be accepted: lightsout accept-cert " + f.Machine + ", admin)",
	}
	switch {
	case strings.Contains(what, "protocol version"):
		d.Confidence = High
		d.Summary = fmt.Sprintf("the Redfish service at %s speaks only TLS versions the manager refuses (older than TLS 1.2)", f.Account.Address)
		d.Evidence = append(d.Evidence, "the service answered the handshake with a protocol_version alert: no TLS version in common")
		d.RuledOut = append(d.RuledOut, "the certificate: the handshake failed before any certificate was sent")
		d.Remedy = "enable TLS 1.2 (or 1.3) on the BMC's HTTPS service (its web UI's network/security settings, " + https + "), or update the BMC's firmware: TLS 1.0 and 1.1 are broken and lightsout does not fall back to them"
	case strings.Contains(what, "handshake failure") || strings.Contains(what, "insufficient security") || strings.Contains(what, "no cipher suite") || strings.Contains(what, "no mutually supported"):
		d.Summary = fmt.Sprintf("the Redfish service at %s and the manager have no cipher or key exchange in common", f.Account.Address)
		d.Evidence = append(d.Evidence, "the handshake failed on the cipher or key exchange (a handshake_failure alert); an unusable certificate key can give the same alert, a live alternative")
		d.Remedy = "enable a TLS 1.2 cipher with ECDHE and AES-GCM on the BMC's HTTPS service (" + https + "), or update its firmware; if its certificate has an unusual key (DSA, a tiny RSA key), regenerate it through " + certs
	}
	if rf := f.Evidence.Redfish; rf != nil {
		if rf.TLSVersion != "" {
			d.Evidence = append(d.Evidence, "negotiated "+rf.TLSVersion)
		}
		if rf.CertExpires != "" {
			if exp, err := time.Parse(time.RFC3339, rf.CertExpires); err == nil && !f.Now.IsZero() && exp.Before(f.Now) {
				d.Evidence = append(d.Evidence, "the BMC's certificate expired at "+when(exp))
				d.Summary = fmt.Sprintf("the TLS handshake with the Redfish service at %s failed and its certificate has expired", f.Account.Address)
				d.Confidence = High
				d.Remedy = "renew the BMC's certificate through " + certs + ", then accept the new one (lightsout accept-cert " + f.Machine + ", admin)"
			}
		}
	}
	return d
}

// certChanged: the BMC presents another TLS certificate than the one
// pinned on first contact; no credentials were sent to it.
func certChanged(f Facts) *Diagnosis {
	presented, pinned := "(unknown)", "(unknown)"
	var more []string
	if rf := f.Evidence.Redfish; rf != nil {
		presented, pinned = nonEmpty(rf.CertSHA256, presented), nonEmpty(rf.PinnedSHA256, pinned)
		if rf.CertSubject != "" {
			more = append(more, "the new certificate's subject: "+rf.CertSubject)
		}
		if rf.CertExpires != "" {
			more = append(more, "it expires at "+rf.CertExpires)
		}
	}
	d := &Diagnosis{Cause: CauseCertChanged, Confidence: High,
		Summary: "the BMC presents a different TLS certificate than the one pinned on first contact: a replaced BMC/board, a regenerated certificate after a firmware update, or a man in the middle",
		Evidence: append([]string{fmt.Sprintf("%s presents a certificate with SHA-256 %s; %s was pinned", f.Account.Address, presented, pinned),
			"no credentials were sent to it"}, more...),
		Remedy: fmt.Sprintf("verify the new fingerprint out of band — the BMC's web UI, or its certificate under /redfish/v1/Managers/ID/NetworkProtocol/HTTPS/Certificates (CertificateService) read from a trusted path — and accept it (lightsout accept-cert %s, admin: the channel is checked at once and credentials go to the new certificate only); if it is not the BMC's, someone intercepts the management network: do not accept it", f.Machine),
	}
	if h := f.History; h.beforeFailure(h.HardwareChangedAt) {
		d.Evidence = append(d.Evidence, fmt.Sprintf("the hardware changed at %s (%s): a new BMC brings a new certificate", when(h.HardwareChangedAt), nonEmpty(h.HardwareChange, "hardware change")))
	}
	return d
}
