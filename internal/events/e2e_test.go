package events_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/api/apitest"
	"github.com/lightsout/lightsout/internal/api/client"
	"github.com/lightsout/lightsout/internal/events"
	"github.com/lightsout/lightsout/internal/poll"
	"github.com/lightsout/lightsout/internal/server"
	"github.com/lightsout/lightsout/internal/sim"
	"github.com/lightsout/lightsout/internal/store"
)

// hookSink is a webhook receiver on 127.0.0.1 that keeps the events whose
// signature verifies, and counts those that do not.
type hookSink struct {
	secret []byte
	mu     sync.Mutex
	got    []store.Event
	bad    int
}

func (h *hookSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var e store.Event
	err := events.Verify(h.secret, r.Header.Get(events.HeaderSignature), r.Header.Get(events.HeaderTimestamp), body, time.Now(), time.Minute)
	if err == nil {
		err = json.Unmarshal(body, &e)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil {
		h.bad++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	h.got = append(h.got, e)
	w.WriteHeader(http.StatusNoContent)
}

func (h *hookSink) codes() map[string][]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string][]string{}
	for _, e := range h.got {
		out[e.Code] = append(out[e.Code], e.Source)
	}
	return out
}

// TestFleetTimeoutFlood is the IPMIDRV 1004 case end to end: a real server
// monitoring a simulated fleet over UDP; every BMC of one firmware starts
// dropping replies. Each raises oob.timeout_flood, the server raises one
// fleet.correlated naming that firmware and exactly those BMCs, a signed
// webhook and the live stream carry them, and the flood's repeats are
// counted on one event.
func TestFleetTimeoutFlood(t *testing.T) {
	secret := []byte("webhook-secret-for-tests")
	sink := &hookSink{secret: secret}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: sink, ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })

	vendors := []sim.Vendor{
		{Name: "dell", ManufacturerID: 674, ProductID: 0x100, Firmware: "4.40"},
		{Name: "dell", ManufacturerID: 674, ProductID: 0x100, Firmware: "5.10"},
		{Name: "hpe", ManufacturerID: 47196, ProductID: 0x2000, Firmware: "2.72"},
		{Name: "lenovo", ManufacturerID: 19046, ProductID: 0x700, Firmware: "3.10"},
	}
	e := apitest.Start(t, apitest.Options{Subnet: 94, Fleet: sim.Config{Count: 12, Seed: 2, Vendors: vendors},
		Configure: func(c *server.Config) {
			// Room for retransmitted handshake messages (≥ 1 s apart), so
			// a lossy BMC answers late rather than stalling.
			c.Timeout = 3 * time.Second
			c.Events = events.Config{
				Flood: events.FloodConfig{Window: 10 * time.Second, Threshold: 12, Refresh: 2 * time.Second},
				Tick:  200 * time.Millisecond,
				Webhooks: []events.WebhookConfig{{URL: "http://" + ln.Addr().String() + "/hook", Secret: secret,
					MinSeverity: store.SeverityWarning, Backoff: 50 * time.Millisecond}},
			}
		}})

	// The largest firmware group fails; the others stay healthy.
	groups := map[string][]string{}
	for _, b := range e.Fleet.BMCs() {
		groups[b.Vendor().Firmware] = append(groups[b.Vendor().Firmware], b.Name())
	}
	var fw string
	for f, g := range groups {
		if len(g) > len(groups[fw]) || (len(g) == len(groups[fw]) && f < fw) {
			fw = f
		}
	}
	sick := groups[fw]
	sort.Strings(sick)
	if len(sick) < 3 || len(sick)*2 > 12 {
		t.Fatalf("seed gives a firmware group of %d; want 3 to 6: %v", len(sick), groups)
	}
	t.Logf("failing firmware %s: %v", fw, sick)

	viewer := e.Client(t, store.RoleViewer)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// Follow the live stream from the start.
	var smu sync.Mutex
	var streamed []store.Event
	sctx, scancel := context.WithCancel(ctx)
	streamDone := make(chan error, 1)
	go func() {
		streamDone <- viewer.FollowEvents(sctx, client.EventQuery{Severity: store.SeverityWarning}, func(ev store.Event) error {
			smu.Lock()
			streamed = append(streamed, ev)
			smu.Unlock()
			return nil
		}, nil)
	}()

	begin := time.Now()
	e.ImportFleet(t)
	for _, name := range sick {
		if err := e.Fleet.SetFaults(name, sim.Faults{TimeoutRate: 0.3}); err != nil {
			t.Fatal(err)
		}
	}

	// Every sick BMC floods; one fleet finding names the firmware and them.
	var finding events.Finding
	var floodEvents []store.Event
	var flooded []string
	if !poll.Wait(30*time.Second, func() bool {
		floodEvents, err = viewer.ListEvents(ctx, client.EventQuery{Code: events.OOBTimeoutFlood, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		fleet, err := viewer.ListEvents(ctx, client.EventQuery{Code: events.FleetCorrelated, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		flooded = nil
		for _, ev := range floodEvents {
			flooded = append(flooded, ev.Source)
		}
		slices.Sort(flooded)
		flooded = slices.Compact(flooded)
		finding = events.Finding{}
		for _, ev := range fleet {
			var f events.Finding
			if err := json.Unmarshal(ev.Data, &f); err != nil {
				t.Fatal(err)
			}
			if f.Code == events.OOBTimeoutFlood && len(f.Members) > len(finding.Members) {
				finding = f
			}
		}
		return slices.Equal(flooded, sick) && slices.Equal(finding.Members, sick)
	}) {
		t.Fatalf("after 30 s: floods on %v, finding %+v; want both on %v", flooded, finding, sick)
	}
	t.Logf("floods and finding after %v", time.Since(begin))
	if finding.Factor != events.FactorFirmware || !strings.HasSuffix(finding.Value, " "+fw) || finding.GroupSize != len(sick) {
		t.Fatalf("finding %+v: want firmware … %s over %d", finding, fw, len(sick))
	}
	for _, fv := range finding.Factors {
		if fv.Factor == events.FactorSubnet {
			t.Errorf("the subnet (the whole fleet) is not a common factor of %d of 12: %+v", len(sick), finding)
		}
	}

	// The flood goes on: its repeats are counted on the same event.
	poll.Until(t, 20*time.Second, "a flood event counted up", func() bool {
		evs, err := viewer.ListEvents(ctx, client.EventQuery{Code: events.OOBTimeoutFlood, Source: sick[0]})
		return err == nil && len(evs) == 1 && evs[0].Count > 1
	})

	t.Logf("counted up after %v", time.Since(begin))
	// Filters: source, code family, least severity.
	evs, err := viewer.ListEvents(ctx, client.EventQuery{Source: sick[0], Code: "oob.*", Severity: store.SeverityWarning})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if ev.Source != sick[0] || !strings.HasPrefix(ev.Code, "oob.") || !ev.Severity.AtLeast(store.SeverityWarning) {
			t.Errorf("filtered listing holds %+v", ev)
		}
	}
	if _, err := viewer.ListEvents(ctx, client.EventQuery{Severity: "fatal"}); err == nil || !strings.Contains(err.Error(), "severity") {
		t.Errorf("bad severity: %v", err)
	}

	// The webhook got the floods and the finding, all signed.
	poll.Until(t, 20*time.Second, "webhook deliveries", func() bool {
		c := sink.codes()
		return len(c[events.OOBTimeoutFlood]) >= len(sick) && len(c[events.FleetCorrelated]) >= 1
	})
	sink.mu.Lock()
	if sink.bad != 0 {
		t.Errorf("%d webhook deliveries with a bad signature", sink.bad)
	}
	for _, ev := range sink.got {
		if !ev.Severity.AtLeast(store.SeverityWarning) {
			t.Errorf("webhook got %s below its least severity", ev.Code)
		}
	}
	sink.mu.Unlock()

	t.Logf("webhooks after %v", time.Since(begin))
	// The stream carried them live.
	poll.Until(t, 20*time.Second, "streamed events", func() bool {
		smu.Lock()
		defer smu.Unlock()
		var f, c bool
		for _, ev := range streamed {
			f = f || ev.Code == events.OOBTimeoutFlood
			c = c || ev.Code == events.FleetCorrelated
		}
		return f && c
	})
	scancel()
	if err := <-streamDone; err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("stream: %v", err)
	}

	// No healthy BMC flooded.
	for _, ev := range floodEvents {
		if !slices.Contains(sick, ev.Source) {
			t.Errorf("healthy %s flooded: %s", ev.Source, ev.Message)
		}
	}
}
