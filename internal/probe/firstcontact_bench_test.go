package probe

import (
	"context"
	"net"
	"testing"

	"github.com/lightsout/lightsout/internal/ipmi"
	"github.com/lightsout/lightsout/internal/sim"
	"github.com/lightsout/lightsout/internal/state"
)

// BenchmarkFirstContactNoPing: a full check, at the default 3 s timeout,
// of a BMC that does not answer the presence ping (ipmiping quirk) and
// that the engine has never seen — what `lightsout check` does for it.
// Reports the datagrams sent per check too.
func BenchmarkFirstContactNoPing(b *testing.B) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	port := c.LocalAddr().(*net.UDPAddr).Port
	c.Close()
	f, err := sim.New(sim.Config{Count: 1, Seed: 3, Password: "bench-pass", BaseAddr: "127.0.0.1", BasePort: port,
		Faults: map[string]sim.Faults{"bmc-00001": {Quirk: sim.QuirkNoPing}}})
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	bmc := f.BMCs()[0]
	tg := Target{Name: bmc.Name(), Addr: bmc.Addr(), User: sim.AdminUser, Password: []byte("bench-pass"), Expected: bmc.RegisteredGUID(), Timeout: DefaultTimeout}
	var sent uint64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		eng, err := ipmi.New(ipmi.Config{})
		if err != nil {
			b.Fatal(err)
		}
		o := IPMI(eng)(context.Background(), tg)
		sent += eng.Stats().Sent
		eng.Close()
		if o.State != state.Connectable || o.Evidence.PingAnswered {
			b.Fatalf("%s/%s ping %v: %s", o.State, o.Reason, o.Evidence.PingAnswered, o.Message)
		}
	}
	b.ReportMetric(float64(sent)/float64(b.N), "datagrams/op")
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/op")
}
