package events

// The correlator as it was before it kept per-group counts: every change
// regroups every source holding the code. TestCorrelateIncremental checks
// the incremental one against it.

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/lightsout/lightsout/internal/evcode"
	"github.com/lightsout/lightsout/internal/store"
)

// Correlator finds fleet patterns: when at least Share of a group of at
// least MinGroup sources (same firmware, enclosure or subnet) raise the
// same code, it reports one fleet.correlated event naming the factor and
// the members. Groups count every known source, failing or not, so it
// needs every source's membership (SetMember), not only the failing ones'.
// It is pure: time comes in with every call. Not safe for concurrent use.
type refCorrelator struct {
	cfg     CorrelateConfig
	members map[string]*memberState
	sizes   map[Factor]map[string]int
	raised  map[string]map[string]raise // code → source
	active  map[string]finding          // fleet source → what was reported
}

// NewCorrelator returns a correlator.
func newRefCorrelator(cfg CorrelateConfig) *refCorrelator {
	c := &refCorrelator{cfg: cfg.withDefaults(), members: map[string]*memberState{},
		sizes: map[Factor]map[string]int{}, raised: map[string]map[string]raise{}, active: map[string]finding{}}
	for _, f := range factors {
		c.sizes[f] = map[string]int{}
	}
	return c
}

// Config is the effective configuration.
func (c *refCorrelator) Config() CorrelateConfig { return c.cfg }

// SetMember records source's groups as of at. An empty Firmware keeps the
// one known before (a BMC that stopped answering still runs the firmware
// it last reported).
func (c *refCorrelator) SetMember(source string, m Member, at time.Time) {
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
	}
	c.members[source] = &memberState{m: m, seen: at.UnixNano()}
	c.count(m, +1)
}

func (c *refCorrelator) count(m Member, d int) {
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
func (c *refCorrelator) Members() int { return len(c.members) }

// Spread compares source with its groups at now: for each factor it has a
// group in, with at least one other member, how many of those other
// members hold (or raised within Window) any of codes. ok is false when
// source is not a known member.
func (c *refCorrelator) Spread(source string, codes []string, now time.Time) (out []GroupSpread, ok bool) {
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
func (c *refCorrelator) Raise(code, source string, at time.Time) []store.Event {
	rs := c.raisedOf(code)
	if r, ok := rs[source]; ok && (r.held || !at.After(r.at)) {
		return nil
	}
	_, had := rs[source]
	rs[source] = raise{at: at}
	if had {
		return nil // already counted; only its expiry moved
	}
	return c.evaluate(code, at)
}

// Hold sets whether the condition code holds on source now (the monitor's
// view of it at its latest check), and returns findings it completes.
func (c *refCorrelator) Hold(code, source string, held bool, at time.Time) []store.Event {
	rs := c.raisedOf(code)
	r, had := rs[source]
	switch {
	case held && had && r.held:
		rs[source] = raise{at: at, held: true}
		return nil
	case held:
		rs[source] = raise{at: at, held: true}
	case had && r.held:
		delete(rs, source)
	default:
		return nil
	}
	return c.evaluate(code, at)
}

func (c *refCorrelator) raisedOf(code string) map[string]raise {
	rs := c.raised[code]
	if rs == nil {
		rs = map[string]raise{}
		c.raised[code] = rs
	}
	return rs
}

// Tick expires one-shot raises older than Window and sources not seen for
// MemberTTL, and re-evaluates every code.
func (c *refCorrelator) Tick(now time.Time) []store.Event {
	for name, ms := range c.members {
		if now.UnixNano()-ms.seen > int64(c.cfg.MemberTTL) {
			c.count(ms.m, -1)
			delete(c.members, name)
			for _, rs := range c.raised {
				delete(rs, name)
			}
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

// evaluate recomputes code's findings at now; it reports findings that
// are new or have gained members, and forgets those that no longer hold.
func (c *refCorrelator) evaluate(code string, now time.Time) []store.Event {
	rs := c.raised[code]
	for src, r := range rs {
		if !r.held && now.Sub(r.at) > c.cfg.Window {
			delete(rs, src)
		}
	}
	if len(rs) == 0 {
		delete(c.raised, code)
	}
	byGroup := map[Factor]map[string][]string{}
	for src := range rs {
		ms := c.members[src]
		if ms == nil {
			continue
		}
		for _, f := range factors {
			if v := ms.m.value(f); v != "" {
				if byGroup[f] == nil {
					byGroup[f] = map[string][]string{}
				}
				byGroup[f][v] = append(byGroup[f][v], src)
			}
		}
	}
	var cands []candidate
	for _, f := range factors {
		for v, srcs := range byGroup[f] {
			size := c.sizes[f][v]
			if size < c.cfg.MinGroup || len(srcs) < c.cfg.MinMembers || float64(len(srcs)) < c.cfg.Share*float64(size)-1e-9 {
				continue
			}
			sort.Strings(srcs)
			cands = append(cands, candidate{factor: f, value: v, size: size, members: srcs})
		}
	}
	// One finding per set of members: when the same sources share a
	// firmware and an enclosure, both factors are named in one event.
	sort.Slice(cands, func(i, j int) bool {
		if fi, fj := factorRank(cands[i].factor), factorRank(cands[j].factor); fi != fj {
			return fi < fj
		}
		return cands[i].value < cands[j].value
	})
	groups := map[string][]candidate{}
	var keys []string
	for _, cd := range cands {
		k := strings.Join(cd.members, "\x00")
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], cd)
	}
	var out []store.Event
	current := map[string]bool{}
	for _, k := range keys {
		g := groups[k]
		src := fleetSource(code, g[0].factor, g[0].value)
		current[src] = true
		prev, ok := c.active[src]
		if ok && subset(g[0].members, prev.members) {
			continue
		}
		if ok && len(prev.members) >= regrowSmall && len(g[0].members)*4 < len(prev.members)*5 &&
			now.Sub(prev.reported) < regrowInterval {
			continue // reported later, by a Tick
		}
		since := now
		if ok {
			since = prev.since
		}
		c.active[src] = finding{code: code, factor: g[0].factor, value: g[0].value, size: g[0].size, members: g[0].members, reported: now, since: since}
		out = append(out, c.event(code, src, g, now))
	}
	for src, f := range c.active {
		if f.code == code && !current[src] {
			delete(c.active, src)
		}
	}
	return out
}

func (c *refCorrelator) event(code, src string, g []candidate, now time.Time) store.Event {
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

// Active is every finding that holds now, sorted by code and group.
func (c *refCorrelator) Active() []ActiveFinding {
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
