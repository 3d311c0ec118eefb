// Package incident groups broken channels into incidents by cause, so an
// operator sees a handful of problems with their remedies instead of
// hundreds of rows: one per dead enclosure with its blades, one per pair of
// swapped addresses, one per cause (state and reason, the account's user
// for a refusal) per group, one per condition (Busy, Degraded, Insecure)
// per group, one per timeout flood, one per fleet correlation (events.
// Correlator's fleet.correlated findings) and one per agent problem.
//
// Group is pure: the caller gathers the channels, enclosures, findings and
// agents (manager.Incidents) and applies the result. Tracker turns
// successive results into opened and closed incidents (the
// incident.opened / incident.closed events), with the time passed in.
package incident

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lightsout/lightsout/internal/guid"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
)

// Kinds of incident.
const (
	KindEnclosure   = "enclosure"   // every blade of an enclosure silent
	KindSwap        = "swap"        // two machines answer at each other's address
	KindCause       = "cause"       // one state and reason (and user) in one group
	KindCondition   = "condition"   // one condition (Busy, Degraded, Insecure) in one group
	KindFlood       = "flood"       // timeout floods
	KindCorrelation = "correlation" // a fleet correlation (firmware, subnet, enclosure)
	KindAgent       = "agent"       // agents Down or PendingUp for one reason
	KindHostLink    = "host_link"   // agents whose host link is not Up
)

// Channel is one OOB channel as Group needs it.
type Channel struct {
	Machine   string
	Group     string
	Enclosure string
	AccountID int64
	User      string
	Address   string
	State     state.OOB
	Reason    state.Reason
	// Conditions of a Connectable channel.
	Conditions []state.Condition
	Since      time.Time
	// GUID is the GUID the BMC last reported; Registered the machine's
	// expected one (both in any layout, "" when unknown).
	GUID, Registered string
}

// Enclosure is an enclosure and its manager's address.
type Enclosure struct {
	Name    string
	Address string
}

// Correlation is one active fleet finding (events.Finding).
type Correlation struct {
	Code      string // the correlated event code (oob.not_responding, ...)
	Factor    string // firmware, enclosure, subnet
	Value     string
	GroupSize int
	Members   []string
	Since     time.Time
}

// Agent is one host agent's state (agent.Status).
type Agent struct {
	Name   string
	State  string // Up, Down, PendingUp
	Reason string
	Since  time.Time
	// Link is the host link's state ("" or Up: no problem), its reason
	// (free text, often with an address) and remedy.
	Link, LinkReason, LinkRemedy string
}

// Input is everything Group looks at.
type Input struct {
	Channels     []Channel
	Enclosures   []Enclosure
	Correlations []Correlation
	Agents       []Agent
	// Flooding names the sources in a timeout flood now (machines, or
	// agent:NAME for a host link).
	Flooding []string
	// FloodSince is when the current floods were first seen (zero:
	// unknown).
	FloodSince time.Time
}

// Incident is one problem: what broke, since when, who is affected, what to
// do and which diagnosis to run.
type Incident struct {
	// ID is stable while the incident lasts: its kind and what defines
	// it (enclosure:enc-b, cause:NotAuthenticated/wrong_password/user=admin/group=rack1, ...).
	ID       string         `json:"id"`
	Kind     string         `json:"kind"`
	Severity store.Severity `json:"severity"`
	Title    string         `json:"title"`
	State    state.OOB      `json:"state,omitempty"`
	Reason   string         `json:"reason,omitempty"`
	Group    string         `json:"group,omitempty"`
	// Enclosure of an enclosure incident.
	Enclosure string `json:"enclosure,omitempty"`
	// Since is the earliest member's since.
	Since time.Time `json:"since,omitzero"`
	// Members are the machines (agents, for agent incidents), sorted;
	// Machines says which.
	Members  []string `json:"members"`
	Machines bool     `json:"machines"`
	// Shares names what the members have in common, from fleet
	// correlations over exactly these members ("firmware Dell 4.40 (5
	// of 5)", "subnet 10.1.2.0/24 (5 of 40)").
	Shares []string `json:"shares,omitempty"`
	Remedy string   `json:"remedy"`
	// Diagnose is the command that diagnoses the incident.
	Diagnose string `json:"diagnose"`
}

