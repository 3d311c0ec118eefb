package events

import (
	"container/heap"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"
	"unique"

	"github.com/lightsout/lightsout/internal/evcode"
	"github.com/lightsout/lightsout/internal/store"
)

// Factor is what a group of sources has in common.
type Factor string

// The factors the correlator groups by, in the order a finding names them.
const (
	FactorFirmware  Factor = "firmware"  // manufacturer and firmware revision
	FactorEnclosure Factor = "enclosure" // the enclosure (chassis) of blades
	FactorSubnet    Factor = "subnet"    // the BMC address's /24 (IPv4) or /64 (IPv6)
)

var factors = []Factor{FactorFirmware, FactorEnclosure, FactorSubnet}

// Member is what the correlator knows of one source: its group in every
// factor ("" when unknown).
type Member struct {
	Firmware  string `json:"firmware,omitempty"`
	Enclosure string `json:"enclosure,omitempty"`
	Subnet    string `json:"subnet,omitempty"`
}

func (m Member) value(f Factor) string {
	switch f {
	case FactorFirmware:
		return m.Firmware
	case FactorEnclosure:
		return m.Enclosure
	case FactorSubnet:
		return m.Subnet
	}
	return ""
}

// FirmwareOf names a firmware revision with its manufacturer ("Dell 4.40");
// "" when the revision is unknown.
func FirmwareOf(manufacturer, firmware string) string {
	if firmware == "" {
		return ""
	}
	if manufacturer == "" {
		return firmware
	}
	return manufacturer + " " + firmware
}

// SubnetOf is the /24 (IPv4) or /64 (IPv6) prefix of an address (an IP,
// or IP:port); "" for a host name.
func SubnetOf(addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		ap, err2 := netip.ParseAddrPort(addr)
		if err2 != nil {
			return ""
		}
		a = ap.Addr()
	}
	a = a.Unmap().WithZone("")
	bits := 64
	if a.Is4() {
		bits = 24
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return ""
	}
	return p.String()
}

// CorrelateConfig tunes fleet correlation. Zero fields take defaults.
type CorrelateConfig struct {
	// Share of a group that must raise the same code (default 0.5).
	Share float64 `json:"share"`
	// MinGroup is the least group size looked at (default 3): two
	// machines sharing a firmware are not a fleet pattern.
	MinGroup int `json:"min_group"`
	// MinMembers is the least number of sources raising the code
	// (default 2).
	MinMembers int `json:"min_members"`
	// Window: a one-shot event (an audit finding) counts for this long
	// after it was raised (default 30m). Conditions the monitor observes
	// (not responding, degraded, flood, ...) count while they hold.
	Window time.Duration `json:"window"`
	// MemberTTL forgets a source not observed for this long (default 2h,
	// longer than the monitor's longest back-off), so deleted machines
	// leave their groups.
	MemberTTL time.Duration `json:"member_ttl"`
}

// DefaultCorrelate is the default correlation configuration.
var DefaultCorrelate = CorrelateConfig{Share: 0.5, MinGroup: 3, MinMembers: 2, Window: 30 * time.Minute, MemberTTL: 2 * time.Hour}

func (c CorrelateConfig) withDefaults() CorrelateConfig {
	if c.Share <= 0 || c.Share > 1 {
		c.Share = DefaultCorrelate.Share
	}
	if c.MinGroup <= 0 {
		c.MinGroup = DefaultCorrelate.MinGroup
	}
	if c.MinMembers <= 0 {
		c.MinMembers = DefaultCorrelate.MinMembers
	}
	if c.Window <= 0 {
		c.Window = DefaultCorrelate.Window
	}
	if c.MemberTTL <= 0 {
		c.MemberTTL = DefaultCorrelate.MemberTTL
	}
	return c
}

