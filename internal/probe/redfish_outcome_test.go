package probe

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/state"
)

const testUUID = "6c2d3a1e-8f0b-4b8e-9a65-3f1d2c4b5a69"

// fakeService is a small Redfish service for outcomes no peer produces:
// each field, when set, replaces one resource's answer.
type fakeService struct {
	root, systems, system, login http.HandlerFunc
	// noBasic: HTTP Basic is refused (401 without a Basic challenge), as
	// by a service that takes sessions only.
	noBasic                bool
	logins, logouts, basic atomic.Int32
	token                  atomic.Value // string
}

func (f *fakeService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	js := func(code int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(v)
	}
	pick := func(h http.HandlerFunc, def func()) {
		if h != nil {
			h(w, r)
			return
		}
		def()
	}
	authorized := func() bool {
		if tok, _ := f.token.Load().(string); tok != "" && r.Header.Get("X-Auth-Token") == tok {
			return true
		}
		if u, p, ok := r.BasicAuth(); ok && !f.noBasic && u == "admin" && p == "pw" {
			f.basic.Add(1)
			return true
		}
		return false
	}
	deny := func() {
		js(401, map[string]any{"error": map[string]any{"code": "Base.1.8.GeneralError", "message": "denied"}})
	}
	switch {
	case r.URL.Path == "/redfish/v1/" && r.Method == http.MethodGet:
		pick(f.root, func() {
			js(200, map[string]any{"@odata.id": "/redfish/v1/", "Systems": map[string]string{"@odata.id": "/redfish/v1/Systems"},
				"SessionService": map[string]string{"@odata.id": "/redfish/v1/SessionService"},
				"Links":          map[string]any{"Sessions": map[string]string{"@odata.id": "/redfish/v1/SessionService/Sessions"}}})
		})
	case r.URL.Path == "/redfish/v1/SessionService/Sessions" && r.Method == http.MethodPost:
		pick(f.login, func() {
			var b struct{ UserName, Password string }
			_ = json.NewDecoder(r.Body).Decode(&b)
			if b.UserName != "admin" || b.Password != "pw" {
				deny()
				return
			}
			n := f.logins.Add(1)
			tok := "tok" + string(rune('0'+n))
			f.token.Store(tok)
			w.Header().Set("X-Auth-Token", tok)
			w.Header().Set("Location", "/redfish/v1/SessionService/Sessions/"+tok)
			js(201, map[string]any{"Id": tok})
		})
	case strings.HasPrefix(r.URL.Path, "/redfish/v1/SessionService/Sessions/") && r.Method == http.MethodDelete:
		f.logouts.Add(1)
		w.WriteHeader(204)
	case r.URL.Path == "/redfish/v1/Systems":
		if !authorized() {
			deny()
			return
		}
		pick(f.systems, func() {
			js(200, map[string]any{"Members": []map[string]string{{"@odata.id": "/redfish/v1/Systems/1"}}})
		})
	case strings.HasPrefix(r.URL.Path, "/redfish/v1/Systems/"): // any id: f.systems lists which
		if !authorized() {
			deny()
			return
		}
		pick(f.system, func() { js(200, map[string]any{"UUID": testUUID, "PowerState": "On"}) })
	default:
		js(404, map[string]any{"error": map[string]any{"code": "Base.1.8.ResourceMissingAtURI", "message": "no " + r.URL.Path}})
	}
}

func startFake(t *testing.T, f *fakeService) (*httptest.Server, netip.AddrPort) {
	t.Helper()
	srv := httptest.NewTLSServer(f)
	t.Cleanup(srv.Close)
	return srv, netip.MustParseAddrPort(strings.TrimPrefix(srv.URL, "https://"))
}

func fakeTarget(addr netip.AddrPort) Target {
	return Target{Name: "fake", Protocol: "redfish", Addr: addr, User: "admin", Password: []byte("pw"), Timeout: 2 * time.Second}
}

func body(code int, s string, hdr ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; i+1 < len(hdr); i += 2 {
			w.Header().Set(hdr[i], hdr[i+1])
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = w.Write([]byte(s))
	}
}

