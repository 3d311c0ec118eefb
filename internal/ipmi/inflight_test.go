package ipmi_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/audit"
	"github.com/lightsout/lightsout/internal/ipmi"
	"github.com/lightsout/lightsout/internal/ipmi/ipmitest"
	"github.com/lightsout/lightsout/internal/power"
	"github.com/lightsout/lightsout/internal/probe"
	"github.com/lightsout/lightsout/internal/state"
)

// One request of ours in flight per BMC, whoever asks and whatever
// happens on the wire: each race below runs against go-ipmi's reference
// BMC behind an ipmitest.Recorder, which counts the requests the BMC holds
// at once and fails the test when it ever held two.

var creds = ipmi.Credentials{User: ipmitest.User, Password: []byte(ipmitest.Password), Privilege: ipmi.PrivilegeAdministrator}

func recorded(t *testing.T) (*ipmi.Engine, *ipmitest.Recorder) {
	t.Helper()
	eng, rec, _ := recordedBMC(t)
	return eng, rec
}

func recordedBMC(t *testing.T) (*ipmi.Engine, *ipmitest.Recorder, *ipmitest.BMC) {
	t.Helper()
	b := ipmitest.Start(t, ipmitest.Options{})
	rec := ipmitest.StartRecorder(t, b.Addr)
	eng, err := ipmi.New(ipmi.Config{Sockets: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	return eng, rec, b
}

// atMostOne fails the test unless the BMC never held two of our requests.
func atMostOne(t *testing.T, rec *ipmitest.Recorder) {
	t.Helper()
	if c := rec.Counts(); c.MaxInFlight != 1 || len(c.Over) > 0 {
		t.Errorf("the BMC held %d of our requests at once: %v", c.MaxInFlight, c.Over)
	}
}

// open opens a session through the recorder with a generous deadline.
func open(t *testing.T, eng *ipmi.Engine, rec *ipmitest.Recorder) *ipmi.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := eng.Open(ctx, rec.Addr(), creds)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return s
}

// A caller gives up (cancels) while the BMC still works on its request: the
// next request — here the session's Close, which runs at once — waits for
// the BMC's late answer instead of joining it. (The answer comes within the
// request's retransmission timeout: the wait after which the engine would
// have sent the request again anyway.)
func TestInFlightReplyAfterGiveUp(t *testing.T) {
	eng, rec := recorded(t)
	// A BMC that takes 150ms over the handshake: the engine learns a
	// round trip that long, and a retransmission timeout about twice it.
	rec.SetFault(func(n int, _ []byte) ipmitest.Fault {
		if n <= 3 {
			return ipmitest.Fault{Slow: 150 * time.Millisecond}
		}
		return ipmitest.Fault{}
	})
	s := open(t, eng, rec)
	n0 := rec.Counts().Requests
	rec.SetFault(func(n int, _ []byte) ipmitest.Fault {
		if n == n0+1 {
			return ipmitest.Fault{Slow: 100 * time.Millisecond}
		}
		return ipmitest.Fault{}
	})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := s.GetSystemGUID(ctx)
		errc <- err
	}()
	rec.Await(t, 5*time.Second, "the request at the BMC", func(c ipmitest.Counts) bool { return c.Requests == n0+1 && c.InFlight == 1 })
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled request: %v, want context.Canceled", err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatalf("close after the give-up: %v", err)
	}
	c := rec.Await(t, 5*time.Second, "every request answered", func(c ipmitest.Counts) bool { return c.InFlight == 0 })
	if c.Requests != n0+2 {
		t.Errorf("%d requests after the session opened, want the cancelled one and Close", c.Requests-n0)
	}
	atMostOne(t, rec)
	if st := eng.Stats(); st.CloseFailed != 0 || st.SessionsOpen != 0 {
		t.Errorf("close failed %d, sessions open %d", st.CloseFailed, st.SessionsOpen)
	}
}

