package probe

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/lightsout/lightsout/internal/state"
)

// writeCounter counts the writes (each a write system call) on a TCP
// connection.
type writeCounter struct {
	net.Conn
	n *atomic.Int32
}

func (w writeCounter) Write(p []byte) (int, error) {
	w.n.Add(1)
	return w.Conn.Write(p)
}

// learnedSystemFake is a fake service whose System says what it is, as a
// learned check wants.
func learnedSystemFake(t *testing.T, maxTLS uint16) netip.AddrPort {
	t.Helper()
	srv := httptest.NewUnstartedServer(&fakeService{
		system: body(200, `{"@odata.type":"#ComputerSystem.v1_20_0.ComputerSystem","UUID":"`+testUUID+`","PowerState":"On"}`),
	})
	srv.TLS = &tls.Config{MaxVersion: maxTLS}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return netip.MustParseAddrPort(strings.TrimPrefix(srv.URL, "https://"))
}

// TestRedfishLearnedCheckWrites: a learned BMC's check writes twice on
// its TCP connection — the ClientHello, then the client's last handshake
// flight together with the request (coalesceConn) — over TLS 1.3 and
// over TLS 1.2 (the abbreviated handshake), where it wrote three times
// before. The full check before it (net/http's transport, whose read
// loop reads before the request is written) goes through the same
// connection type.
func TestRedfishLearnedCheckWrites(t *testing.T) {
	for _, v := range []struct {
		name string
		max  uint16
	}{{"TLS1.3", tls.VersionTLS13}, {"TLS1.2", tls.VersionTLS12}} {
		t.Run(v.name, func(t *testing.T) {
			addr := learnedSystemFake(t, v.max)
			memo := NewRedfishMemo()
			tg := fakeTarget(addr)
			run := func() (Observation, int32) {
				var writes atomic.Int32
				tr := NewOneShotRedfishTransport()
				defer tr.CloseIdleConnections()
				tr.dialer.wrapTCP = func(c net.Conn) net.Conn { return writeCounter{c, &writes} }
				o := RedfishOneShot(tr, &MemPins{}, memo)(context.Background(), tg)
				return o, writes.Load()
			}
			o, _ := run() // the full check, learned
			wantObs(t, o, state.Connectable, state.ReasonOK, "HTTP Basic")
			wantStatuses(t, o, "GET /redfish/v1/ 200", "GET /redfish/v1/Systems 200", "GET /redfish/v1/Systems/1 200")
			for i := range 3 {
				o, writes := run()
				wantObs(t, o, state.Connectable, state.ReasonOK, "HTTP Basic")
				wantStatuses(t, o, "GET /redfish/v1/Systems/1 200")
				if ev := o.Evidence.Redfish; !ev.TLSResumed || ev.LearnedSystem == "" {
					t.Fatalf("run %d: not the learned check over a resumed session: %+v", i+2, ev)
				}
				if writes != 2 {
					t.Fatalf("run %d: %d writes on the connection, want 2 (ClientHello; Finished with the request)", i+2, writes)
				}
			}
		})
	}
}

