package poll

import (
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func TestWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n atomic.Int32
		start := time.Now()
		if !Wait(time.Second, func() bool { return n.Add(1) == 4 }) {
			t.Fatal("a condition true on the 4th check was not seen")
		}
		if el := time.Since(start); el != 3*Every {
			t.Fatalf("took %s, want 3 ticks", el)
		}
		start = time.Now()
		if Wait(50*time.Millisecond, func() bool { return false }) {
			t.Fatal("a false condition held")
		}
		if el := time.Since(start); el != 50*time.Millisecond {
			t.Fatalf("gave up after %s, want the bound", el)
		}
	})
}