// TestRedfishOutcomes drives the prober over real HTTPS through every
// outcome the peers cannot produce: each answer names what answered.
func TestRedfishOutcomes(t *testing.T) {
	hang := func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }
	cases := []struct {
		name string
		f    *fakeService
		st   state.OOB
		r    state.Reason
		msg  []string
	}{
		{"ok session", &fakeService{noBasic: true}, state.Connectable, state.ReasonOK, []string{"Redfish session"}},
		{"root malformed JSON", &fakeService{root: body(200, `{"Systems": `)}, state.NotResponding, state.ReasonProtocol, []string{"ServiceRoot", "malformed JSON"}},
		{"root HTML", &fakeService{root: body(200, `<html>login</html>`)}, state.NotResponding, state.ReasonProtocol, []string{"ServiceRoot"}},
		{"root 500", &fakeService{root: body(500, `{"error":{"code":"Base.1.8.InternalError","message":"kaput"}}`)}, state.NotResponding, state.ReasonProtocol, []string{"HTTP 500", "GET /redfish/v1/", "kaput"}},
		{"root 503", &fakeService{root: body(503, ``, "Retry-After", "10")}, state.Connectable, state.ReasonBusy, []string{"Retry-After 10"}},
		{"root 429 retry-after", &fakeService{root: body(429, ``, "Retry-After", "3")}, state.Connectable, state.ReasonBusy, []string{"HTTP 429"}},
		{"root stalls", &fakeService{root: hang}, state.NotResponding, state.ReasonStalled, []string{"answered, then sent nothing"}},
		{"login locked", &fakeService{noBasic: true, login: body(401, `{"error":{"code":"Base.1.8.GeneralError","message":"Login failed","@Message.ExtendedInfo":[{"MessageId":"Contoso.1.0.AccountLocked","Message":"The account is locked out."}]}}`)},
			state.NotAuthenticated, state.ReasonLocked, []string{"locked", "The account is locked out."}},
		{"login 403 bare", &fakeService{noBasic: true, login: body(403, ``)}, state.NotAuthenticated, state.ReasonAuthRejected, []string{"HTTP 403"}},
		{"login no token", &fakeService{noBasic: true, login: body(201, `{}`)}, state.NotResponding, state.ReasonProtocol, []string{"X-Auth-Token"}},
		{"login 405: basic", &fakeService{login: body(405, ``, "Allow", "GET")}, state.Connectable, state.ReasonOK, []string{"HTTP Basic"}},
		{"login 501: basic", &fakeService{login: body(501, ``)}, state.Connectable, state.ReasonOK, []string{"HTTP Basic"}},
		{"systems 404", &fakeService{systems: body(404, `{"error":{"code":"Base.1.8.ResourceMissingAtURI","message":"gone"}}`)}, state.NotResponding, state.ReasonProtocol, []string{"HTTP 404", "/redfish/v1/Systems", "gone"}},
		{"systems empty", &fakeService{systems: body(200, `{"Members":[]}`)}, state.NotResponding, state.ReasonProtocol, []string{"ComputerSystemCollection", "lists no ComputerSystem"}},
		{"system stalls", &fakeService{system: hang}, state.NotResponding, state.ReasonStalled, []string{"/redfish/v1/Systems/1"}},
		{"system without UUID", &fakeService{system: body(200, `{"PowerState":"On"}`)}, state.NotResponding, state.ReasonProtocol, []string{"ComputerSystem", "/redfish/v1/Systems/1", "has no UUID"}},
		{"system bad UUID", &fakeService{system: body(200, `{"UUID":"nope"}`)}, state.NotResponding, state.ReasonProtocol, []string{"ComputerSystem", "nope"}},
		{"system truncated", &fakeService{system: body(200, `{"UUID":"`+testUUID)}, state.NotResponding, state.ReasonProtocol, []string{"malformed JSON"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, addr := startFake(t, c.f)
			tr := NewRedfishTransport()
			defer tr.CloseIdleConnections()
			tg := fakeTarget(addr)
			tg.Timeout = 500 * time.Millisecond
			o := Redfish(tr, nil)(context.Background(), tg)
			wantObs(t, o, c.st, c.r, c.msg...)
		})
	}
}

