package probe

import (
	"bytes"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/peertest"
	"github.com/lightsout/lightsout/internal/redfish"
	"github.com/lightsout/lightsout/internal/secret"
	"github.com/lightsout/lightsout/internal/state"
)

// oneShotRun is one `lightsout check` run as checkrun makes it: a new
// transport, new in-memory pins, the memo carried over from the last run.
func oneShotRun(t *testing.T, memo *RedfishMemo, tg Target) Observation {
	t.Helper()
	tr := NewOneShotRedfishTransport()
	defer tr.CloseIdleConnections()
	return RedfishOneShot(tr, &MemPins{}, memo)(context.Background(), tg)
}

func wantStatuses(t *testing.T, o Observation, want ...string) {
	t.Helper()
	got := o.Evidence.Redfish.Statuses
	if len(got) != len(want) {
		t.Fatalf("requests %q, want %d like %q (evidence %+v)", got, len(want), want, o.Evidence.Redfish)
	}
	for i, w := range want {
		if !strings.HasPrefix(got[i], w) {
			t.Fatalf("request %d is %q, want %q… (all: %q)", i, got[i], w, got)
		}
	}
}

// TestRedfishMemoPeers: a one-shot check learns a BMC's System, its
// authentication and its TLS session; the next run's check is one request
// over a resumed session, and gives the verdicts the full check gives;
// a System path that no longer holds the System, or another certificate,
// falls back to the full check and learns again — against sushy-tools
// (HTTP Basic only) and the DMTF mockup server (sessions and Basic).
func TestRedfishMemoPeers(t *testing.T) {
	sushy := peertest.StartSushy(t, peertest.SushyOptions{User: "admin", Password: "sushy-pw-1"})
	mock := peertest.StartMockup(t)
	for _, tc := range []struct {
		p  *peertest.RedfishPeer
		pw string
	}{{sushy, "sushy-pw-1"}, {mock, "any"}} {
		p := tc.p
		t.Run(p.Kind, func(t *testing.T) {
			memo := NewRedfishMemo()
			uuid := p.UUIDs[0]
			key := p.Addr.String()
			good := peerTarget(t, p, "admin", tc.pw, uuid)

			// Run 1: the full check, learned.
			o := oneShotRun(t, memo, good)
			wantObs(t, o, state.Connectable, state.ReasonOK, "HTTP Basic")
			wantStatuses(t, o, "GET /redfish/v1/ 200", "GET ", "GET ")
			e, ok := memo.Get(key)
			if !ok || e.Auth != redfish.AuthBasic || e.System == "" || e.Cert != o.Evidence.Redfish.CertSHA256 || len(e.Ticket) == 0 || len(e.Session) == 0 {
				t.Fatalf("learned %+v (ok %v)", e, ok)
			}
			system := e.System

			// Run 2: one request, the learned System, a resumed session.
			o = oneShotRun(t, memo, good)
			wantObs(t, o, state.Connectable, state.ReasonOK, "HTTP Basic")
			wantStatuses(t, o, "GET "+system+" 200")
			ev := o.Evidence.Redfish
			if ev.LearnedSystem != system || !ev.TLSResumed || ev.UUID != uuid || !strings.Contains(ev.AuthWhy, "earlier run") {
				t.Fatalf("second run: %+v", ev)
			}

			// The learned path gives the full check's verdicts.
			o = oneShotRun(t, memo, peerTarget(t, p, "admin", tc.pw, otherUUID))
			wantObs(t, o, state.Invalid, state.ReasonGUIDMismatch, uuid)
			wantStatuses(t, o, "GET "+system+" 200")
			if p == sushy {
				o = oneShotRun(t, memo, peerTarget(t, p, "admin", "not-the-password", uuid))
				wantObs(t, o, state.NotAuthenticated, state.ReasonAuthRejected, "HTTP 401")
				if e, _ := memo.Get(key); e.Auth != "" {
					t.Fatalf("a refused password kept the learned authentication: %+v", e)
				}
				// Learned again by the next (full) check.
				o = oneShotRun(t, memo, good)
				wantObs(t, o, state.Connectable, state.ReasonOK)
				wantStatuses(t, o, "GET /redfish/v1/ 200", "GET ", "GET ")
			}

			// The System moved (404), or the path holds something else
			// with a UUID (the service root): the full check, learned again.
			for _, moved := range []string{"/redfish/v1/Systems/gone-" + fmt.Sprint(time.Now().UnixNano()), "/redfish/v1/"} {
				e, _ = memo.Get(key)
				e.System = moved
				memo.Put(key, e)
				o = oneShotRun(t, memo, good)
				wantObs(t, o, state.Connectable, state.ReasonOK)
				wantStatuses(t, o, "GET "+moved+" ", "GET /redfish/v1/ 200", "GET ", "GET ")
				if o.Evidence.Redfish.LearnedFallback == "" || o.Evidence.Redfish.UUID != uuid {
					t.Fatalf("fallback from %s: %+v", moved, o.Evidence.Redfish)
				}
				if e, _ := memo.Get(key); e.System != system {
					t.Fatalf("learned %q after the fallback from %s, want %q", e.System, moved, system)
				}
			}
			wantStatuses(t, oneShotRun(t, memo, good), "GET "+system+" 200")

			// Another certificate: the connection is closed before any
			// request (no credentials to it), the full check follows.
			before := e.Cert
			p.Restart()
			o = oneShotRun(t, memo, good)
			wantObs(t, o, state.Connectable, state.ReasonOK)
			ev = o.Evidence.Redfish
			if ev.CertSHA256 == before {
				t.Skip("the peer restarted with the same certificate")
			}
			wantStatuses(t, o, "GET "+system+" not sent", "GET /redfish/v1/ 200", "GET ", "GET ")
			if ev.TLSResumed || !strings.Contains(ev.LearnedFallback, "another certificate") {
				t.Fatalf("after the certificate changed: %+v", ev)
			}
			if e, _ := memo.Get(key); e.Cert != ev.CertSHA256 || e.System != system {
				t.Fatalf("not learned for the new certificate: %+v", e)
			}

			// Stopped: the learned request's refusal is the verdict.
			p.Stop()
			o = oneShotRun(t, memo, good)
			wantObs(t, o, state.NotResponding, state.ReasonPortRefused)
			wantStatuses(t, o)
		})
	}
}

