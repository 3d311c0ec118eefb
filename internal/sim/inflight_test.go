package sim

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/ipmi"
)

// sendAll sends pkts from one socket at once and waits for as many replies.
func sendAll(t *testing.T, b *BMC, pkts ...[]byte) {
	t.Helper()
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, p := range pkts {
		if _, err := c.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 1500)
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	for range pkts {
		if _, err := c.Read(buf); err != nil {
			t.Fatalf("reply: %v", err)
		}
	}
}

// authCapsSeq is authCaps with its rqSeq set: another request.
func authCapsSeq(seq byte) []byte {
	p := authCaps()
	msg := p[14:]
	msg[4] = seq << 2
	var sum byte
	for _, c := range msg[3:8] {
		sum += c
	}
	msg[8] = -sum
	return p
}

// TestInFlightCountsRequests: the simulator's max_in_flight counts
// distinct requests held at once, over real UDP, with every reply delayed
// (slow) so the datagrams are all held together. A retransmitted copy —
// identical bytes, the same session setup message, or an in-session
// request sent again with a new sequence number and IV — is the same
// request; two different ones are two.
func TestInFlightCountsRequests(t *testing.T) {
	f := newTestFleet(t, Config{Count: 7, Seed: 5}, false)
	bmcs := f.BMCs()
	slow := func(t *testing.T, b *BMC) {
		t.Helper()
		if err := f.SetFaults(b.Name(), Faults{Slow: Duration(300 * time.Millisecond)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name string
		pkts [][]byte
		want int64
	}{
		{"two distinct sessionless requests", [][]byte{authCapsSeq(1), authCapsSeq(2)}, 2},
		{"a sessionless request and its copy", [][]byte{authCapsSeq(3), authCapsSeq(3)}, 1},
		{"two Open Sessions", [][]byte{openSession(1, 0x1111), openSession(2, 0x2222)}, 2},
		{"an Open Session and its copy", [][]byte{openSession(3, 0x3333), openSession(3, 0x3333)}, 1},
		{"two pings", [][]byte{asfPing(1), asfPing(2)}, 2},
		{"a ping and its copy", [][]byte{asfPing(3), asfPing(3)}, 1},
	} {
		b := bmcs[0]
		bmcs = bmcs[1:]
		t.Run(c.name, func(t *testing.T) {
			slow(t, b)
			sendAll(t, b, c.pkts...)
			if got := b.Counters().MaxInFlight; got != c.want {
				t.Errorf("max_in_flight %d, want %d", got, c.want)
			}
			if got := b.Counters().InFlight; got != 0 {
				t.Errorf("in flight %d after every reply", got)
			}
		})
	}

	t.Run("an encrypted in-session request retransmitted", func(t *testing.T) {
		b := bmcs[0]
		eng, err := ipmi.New(ipmi.Config{Sockets: 1, InitialRTO: 40 * time.Millisecond, MaxRTO: 80 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer eng.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s, err := eng.Open(ctx, b.Addr(), ipmi.Credentials{User: AdminUser, Password: []byte(f.Password())})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close(ctx)
		if got := b.Counters().MaxInFlight; got != 1 {
			t.Fatalf("max_in_flight %d during the login", got)
		}
		slow(t, b)
		before := eng.Stats().Retransmits
		if _, err := s.GetDeviceID(ctx); err != nil {
			t.Fatal(err)
		}
		if eng.Stats().Retransmits == before {
			t.Fatal("the request was not retransmitted: nothing tested")
		}
		if got := b.Counters().MaxInFlight; got != 1 {
			t.Errorf("max_in_flight %d for one request sent %d times", got, 1+eng.Stats().Retransmits-before)
		}
	})
}
