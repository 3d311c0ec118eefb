package cluster

import (
	"fmt"
	"testing"

	"github.com/lightsout/lightsout/internal/store"
)

// TestOwnerMovesOnlyTheChangedShare: over 30,000 machines and three
// members the shares are even (within 5%); removing a member moves only
// its machines, adding one moves only the machines it then owns.
func TestOwnerMovesOnlyTheChangedShare(t *testing.T) {
	const n = 30000
	three := []string{"a", "b", "c"}
	owner := make([]string, n)
	share := map[string]int{}
	for i := range n {
		owner[i] = Owner(int64(i+1), three)
		share[owner[i]]++
	}
	for _, m := range three {
		if d := share[m] - n/3; d > n/60 || d < -n/60 {
			t.Errorf("member %s owns %d of %d", m, share[m], n)
		}
	}
	moved := 0
	for i := range n {
		o := Owner(int64(i+1), []string{"a", "c"})
		if owner[i] != "b" && o != owner[i] {
			t.Fatalf("machine %d moved from %s to %s when b left", i+1, owner[i], o)
		}
		if owner[i] == "b" {
			moved++
		}
		o4 := Owner(int64(i+1), []string{"a", "b", "c", "d"})
		if o4 != owner[i] && o4 != "d" {
			t.Fatalf("machine %d moved from %s to %s when d joined", i+1, owner[i], o4)
		}
	}
	if moved != share["b"] {
		t.Errorf("moved %d, b owned %d", moved, share["b"])
	}
	if Owner(1, nil) != "" {
		t.Error("no members, an owner")
	}
}

func inst(name string, live bool, zones []string, view []string) store.Instance {
	return store.Instance{Name: name, Live: live, Zones: zones, View: view}
}

// TestDecideHandOver walks a join and a death: the joining member waits
// until the old owner published a view with it; a dead member's claim does
// not count; a member with no published view claims nothing; zones limit
// who may own a machine.
func TestDecideHandOver(t *testing.T) {
	dz := []string{store.DefaultZone}
	ab := []string{"a", "b"}
	abc := []string{"a", "b", "c"}
	// Find a machine that c owns among a, b, c, and its owner among a, b.
	var m int64
	var old string
	for i := int64(1); ; i++ {
		if Owner(i, abc) == "c" {
			m, old = i, Owner(i, ab)
			break
		}
	}
	cases := []struct {
		name      string
		self      string
		all       []store.Instance
		view      []string
		zone      string
		mine      bool
		blockedBy string
	}{
		{"c joined, old owner still on the old view", "c",
			[]store.Instance{inst("a", true, dz, ab), inst("b", true, dz, ab), inst("c", true, dz, abc)}, abc, store.DefaultZone, true, old},
		{"old owner moved on", "c",
			[]store.Instance{inst("a", true, dz, abc), inst("b", true, dz, abc), inst("c", true, dz, abc)}, abc, store.DefaultZone, true, ""},
		{"old owner dead", "c",
			[]store.Instance{inst("a", old != "a", dz, ab), inst("b", old != "b", dz, ab), inst("c", true, dz, abc)}, abc, store.DefaultZone, true, ""},
		{"old owner on the old view keeps it", old,
			[]store.Instance{inst("a", true, dz, ab), inst("b", true, dz, ab), inst("c", true, dz, abc)}, ab, store.DefaultZone, true, "c"},
		{"no published view", "c",
			[]store.Instance{inst("a", true, dz, abc), inst("b", true, dz, abc), inst("c", true, dz, nil)}, nil, store.DefaultZone, false, ""},
		{"c does not serve the zone", "c",
			[]store.Instance{inst("a", true, []string{"dc1"}, abc), inst("b", true, []string{"dc1"}, abc), inst("c", true, dz, abc)}, abc, "dc1", false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := NewMembers(tc.self, tc.all).Decide(m, tc.zone, tc.view)
			if d.Mine != tc.mine || d.BlockedBy != tc.blockedBy {
				t.Errorf("Decide = %+v, want mine %v blocked by %q", d, tc.mine, tc.blockedBy)
			}
		})
	}
	// Over many machines: under any pair of published views at most one
	// live member may check a machine.
	all := []store.Instance{inst("a", true, dz, ab), inst("b", true, dz, abc), inst("c", true, dz, abc)}
	for i := int64(1); i < 3000; i++ {
		may := 0
		for _, self := range all {
			if NewMembers(self.Name, all).Decide(i, store.DefaultZone, self.View).May() {
				may++
			}
		}
		if may > 1 {
			t.Fatalf("machine %d: %d members may check it", i, may)
		}
	}
	if u := NewMembers("a", []store.Instance{inst("a", true, []string{"dc1"}, nil), inst("b", false, []string{"dc2"}, nil)}).Unwatched([]string{"dc2", "dc1", "dc3"}); fmt.Sprint(u) != "[dc2 dc3]" {
		t.Errorf("unwatched = %v", u)
	}
}
