package probe

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/guid"
	"github.com/lightsout/lightsout/internal/peertest"
	"github.com/lightsout/lightsout/internal/redfish"
	"github.com/lightsout/lightsout/internal/state"
)

// These tests check the Redfish prober against services nobody here wrote:
// OpenStack's sushy-tools emulator (HTTP Basic only, no SessionService) and
// DMTF's Redfish-Mockup-Server (public-rackmount1, sessions answered 204).

func peerTarget(t *testing.T, p *peertest.RedfishPeer, user, pw, uuid string) Target {
	t.Helper()
	g, err := guid.Parse(uuid)
	if err != nil {
		t.Fatal(err)
	}
	return Target{Name: p.Kind, Protocol: "redfish", Addr: p.Addr, User: user, Password: []byte(pw),
		Expected: g, Timeout: 5 * time.Second}
}

func wantObs(t *testing.T, o Observation, st state.OOB, r state.Reason, msg ...string) {
	t.Helper()
	if o.State != st || o.Reason != r {
		t.Fatalf("state %s/%s, want %s/%s: %s (evidence %+v)", o.State, o.Reason, st, r, o.Message, o.Evidence.Redfish)
	}
	for _, m := range msg {
		if !strings.Contains(o.Message, m) {
			t.Fatalf("message %q lacks %q", o.Message, m)
		}
	}
}

const otherUUID = "0b8c5a2e-4f4d-4a53-9d8e-2c1f6a7b9e10"

func TestRedfishPeerSushy(t *testing.T) {
	p := peertest.StartSushy(t, peertest.SushyOptions{User: "admin", Password: "sushy-pw-1"})
	tr := NewRedfishTransport()
	defer tr.CloseIdleConnections()
	pr := NewRedfishProber(tr, &MemPins{})
	pr.KeepSessions = true
	ctx := context.Background()
	uuid := p.UUIDs[0]

	t.Run("connectable_basic", func(t *testing.T) {
		o := pr.Check(ctx, peerTarget(t, p, "admin", "sushy-pw-1", uuid))
		wantObs(t, o, state.Connectable, state.ReasonOK, "HTTP Basic")
		ev := o.Evidence.Redfish
		if ev.Auth != "basic" || !strings.Contains(ev.AuthWhy, "no SessionService") || ev.UUID != uuid || ev.CertSHA256 == "" || ev.TLSGroup != "CurveP256" {
			t.Fatalf("evidence %+v", ev)
		}
		// One round of requests: the root once, Systems, the System.
		if len(ev.Statuses) != 3 || !strings.HasPrefix(ev.Statuses[0], "GET /redfish/v1/ 200") {
			t.Fatalf("requests %v", ev.Statuses)
		}
		if pr.Learned(p.Kind) != redfish.AuthBasic {
			t.Fatalf("learned %q", pr.Learned(p.Kind))
		}
		o = pr.Check(ctx, peerTarget(t, p, "admin", "sushy-pw-1", uuid))
		wantObs(t, o, state.Connectable, state.ReasonOK)
		if o.Evidence.Redfish.AuthWhy != "learned from an earlier check" {
			t.Fatalf("second check: %+v", o.Evidence.Redfish)
		}
	})
	t.Run("wrong_password", func(t *testing.T) {
		o := pr.Check(ctx, peerTarget(t, p, "admin", "not-the-password", uuid))
		wantObs(t, o, state.NotAuthenticated, state.ReasonAuthRejected, "HTTP 401", "Incorrect username or password")
		if o.Evidence.Redfish.HTTPStatus != 401 || o.Evidence.Redfish.FailedURL == "" {
			t.Fatalf("evidence %+v", o.Evidence.Redfish)
		}
	})
	t.Run("unknown_user", func(t *testing.T) {
		o := pr.Check(ctx, peerTarget(t, p, "nobody", "sushy-pw-1", uuid))
		wantObs(t, o, state.NotAuthenticated, state.ReasonAuthRejected)
	})
	t.Run("wrong_uuid", func(t *testing.T) {
		o := pr.Check(ctx, peerTarget(t, p, "admin", "sushy-pw-1", otherUUID))
		wantObs(t, o, state.Invalid, state.ReasonGUIDMismatch, uuid)
	})
	t.Run("forced_session", func(t *testing.T) {
		tg := peerTarget(t, p, "admin", "sushy-pw-1", uuid)
		tg.RedfishAuth = redfish.AuthSession
		o := pr.Check(ctx, tg)
		wantObs(t, o, state.NotResponding, state.ReasonProtocol, "offers none")
		tg.RedfishAuth = redfish.AuthBasic
		wantObs(t, pr.Check(ctx, tg), state.Connectable, state.ReasonOK)
	})
	t.Run("stopped", func(t *testing.T) {
		p.Stop()
		o := pr.Check(ctx, peerTarget(t, p, "admin", "sushy-pw-1", uuid))
		wantObs(t, o, state.NotResponding, state.ReasonPortRefused)
	})
	if n := pr.Sessions(); n != 0 {
		t.Fatalf("%d sessions kept with a Basic-only service", n)
	}
}

