package manager

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
)

// ViewFilter selects machines by their channels' states and by enclosure:
// a machine matches when one of its channels has the state, the reason and
// the condition asked for (each optional), and it is in the enclosure.
type ViewFilter struct {
	State     state.OOB
	Reason    state.Reason
	Condition state.Condition
	Enclosure string
	// Zone keeps the machines of one zone (store.DefaultZone: those
	// naming none).
	Zone string
}

// States is every OOB state name, in the console's order.
var States = []state.OOB{state.Connectable, state.NotResponding, state.NotAuthenticated, state.Invalid, state.Unknown}

// Check refuses names that are no state, reason or condition, naming the
// field and the ones there are.
func (f ViewFilter) Check() error {
	if f.State != "" && !slices.Contains(States, f.State) {
		return fieldErr("state", fmt.Sprintf("%q is not a state (%s)", f.State, join(States)))
	}
	if f.Condition != "" && !slices.Contains(state.Conditions, f.Condition) {
		return fieldErr("condition", fmt.Sprintf("%q is not a condition (%s)", f.Condition, join(state.Conditions)))
	}
	if f.Reason != "" {
		var all []string
		ok := false
		for _, rs := range state.Reasons() {
			for _, r := range rs {
				all = append(all, string(r))
				ok = ok || r == f.Reason
			}
		}
		if !ok {
			sort.Strings(all)
			return fieldErr("reason", fmt.Sprintf("%q is not a reason (%s)", f.Reason, strings.Join(all, ", ")))
		}
	}
	return nil
}

// Empty reports whether f selects every machine.
func (f ViewFilter) Empty() bool { return f == ViewFilter{} }

// Match reports whether mv is selected.
func (f ViewFilter) Match(mv MachineView) bool {
	if f.Enclosure != "" && mv.Enclosure != f.Enclosure {
		return false
	}
	if f.Zone != "" && ZoneOf(mv.Machine) != f.Zone {
		return false
	}
	if f.State == "" && f.Reason == "" && f.Condition == "" {
		return true
	}
	for _, ch := range mv.Channels {
		cs := ch.State
		st := cs.State
		if st == "" {
			st = state.Unknown
		}
		if (f.State == "" || st == f.State) && (f.Reason == "" || cs.Reason == f.Reason) &&
			(f.Condition == "" || slices.Contains(cs.Conditions, f.Condition)) {
			return true
		}
	}
	return false
}

// ZoneOf is the machine's zone: its own, else store.DefaultZone.
func ZoneOf(m store.Machine) string {
	if m.Zone == "" {
		return store.DefaultZone
	}
	return m.Zone
}

func join[T ~string](xs []T) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = string(x)
	}
	return strings.Join(s, ", ")
}