// The same during the handshake: a login cancelled while the BMC works on
// RAKP 1 sends its abort only after the BMC's RAKP 2.
func TestInFlightGiveUpDuringHandshake(t *testing.T) {
	eng, rec := recorded(t)
	rec.SetFault(func(_ int, req []byte) ipmitest.Fault {
		if pt, ok := ipmitest.RMCPPlusType(req); ok && pt == ipmitest.RAKP1 {
			return ipmitest.Fault{Slow: 400 * time.Millisecond}
		}
		return ipmitest.Fault{}
	})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		s, err := eng.Open(ctx, rec.Addr(), creds)
		if err == nil {
			s.Close(context.Background())
		}
		errc <- err
	}()
	rec.Await(t, 5*time.Second, "RAKP 1 at the BMC", func(c ipmitest.Counts) bool { return c.Requests == 2 && c.InFlight == 1 })
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled login: %v, want context.Canceled", err)
	}
	rec.Await(t, 5*time.Second, "the abort answered", func(c ipmitest.Counts) bool { return c.Requests == 3 && c.InFlight == 0 })
	atMostOne(t, rec)
}

// RAKP 3 answered after the login gave up (out of time): the BMC opened the
// session all the same. The login aborts it once the BMC's answer is in
// (550ms after the give-up: longer than the abort's own 500ms wait for its
// answer), so no session of ours is left for the next login to double.
func TestInFlightRAKP3AnsweredLate(t *testing.T) {
	eng, rec, b := recordedBMC(t)
	rec.SetFault(func(n int, req []byte) ipmitest.Fault {
		if pt, ok := ipmitest.RMCPPlusType(req); ok && pt == ipmitest.RAKP3 && n == 3 {
			return ipmitest.Fault{Slow: 850 * time.Millisecond}
		}
		return ipmitest.Fault{}
	})
	ctx := ipmi.WithRequestTimeout(context.Background(), 300*time.Millisecond)
	if _, err := eng.Open(ctx, rec.Addr(), creds); !errors.Is(err, ipmi.ErrNoResponse) {
		t.Fatalf("login: %v, want no response", err)
	}
	c := rec.Await(t, 5*time.Second, "the abort answered", func(c ipmitest.Counts) bool { return c.Requests >= 4 && c.InFlight == 0 })
	if c.Requests != 4 {
		t.Errorf("%d requests, want Open Session, RAKP 1, RAKP 3 and the abort", c.Requests)
	}
	atMostOne(t, rec)
	if n := b.Sessions.Count(); n != 0 {
		t.Errorf("the BMC holds %d sessions of ours after the failed login", n)
	}
}