func TestRedfishPeerMockup(t *testing.T) {
	p := peertest.StartMockup(t)
	tr := NewRedfishTransport()
	defer tr.CloseIdleConnections()
	pins := &MemPins{}
	pr := NewRedfishProber(tr, pins)
	pr.KeepSessions = true
	ctx := context.Background()
	uuid := p.UUIDs[0]

	t.Run("connectable_session", func(t *testing.T) {
		o := pr.Check(ctx, peerTarget(t, p, "admin", "any", uuid))
		wantObs(t, o, state.Connectable, state.ReasonOK, "Redfish session")
		ev := o.Evidence.Redfish
		if ev.Auth != "session" || ev.SessionReused || ev.UUID != uuid || o.Evidence.Power == "" || ev.TLSGroup != "CurveP256" {
			t.Fatalf("evidence %+v", ev)
		}
		if pr.Sessions() != 1 {
			t.Fatalf("%d sessions kept, want 1", pr.Sessions())
		}
		o = pr.Check(ctx, peerTarget(t, p, "admin", "any", uuid))
		wantObs(t, o, state.Connectable, state.ReasonOK)
		ev = o.Evidence.Redfish
		if !ev.SessionReused || len(ev.Statuses) != 3 {
			t.Fatalf("second check did not reuse the session: %+v", ev)
		}
	})
	t.Run("account_changed", func(t *testing.T) {
		o := pr.Check(ctx, peerTarget(t, p, "operator", "other", uuid))
		wantObs(t, o, state.Connectable, state.ReasonOK)
		if o.Evidence.Redfish.SessionReused || pr.Sessions() != 1 {
			t.Fatalf("a changed account reused the old session: %+v, %d sessions", o.Evidence.Redfish, pr.Sessions())
		}
	})
	t.Run("forced_basic", func(t *testing.T) {
		tg := peerTarget(t, p, "admin", "any", uuid)
		tg.RedfishAuth = redfish.AuthBasic
		o := pr.Check(ctx, tg)
		wantObs(t, o, state.Connectable, state.ReasonOK, "HTTP Basic")
	})
	t.Run("wrong_uuid", func(t *testing.T) {
		wantObs(t, pr.Check(ctx, peerTarget(t, p, "admin", "any", otherUUID)), state.Invalid, state.ReasonGUIDMismatch)
	})
	t.Run("close_logs_out", func(t *testing.T) {
		wantObs(t, pr.Check(ctx, peerTarget(t, p, "admin", "any", uuid)), state.Connectable, state.ReasonOK)
		if pr.Sessions() != 1 {
			t.Fatalf("%d sessions", pr.Sessions())
		}
		if err := pr.Close(ctx); err != nil {
			t.Fatalf("close: %v", err)
		}
		if pr.Sessions() != 0 {
			t.Fatalf("%d sessions after Close", pr.Sessions())
		}
	})
	t.Run("cert_replaced", func(t *testing.T) {
		before := p.Cert
		p.Restart()
		if p.Cert == before {
			t.Log("same certificate path; fingerprints decide")
		}
		o := pr.Check(ctx, peerTarget(t, p, "admin", "any", uuid))
		wantObs(t, o, state.Invalid, state.ReasonCertChanged, "no credentials were sent")
		for _, s := range o.Evidence.Redfish.Statuses {
			if !strings.HasPrefix(s, "GET /redfish/v1/ ") {
				t.Fatalf("a request beyond the service root went to a changed certificate: %v", o.Evidence.Redfish.Statuses)
			}
		}
		// Accepting it (here: pinning what it presents) lets checks go on.
		_ = pins.PinCert(ctx, p.Kind, o.Evidence.Redfish.CertSHA256)
		wantObs(t, pr.Check(ctx, peerTarget(t, p, "admin", "any", uuid)), state.Connectable, state.ReasonOK)
	})
	t.Run("stopped", func(t *testing.T) {
		p.Stop()
		wantObs(t, pr.Check(ctx, peerTarget(t, p, "admin", "any", uuid)), state.NotResponding, state.ReasonPortRefused)
	})
}
