package probe

import (
	"net"
	"sync"
	"sync/atomic"
)

// coalesceConn is the TCP connection under a one-shot check's TLS
// connection (oneShotDialer.dial). It makes each flight one write system
// call: while the TLS handshake runs (holding) what it writes is kept
// until it next reads; what the handshake's last flight left (the client
// Finished, and TLS 1.3's ChangeCipherSpec) goes out with the first write
// after the handshake — the request — or before the first read, whichever
// comes first. A resumed check's client thus writes twice (ClientHello;
// Finished with the request) instead of three times. On loopback, where a
// TCP write runs the receiver's TCP input in the sender's context, each
// write saved is a noticeable share of a warm check's CPU
// (docs/benchmarks.md, "### Redfish").
//
// Nothing is reordered and nothing is sent that TLS did not write; only
// when it goes out changes. After release, writes are never held: a
// reader blocked in Read (net/http's read loop) cannot hold up a write.
// Close sends what is still held, then closes.
type coalesceConn struct {
	net.Conn
	mu      sync.Mutex
	holding bool        // the handshake runs: writes wait for its next Read
	held    atomic.Bool // len(buf) > 0
	buf     []byte
}

func newCoalesceConn(c net.Conn) *coalesceConn {
	return &coalesceConn{Conn: c, holding: true, buf: make([]byte, 0, 1024)}
}

// release ends the handshake: from now on writes go out at once, the
// first one with what is held.
func (c *coalesceConn) release() {
	c.mu.Lock()
	c.holding = false
	c.mu.Unlock()
}

func (c *coalesceConn) Write(p []byte) (int, error) {
	if !c.held.Load() {
		c.mu.Lock()
		if !c.holding && len(c.buf) == 0 {
			c.mu.Unlock()
			return c.Conn.Write(p)
		}
	} else {
		c.mu.Lock()
	}
	defer c.mu.Unlock()
	if c.holding {
		c.buf = append(c.buf, p...)
		c.held.Store(true)
		return len(p), nil
	}
	if len(c.buf) == 0 { // flushed by a Read meanwhile
		return c.Conn.Write(p)
	}
	prior := len(c.buf)
	c.buf = append(c.buf, p...)
	n, err := c.flushLocked()
	n -= prior
	if n < 0 {
		n = 0
	}
	return n, err
}

func (c *coalesceConn) Read(p []byte) (int, error) {
	if c.held.Load() {
		c.mu.Lock()
		_, err := c.flushLocked()
		c.mu.Unlock()
		if err != nil {
			return 0, err
		}
	}
	return c.Conn.Read(p)
}

// Close sends what is held (an alert the handshake wrote as it failed,
// say), then closes.
func (c *coalesceConn) Close() error {
	if c.held.Load() {
		c.mu.Lock()
		_, _ = c.flushLocked()
		c.mu.Unlock()
	}
	return c.Conn.Close()
}

// flushLocked writes what is held in one write (net.Conn.Write writes it
// all or fails); the buffer is kept for nothing more to be held.
func (c *coalesceConn) flushLocked() (int, error) {
	if len(c.buf) == 0 {
		return 0, nil
	}
	n, err := c.Conn.Write(c.buf)
	c.buf = c.buf[:0]
	c.held.Store(false)
	return n, err
}
