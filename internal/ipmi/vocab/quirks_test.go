package vocab

import "testing"

// TestEveryQuirkNamed: each quirk bit has exactly one stable name, and the
// names read back to the bit.
func TestEveryQuirkNamed(t *testing.T) {
	for q := Quirk(1); q < quirkEnd; q <<= 1 {
		if len(q.Names()) != 1 {
			t.Errorf("quirk bit %#x has no name", uint32(q))
			continue
		}
		if got := ParseQuirks(q.Names()); got != q {
			t.Errorf("quirk %s reads back as %#x", q.Names()[0], uint32(got))
		}
	}
}