// TestRedfishMemoPinned: a memo entry whose certificate is not the pinned
// one is not used — no resumption, no credentials first.
func TestRedfishMemoPinned(t *testing.T) {
	memo := NewRedfishMemo()
	tg := Target{Name: "x", Addr: netip.MustParseAddrPort("127.0.0.1:1"), Timeout: time.Second}
	memo.Put(tg.Addr.String(), RedfishMemoEntry{Cert: "aa", System: "/redfish/v1/Systems/1", Auth: redfish.AuthBasic})
	pins := &MemPins{}
	_ = pins.PinCert(context.Background(), "x", "bb")
	tr := NewOneShotRedfishTransport()
	defer tr.CloseIdleConnections()
	o := RedfishOneShot(tr, pins, memo)(context.Background(), tg)
	// Port 1 refuses: the full check's first request is the service root.
	if o.Evidence.FailedStage != "service_root" || o.Evidence.Redfish.LearnedSystem != "" {
		t.Fatalf("a memo for another certificate than the pin was used: stage %q, %+v", o.Evidence.FailedStage, o.Evidence.Redfish)
	}
	delete(pins.m, "x")
	o = RedfishOneShot(tr, &MemPins{}, memo)(context.Background(), tg)
	if o.Evidence.FailedStage != "system" || o.Reason != state.ReasonPortRefused {
		t.Fatalf("without a pin the memo's request comes first: stage %q, %s", o.Evidence.FailedStage, o.Reason)
	}
}

