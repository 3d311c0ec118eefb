package events

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/store"
)

// correlator is what the benchmark and the comparison test drive: the
// incremental Correlator and the regrouping one it replaced.
type correlator interface {
	SetMember(source string, m Member, at time.Time)
	Raise(code, source string, at time.Time) []store.Event
	Hold(code, source string, held bool, at time.Time) []store.Event
	Tick(now time.Time) []store.Event
}

// benchFleet is n BMCs: 5 firmware revisions, enclosures of 20 blades,
// /24 subnets of 250.
func benchFleet(n int) ([]string, []Member) {
	names := make([]string, n)
	ms := make([]Member, n)
	for i := range n {
		names[i] = fmt.Sprintf("bmc-%05d", i)
		ms[i] = Member{Firmware: fmt.Sprintf("Vendor %d.0", i%5), Enclosure: fmt.Sprintf("enc-%d", i/20),
			Subnet: fmt.Sprintf("10.%d.%d.0/24", i/250/256, i/250%256)}
	}
	return names, ms
}

// BenchmarkCorrelatorFlips: 10,000 members, one op is 1,000 condition
// flips (oob.degraded coming or going) on the first 2,000 of them (8
// subnets, 100 enclosures), so groups cross the share threshold both
// ways and findings come, grow and go. "regroup" is the correlator before
// per-group counts.
func BenchmarkCorrelatorFlips(b *testing.B) {
	for _, impl := range []struct {
		name string
		mk   func() correlator
	}{
		{"incremental", func() correlator { return NewCorrelator(CorrelateConfig{}) }},
		{"regroup", func() correlator { return newRefCorrelator(CorrelateConfig{}) }},
	} {
		b.Run(impl.name, func(b *testing.B) {
			names, ms := benchFleet(10000)
			c := impl.mk()
			t0 := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
			for i := range names {
				c.SetMember(names[i], ms[i], t0)
			}
			held := make([]bool, 2000)
			rng := rand.New(rand.NewPCG(1, 2))
			now := t0
			events := 0
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				for range 1000 {
					i := rng.IntN(len(held))
					held[i] = !held[i]
					now = now.Add(10 * time.Millisecond)
					events += len(c.Hold("oob.degraded", names[i], held[i], now))
				}
			}
			b.ReportMetric(float64(events)/float64(b.N), "events/op")
		})
	}
}