// TestRedfishRootNeedsAuth: a service root that wants credentials (not as
// DSP0266 says, but seen) is read with HTTP Basic once the certificate is
// pinned.
func TestRedfishRootNeedsAuth(t *testing.T) {
	f := &fakeService{}
	f.root = func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "admin" || p != "pw" {
			body(401, ``)(w, r)
			return
		}
		body(200, `{"Systems":{"@odata.id":"/redfish/v1/Systems"}}`)(w, r)
	}
	_, addr := startFake(t, f)
	tr := NewRedfishTransport()
	defer tr.CloseIdleConnections()
	o := Redfish(tr, &MemPins{})(context.Background(), fakeTarget(addr))
	wantObs(t, o, state.Connectable, state.ReasonOK)
	if o.Evidence.Redfish.Auth != "basic" || !strings.Contains(o.Evidence.Redfish.AuthWhy, "401") {
		t.Fatalf("evidence %+v", o.Evidence.Redfish)
	}
}

// TestRedfishSessionKept: with KeepSessions one login serves many checks;
// a session the service dropped is replaced at once; Close logs out; a
// learned Basic is not retried as a session every check.
func TestRedfishSessionKept(t *testing.T) {
	f := &fakeService{}
	_, addr := startFake(t, f)
	tr := NewRedfishTransport()
	defer tr.CloseIdleConnections()
	pr := NewRedfishProber(tr, &MemPins{})
	pr.KeepSessions = true
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		wantObs(t, pr.Check(ctx, fakeTarget(addr)), state.Connectable, state.ReasonOK)
	}
	if n := f.logins.Load(); n != 1 {
		t.Fatalf("%d logins for 5 checks, want 1", n)
	}
	f.token.Store("") // the BMC restarted: the session is gone
	o := pr.Check(ctx, fakeTarget(addr))
	wantObs(t, o, state.Connectable, state.ReasonOK)
	if !o.Evidence.Redfish.SessionExpired || f.logins.Load() != 2 {
		t.Fatalf("expired session not replaced: %+v, %d logins", o.Evidence.Redfish, f.logins.Load())
	}
	if err := pr.Close(ctx); err != nil || f.logouts.Load() != 1 || pr.Sessions() != 0 {
		t.Fatalf("close: %v, %d logouts, %d kept", err, f.logouts.Load(), pr.Sessions())
	}

	// Session creation answers 405: Basic, learned; the next check goes
	// straight to Basic.
	g := &fakeService{login: body(405, ``, "Allow", "GET")}
	_, addr = startFake(t, g)
	pr = NewRedfishProber(tr, nil)
	pr.KeepSessions = true
	o = pr.Check(ctx, fakeTarget(addr))
	wantObs(t, o, state.Connectable, state.ReasonOK)
	if o.Evidence.Redfish.AuthWhy != "session creation answered HTTP 405" {
		t.Fatalf("why %q", o.Evidence.Redfish.AuthWhy)
	}
	o = pr.Check(ctx, fakeTarget(addr))
	for _, s := range o.Evidence.Redfish.Statuses {
		if strings.HasPrefix(s, "POST ") {
			t.Fatalf("learned Basic, yet tried a session again: %v", o.Evidence.Redfish.Statuses)
		}
	}
	// A refusal forgets what was learned.
	tg := fakeTarget(addr)
	tg.Password = []byte("wrong")
	wantObs(t, pr.Check(ctx, tg), state.NotAuthenticated, state.ReasonAuthRejected)
	if pr.Learned("fake") != "" {
		t.Fatalf("learned %q kept after a refusal", pr.Learned("fake"))
	}
}

// TestRedfishTLSResumed: a connection closed between checks is opened
// again with a resumed TLS session (no full handshake), and the
// certificate seen is still the service's.
func TestRedfishTLSResumed(t *testing.T) {
	_, addr := startFake(t, &fakeService{})
	tr := NewRedfishTransport()
	defer tr.CloseIdleConnections()
	pr := NewRedfishProber(tr, &MemPins{})
	pr.KeepSessions = true
	ctx := context.Background()
	o := pr.Check(ctx, fakeTarget(addr))
	wantObs(t, o, state.Connectable, state.ReasonOK)
	if o.Evidence.Redfish.TLSResumed {
		t.Fatal("first contact resumed a TLS session")
	}
	fp := o.Evidence.Redfish.CertSHA256
	tr.CloseIdleConnections()
	o = pr.Check(ctx, fakeTarget(addr))
	wantObs(t, o, state.Connectable, state.ReasonOK)
	if ev := o.Evidence.Redfish; !ev.TLSResumed || ev.CertSHA256 != fp || !ev.SessionReused {
		t.Fatalf("second check: %+v", ev)
	}
}