// Correlator finds fleet patterns: when at least Share of a group of at
// least MinGroup sources (same firmware, enclosure or subnet) raise the
// same code, it reports one fleet.correlated event naming the factor and
// the members. Groups count every known source, failing or not, so it
// needs every source's membership (SetMember), not only the failing ones'.
// It is pure: time comes in with every call. Not safe for concurrent use.
//
// It is incremental: for every code it keeps each group's raising members
// and the groups whose size or raisers changed since the code was last
// evaluated, and evaluates only those (with the groups that share their
// members), so a change costs the size of the changed source's groups,
// not of every source holding the code.
type Correlator struct {
	cfg     CorrelateConfig
	members map[string]*memberState
	sizes   map[Factor]map[string]int
	raised  map[string]map[string]raise // code → source
	active  map[string]finding          // fleet source → what was reported
	codes   map[string]*codeState
}

// group is one group of one factor.
type group struct {
	f Factor
	v string
}

func (g group) less(h group) bool {
	if fi, fj := factorRank(g.f), factorRank(h.f); fi != fj {
		return fi < fj
	}
	return g.v < h.v
}

// codeState is one code's incremental state.
type codeState struct {
	groups map[group][]string // the known members raising the code, per group (sorted)
	dirty  map[group]struct{} // changed since the code was last evaluated
	// cand is each group where the code is common, as last evaluated;
	// byKey the groups by member set (one finding per set).
	cand  map[group]candidate
	byKey map[string]map[group]struct{}
	// pending: primaries of findings whose growth waits for the regrow
	// interval; evaluated every time.
	pending map[group]struct{}
	expiry  raiseHeap // one-shot raises by time (stale entries skipped)
}

type raiseAt struct {
	at  time.Time
	src string
}

type raiseHeap []raiseAt

