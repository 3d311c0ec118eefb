// Package cluster lets several servers share one PostgreSQL database and
// split the fleet between them (docs/scale-out.md).
//
// Membership: every instance renews a lease in the instances table
// (store.Heartbeat); one whose lease lapsed, by the database's clock, is
// dead. Ownership: a machine belongs to the live instance serving its zone
// that scores highest for it (rendezvous hashing, Owner), so a membership
// change moves only the leaving or joining member's share. Hand-over: each
// instance publishes the member list (its view) it computed its share over,
// and shrinks to the new share before publishing a new view; a machine is
// started only when no other live instance's published view still gives it
// that machine (Decide). An instance that cannot renew its lease stops
// every check before the lease can lapse (fencing), so the others may take
// its share as soon as it has.
package cluster

import (
	"slices"

	"github.com/lightsout/lightsout/internal/store"
)

// score is the rendezvous weight of member for machine: FNV-1a over the
// name and the ID, finished with splitmix64's mixer so close IDs spread.
func score(member string, machine int64) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(member); i++ {
		h ^= uint64(member[i])
		h *= 1099511628211
	}
	x := uint64(machine)
	for i := 0; i < 8; i++ {
		h ^= x & 0xff
		h *= 1099511628211
		x >>= 8
	}
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}

// Owner is the member machine belongs to among members (rendezvous
// hashing: the highest score, ties to the smaller name), "" when there is
// none. Removing a member moves only the machines it owned; adding one
// moves only the machines it now owns.
func Owner(machine int64, members []string) string {
	best, bestScore := "", uint64(0)
	for _, m := range members {
		s := score(m, machine)
		if best == "" || s > bestScore || (s == bestScore && m < best) {
			best, bestScore = m, s
		}
	}
	return best
}

// Members is one reading of the instances table.
type Members struct {
	// Self is this instance's name.
	Self string
	// All by name, live or not (a dead one's zones still say what it
	// served).
	All map[string]store.Instance
}

// NewMembers indexes a reading of the instances table.
func NewMembers(self string, l []store.Instance) Members {
	m := Members{Self: self, All: make(map[string]store.Instance, len(l))}
	for _, in := range l {
		m.All[in.Name] = in
	}
	return m
}

// Live is the sorted names of the live instances.
func (m Members) Live() []string {
	var out []string
	for n, in := range m.All {
		if in.Live {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// serving is the names among names that serve zone. A name not in the
// table serves nothing (its zones are unknown; see Decide for why that is
// the safe side).
func (m Members) serving(zone string, names []string) []string {
	var out []string
	for _, n := range names {
		if in, ok := m.All[n]; ok && slices.Contains(in.Zones, zone) {
			out = append(out, n)
		}
	}
	return out
}

// OwnerIn is the owner of a machine of zone among the members of view
// that serve zone ("" when none does).
func (m Members) OwnerIn(machine int64, zone string, view []string) string {
	return Owner(machine, m.serving(zone, view))
}

// Decision is what Decide says about one machine.
type Decision struct {
	// Mine: this instance's published view gives it the machine.
	Mine bool
	// BlockedBy names a live instance whose published view still gives
	// it the machine (it may be checking it): wait for it to publish a
	// view without it, or for its lease to lapse. Empty when none.
	BlockedBy string
}

// May: the machine may be checked by this instance now.
func (d Decision) May() bool { return d.Mine && d.BlockedBy == "" }

// Decide says whether this instance, having published view, may check a
// machine of zone. Another live instance blocks it while that instance's
// own published view gives it the machine. Members it cannot place (gone
// from the table) are left out of the others' views, which can only give
// those others more machines: it errs on the side of waiting.
func (m Members) Decide(machine int64, zone string, view []string) Decision {
	var d Decision
	if view == nil {
		return d
	}
	d.Mine = m.OwnerIn(machine, zone, view) == m.Self
	if !d.Mine {
		return d
	}
	for _, n := range m.Live() {
		if n == m.Self {
			continue
		}
		other := m.All[n]
		if other.View != nil && m.OwnerIn(machine, zone, other.View) == n {
			d.BlockedBy = n
			break
		}
	}
	return d
}

// Unwatched is the sorted zones among zones that no live instance serves.
func (m Members) Unwatched(zones []string) []string {
	live := m.Live()
	var out []string
	for _, z := range zones {
		if len(m.serving(z, live)) == 0 && !slices.Contains(out, z) {
			out = append(out, z)
		}
	}
	slices.Sort(out)
	return out
}