// TestRedfishRootNeedsAuthSession: with sessions forced, a service root
// that wants credentials is read with a session opened at the standard URI.
func TestRedfishRootNeedsAuthSession(t *testing.T) {
	f := &fakeService{}
	f.root = func(w http.ResponseWriter, r *http.Request) {
		if tok, _ := f.token.Load().(string); tok == "" || r.Header.Get("X-Auth-Token") != tok {
			body(401, ``)(w, r)
			return
		}
		body(200, `{"Systems":{"@odata.id":"/redfish/v1/Systems"},"Links":{"Sessions":{"@odata.id":"/redfish/v1/SessionService/Sessions"}}}`)(w, r)
	}
	_, addr := startFake(t, f)
	tr := NewRedfishTransport()
	defer tr.CloseIdleConnections()
	tg := fakeTarget(addr)
	tg.RedfishAuth = "session"
	o := Redfish(tr, &MemPins{})(context.Background(), tg)
	wantObs(t, o, state.Connectable, state.ReasonOK)
	if ev := o.Evidence.Redfish; ev.Auth != "session" || ev.SessionReused || f.logins.Load() != 1 || f.logouts.Load() != 1 {
		t.Fatalf("evidence %+v, %d logins, %d logouts", o.Evidence.Redfish, f.logins.Load(), f.logouts.Load())
	}
}

// TestRedfishLightCheckSystemDirect: a light re-check (the monitor's)
// reads the service root without credentials, then the System read last
// time directly: two requests, not three. A System that is not there any
// more (404) is looked up in the collection again within the same check.
func TestRedfishLightCheckSystemDirect(t *testing.T) {
	f := &fakeService{}
	_, addr := startFake(t, f)
	tr := NewRedfishTransport()
	defer tr.CloseIdleConnections()
	pr := NewRedfishProber(tr, &MemPins{})
	pr.KeepSessions = true
	ctx := context.Background()
	tg := fakeTarget(addr)
	wantObs(t, pr.Check(ctx, tg), state.Connectable, state.ReasonOK)

	tg.Light = true
	o := pr.Check(ctx, tg)
	wantObs(t, o, state.Connectable, state.ReasonOK)
	if ev := o.Evidence.Redfish; !ev.SessionReused || strings.Join(ev.Statuses, ", ") != "GET /redfish/v1/ 200, GET /redfish/v1/Systems/1 200" {
		t.Fatalf("light check: %v (session reused %v)", ev.Statuses, ev.SessionReused)
	}

	// The System moved: Systems/1 answers 404, the collection lists 2.
	f.systems = body(200, `{"Members":[{"@odata.id":"/redfish/v1/Systems/2"}]}`)
	f.system = func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redfish/v1/Systems/1" {
			body(404, `{"error":{"code":"Base.1.8.ResourceMissingAtURI","message":"gone"}}`)(w, r)
			return
		}
		body(200, `{"UUID":"`+testUUID+`","PowerState":"Off"}`)(w, r)
	}
	o = pr.Check(ctx, tg)
	wantObs(t, o, state.Connectable, state.ReasonOK)
	want := "GET /redfish/v1/ 200, GET /redfish/v1/Systems/1 404, GET /redfish/v1/Systems 200, GET /redfish/v1/Systems/2 200"
	if ev := o.Evidence.Redfish; strings.Join(ev.Statuses, ", ") != want || ev.PowerState != "Off" {
		t.Fatalf("moved System: %v, power %q; want %s", ev.Statuses, ev.PowerState, want)
	}
	if o = pr.Check(ctx, tg); strings.Join(o.Evidence.Redfish.Statuses, ", ") != "GET /redfish/v1/ 200, GET /redfish/v1/Systems/2 200" {
		t.Fatalf("after the move: %v", o.Evidence.Redfish.Statuses)
	}
}
