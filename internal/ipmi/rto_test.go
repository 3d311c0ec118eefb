package ipmi

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// delayProxy relays datagrams between one client and a BMC, holding each
// reply for delay: a BMC behind a queue.
func delayProxy(t *testing.T, bmc netip.AddrPort, delay time.Duration) netip.AddrPort {
	t.Helper()
	front, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	back, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(bmc))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var client netip.AddrPort
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		buf := make([]byte, 2048)
		for {
			n, from, err := front.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			mu.Lock()
			client = from
			mu.Unlock()
			back.Write(buf[:n])
		}
	}()
	go func() {
		defer wg.Done()
		for {
			buf := make([]byte, 2048)
			n, err := back.Read(buf)
			if err != nil {
				return
			}
			mu.Lock()
			to := client
			mu.Unlock()
			time.AfterFunc(delay, func() { front.WriteToUDPAddrPort(buf[:n], to) })
		}
	}()
	t.Cleanup(func() { front.Close(); back.Close(); wg.Wait() })
	return front.LocalAddr().(*net.UDPAddr).AddrPort()
}

// TestQueueDelayFloorsRTO: once replies from many BMCs have come back
// slowly (a queue, here or on the path), a new BMC's first request is not
// retransmitted at the 250 ms initial timeout: the engine-wide SRTT floors
// it. Without those samples the same BMC is retransmitted to.
func TestQueueDelayFloorsRTO(t *testing.T) {
	bmc := startBMC(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Control: a fresh engine retransmits to a BMC 350 ms away.
	fresh := newEngine(t, Config{})
	slow := delayProxy(t, bmc.Addr, 350*time.Millisecond)
	if _, err := fresh.Ping(ctx, slow); err != nil {
		t.Fatal(err)
	}
	if c := fresh.PeerCounters(slow); c.Retransmits == 0 {
		t.Fatalf("control: no retransmission at 350 ms with a 250 ms initial timeout: %+v", c)
	}

	// Clean samples of ~150 ms from four other BMCs, then the slow one.
	e := newEngine(t, Config{})
	var wg sync.WaitGroup
	for range 4 {
		a := delayProxy(t, bmc.Addr, 150*time.Millisecond)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := e.Ping(ctx, a); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if q := time.Duration(e.qrtt.Load()); q < 100*time.Millisecond {
		t.Fatalf("engine SRTT %s after four 150 ms replies", q)
	}
	slow2 := delayProxy(t, bmc.Addr, 350*time.Millisecond)
	if _, err := e.Ping(ctx, slow2); err != nil {
		t.Fatal(err)
	}
	if c := e.PeerCounters(slow2); c.Retransmits != 0 {
		t.Fatalf("retransmitted to a BMC within the engine's observed queue delay (SRTT %s, RTO %s): %+v",
			time.Duration(e.qrtt.Load()), e.rto(e.peers[slow2]), c)
	}
}

// TestRTOTable: how the engine-wide SRTT combines with a BMC's own.
func TestRTOTable(t *testing.T) {
	ms := time.Millisecond
	for _, c := range []struct {
		name              string
		peer, engine, bak time.Duration
		want              time.Duration
	}{
		{"nothing known", 0, 0, 0, 250 * ms},
		{"peer fast, no queue", 1 * ms, 1 * ms, 0, 200 * ms},           // minRTO
		{"peer fast, queue of 100ms", 1 * ms, 100 * ms, 0, 320 * ms},   // 3·100+20
		{"queue beyond MaxRTO", 1 * ms, 900 * ms, 0, time.Second},      // capped
		{"peer slower than the queue", 300 * ms, 50 * ms, 0, 620 * ms}, // 2·300+20
		{"back-off after a loss wins", 1 * ms, 100 * ms, 2 * time.Second, 2 * time.Second},
		{"new peer, queue of 200ms", 0, 200 * ms, 0, 620 * ms},
	} {
		e := &Engine{cfg: Config{InitialRTO: 250 * ms, MaxRTO: time.Second}}
		p := &peer{}
		p.srtt.Store(int64(c.peer))
		p.backoff.Store(int64(c.bak))
		e.qrtt.Store(int64(c.engine))
		if got := e.rto(p); got != c.want {
			t.Errorf("%s: rto %s, want %s", c.name, got, c.want)
		}
	}
}