// DiagTargets is what Diagnose diagnoses: machine names, or a group (more
// than MaxDiagNames members of one group); none for agents (their
// diagnosis is per agent: lightsout diag --agent NAME).
func (i Incident) DiagTargets() (names []string, group string) {
	switch i.Kind {
	case KindAgent, KindHostLink:
		return nil, ""
	case KindEnclosure:
		return i.Members[:min(1, len(i.Members))], "" // one blade isolates the enclosure
	case KindSwap:
		return i.Members, ""
	}
	for _, m := range i.Members {
		if !strings.HasPrefix(m, "agent:") {
			names = append(names, m)
		}
	}
	if len(names) > MaxDiagNames && i.Group != "" && i.Kind != KindFlood && i.Kind != KindCorrelation {
		return nil, i.Group
	}
	return names[:min(MaxDiagNames, len(names))], ""
}

// MaxDiagNames is how many machines an incident's diagnosis names before it
// names their group instead.
const MaxDiagNames = 10

// Group groups the broken channels of in into incidents, worst first
// (critical before warning, then more members, then older, then ID).
func Group(in Input) []Incident {
	var out []Incident
	used := map[int64]bool{} // channels an enclosure or swap incident explains

	// Machines' channels, by machine.
	byMachine := map[string][]Channel{}
	for _, c := range in.Channels {
		byMachine[c.Machine] = append(byMachine[c.Machine], c)
	}

	// Dead enclosures: every registered blade (at least two) has only
	// NotResponding channels.
	downEnc := map[string]bool{}
	encAddr := map[string]string{}
	for _, e := range in.Enclosures {
		encAddr[e.Name] = e.Address
	}
	blades := map[string][]string{}
	for m, cs := range byMachine {
		if e := cs[0].Enclosure; e != "" {
			blades[e] = append(blades[e], m)
		}
	}
	for _, enc := range sortedKeys(blades) {
		ms := blades[enc]
		if len(ms) < 2 {
			continue
		}
		all := true
		var since time.Time
		for _, m := range ms {
			for _, c := range byMachine[m] {
				if c.State != state.NotResponding {
					all = false
				}
				since = earliest(since, c.Since)
			}
		}
		if !all {
			continue
		}
		slices.Sort(ms)
		downEnc[enc] = true
		for _, m := range ms {
			for _, c := range byMachine[m] {
				used[c.AccountID] = true
			}
		}
		em := "the enclosure manager"
		if a := encAddr[enc]; a != "" {
			em += " (" + a + ")"
		}
		out = append(out, Incident{
			ID: KindEnclosure + ":" + enc, Kind: KindEnclosure, Severity: store.SeverityCritical,
			Title: fmt.Sprintf("enclosure %s is unreachable: all %d blades are silent", enc, len(ms)),
			State: state.NotResponding, Enclosure: enc, Since: since, Members: ms, Machines: true,
			Remedy: fmt.Sprintf("the fault is in what the blades share: ping %s, check its network uplink and the enclosure tray's power; "+
				"reseat or restart the EM card. The diagnosis of one blade pings the EM, the sibling blades and lights the identify lamp", em),
			Diagnose: "lightsout diag " + ms[0],
		})
	}

	// Swapped addresses: A answers with B's GUID and B with A's.
	owner := map[string]string{} // machine → registered GUID
	for m, cs := range byMachine {
		if cs[0].Registered != "" {
			owner[m] = cs[0].Registered
		}
	}
	ownerOf := func(observed string) string {
		og, err := guid.Parse(observed)
		if err != nil {
			return ""
		}
		for _, m := range sortedKeys(owner) {
			if rg, err := guid.Parse(owner[m]); err == nil && guid.Same(og, rg) {
				return m
			}
		}
		return ""
	}
	invalidAt := map[string]Channel{}
	for _, c := range in.Channels {
		if c.State == state.Invalid && c.Reason == state.ReasonGUIDMismatch && !used[c.AccountID] {
			invalidAt[c.Machine] = c
		}
	}
	for _, a := range sortedKeys(invalidAt) {
		ca := invalidAt[a]
		if used[ca.AccountID] {
			continue
		}
		b := ownerOf(ca.GUID)
		cb, ok := invalidAt[b]
		if b == "" || b == a || !ok || used[cb.AccountID] || ownerOf(cb.GUID) != a {
			continue
		}
		used[ca.AccountID], used[cb.AccountID] = true, true
		out = append(out, Incident{
			ID: KindSwap + ":" + a + "+" + b, Kind: KindSwap, Severity: store.SeverityCritical,
			Title: fmt.Sprintf("%s and %s answer at each other's address: their addresses are swapped", a, b),
			State: state.Invalid, Reason: string(state.ReasonGUIDMismatch), Group: commonGroup(ca, cb),
			Since: earliest(ca.Since, cb.Since), Members: []string{a, b}, Machines: true,
			Remedy:   fmt.Sprintf("swap the two accounts' addresses back (%s, %s): the diagnosis with --autocorrect verifies both BMCs' GUIDs and swaps them in one step", ca.Address, cb.Address),
			Diagnose: fmt.Sprintf("lightsout diag --autocorrect %s %s", a, b),
		})
	}

	// Causes and conditions, per group.
	type key struct {
		kind   string
		st     state.OOB
		reason string
		user   string
		group  string
	}
	type acc struct {
		members  map[string]bool
		since    time.Time
		one      Channel
		accounts map[int64]string // account → machine
	}
	groups := map[key]*acc{}
	add := func(k key, c Channel, since time.Time) {
		a := groups[k]
		if a == nil {
			a = &acc{members: map[string]bool{}, one: c, accounts: map[int64]string{}}
			groups[k] = a
		}
		a.members[c.Machine] = true
		a.accounts[c.AccountID] = c.Machine
		a.since = earliest(a.since, since)
	}
	for _, c := range in.Channels {
		if used[c.AccountID] {
			continue
		}
		switch c.State {
		case state.NotResponding, state.NotAuthenticated, state.Invalid:
			k := key{kind: KindCause, st: c.State, reason: string(c.Reason), group: c.Group}
			if c.State == state.NotAuthenticated {
				k.user = c.User
			}
			add(k, c, c.Since)
		case state.Connectable:
			for _, cond := range c.Conditions {
				add(key{kind: KindCondition, reason: string(cond), group: c.Group}, c, c.Since)
			}
		}
	}
	keys := make([]key, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	for _, k := range keys {
		a := groups[k]
		ms := sortedKeys(a.members)
		inc := Incident{Kind: k.kind, State: k.st, Reason: k.reason, Group: k.group, Since: a.since, Members: ms, Machines: true,
			Diagnose: diagnoseCmd(ms, k.group)}
		in := ""
		if k.group != "" {
			in = " in group " + k.group
		}
		var acct int64
		one := ""
		if len(ms) == 1 {
			acct, one = a.one.AccountID, ms[0]
		}
		if k.kind == KindCause {
			inc.ID = fmt.Sprintf("cause:%s/%s", k.st, k.reason)
			if k.user != "" {
				inc.ID += "/user=" + k.user
			}
			inc.Title = causeTitle(k.st, state.Reason(k.reason), k.user, len(ms)) + in
			inc.Remedy = state.RemedyFor(k.st, state.Reason(k.reason), one, acct)
			if len(ms) > 1 && strings.Contains(inc.Remedy, "accounts set ID") {
				inc.Remedy += "; the accounts: " + accountList(a.accounts, k.reason)
			}
			inc.Severity = store.SeverityWarning
			if k.st != state.NotResponding {
				inc.Severity = store.SeverityCritical
			}
		} else {
			inc.ID = "condition:" + k.reason
			inc.Title, inc.Remedy, inc.Severity = conditionText(state.Condition(k.reason), len(ms))
			inc.Title += in
		}
		inc.ID += "/group=" + k.group
		out = append(out, inc)
	}

	// Timeout floods.
	if len(in.Flooding) > 0 {
		ms := slices.Clone(in.Flooding)
		slices.Sort(ms)
		ms = slices.Compact(ms)
		machines := !slices.ContainsFunc(ms, func(s string) bool { return strings.HasPrefix(s, "agent:") })
		inc := Incident{ID: KindFlood, Kind: KindFlood, Severity: store.SeverityWarning,
			Title: fmt.Sprintf("%d %s flooded with timeouts", len(ms), plural(len(ms), "channel is", "channels are")),
			Since: in.FloodSince, Members: ms, Machines: machines,
			Remedy: "requests time out far above the normal rate: look for competing monitoring agents polling the same BMCs, a BMC firmware leaking sessions or memory (a BMC cold reset clears it; a firmware update fixes it), or a congested management network",
		}
		var names []string
		for _, m := range ms {
			if !strings.HasPrefix(m, "agent:") {
				names = append(names, m)
			}
		}
		inc.Diagnose = diagnoseCmd(names, "")
		if len(names) == 0 {
			inc.Diagnose = "lightsout diag --agent " + strings.TrimPrefix(ms[0], "agent:")
		}
		out = append(out, inc)
	}

	// Fleet correlations. An enclosure finding about a dead enclosure is
	// that enclosure's incident already; a finding whose members are
	// exactly another incident's is told in that incident (Shares).
	bySet := map[string]int{}
	for i, inc := range out {
		bySet[strings.Join(inc.Members, "\x00")] = i
	}
	for _, c := range in.Correlations {
		ms := slices.Clone(c.Members)
		slices.Sort(ms)
		if c.Factor == "enclosure" && downEnc[c.Value] {
			continue
		}
		if i, ok := bySet[strings.Join(ms, "\x00")]; ok {
			sh := fmt.Sprintf("%s %s (%d of %d)", c.Factor, c.Value, len(ms), c.GroupSize)
			if !slices.Contains(out[i].Shares, sh) {
				out[i].Shares = append(out[i].Shares, sh)
			}
			continue
		}
		out = append(out, Incident{
			ID: "correlation:" + c.Code + "/" + c.Factor + "=" + c.Value, Kind: KindCorrelation, Severity: store.SeverityWarning,
			Title: fmt.Sprintf("%d of %d BMCs with %s %s raise %s", len(ms), c.GroupSize, c.Factor, c.Value, c.Code),
			Since: c.Since, Members: ms, Machines: true, Reason: c.Code,
			Remedy:   correlationRemedy(c.Factor, c.Value),
			Diagnose: diagnoseCmd(ms, ""),
		})
	}

	// Agents: one incident per state and reason; host links per state.
	type akey struct{ kind, st, reason string }
	type aacc struct {
		names    []string
		since    time.Time
		remedy   string
		remedies map[string]bool
	}
	ag := map[akey]*aacc{}
	for _, a := range in.Agents {
		var k akey
		switch {
		case a.State == "Down" || a.State == "PendingUp":
			k = akey{KindAgent, a.State, a.Reason}
		case a.Link != "" && a.Link != "Up" && a.Link != "Unknown":
			// By state only: a link's reason is free text naming its
			// own address; the remedy is the agent's.
			k = akey{KindHostLink, a.Link, ""}
		default:
			continue
		}
		x := ag[k]
		if x == nil {
			x = &aacc{}
			ag[k] = x
		}
		x.names = append(x.names, a.Name)
		x.since = earliest(x.since, a.Since)
		if k.kind == KindHostLink && a.LinkRemedy != "" {
			if x.remedies == nil {
				x.remedies = map[string]bool{}
			}
			x.remedies[a.LinkRemedy] = true
			x.remedy = a.LinkRemedy
		}
	}
	for k, x := range ag {
		slices.Sort(x.names)
		inc := Incident{Kind: k.kind, Reason: k.reason, Since: x.since, Members: x.names,
			Diagnose: "lightsout diag --agent " + x.names[0]}
		n := len(x.names)
		if k.kind == KindAgent {
			inc.ID = "agent:" + k.st + "/" + k.reason
			inc.Severity = store.SeverityWarning
			switch k.st {
			case "Down":
				inc.Title = fmt.Sprintf("%d %s Down", n, plural(n, "agent is", "agents are"))
				inc.Remedy = "no heartbeat: check that the agent runs on the host (lightsout agent status --data DIR), that the host is up and that it reaches the manager's agent port"
			default:
				inc.Severity = store.SeverityCritical
				inc.Title = fmt.Sprintf("%d %s connected but not trusted (PendingUp)", n, plural(n, "agent is", "agents are"))
				inc.Remedy = "the handshake or authentication fails (trust list, certificate, clock skew): the agent diagnosis names which and can refresh trust or renew certificates with --autocorrect"
			}
		} else {
			inc.ID = "host_link:" + k.st
			inc.Severity = store.SeverityWarning
			if k.st == "CertExpired" {
				inc.Severity = store.SeverityCritical
			}
			inc.Title = fmt.Sprintf("%d %s host link to its BMC is %s", n, plural(n, "agent's", "agents'"), k.st)
			inc.Remedy = "the agent cannot reach its own BMC (in-band /dev/ipmi0, the OS-to-BMC network over IPv4 link-local then IPv6): the agent diagnosis checks the link, its certificate and the BMC's service module"
			if len(x.remedies) == 1 {
				inc.Remedy = x.remedy // every member's agent says the same
			}
		}
		if k.reason != "" {
			inc.Title += " (" + k.reason + ")"
		}
		out = append(out, inc)
	}

	slices.SortFunc(out, func(a, b Incident) int {
		return cmp.Or(cmp.Compare(sevRank(a.Severity), sevRank(b.Severity)), cmp.Compare(len(b.Members), len(a.Members)),
			a.Since.Compare(b.Since), strings.Compare(a.ID, b.ID))
	})
	return out
}

func causeTitle(s state.OOB, r state.Reason, user string, n int) string {
	bmcs := fmt.Sprintf("%d %s", n, plural(n, "BMC", "BMCs"))
	v := func(one, many string) string { return bmcs + " " + plural(n, one, many) }
	u := fmt.Sprintf("%q", user)
	switch s {
	case state.NotAuthenticated:
		switch r {
		case state.ReasonWrongPassword:
			return v("refuses", "refuse") + " the password of user " + u
		case state.ReasonUnknownUser:
			return v("does", "do") + " not know user " + u
		case state.ReasonPrivilege:
			return v("refuses", "refuse") + " the privilege asked for user " + u
		case state.ReasonLocked:
			return v("has", "have") + " locked or disabled user " + u
		}
		return v("refuses", "refuse") + " user " + u
	case state.Invalid:
		if r == state.ReasonCertChanged {
			return v("presents", "present") + " another TLS certificate than the pinned one"
		}
		return v("answers", "answer") + " with another System GUID than the registered one"
	case state.NotResponding:
		switch r {
		case state.ReasonPortRefused:
			return v("refuses", "refuse") + " UDP 623 (port closed)"
		case state.ReasonUnreachable:
			return v("is", "are") + " unreachable (no route)"
		case state.ReasonStalled, state.ReasonProtocol:
			return v("answers", "answer") + " with unusable replies or stop mid-session"
		case state.ReasonTLS:
			return v("fails", "fail") + " the TLS handshake"
		case state.ReasonNoCipherSuite, state.ReasonCipher0Refused:
			return v("offers", "offer") + " no acceptable cipher suite"
		}
		return v("does", "do") + " not answer"
	}
	return bmcs + " " + string(s)
}

func conditionText(c state.Condition, n int) (title, remedy string, sev store.Severity) {
	bmcs := fmt.Sprintf("%d %s", n, plural(n, "BMC", "BMCs"))
	switch c {
	case state.Busy:
		return bmcs + " " + plural(n, "has", "have") + " no free session slot (Busy)", state.Remedy(state.Connectable, state.ReasonBusy), store.SeverityWarning
	case state.Degraded:
		return bmcs + " " + plural(n, "answers", "answer") + " only after retransmissions (Degraded)",
			"timeouts and retries above the threshold: look for competing agents polling the BMC, a BMC firmware leaking sessions or memory, or network trouble; the diagnosis measures the rate and compares the BMC with its firmware, enclosure and subnet", store.SeverityWarning
	case state.Insecure:
		return bmcs + " " + plural(n, "accepts", "accept") + " insecure settings (Insecure)",
			"the security audit found cipher suite 0, anonymous or null users, weak IPMI 1.5 authentication or a vendor default password: lightsout security names the findings; disable them on the BMC", store.SeverityWarning
	}
	return bmcs + " " + string(c), "", store.SeverityWarning
}

func correlationRemedy(factor, value string) string {
	switch factor {
	case "firmware":
		return "look at what they share before treating them one by one: firmware " + value + " — check the vendor's known issues for it and update or roll back that line"
	case "subnet":
		return "look at what they share before treating them one by one: subnet " + value + " — check its switch, router, VLAN and firewall rules for UDP 623"
	case "enclosure":
		return "look at what they share before treating them one by one: enclosure " + value + " — check its enclosure manager and uplink"
	}
	return "look at what they share before treating them one by one: " + factor + " " + value
}

// accountList names up to MaxDiagNames accounts with their machines
// ("5 (bmc-00005), 6 (bmc-00006)"), for a remedy that edits accounts.
func accountList(accts map[int64]string, reason string) string {
	ids := make([]int64, 0, len(accts))
	for id := range accts {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var parts []string
	for i, id := range ids {
		if i == MaxDiagNames {
			parts = append(parts, fmt.Sprintf("and %d more (lightsout machines list --reason %s)", len(ids)-i, reason))
			break
		}
		parts = append(parts, fmt.Sprintf("%d (%s)", id, accts[id]))
	}
	return strings.Join(parts, ", ")
}

func diagnoseCmd(ms []string, group string) string {
	if len(ms) == 0 {
		return ""
	}
	if len(ms) > MaxDiagNames && group != "" {
		return "lightsout diag --group " + group
	}
	if len(ms) > MaxDiagNames {
		ms = ms[:MaxDiagNames]
	}
	return "lightsout diag " + strings.Join(ms, " ")
}

func commonGroup(a, b Channel) string {
	if a.Group == b.Group {
		return a.Group
	}
	return ""
}

func sevRank(s store.Severity) int {
	switch s {
	case store.SeverityCritical:
		return 0
	case store.SeverityWarning:
		return 1
	}
	return 2
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