func (h raiseHeap) Len() int           { return len(h) }
func (h raiseHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h raiseHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *raiseHeap) Push(x any)        { *h = append(*h, x.(raiseAt)) }
func (h *raiseHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// memberState is one source's member: 64 bytes (its strings shared with
// every member of the same group: intern).
type memberState struct {
	m    Member
	seen int64 // Unix nanoseconds
}

// intern makes m's values the one copy of each distinct text: a firmware
// or a /24 is shared by hundreds of members.
func intern(m Member) Member {
	for _, s := range []*string{&m.Firmware, &m.Enclosure, &m.Subnet} {
		if *s != "" {
			*s = unique.Make(*s).Value()
		}
	}
	return m
}

type raise struct {
	at   time.Time
	held bool // a condition: holds until released, not for Window
}

type finding struct {
	code     string
	factor   Factor
	value    string
	size     int
	members  []string
	reported time.Time
	since    time.Time // first reported
}

// A finding that grows is reported again at once while it is small or
// when it grew by a quarter; otherwise at most once a minute (on a Tick),
// so a fleet-wide outage updates its finding a few dozen times, not once
// per BMC.
const (
	regrowSmall    = 10
	regrowInterval = time.Minute
)

// NewCorrelator returns a correlator.
func NewCorrelator(cfg CorrelateConfig) *Correlator {
	c := &Correlator{cfg: cfg.withDefaults(), members: map[string]*memberState{},
		sizes: map[Factor]map[string]int{}, raised: map[string]map[string]raise{}, active: map[string]finding{},
		codes: map[string]*codeState{}}
	for _, f := range factors {
		c.sizes[f] = map[string]int{}
	}
	return c
}

// Config is the effective configuration.
func (c *Correlator) Config() CorrelateConfig { return c.cfg }

// SetMember records source's groups as of at. An empty Firmware keeps the
// one known before (a BMC that stopped answering still runs the firmware
// it last reported).
func (c *Correlator) SetMember(source string, m Member, at time.Time) {
	old := c.members[source]
	if old != nil {
		if m.Firmware == "" {
			m.Firmware = old.m.Firmware
		}
		if old.m == m {
			if ns := at.UnixNano(); ns > old.seen {
				old.seen = ns
			}
			return
		}
		c.count(old.m, -1)
		c.regroup(source, old.m, -1)
		c.resized(old.m, m)
	} else {
		c.resized(Member{}, m)
	}
	m = intern(m)
	c.members[source] = &memberState{m: m, seen: at.UnixNano()}
	c.count(m, +1)
	c.regroup(source, m, +1)
}

// resized marks the groups whose size changes when a member moves from
// old to m dirty in every code.
func (c *Correlator) resized(old, m Member) {
	for _, f := range factors {
		ov, nv := old.value(f), m.value(f)
		if ov == nv {
			continue
		}
		for _, cs := range c.codes {
			if ov != "" {
				cs.dirty[group{f, ov}] = struct{}{}
			}
			if nv != "" {
				cs.dirty[group{f, nv}] = struct{}{}
			}
		}
	}
}

// regroup adds (d > 0) or removes source, with membership m, to or from
// the groups of every code it raises.
func (c *Correlator) regroup(source string, m Member, d int) {
	for code, rs := range c.raised {
		if _, ok := rs[source]; ok {
			c.codeGroups(c.state(code), source, m, d)
		}
	}
}

// codeGroups adds or removes source in its groups of one code.
func (c *Correlator) codeGroups(cs *codeState, source string, m Member, d int) {
	for _, f := range factors {
		v := m.value(f)
		if v == "" {
			continue
		}
		g := group{f, v}
		cs.dirty[g] = struct{}{}
		set := cs.groups[g]
		i, found := slices.BinarySearch(set, source)
		switch {
		case d > 0 && !found:
			cs.groups[g] = slices.Insert(set, i, source)
		case d < 0 && found:
			if set = slices.Delete(set, i, i+1); len(set) == 0 {
				delete(cs.groups, g)
			} else {
				cs.groups[g] = set
			}
		}
	}
}

func (c *Correlator) state(code string) *codeState {
	cs := c.codes[code]
	if cs == nil {
		cs = &codeState{groups: map[group][]string{}, dirty: map[group]struct{}{},
			cand: map[group]candidate{}, byKey: map[string]map[group]struct{}{}, pending: map[group]struct{}{}}
		c.codes[code] = cs
	}
	return cs
}

// setRaise records source's raise of code.
func (c *Correlator) setRaise(code, source string, r raise) {
	rs := c.raisedOf(code)
	_, had := rs[source]
	rs[source] = r
	cs := c.state(code)
	if !r.held {
		heap.Push(&cs.expiry, raiseAt{r.at, source})
	}
	if ms := c.members[source]; !had && ms != nil {
		c.codeGroups(cs, source, ms.m, +1)
	}
}

// dropRaise forgets source's raise of code.
func (c *Correlator) dropRaise(code, source string) {
	rs := c.raised[code]
	if _, ok := rs[source]; !ok {
		return
	}
	delete(rs, source)
	if ms := c.members[source]; ms != nil {
		c.codeGroups(c.state(code), source, ms.m, -1)
	}
}

func (c *Correlator) count(m Member, d int) {
	for _, f := range factors {
		if v := m.value(f); v != "" {
			c.sizes[f][v] += d
			if c.sizes[f][v] <= 0 {
				delete(c.sizes[f], v)
			}
		}
	}
}

// Members is the number of known sources.
func (c *Correlator) Members() int { return len(c.members) }

// GroupSpread is, for one group a source belongs to, how many of the
// group's other members raise some codes.
type GroupSpread struct {
	Factor Factor `json:"factor"`
	Value  string `json:"value"`
	// Peers are the group's other members; Affected those of them that
	// raise one of the codes asked about (sorted).
	Peers    int      `json:"peers"`
	Affected []string `json:"affected,omitempty"`
}

// Spread compares source with its groups at now: for each factor it has a
// group in, with at least one other member, how many of those other
// members hold (or raised within Window) any of codes. ok is false when
// source is not a known member.
func (c *Correlator) Spread(source string, codes []string, now time.Time) (out []GroupSpread, ok bool) {
	ms := c.members[source]
	if ms == nil {
		return nil, false
	}
	for _, f := range factors {
		v := ms.m.value(f)
		if v == "" || c.sizes[f][v] <= 1 {
			continue
		}
		g := GroupSpread{Factor: f, Value: v, Peers: c.sizes[f][v] - 1}
		seen := map[string]bool{}
		for _, code := range codes {
			for src, r := range c.raised[code] {
				if src == source || seen[src] || !r.held && now.Sub(r.at) > c.cfg.Window {
					continue
				}
				if om := c.members[src]; om != nil && om.m.value(f) == v {
					seen[src] = true
					g.Affected = append(g.Affected, src)
				}
			}
		}
		sort.Strings(g.Affected)
		out = append(out, g)
	}
	return out, true
}

// Raise records a one-shot occurrence of code on source (it counts for
// Window) and returns any finding it completes.
func (c *Correlator) Raise(code, source string, at time.Time) []store.Event {
	rs := c.raisedOf(code)
	if r, ok := rs[source]; ok && (r.held || !at.After(r.at)) {
		return nil
	}
	_, had := rs[source]
	c.setRaise(code, source, raise{at: at})
	if had {
		return nil // already counted; only its expiry moved
	}
	return c.evaluate(code, at)
}

// Hold sets whether the condition code holds on source now (the monitor's
// view of it at its latest check), and returns findings it completes.
func (c *Correlator) Hold(code, source string, held bool, at time.Time) []store.Event {
	rs := c.raisedOf(code)
	r, had := rs[source]
	switch {
	case held && had && r.held:
		rs[source] = raise{at: at, held: true}
		return nil
	case held:
		c.setRaise(code, source, raise{at: at, held: true})
	case had && r.held:
		c.dropRaise(code, source)
	default:
		return nil
	}
	return c.evaluate(code, at)
}

func (c *Correlator) raisedOf(code string) map[string]raise {
	rs := c.raised[code]
	if rs == nil {
		rs = map[string]raise{}
		c.raised[code] = rs
	}
	return rs
}

// Tick expires one-shot raises older than Window and sources not seen for
// MemberTTL, and re-evaluates every code.
func (c *Correlator) Tick(now time.Time) []store.Event {
	for name, ms := range c.members {
		if now.UnixNano()-ms.seen > int64(c.cfg.MemberTTL) {
			for code := range c.raised {
				c.dropRaise(code, name)
			}
			c.count(ms.m, -1)
			delete(c.members, name)
			c.resized(ms.m, Member{})
		}
	}
	codes := make([]string, 0, len(c.raised))
	for code := range c.raised {
		codes = append(codes, code)
	}
	for _, f := range c.active {
		if _, ok := c.raised[f.code]; !ok {
			codes = append(codes, f.code)
		}
	}
	sort.Strings(codes)
	var out []store.Event
	for _, code := range codes {
		out = append(out, c.evaluate(code, now)...)
	}
	return out
}

// candidate is one group where the code is common.
type candidate struct {
	factor  Factor
	value   string
	size    int
	members []string
	key     string // members joined
}

// evaluate brings code's findings up to date at now: it expires one-shot
// raises older than Window, evaluates the groups that changed since the
// last evaluation (with those sharing a member set with them), reports
// findings that are new or have gained members, and forgets those that no
// longer hold. The result is that of regrouping every source raising the
// code (TestCorrelateIncremental).
func (c *Correlator) evaluate(code string, now time.Time) []store.Event {
	cs := c.state(code)
	rs := c.raised[code]
	for len(cs.expiry) > 0 && now.Sub(cs.expiry[0].at) > c.cfg.Window {
		e := heap.Pop(&cs.expiry).(raiseAt)
		if r, ok := rs[e.src]; ok && !r.held && r.at.Equal(e.at) {
			c.dropRaise(code, e.src)
		}
	}
	if len(rs) == 0 {
		delete(c.raised, code)
	}
	// The member sets whose groups may change, and who led them before.
	touched := map[string]bool{}
	for g := range cs.pending {
		touched[cs.cand[g].key] = true
	}
	clear(cs.pending)
	if len(cs.dirty) == 0 && len(touched) == 0 {
		return nil
	}
	fresh := map[group]*candidate{}
	for g := range cs.dirty {
		old, had := cs.cand[g]
		if c.unchanged(cs, g, old, had) {
			delete(cs.dirty, g)
			continue
		}
		if had {
			touched[old.key] = true
		}
		if cd := c.candidate(cs, g); cd != nil {
			fresh[g] = cd
			touched[cd.key] = true
		}
	}
	var wasPrimary []group
	for k := range touched {
		if p, ok := primary(cs.byKey[k]); ok {
			wasPrimary = append(wasPrimary, p)
		}
	}
	for g := range cs.dirty {
		if old, ok := cs.cand[g]; ok {
			delete(cs.byKey[old.key], g)
			if len(cs.byKey[old.key]) == 0 {
				delete(cs.byKey, old.key)
			}
			delete(cs.cand, g)
		}
		if cd := fresh[g]; cd != nil {
			cs.cand[g] = *cd
			if cs.byKey[cd.key] == nil {
				cs.byKey[cd.key] = map[group]struct{}{}
			}
			cs.byKey[cd.key][g] = struct{}{}
		}
	}
	clear(cs.dirty)
	// One finding per set of members: when the same sources share a
	// firmware and an enclosure, both factors are named in one event.
	type result struct {
		lead group
		ev   store.Event
	}
	var results []result
	for k := range touched {
		set := cs.byKey[k]
		if len(set) == 0 {
			continue
		}
		g := make([]candidate, 0, len(set))
		for gr := range set {
			g = append(g, cs.cand[gr])
		}
		sort.Slice(g, func(i, j int) bool { return group{g[i].factor, g[i].value}.less(group{g[j].factor, g[j].value}) })
		lead := group{g[0].factor, g[0].value}
		src := fleetSource(code, lead.f, lead.v)
		prev, ok := c.active[src]
		if ok && subset(g[0].members, prev.members) {
			continue
		}
		if ok && len(prev.members) >= regrowSmall && len(g[0].members)*4 < len(prev.members)*5 &&
			now.Sub(prev.reported) < regrowInterval {
			cs.pending[lead] = struct{}{}
			continue // reported later, by a Tick
		}
		since := now
		if ok {
			since = prev.since
		}
		c.active[src] = finding{code: code, factor: lead.f, value: lead.v, size: g[0].size, members: g[0].members, reported: now, since: since}
		results = append(results, result{lead, c.event(code, src, g, now)})
	}
	for _, p := range wasPrimary {
		if cd, ok := cs.cand[p]; ok {
			if q, _ := primary(cs.byKey[cd.key]); q == p {
				continue
			}
		}
		delete(c.active, fleetSource(code, p.f, p.v))
	}
	sort.Slice(results, func(i, j int) bool { return results[i].lead.less(results[j].lead) })
	var out []store.Event
	for _, r := range results {
		out = append(out, r.ev)
	}
	return out
}

// unchanged reports whether group g of code is as it was last evaluated
// (old, had): still not a candidate, or a candidate of the same size
// with the same members.
func (c *Correlator) unchanged(cs *codeState, g group, old candidate, had bool) bool {
	set := cs.groups[g]
	size := c.sizes[g.f][g.v]
	n := len(set)
	is := n > 0 && size >= c.cfg.MinGroup && n >= c.cfg.MinMembers && float64(n) >= c.cfg.Share*float64(size)-1e-9
	if !is || !had {
		return !is && !had
	}
	return size == old.size && slices.Equal(set, old.members)
}

// candidate is group g of code if the code is common there, else nil.
func (c *Correlator) candidate(cs *codeState, g group) *candidate {
	set := cs.groups[g]
	size := c.sizes[g.f][g.v]
	n := len(set)
	if n == 0 || size < c.cfg.MinGroup || n < c.cfg.MinMembers || float64(n) < c.cfg.Share*float64(size)-1e-9 {
		return nil
	}
	members := slices.Clone(set) // set changes in place; a finding keeps members
	return &candidate{factor: g.f, value: g.v, size: size, members: members, key: strings.Join(members, "\x00")}
}

// primary is the first group of a member set, the one its finding is
// named after.
func primary(set map[group]struct{}) (group, bool) {
	var p group
	first := true
	for g := range set {
		if first || g.less(p) {
			p, first = g, false
		}
	}
	return p, !first
}

func factorRank(f Factor) int {
	for i, x := range factors {
		if x == f {
			return i
		}
	}
	return len(factors)
}

// subset reports whether every element of a (sorted) is in b (sorted).
func subset(a, b []string) bool {
	j := 0
	for _, x := range a {
		for j < len(b) && b[j] < x {
			j++
		}
		if j == len(b) || b[j] != x {
			return false
		}
	}
	return true
}

// FactorValue is one common factor of a finding.
type FactorValue struct {
	Factor    Factor `json:"factor"`
	Value     string `json:"value"`
	GroupSize int    `json:"group_size"`
}

// Finding is the data of a fleet.correlated event.
type Finding struct {
	Code    string        `json:"code"`
	Factor  Factor        `json:"factor"`
	Value   string        `json:"value"`
	Factors []FactorValue `json:"factors"`
	Members []string      `json:"members"`
	// GroupSize is the size of the primary factor's group; Share is
	// len(Members)/GroupSize.
	GroupSize int     `json:"group_size"`
	Share     float64 `json:"share"`
}

func (c *Correlator) event(code, src string, g []candidate, now time.Time) store.Event {
	f := Finding{Code: code, Factor: g[0].factor, Value: g[0].value, Members: g[0].members, GroupSize: g[0].size}
	f.Share = float64(len(f.Members)) / float64(f.GroupSize)
	var names []string
	for _, cd := range g {
		f.Factors = append(f.Factors, FactorValue{cd.factor, cd.value, cd.size})
		names = append(names, fmt.Sprintf("%s %s (%d of %d)", cd.factor, cd.value, len(cd.members), cd.size))
	}
	data, _ := json.Marshal(f)
	sev := store.SeverityWarning
	if k, _ := Lookup(code); k.Severity == evcode.Critical {
		sev = store.SeverityCritical
	}
	list := f.Members
	more := ""
	if len(list) > 10 {
		list, more = list[:10], fmt.Sprintf(" and %d more", len(f.Members)-10)
	}
	return store.Event{At: now, Code: FleetCorrelated, Severity: sev, Source: src, Data: data,
		Message: fmt.Sprintf("%s on %d BMCs sharing %s: %s%s; look at what they share before treating them one by one",
			code, len(f.Members), strings.Join(names, ", "), strings.Join(list, ", "), more)}
}

// ActiveFinding is a finding that holds now (the last one reported for
// its group), with when it was first reported.
type ActiveFinding struct {
	Code      string
	Factor    Factor
	Value     string
	GroupSize int
	Members   []string
	Since     time.Time
}

// Active is every finding that holds now, sorted by code and group.
func (c *Correlator) Active() []ActiveFinding {
	out := make([]ActiveFinding, 0, len(c.active))
	for _, f := range c.active {
		out = append(out, ActiveFinding{Code: f.code, Factor: f.factor, Value: f.value, GroupSize: f.size,
			Members: append([]string(nil), f.members...), Since: f.since})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Code != out[j].Code {
			return out[i].Code < out[j].Code
		}
		return fleetSource("", out[i].Factor, out[i].Value) < fleetSource("", out[j].Factor, out[j].Value)
	})
	return out
}