// TestRedfishMemoFile: sealed on disk (mode 0600), opened only with its
// key, bounded, and a damaged file is an empty memo with an error.
func TestRedfishMemoFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "memo")
	box, err := secret.NewRandomBox()
	if err != nil {
		t.Fatal(err)
	}
	m := NewRedfishMemo()
	at := time.Now()
	for i := range MaxRedfishMemo + 10 {
		m.Put(fmt.Sprintf("10.0.%d.%d:443", i/256, i%256), RedfishMemoEntry{Cert: "c", System: "/redfish/v1/Systems/1",
			Auth: redfish.AuthBasic, Ticket: []byte("ticket"), Session: []byte("secret-session"), At: at.Add(time.Duration(i) * time.Second)})
	}
	m.Put("big:443", RedfishMemoEntry{Cert: "c", Ticket: make([]byte, maxMemoBlob+1), Session: []byte("s"), At: at.Add(time.Hour)})
	if e, _ := m.Get("big:443"); e.Ticket != nil || e.Session != nil {
		t.Fatal("an oversized TLS session was kept")
	}
	if err := m.Save(path, box); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("memo file %v, %v: want mode 0600", fi, err)
	}
	raw, _ := os.ReadFile(path)
	if strings.Contains(string(raw), "secret-session") || strings.Contains(string(raw), "Systems") {
		t.Fatal("the memo file is not sealed")
	}
	got, err := LoadRedfishMemo(path, box)
	if err != nil {
		t.Fatal(err)
	}
	if got.Len() != MaxRedfishMemo {
		t.Fatalf("%d entries kept, want %d", got.Len(), MaxRedfishMemo)
	}
	if _, ok := got.Get("10.0.0.0:443"); ok {
		t.Fatal("the oldest entry was kept")
	}
	if e, ok := got.Get("big:443"); !ok || e.Cert != "c" {
		t.Fatalf("the newest entry was lost: %+v", e)
	}
	other, _ := secret.NewRandomBox()
	got, err = LoadRedfishMemo(path, other)
	if !errors.Is(err, secret.ErrDecrypt) || got.Len() != 0 {
		t.Fatalf("another key: %v, %d entries", err, got.Len())
	}
	if err := os.WriteFile(path, []byte("not sealed"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err = LoadRedfishMemo(path, box); err == nil || got.Len() != 0 {
		t.Fatalf("a damaged file: %v, %d entries", err, got.Len())
	}
	if got, err = LoadRedfishMemo(filepath.Join(dir, "none"), box); err != nil || got.Len() != 0 {
		t.Fatalf("no file: %v, %d entries", err, got.Len())
	}
}

// TestRedfishMemoNoAnswer: the learned request's silences are the
// verdict, told apart as the full check tells them (no second wait): a TCP
// connection accepted without a TLS handshake is silent; a handshake and
// then no answer is stalled.
func TestRedfishMemoNoAnswer(t *testing.T) {
	done := make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-done
	}))
	srv.StartTLS()
	defer srv.Close()
	defer close(done)
	addr := netip.MustParseAddrPort(strings.TrimPrefix(srv.URL, "https://"))
	memo := NewRedfishMemo()
	memo.Put(addr.String(), RedfishMemoEntry{Cert: certSHA256(srv.Certificate().Raw), System: "/redfish/v1/Systems/1", Auth: redfish.AuthBasic})
	tg := Target{Name: "hang", Addr: addr, User: "u", Password: []byte("p"), Timeout: 300 * time.Millisecond}
	o := oneShotRun(t, memo, tg)
	if o.State != state.NotResponding || o.Reason != state.ReasonStalled || o.Evidence.FailedStage != "system" {
		t.Fatalf("TLS then nothing: %s/%s at %q: %s", o.State, o.Reason, o.Evidence.FailedStage, o.Message)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held until the listener closes
		}
	}()
	addr = netip.MustParseAddrPort(ln.Addr().String())
	memo.Put(addr.String(), RedfishMemoEntry{Cert: "aa", System: "/redfish/v1/Systems/1", Auth: redfish.AuthBasic})
	tg.Addr = addr
	o = oneShotRun(t, memo, tg)
	if o.State != state.NotResponding || o.Reason != state.ReasonSilent || !strings.Contains(o.Message, "accepted the connection") {
		t.Fatalf("TCP then nothing: %s/%s: %s", o.State, o.Reason, o.Message)
	}
	if n := len(o.Evidence.Redfish.Statuses); n != 0 {
		t.Fatalf("a second request after no answer: %v", o.Evidence.Redfish.Statuses)
	}
}

