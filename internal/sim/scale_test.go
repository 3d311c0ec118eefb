package sim

import (
	"github.com/lightsout/lightsout/internal/poll"
	"math/rand/v2"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"
)

// TestScale10000 runs 10,000 BMCs in one process and checks they start
// fast, answer, stay within a memory and goroutine budget, and stop
// cleanly.
func TestScale10000(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	const n = 10000
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	g0 := runtime.NumGoroutine()
	w0 := waitingGoroutines()

	start := time.Now()
	f := newTestFleet(t, Config{Count: n, Seed: 7, Enclosures: []EnclosureConfig{{Name: "enc-a", Blades: 16}}}, true)
	startup := time.Since(start)

	// Every BMC's read loop parks (waits on its socket).
	poll.Until(t, 10*time.Second, "every read loop parked", func() bool { return waitingGoroutines()-w0 >= n })
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	g := runtime.NumGoroutine() - g0
	heap := int64(after.HeapInuse) - int64(before.HeapInuse)
	sys := int64(after.Sys) - int64(before.Sys)
	stack := int64(after.StackInuse) - int64(before.StackInuse)
	t.Logf("%d endpoints: start %v, goroutines %d (%.2f per BMC), heap in use %.1f MiB (%.1f KiB per BMC), stacks %.1f MiB, runtime sys %.1f MiB",
		len(f.Endpoints()), startup.Round(time.Millisecond), g, float64(g)/n,
		float64(heap)/(1<<20), float64(heap)/n/1024, float64(stack)/(1<<20), float64(sys)/(1<<20))

	if startup > 15*time.Second {
		t.Errorf("start took %v", startup)
	}
	if per := float64(g) / n; per > 2.2 {
		t.Errorf("%.2f goroutines per BMC, want at most 2.2", per)
	}
	if per := float64(heap+stack) / n; per > 64<<10 {
		t.Errorf("%.0f bytes of heap and stack per BMC, want at most 64 KiB", per)
	}

	// A sample answers, the first and the last included.
	r := rand.New(rand.NewPCG(1, 2))
	sample := []*BMC{f.all[0], f.all[len(f.all)-1]}
	for i := 0; i < 40; i++ {
		sample = append(sample, f.all[r.IntN(len(f.all))])
	}
	for _, b := range sample {
		p, err := exchange(t, b.Addr(), authCaps(), 2*time.Second)
		if err != nil || !authCapsOK(p) {
			t.Fatalf("%s at %s: no Get Channel Auth Caps answer: %v % x", b.Name(), b.Addr(), err, p)
		}
	}

	stop := time.Now()
	f.Close()
	t.Logf("stop took %v", time.Since(stop).Round(time.Millisecond))
	poll.Wait(100*time.Millisecond, func() bool { return runtime.NumGoroutine()-g0 <= 20 })
	if left := runtime.NumGoroutine() - g0; left > 20 {
		t.Errorf("%d goroutines left after Close", left)
	}
}

// waitingGoroutines is how many goroutines are blocked now (the runtime's
// scheduler metric), parked read loops among them.
func waitingGoroutines() int {
	s := []metrics.Sample{{Name: "/sched/goroutines/waiting:goroutines"}}
	metrics.Read(s)
	return int(s[0].Value.Uint64())
}
