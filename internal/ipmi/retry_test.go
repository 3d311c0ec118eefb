package ipmi

import (
	"context"
	"github.com/lightsout/lightsout/internal/poll"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/ipmi/ipmitest"
)

// reorderProxy sits between the engine and a BMC. It holds the first RAKP 2
// back until a second one (the BMC's answer to our retransmitted RAKP 1)
// has come, then delivers the stale first one before the fresh one — the
// order a loaded network or BMC produces.
type reorderProxy struct {
	// lateBy delays the fresh RAKP 2 after the stale one (0: at once).
	lateBy  time.Duration
	front   *net.UDPConn
	back    *net.UDPConn
	mu      sync.Mutex
	client  netip.AddrPort
	held    []byte
	rakp2s  int
	opens   int
	closing chan struct{}
}

func startReorderProxy(t *testing.T, bmc netip.AddrPort, lateBy time.Duration) *reorderProxy {
	front, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	back, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(bmc))
	if err != nil {
		t.Fatal(err)
	}
	p := &reorderProxy{front: front, back: back, closing: make(chan struct{}), lateBy: lateBy}
	go func() { // client → BMC
		buf := make([]byte, 2048)
		for {
			n, src, err := front.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			p.mu.Lock()
			p.client = src
			p.mu.Unlock()
			back.Write(buf[:n])
		}
	}()
	go func() { // BMC → client
		buf := make([]byte, 2048)
		for {
			n, err := back.Read(buf)
			if err != nil {
				return
			}
			pkt := append([]byte(nil), buf[:n]...)
			d, _ := parseDatagram(pkt)
			p.mu.Lock()
			client := p.client
			if d.payloadType == payloadOpenSessResp {
				p.opens++
			}
			if d.payloadType == payloadRAKP2 {
				p.rakp2s++
				if p.rakp2s == 1 {
					p.held = pkt // wait for the answer to the retransmission
					p.mu.Unlock()
					continue
				}
				if p.held != nil {
					front.WriteToUDPAddrPort(p.held, client) // stale one first
					p.held = nil
					if p.lateBy > 0 {
						p.mu.Unlock()
						time.AfterFunc(p.lateBy, func() { front.WriteToUDPAddrPort(pkt, client) })
						continue
					}
				}
			}
			p.mu.Unlock()
			front.WriteToUDPAddrPort(pkt, client)
		}
	}()
	t.Cleanup(func() { front.Close(); back.Close() })
	return p
}

func TestRetransmittedRAKP1IsNotAnAuthVerdict(t *testing.T) {
	for _, c := range []struct {
		name      string
		lateBy    time.Duration
		wantOpens int
	}{
		// The fresh RAKP 2 follows the stale one at once: lingering picks
		// the last one, no restart.
		{"fresh reply while lingering", 0, 1},
		// The fresh one comes after the linger window: RAKP 4 refuses the
		// stale state, the handshake restarts once.
		{"fresh reply after lingering", 1500 * time.Millisecond, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			bmc := ipmitest.Start(t, ipmitest.Options{})
			px := startReorderProxy(t, bmc.Addr, c.lateBy)
			e := newEngine(t, Config{InitialRTO: 100 * time.Millisecond})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			s, err := e.Open(ctx, px.front.LocalAddr().(*net.UDPAddr).AddrPort(), creds(testPass, 3))
			if err != nil {
				t.Fatalf("open through a reordering path: %v", err)
			}
			if _, err := s.GetDeviceID(ctx); err != nil {
				t.Fatal(err)
			}
			s.Close(ctx)
			px.mu.Lock()
			opens, rakp2s := px.opens, px.rakp2s
			px.mu.Unlock()
			if rakp2s < 2 || opens != c.wantOpens {
				t.Errorf("%d RAKP 2 and %d open session replies, want ≥ 2 and %d", rakp2s, opens, c.wantOpens)
			}
			poll.Wait(100*time.Millisecond, func() bool { return bmc.Sessions.Count() == 0 })
			if n := bmc.Sessions.Count(); n != 0 {
				t.Errorf("BMC holds %d sessions after close", n)
			}
		})
	}
}
