package ipmi

import (
	"context"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/ipmi/ipmitest"
)

// BenchmarkIdlePeerMemory measures what the engine keeps per known, idle
// BMC (target: ≤ 4 KiB). Reported as B/bmc.
func BenchmarkIdlePeerMemory(b *testing.B) {
	const n = 10000
	for i := 0; i < b.N; i++ {
		e, err := New(Config{})
		if err != nil {
			b.Fatal(err)
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for j := 0; j < n; j++ {
			a := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 1, byte(j >> 8), byte(j)}), 623)
			p, err := e.peer(a)
			if err != nil {
				b.Fatal(err)
			}
			p.suite.Store(4) // as after a successful session
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "B/bmc")
		e.Close()
	}
}

// BenchmarkSessionCheck is one full check sequence (open, three commands,
// close) against go-ipmi's server on loopback, per iteration.
func BenchmarkSessionCheck(b *testing.B) {
	tb := ipmitest.Start(b, ipmitest.Options{})
	e, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cr := Credentials{User: ipmitest.User, Password: []byte(ipmitest.Password), Suites: []CipherSuite{3}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s, err := e.Open(ctx, tb.Addr, cr)
		if err != nil {
			b.Fatal(err)
		}
		s.GetDeviceID(ctx)
		s.GetSystemGUID(ctx)
		s.ChassisStatus(ctx)
		s.Close(ctx)
	}
}
