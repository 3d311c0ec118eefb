package web_test

import (
	"context"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/ipmi"
	"github.com/lightsout/lightsout/internal/poll"
	"github.com/lightsout/lightsout/internal/sim"
	"github.com/lightsout/lightsout/internal/store"
)

// TestMachinePageCensus: the machine page shows the session census a
// diagnosis read. Another console (an engine bound to 127.0.0.2) holds
// every session slot of a simulated BMC over real UDP; the Diagnose form's
// result page lists each of its sessions with user and address as
// another console's, and the diagnosis's own session as ours.
func TestMachinePageCensus(t *testing.T) {
	e := start(t, 0)
	op := login(t, e, store.RoleOperator)
	b, _ := e.Fleet.BMC("bmc-00002")
	ctx := context.Background()
	eng, err := ipmi.New(ipmi.Config{Sockets: 1, Source: netip.MustParseAddr("127.0.0.2")})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	// Every slot held (one engine keeps one session per BMC: one engine
	// each).
	var held []*ipmi.Session
	for i := 0; i < 4; i++ {
		en := eng
		if i > 0 {
			if en, err = ipmi.New(ipmi.Config{Sockets: 1, Source: netip.MustParseAddr("127.0.0.2")}); err != nil {
				t.Fatal(err)
			}
			defer en.Close()
		}
		s, err := en.Open(ctx, b.Addr(), ipmi.Credentials{User: sim.AdminUser, Password: []byte(e.Fleet.Password())})
		if err != nil {
			t.Fatalf("holding session %d: %v", i, err)
		}
		held = append(held, s)
	}
	refused := b.Counters().SessionsRefused
	type page struct {
		code int
		body string
	}
	done := make(chan page, 1)
	go func() {
		code, body, _ := op.do("POST", "/machines/bmc-00002/diagnose", url.Values{"csrf": {op.csrf}})
		done <- page{code, body}
	}()
	// Once the diagnosis was refused a slot for each allowed suite (17,
	// then 3: a 0x01 for one suite may mean "not this suite", LAN Auth
	// #28), one frees up. Freed after the first refusal, suite 3 would
	// open and the diagnosis would read "healthy" with no census.
	poll.Until(t, 20*time.Second, "the diagnosis refused a session slot for both suites", func() bool { return b.Counters().SessionsRefused >= refused+2 })
	held[0].Close(ctx)
	var p page
	select {
	case p = <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("the diagnosis did not end")
	}
	if p.code != http.StatusOK || !strings.Contains(p.body, "<h4>Session census</h4>") {
		t.Fatalf("diagnose: %d %s", p.code, p.body)
	}
	census := p.body[strings.Index(p.body, "<h4>Session census</h4>"):]
	census = census[:strings.Index(census, "</table>")]
	if n := strings.Count(census, "<td>127.0.0.2:"); n != 3 || strings.Count(census, "another console") != 3 || !strings.Contains(census, "this diagnosis") ||
		!strings.Contains(census, "<td>"+sim.AdminUser+"</td>") {
		t.Fatalf("census (%d from 127.0.0.2):\n%s", n, census)
	}
}
