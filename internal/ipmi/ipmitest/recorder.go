package ipmitest

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// Recorder stands for a BMC that records how many requests of its console
// it holds at once: a relay in front of a real BMC (go-ipmi's reference
// BMC, ipmi_sim) that counts a request in flight at the BMC from the
// moment it arrives until the BMC's answer to it leaves, and remembers the
// most it ever held. Answers are paired with requests in arrival order
// (a BMC that holds one request at a time answers them in that order).
//
// Fault scripts what happens to each request: the BMC may work on it a
// while (in flight meanwhile: a slow BMC), and its answer may be lost,
// delayed or duplicated on the way back (the network, after the answer
// left the BMC: no longer in flight): see SetFault.
type Recorder struct {
	front *net.UDPConn // the console talks to this
	back  *net.UDPConn // towards the real BMC
	bmc   netip.AddrPort

	mu       sync.Mutex
	fault    func(n int, req []byte) Fault
	changed  chan struct{} // closed and replaced on every change
	client   netip.AddrPort
	n        int     // requests received
	answered int     // answers that left the BMC
	queue    []Fault // faults of requests in flight, oldest first
	max      int
	over     []string // what was in flight when more than one was
	timers   sync.WaitGroup
	closed   bool
}

// Fault is what happens to one request.
type Fault struct {
	// Slow: the BMC works this long on the request before its answer
	// leaves (the request is in flight meanwhile).
	Slow time.Duration
	// Lose: the answer is lost on the way back.
	Lose bool
	// Delay: the answer is delayed this long on the way back.
	Delay time.Duration
	// Duplicate: the network delivers the answer twice.
	Duplicate bool
}

// StartRecorder relays to bmc until the test ends.
func StartRecorder(t testing.TB, bmc netip.AddrPort) *Recorder {
	t.Helper()
	front, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	back, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	r := &Recorder{front: front, back: back, bmc: bmc, changed: make(chan struct{})}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); r.in() }()
	go func() { defer wg.Done(); r.out() }()
	t.Cleanup(func() {
		r.mu.Lock()
		r.closed = true
		r.mu.Unlock()
		front.Close()
		back.Close()
		wg.Wait()
		r.timers.Wait()
	})
	return r
}

// SetFault makes f decide the fault of each further datagram from the
// console (n counts them from 1 since the recorder started,
// retransmissions included); nil: no faults.
func (r *Recorder) SetFault(f func(n int, req []byte) Fault) {
	r.mu.Lock()
	r.fault = f
	r.mu.Unlock()
}

// Addr is where consoles reach the BMC through the recorder.
func (r *Recorder) Addr() netip.AddrPort { return r.front.LocalAddr().(*net.UDPAddr).AddrPort() }

// notify wakes Await. r.mu held.
func (r *Recorder) notify() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// in: console → BMC. A request is in flight from here on.
func (r *Recorder) in() {
	buf := make([]byte, 2048)
	for {
		n, src, err := r.front.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		req := append([]byte(nil), buf[:n]...)
		r.mu.Lock()
		r.client = src
		r.n++
		var f Fault
		if r.fault != nil {
			f = r.fault(r.n, req)
		}
		r.queue = append(r.queue, f)
		if k := len(r.queue); k > r.max {
			r.max = k
		}
		if len(r.queue) > 1 {
			r.over = append(r.over, fmt.Sprintf("request %d arrived with %d in flight", r.n, len(r.queue)-1))
		}
		r.notify()
		r.mu.Unlock()
		_, _ = r.back.WriteToUDPAddrPort(req, r.bmc)
	}
}

// out: BMC → console, through the fault of the oldest request in flight.
func (r *Recorder) out() {
	buf := make([]byte, 2048)
	for {
		n, _, err := r.back.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		rep := append([]byte(nil), buf[:n]...)
		r.mu.Lock()
		var f Fault
		if len(r.queue) > 0 {
			f = r.queue[0]
		}
		r.mu.Unlock()
		if f.Slow > 0 {
			r.later(f.Slow, func() { r.leave(rep) })
			continue
		}
		r.leave(rep)
	}
}

// leave: the answer leaves the BMC (its request is no longer in flight)
// and goes through the network's faults.
func (r *Recorder) leave(rep []byte) {
	r.mu.Lock()
	var f Fault
	if len(r.queue) > 0 {
		f = r.queue[0]
		r.queue = r.queue[1:]
	}
	r.answered++
	client := r.client
	r.notify()
	r.mu.Unlock()
	if f.Lose {
		return
	}
	send := func() {
		_, _ = r.front.WriteToUDPAddrPort(rep, client)
		if f.Duplicate {
			_, _ = r.front.WriteToUDPAddrPort(rep, client)
		}
	}
	if f.Delay > 0 {
		r.later(f.Delay, send)
		return
	}
	send()
}

func (r *Recorder) later(d time.Duration, f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.timers.Add(1)
	time.AfterFunc(d, func() { defer r.timers.Done(); f() })
}

// Counts is a snapshot of the recorder.
type Counts struct {
	Requests, Answered, InFlight, MaxInFlight int
	// Over says what was in flight whenever more than one request was.
	Over []string
}

// Counts returns a snapshot.
func (r *Recorder) Counts() Counts {
	r.mu.Lock()
	defer r.mu.Unlock()
	return Counts{Requests: r.n, Answered: r.answered, InFlight: len(r.queue), MaxInFlight: r.max, Over: append([]string(nil), r.over...)}
}

// Await waits until cond holds for the recorder's counts, at most limit
// (then the test fails).
func (r *Recorder) Await(t testing.TB, limit time.Duration, what string, cond func(Counts) bool) Counts {
	t.Helper()
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		ch := r.changed
		r.mu.Unlock()
		c := r.Counts()
		if cond(c) {
			return c
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("recorder: %s not within %v (%+v)", what, limit, c)
			return c
		}
	}
}
