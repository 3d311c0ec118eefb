package sim

import (
	"context"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/ipmi"
)

// Idle sessions expire as on a BMC (go-ipmi's 60 s of inactivity), swept by
// the fleet's one sweeper instead of a ticker per BMC: a session a console
// left open is gone once the clock passed its timeout, one still used is
// kept.
func TestFleetSweepsIdleSessions(t *testing.T) {
	f := newTestFleet(t, Config{Count: 2, Seed: 5}, false)
	eng, err := ipmi.New(ipmi.Config{Sockets: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cr := ipmi.Credentials{User: AdminUser, Password: []byte(f.Password())}
	left, err := eng.Open(ctx, f.BMCs()[0].Addr(), cr) // left open
	if err != nil {
		t.Fatal(err)
	}
	_ = left
	kept, err := eng.Open(ctx, f.BMCs()[1].Addr(), cr)
	if err != nil {
		t.Fatal(err)
	}
	defer kept.Close(ctx)

	f.evictSessions()
	if n := f.BMCs()[0].Counters().SessionsOpen; n != 1 {
		t.Fatalf("a fresh session was evicted (%d open)", n)
	}
	f.skew.Store(int64(50 * time.Second))
	if _, err := kept.ChassisStatus(ctx); err != nil { // activity at +50 s
		t.Fatal(err)
	}
	f.skew.Store(int64(64 * time.Second))
	f.evictSessions()
	if c := f.BMCs()[0].Counters(); c.SessionsOpen != 0 || c.SessionsClosed != 1 {
		t.Errorf("the idle session: %d open, %d closed; want it evicted", c.SessionsOpen, c.SessionsClosed)
	}
	if c := f.BMCs()[1].Counters(); c.SessionsOpen != 1 {
		t.Errorf("the session in use: %d open, want it kept", c.SessionsOpen)
	}
}
