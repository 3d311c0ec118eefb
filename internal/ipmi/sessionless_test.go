package ipmi

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"
)

// TestSessionlessReplyMatching: AuthCaps and Sessionless share one
// session-less exchange, which takes only a reply naming the request's
// command, sequence number and response NetFn. A BMC on loopback answers
// each request first with a response of another NetFn (same command and
// sequence number), then, when told, with the right one: the first is
// never taken (AuthCaps used to take it), the second is.
func TestSessionlessReplyMatching(t *testing.T) {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	right := make(chan bool, 1)
	go func() {
		buf := make([]byte, 1500)
		good := false
		for {
			n, src, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			select {
			case good = <-right:
			default:
			}
			// The request: RMCP (4), IPMI 1.5 session header (10), then
			// rsAddr, netFn<<2, checksum, rqAddr, rqSeq<<2, cmd, data, checksum.
			if n < 14+7 {
				continue
			}
			req := buf[14:n]
			netFn, rqSeq, cmd := req[1]>>2, req[4]>>2, req[5]
			respFn := netFn | 1
			if !good {
				respFn = 0x0b // a response, of another NetFn (Storage)
			}
			data := []byte{0x00} // completion code
			if cmd == 0x38 {
				// Get Channel Authentication Capabilities: channel 1, IPMI 2.0
				// extended data, password auth, IPMI 2.0 supported.
				data = append(data, 0x01, 0x80|0x10, 0x04, 0x02, 0, 0, 0, 0)
			}
			m := make([]byte, 7+len(data))
			m[0] = consoleSWID
			m[1] = respFn << 2
			m[2] = ipmiChecksum(m[0:2])
			m[3] = bmcSlaveAddr
			m[4] = rqSeq << 2
			m[5] = cmd
			copy(m[6:], data)
			m[len(m)-1] = ipmiChecksum(m[3 : len(m)-1])
			conn.WriteToUDPAddrPort(buildV15(m), src)
		}
	}()
	addr := conn.LocalAddr().(*net.UDPAddr).AddrPort()
	e := newEngine(t, Config{InitialRTO: 20 * time.Millisecond, MaxRTO: 50 * time.Millisecond})
	short := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), 300*time.Millisecond)
	}
	ctx, cancel := short()
	_, _, err = e.AuthCaps(ctx, addr, PrivilegeAdministrator)
	cancel()
	if err == nil {
		t.Fatal("AuthCaps took a reply of another NetFn")
	}
	ctx, cancel = short()
	_, _, err = e.Sessionless(ctx, addr, 0x06, 0x54, []byte{0x0e, 0x00, 0x80})
	cancel()
	if err == nil {
		t.Fatal("Sessionless took a reply of another NetFn")
	}
	right <- true
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	caps, _, err := e.AuthCaps(ctx, addr, PrivilegeAdministrator)
	if err != nil || !caps.IPMI20 {
		t.Fatalf("AuthCaps of the right reply: %+v %v", caps, err)
	}
	if _, _, err := e.Sessionless(ctx, addr, 0x06, 0x54, []byte{0x0e, 0x00, 0x80}); err != nil && !errors.As(err, new(*CompletionError)) {
		t.Fatalf("Sessionless of the right reply: %v", err)
	}
}
