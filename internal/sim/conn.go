package sim

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"time"
)

// udpConn is the transport.PacketConn one go-ipmi server reads from. It
// owns at most one UDP socket; control operations may close it
// (port_closed) or replace it (address swap) underneath the server, which
// keeps reading from the same udpConn. Faults are applied on the way in
// ([BMC.admit]) and out ([BMC.emit]).
type udpConn struct {
	b *BMC
	c *core // the server this conn feeds; set once before serving

	mu     sync.Mutex
	cond   sync.Cond
	sock   *net.UDPConn // nil while the port is closed
	gen    uint64       // bumped whenever sock changes
	closed bool
}

func newUDPConn(b *BMC, sock *net.UDPConn) *udpConn {
	c := &udpConn{b: b, sock: sock}
	c.cond.L = &c.mu
	return c
}

// current returns the socket to read from, waiting while the port is
// closed; net.ErrClosed once the conn is closed.
func (c *udpConn) current() (*net.UDPConn, uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.sock == nil && !c.closed {
		c.cond.Wait()
	}
	if c.closed {
		return nil, 0, net.ErrClosed
	}
	return c.sock, c.gen, nil
}

func (c *udpConn) stale(gen uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed || c.gen != gen
}

// ReadFrom implements transport.PacketConn: it returns the next datagram
// the faults let through.
func (c *udpConn) ReadFrom(buf []byte) (int, net.Addr, error) {
	for {
		sock, gen, err := c.current()
		if err != nil {
			return 0, nil, err
		}
		n, from, err := sock.ReadFromUDP(buf)
		if err != nil {
			if c.stale(gen) {
				continue // socket replaced or closed by a control operation
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			// Transient: the server logs nothing and reads again. Pace it so
			// a persistent error cannot spin a core.
			time.Sleep(10 * time.Millisecond)
			return 0, nil, err
		}
		if c.stale(gen) {
			continue // arrived while the address was being moved: lost
		}
		if !c.b.admit(c, buf[:n], from) {
			continue
		}
		return n, from, nil
	}
}

// WriteTo implements transport.PacketConn.
func (c *udpConn) WriteTo(data []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, fmt.Errorf("sim: write to %T, want *net.UDPAddr", addr)
	}
	return c.b.emit(c, data, ua)
}

// send writes one datagram on the current socket; dropped while the port
// is closed.
func (c *udpConn) send(data []byte, to *net.UDPAddr) (int, error) {
	c.mu.Lock()
	sock := c.sock
	c.mu.Unlock()
	if sock == nil {
		return len(data), nil
	}
	n, err := sock.WriteToUDP(data, to)
	if err == nil {
		c.b.ctr.packetsOut.Add(1)
	}
	return n, err
}

// LocalAddr is the address the BMC serves on (go-ipmi reports its port in
// Activate Payload).
func (c *udpConn) LocalAddr() net.Addr { return c.b.currentAddr() }

// Close implements transport.PacketConn: it closes the socket and makes
// ReadFrom return net.ErrClosed.
func (c *udpConn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	sock := c.sock
	c.sock = nil
	c.gen++
	c.cond.Broadcast()
	c.mu.Unlock()
	if sock != nil {
		return sock.Close()
	}
	return nil
}

// setSocket replaces the socket (nil closes the port). The old socket is
// closed; a reader blocked on it wakes up and moves to the new one.
func (c *udpConn) setSocket(sock *net.UDPConn) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		if sock != nil {
			sock.Close()
		}
		return
	}
	old := c.sock
	c.sock = sock
	c.gen++
	c.cond.Broadcast()
	c.mu.Unlock()
	if old != nil {
		old.Close()
	}
}

// hasSocket reports whether the port is open.
func (c *udpConn) hasSocket() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sock != nil
}

// bindUDP binds addr. When retry is set it keeps trying for a short while
// on EADDRINUSE: a socket closed a moment ago (address swap, restart) may
// still be held by a reader that has not returned yet.
func bindUDP(addr *net.UDPAddr, retry bool) (*net.UDPConn, error) {
	deadline := time.Now().Add(2 * time.Second)
	for {
		sock, err := net.ListenUDP("udp", addr)
		if err == nil {
			return sock, nil
		}
		if !retry || !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(deadline) {
			return nil, err
		}
		time.Sleep(5 * time.Millisecond)
	}
}
