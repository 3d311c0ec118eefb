package ipmi

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/ipmi/ipmitest"
	"github.com/lightsout/lightsout/internal/peertest"
)

// A single forged, unauthenticated handshake reply that beats the BMC's
// own does not decide the login: the verified reply wins, and the
// conflict is reported with the stage.
func TestForgedHandshakeRepliesLose(t *testing.T) {
	tb := ipmitest.Start(t, ipmitest.Options{})
	cases := []struct {
		name   string
		forge  func([]byte, uint32) []byte
		tamper func([]byte) []byte
		stage  Stage
	}{
		{"open session status 0x01 (Busy)", ipmitest.ForgeOn(ipmitest.OpenSessReq, ipmitest.OpenSessResp, 0x01), nil, StageOpenSession},
		{"RAKP 2 status 0x0D (unknown user)", ipmitest.ForgeOn(ipmitest.RAKP1, ipmitest.RAKP2, 0x0d), nil, StageRAKP1},
		{"RAKP 2 status 0x09 (locked)", ipmitest.ForgeOn(ipmitest.RAKP1, ipmitest.RAKP2, 0x09), nil, StageRAKP1},
		// RAKP 2: tag, status, 2 reserved, console ID (4), random (16),
		// GUID (16), key-exchange code: flip a GUID bit, then a code bit.
		{"RAKP 2 GUID bit flipped", nil, ipmitest.FlipIn(ipmitest.RAKP2, 8+16+3), StageRAKP1},
		{"RAKP 2 code bit flipped", nil, ipmitest.FlipIn(ipmitest.RAKP2, 8+16+16+2), StageRAKP1},
		{"RAKP 4 status 0x0F", ipmitest.ForgeOn(ipmitest.RAKP3, ipmitest.RAKP4, 0x0f), nil, StageRAKP3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := ipmitest.StartForger(t, tb.Addr)
			f.Arm(c.forge, c.tamper, true)
			e := newEngine(t, Config{})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			s, err := e.Open(ctx, f.Addr(), creds(testPass, 3))
			if err != nil {
				t.Fatalf("forged reply decided the login: %v", err)
			}
			defer s.Close(ctx)
			if f.Forged() != 1 {
				t.Fatalf("the forger sent %d replies, want 1", f.Forged())
			}
			if len(s.Conflicts) != 1 || s.Conflicts[0].Stage != c.stage || s.Conflicts[0].From != f.Addr() || s.Conflicts[0].Refusal == "" {
				t.Errorf("conflicts %+v, want one at %s from %v", s.Conflicts, c.stage, f.Addr())
			}
			// One login: no request was sent twice because of the forgery.
			if n := f.Count(ipmitest.RAKP1); n != 1 {
				t.Errorf("%d RAKP 1 sent, want 1", n)
			}
		})
	}
}

// A genuinely wrong password still costs the BMC exactly one attempt and
// no password proof, though the verdict now waits out the reply window.
func TestWrongPasswordStillOneAttempt(t *testing.T) {
	tb := ipmitest.Start(t, ipmitest.Options{})
	f := ipmitest.StartForger(t, tb.Addr)
	e := newEngine(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := e.Open(ctx, f.Addr(), creds("not-the-password", 3))
	if !errors.Is(err, ErrWrongPassword) {
		t.Fatalf("wrong password: %v", err)
	}
	if n := f.Count(ipmitest.RAKP1); n != 1 {
		t.Errorf("%d RAKP 1 sent, want 1", n)
	}
	// The only RAKP 3 is the abort (status 0x0F, no key-exchange code).
	if n := f.Count(ipmitest.RAKP3); n != 1 {
		t.Errorf("%d RAKP 3 sent, want the one abort", n)
	}
}

// The same race in front of a BMC nobody here wrote (OpenIPMI ipmi_sim):
// a forged "unknown user" RAKP 2 that beats ipmi_sim's own answer loses.
func TestForgedRefusalOpenIPMISim(t *testing.T) {
	sim, _ := startEnclosureSim(t, 0)
	f := ipmitest.StartForger(t, sim.Addr)
	f.Arm(ipmitest.ForgeOn(ipmitest.RAKP1, ipmitest.RAKP2, 0x0d), nil, true)
	e := newEngine(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := e.Open(ctx, f.Addr(), Credentials{User: "admin", Password: []byte(peertest.EnclosureSimPassword)})
	if err != nil {
		t.Fatalf("a forged refusal decided the login to ipmi_sim: %v", err)
	}
	defer s.Close(ctx)
	if f.Forged() != 1 || len(s.Conflicts) != 1 || s.Conflicts[0].Stage != StageRAKP1 {
		t.Errorf("forged %d, conflicts %+v", f.Forged(), s.Conflicts)
	}
}