// The network delivers an answer twice: the copy reaches the next request's
// exchange, which ignores it; every answer is still the right one.
func TestInFlightDuplicateReplies(t *testing.T) {
	eng, rec := recorded(t)
	rec.SetFault(func(int, []byte) ipmitest.Fault { return ipmitest.Fault{Duplicate: true} })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s := open(t, eng, rec)
	id, err := s.GetDeviceID(ctx)
	if err != nil || id.ManufacturerID != 343 {
		t.Fatalf("device ID %+v, %v", id, err)
	}
	g, err := s.GetSystemGUID(ctx)
	if err != nil || g != ipmitest.GUID {
		t.Fatalf("GUID %x, %v", g, err)
	}
	if _, err := s.ChassisStatus(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	rec.Await(t, 5*time.Second, "every request answered", func(c ipmitest.Counts) bool { return c.InFlight == 0 })
	atMostOne(t, rec)
	// Each duplicate reached the engine before the next answer did (one
	// socket, in order): all but the last.
	if st := eng.Stats(); st.Received < 2*st.Sent-1 || st.Retransmits != 0 {
		t.Errorf("sent %d, received %d (want the duplicates), retransmits %d", st.Sent, st.Received, st.Retransmits)
	}
}

// A retransmission crosses the first copy's answer: the answer, late on
// the wire (and duplicated), arrives while the BMC works on the second
// copy. The exchange returns at once, but the next request waits until the
// BMC answered the second copy too — a duplicate of the first answer does
// not count as that.
func TestInFlightRetransmissionCrossesReply(t *testing.T) {
	eng, rec := recorded(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s := open(t, eng, rec)
	// Teach the engine the BMC's round trip (its RTO is then the 200ms
	// floor, below the 300ms delay on the way back).
	for i := 0; i < 3; i++ {
		if _, err := s.ChassisStatus(ctx); err != nil {
			t.Fatal(err)
		}
	}
	n0 := rec.Counts().Requests
	rec.SetFault(func(n int, _ []byte) ipmitest.Fault {
		switch n {
		case n0 + 1: // answered at once, late and twice on the way back
			return ipmitest.Fault{Delay: 300 * time.Millisecond, Duplicate: true}
		case n0 + 2: // the retransmitted copy: the BMC takes its time
			return ipmitest.Fault{Slow: 300 * time.Millisecond}
		}
		return ipmitest.Fault{}
	})
	g, err := s.GetSystemGUID(ctx)
	if err != nil || g != ipmitest.GUID {
		t.Fatalf("GUID %x, %v", g, err)
	}
	if st := eng.Stats(); st.Retransmits != 1 {
		t.Fatalf("%d retransmissions, want 1 (the race did not happen)", st.Retransmits)
	}
	if _, err := s.ChassisStatus(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	rec.Await(t, 5*time.Second, "every request answered", func(c ipmitest.Counts) bool { return c.InFlight == 0 })
	atMostOne(t, rec)
}

// target is the recorder's BMC as the probe and the audit see it.
func target(rec *ipmitest.Recorder) probe.Target {
	return probe.Target{Name: "bmc", Protocol: "ipmi", Addr: rec.Addr(), User: ipmitest.User,
		Password: []byte(ipmitest.Password), Timeout: 3 * time.Second}
}

// slowly makes the BMC take a moment over every request, so concurrent
// callers overlap at the engine.
func slowly(int, []byte) ipmitest.Fault { return ipmitest.Fault{Slow: 2 * time.Millisecond} }

// A security audit and a check of the same BMC at once (the auditor and
// the monitor share the engine): both finish, one request at a time.
func TestInFlightAuditAndCheck(t *testing.T) {
	eng, rec := recorded(t)
	rec.SetFault(slowly)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var rep audit.Report
	var obs []probe.Observation
	wg.Add(2)
	go func() { defer wg.Done(); rep = audit.Run(ctx, eng, target(rec)) }()
	go func() {
		defer wg.Done()
		pr := probe.IPMI(eng)
		for i := 0; i < 3; i++ {
			obs = append(obs, pr(ctx, target(rec)))
		}
	}()
	wg.Wait()
	if !rep.Complete {
		t.Errorf("audit incomplete: %s", rep.Error)
	}
	for _, o := range obs {
		if o.State != state.Connectable {
			t.Errorf("check: %s/%s %s", o.State, o.Reason, o.Message)
		}
	}
	rec.Await(t, 5*time.Second, "every request answered", func(c ipmitest.Counts) bool { return c.InFlight == 0 })
	atMostOne(t, rec)
	if st := eng.Stats(); st.SessionsOpen != 0 {
		t.Errorf("%d sessions left open", st.SessionsOpen)
	}
}

// A power operation during a check: the operation's session waits for the
// check's, and every request for the one before it.
func TestInFlightPowerDuringCheck(t *testing.T) {
	eng, rec := recorded(t)
	rec.SetFault(slowly)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pw := power.IPMI{Engine: eng, Addr: rec.Addr(), Creds: creds}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	var obs []probe.Observation
	wg.Add(2)
	go func() {
		defer wg.Done()
		for _, a := range []power.Action{power.On, power.Cycle} {
			if err := pw.SetPower(ctx, a); err != nil {
				errs <- err
			}
			if _, err := pw.PowerState(ctx); err != nil {
				errs <- err
			}
		}
	}()
	go func() {
		defer wg.Done()
		pr := probe.IPMI(eng)
		for i := 0; i < 3; i++ {
			obs = append(obs, pr(ctx, target(rec)))
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("power: %v", err)
	}
	for _, o := range obs {
		if o.State != state.Connectable {
			t.Errorf("check: %s/%s %s", o.State, o.Reason, o.Message)
		}
	}
	rec.Await(t, 5*time.Second, "every request answered", func(c ipmitest.Counts) bool { return c.InFlight == 0 })
	atMostOne(t, rec)
}