// TestCoalesceConn: held writes go out, in order, in one write at the
// next Read, at the first Write after release, or at Close.
func TestCoalesceConn(t *testing.T) {
	pair := func(t *testing.T) (*coalesceConn, net.Conn, *atomic.Int32) {
		t.Helper()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		acc := make(chan net.Conn, 1)
		go func() {
			c, _ := ln.Accept()
			acc <- c
		}()
		raw, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		peer := <-acc
		if peer == nil {
			t.Fatal("no connection accepted")
		}
		t.Cleanup(func() { raw.Close(); peer.Close() })
		var n atomic.Int32
		return newCoalesceConn(writeCounter{raw, &n}), peer, &n
	}
	read := func(t *testing.T, c net.Conn, n int) string {
		t.Helper()
		b := make([]byte, n)
		if _, err := ioReadFull(c, b); err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	t.Run("read flushes", func(t *testing.T) {
		c, peer, n := pair(t)
		_, _ = c.Write([]byte("hello "))
		_, _ = c.Write([]byte("world"))
		if n.Load() != 0 {
			t.Fatal("a held write went out")
		}
		go func() { _, _ = peer.Write([]byte("x")) }()
		if _, err := c.Read(make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
		if got := read(t, peer, 11); got != "hello world" || n.Load() != 1 {
			t.Fatalf("got %q in %d writes", got, n.Load())
		}
	})
	t.Run("first write after release", func(t *testing.T) {
		c, peer, n := pair(t)
		_, _ = c.Write([]byte("finished|"))
		c.release()
		if k, err := c.Write([]byte("request")); k != 7 || err != nil {
			t.Fatalf("wrote %d, %v", k, err)
		}
		_, _ = c.Write([]byte("|more"))
		if got := read(t, peer, 21); got != "finished|request|more" || n.Load() != 2 {
			t.Fatalf("got %q in %d writes, want 2", got, n.Load())
		}
	})
	t.Run("close sends", func(t *testing.T) {
		c, peer, _ := pair(t)
		_, _ = c.Write([]byte("alert"))
		c.Close()
		if got := read(t, peer, 5); got != "alert" {
			t.Fatalf("got %q", got)
		}
	})
}

func ioReadFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		k, err := c.Read(b[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// TestRedfishLearnedCheckStack: a learned check, run as checkrun runs it
// (its own goroutine, through a Registry), fits in a 16 KiB goroutine
// stack: its one request is sent from a shallow stack (RedfishProber.Check)
// — the resumed TLS handshake under it is deep — so its goroutine does
// not grow to 32 KiB (a copy of the stack from deep in the dial, and 16
// KiB more memory per BMC checked at once). The client runs in a child
// process with the runtime's stack limit at 16 KiB (exceeding it is
// fatal); the service runs here.
func TestRedfishLearnedCheckStack(t *testing.T) {
	if addr := os.Getenv("LIGHTSOUT_STACK_CHILD"); addr != "" {
		tg := fakeTarget(netip.MustParseAddrPort(addr))
		memo := NewRedfishMemo()
		check := func() Observation {
			tr := NewOneShotRedfishTransport()
			defer tr.CloseIdleConnections()
			reg := Registry{"redfish": RedfishOneShot(tr, &MemPins{}, memo)}
			out := make(chan Observation, 1)
			go func() { out <- reg.Check(context.Background(), tg) }()
			return <-out
		}
		if o := check(); o.State != state.Connectable { // learned
			fmt.Printf("first check: %s %s\n", o.State, o.Message)
			os.Exit(1)
		}
		debug.SetMaxStack(16 << 10)
		o := check()
		debug.SetMaxStack(1 << 30)
		fmt.Printf("learned=%q resumed=%v state=%s\n", o.Evidence.Redfish.LearnedSystem, o.Evidence.Redfish.TLSResumed, o.State)
		os.Exit(0)
	}
	addr := learnedSystemFake(t, tls.VersionTLS13)
	cmd := exec.Command(os.Args[0], "-test.run=^TestRedfishLearnedCheckStack$")
	cmd.Env = append(os.Environ(), "LIGHTSOUT_STACK_CHILD="+addr.String())
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), `learned="/redfish/v1/Systems/1" resumed=true state=Connectable`) {
		if i := strings.Index(string(out), "goroutine stack exceeds"); i >= 0 {
			out = out[i:min(len(out), i+3000)]
		}
		t.Fatalf("the learned check in 16 KiB of stack: %v\n%s", err, out)
	}
}

// TestRedfishLearnedCheckBytes bounds the heap a learned BMC's check
// allocates (measured in a child process, the fake service in this one):
// `lightsout check` runs a thousand of them at once, and at its GOGC of
// 400 nearly every byte is fresh memory — a page fault per 4 KiB
// (docs/benchmarks.md, "### Redfish"). Most of it is crypto/tls's
// resumed handshake (about 46 KiB); the bound catches what the check
// adds on top of it (the answer's reader was 4 KiB, its body grown by
// doubling).
func TestRedfishLearnedCheckBytes(t *testing.T) {
	const rounds = 40
	if addr := os.Getenv("LIGHTSOUT_BYTES_CHILD"); addr != "" {
		tg := fakeTarget(netip.MustParseAddrPort(addr))
		memo := NewRedfishMemo()
		tr := NewOneShotRedfishTransport()
		reg := Registry{"redfish": RedfishOneShot(tr, &MemPins{}, memo)}
		if o := reg.Check(context.Background(), tg); o.State != state.Connectable { // learned
			fmt.Printf("first check: %s %s\n", o.State, o.Message)
			os.Exit(1)
		}
		reg.Check(context.Background(), tg) // warm: the runtime's own first-use allocations
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for range rounds {
			if o := reg.Check(context.Background(), tg); !o.Evidence.Redfish.TLSResumed || o.State != state.Connectable {
				fmt.Printf("learned check: %s %s resumed=%v\n", o.State, o.Message, o.Evidence.Redfish.TLSResumed)
				os.Exit(1)
			}
		}
		runtime.ReadMemStats(&after)
		fmt.Printf("bytes/check=%d allocs/check=%d\n", (after.TotalAlloc-before.TotalAlloc)/rounds, (after.Mallocs-before.Mallocs)/rounds)
		os.Exit(0)
	}
	addr := learnedSystemFake(t, tls.VersionTLS13)
	cmd := exec.Command(os.Args[0], "-test.run=^TestRedfishLearnedCheckBytes$")
	cmd.Env = append(os.Environ(), "LIGHTSOUT_BYTES_CHILD="+addr.String())
	out, err := cmd.CombinedOutput()
	var perCheck, allocs int
	if err == nil {
		_, err = fmt.Sscanf(strings.TrimSpace(string(out)), "bytes/check=%d allocs/check=%d", &perCheck, &allocs)
	}
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	t.Logf("a learned check allocates %d bytes in %d allocations", perCheck, allocs)
	if perCheck > maxLearnedCheckBytes {
		t.Errorf("a learned check allocates %d bytes, want ≤ %d", perCheck, maxLearnedCheckBytes)
	}
}

// maxLearnedCheckBytes: see TestRedfishLearnedCheckBytes (Go 1.26 on
// amd64: 55.8 KB with the answer read into a 1 KiB reader and a body of
// its Content-Length; 59.3 KB before).
const maxLearnedCheckBytes = 57 << 10