// TestRedfishMemoEncoding: the memo's compact encoding gives back what
// was saved (the zero time, empty and absent sessions too), and a memo
// saved by the version before (gob, bound to "v1") is still read.
func TestRedfishMemoEncoding(t *testing.T) {
	at := time.Unix(1765000000, 123456789)
	m := map[string]RedfishMemoEntry{
		"10.0.0.1:443": {Cert: strings.Repeat("ab", 32), System: "/redfish/v1/Systems/1", Systems: "/redfish/v1/Systems",
			Auth: redfish.AuthBasic, Ticket: bytes.Repeat([]byte{7}, 300), Session: bytes.Repeat([]byte{9}, 700), At: at},
		"[::1]:8443": {Cert: "c", Auth: redfish.AuthSession},
	}
	got, err := decodeMemo(encodeMemo(m))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(m) {
		t.Fatalf("%d entries, want %d", len(got), len(m))
	}
	for k, want := range m {
		e := got[k]
		if e.Cert != want.Cert || e.System != want.System || e.Systems != want.Systems || e.Auth != want.Auth ||
			!bytes.Equal(e.Ticket, want.Ticket) || !bytes.Equal(e.Session, want.Session) || !e.At.Equal(want.At) ||
			(e.Ticket == nil) != (want.Ticket == nil) || e.At.IsZero() != want.At.IsZero() {
			t.Errorf("%s: got %+v, want %+v", k, e, want)
		}
	}
	// Every truncation is an error, none a panic.
	full := encodeMemo(m)
	for i := range len(full) {
		if _, err := decodeMemo(full[:i]); err == nil {
			t.Fatalf("%d of %d bytes decoded", i, len(full))
		}
	}
	if _, err := decodeMemo(append(full, 0)); err == nil {
		t.Fatal("trailing bytes accepted")
	}

	// The gob memo of the version before.
	box, err := secret.NewRandomBox()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(m); err != nil {
		t.Fatal(err)
	}
	sealed, err := box.SealBound(buf.Bytes(), memoBindingV1)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "memo")
	if err := os.WriteFile(path, sealed, 0o600); err != nil {
		t.Fatal(err)
	}
	old, err := LoadRedfishMemo(path, box)
	if e, _ := old.Get("10.0.0.1:443"); err != nil || old.Len() != 2 || !bytes.Equal(e.Session, m["10.0.0.1:443"].Session) {
		t.Fatalf("the gob memo: %v, %d entries", err, old.Len())
	}
}

// FuzzRedfishMemoDecode: the memo's decoder never panics, and a memo of
// one entry it decodes encodes to bytes it decodes again (not always the
// same bytes: a uvarint has more than one spelling).
func FuzzRedfishMemoDecode(f *testing.F) {
	f.Add(encodeMemo(map[string]RedfishMemoEntry{"10.0.0.1:443": {Cert: "c", System: "/s", Auth: redfish.AuthBasic,
		Ticket: []byte("t"), Session: []byte("s"), At: time.Unix(0, 5)}}))
	f.Add([]byte{0})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMemo(b)
		if err != nil || len(m) != 1 {
			return
		}
		if m2, err := decodeMemo(encodeMemo(m)); err != nil || len(m2) != 1 {
			t.Fatalf("re-encoded memo does not decode: %v", err)
		}
	})
}
