package probe

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/power"
	"github.com/lightsout/lightsout/internal/state"
)

// httpRecorder stands for a Redfish BMC that records how many of our
// requests it works on at once: a TLS front (its handler's run is the
// request's time at the BMC) relaying to a simulated BMC's service.
type httpRecorder struct {
	srv *httptest.Server

	mu       sync.Mutex
	changed  chan struct{}
	n, cur   int
	max      int
	over     []string
	slow     func(r *http.Request) time.Duration // extra time the BMC takes
	finished int
}

func startHTTPRecorder(t *testing.T, backend netip.AddrPort) *httpRecorder {
	t.Helper()
	u := &url.URL{Scheme: "https", Host: backend.String()}
	proxy := httputil.NewSingleHostReverseProxy(u)
	proxy.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // the test's own simulator
	rec := &httpRecorder{changed: make(chan struct{})}
	rec.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		rec.n++
		rec.cur++
		if rec.cur > rec.max {
			rec.max = rec.cur
		}
		if rec.cur > 1 {
			rec.over = append(rec.over, r.Method+" "+r.URL.Path)
		}
		var d time.Duration
		if rec.slow != nil {
			d = rec.slow(r)
		}
		rec.notify()
		rec.mu.Unlock()
		defer func() {
			rec.mu.Lock()
			rec.cur--
			rec.finished++
			rec.notify()
			rec.mu.Unlock()
		}()
		if d > 0 {
			// The BMC's own time over the request, not the test waiting:
			// real time, as the third-party peer behind the proxy runs on it.
			time.Sleep(d)
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(rec.srv.Close)
	return rec
}

func (r *httpRecorder) notify() {
	close(r.changed)
	r.changed = make(chan struct{})
}

func (r *httpRecorder) addr() netip.AddrPort {
	return netip.MustParseAddrPort(strings.TrimPrefix(r.srv.URL, "https://"))
}

func (r *httpRecorder) await(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		ok, ch := cond(), r.changed
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("%s: not within 10s", what)
		}
	}
}

// One HTTP request at a time per BMC through the shared transport: checks
// (keeping their session) and power operations at once, and a check given
// up while the BMC still works on its request.
func TestRedfishOneRequestAtATime(t *testing.T) {
	f := rfFleet(t, 1)
	b := f.BMCs()[0]
	rec := startHTTPRecorder(t, b.RedfishAddr())
	tr := NewRedfishTransport()
	defer tr.CloseIdleConnections()
	p := NewRedfishProber(tr, &MemPins{})
	p.KeepSessions = true
	defer p.Close(context.Background())
	tg := rfTarget(b, rfPass)
	tg.Addr, tg.Timeout = rec.addr(), DefaultTimeout
	pw := power.Redfish{Transport: tr, Addr: rec.addr(), User: tg.User, Password: tg.Password}
	ctx := context.Background()

	var wg sync.WaitGroup
	errs := make(chan string, 16)
	for g := 0; g < 2; g++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := 0; i < 3; i++ {
				if o := p.Check(ctx, tg); o.State != state.Connectable {
					errs <- "check: " + string(o.State) + " " + o.Message
				}
			}
		}()
		go func() {
			defer wg.Done()
			for i := 0; i < 2; i++ {
				if _, err := pw.PowerState(ctx); err != nil {
					errs <- "power: " + err.Error()
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	rec.mu.Lock()
	n, mx, over := rec.n, rec.max, rec.over
	rec.mu.Unlock()
	if mx != 1 {
		t.Fatalf("the BMC worked on %d of our requests at once (%d requests; overlapping: %v)", mx, n, over)
	}

	// A check given up while the BMC works on a request: the next one
	// waits until the abandoned request's timeout has passed.
	rec.mu.Lock()
	slowSeen := false
	rec.slow = func(r *http.Request) time.Duration {
		if strings.HasPrefix(r.URL.Path, "/redfish/v1/Systems") && !slowSeen {
			slowSeen = true
			return 300 * time.Millisecond
		}
		return 0
	}
	rec.mu.Unlock()
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan Observation, 1)
	go func() { done <- p.Check(cctx, tg) }()
	rec.await(t, "the slow request at the BMC", func() bool { return slowSeen && rec.cur == 1 })
	cancel()
	if o := <-done; o.State == state.Connectable {
		t.Fatalf("the cancelled check finished: %+v", o)
	}
	rec.mu.Lock()
	rec.slow = nil
	rec.mu.Unlock()
	if o := p.Check(ctx, tg); o.State != state.Connectable {
		t.Fatalf("check after the give-up: %s %s", o.State, o.Message)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.max != 1 {
		t.Errorf("after a give-up the BMC worked on %d of our requests at once: %v", rec.max, rec.over)
	}
}
