package redfish

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestParseAuth(t *testing.T) {
	for in, want := range map[string]Auth{"": AuthAuto, "auto": AuthAuto, "Session": AuthSession, " basic ": AuthBasic} {
		if got, err := ParseAuth(in); err != nil || got != want {
			t.Errorf("ParseAuth(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"digest", "token", "x-auth-token"} {
		if _, err := ParseAuth(in); err == nil || !strings.Contains(err.Error(), "auto, session or basic") {
			t.Errorf("ParseAuth(%q): %v", in, err)
		}
	}
}

func TestHTTPErrorParse(t *testing.T) {
	cases := []struct {
		name, body string
		cause      AuthCause
		detail     string
	}{
		{"sushy", `{"error":{"code":"Base.1.0.GeneralError","message":"Incorrect username or password","@Message.ExtendedInfo":[{"MessageId":"Base.1.0.GeneralError"}]}}`,
			CauseUnknown, "Incorrect username or password"},
		{"locked id", `{"error":{"code":"Base.1.8.GeneralError","message":"A general error has occurred.","@Message.ExtendedInfo":[{"MessageId":"Contoso.1.0.AccountLocked","Message":"The account is locked."}]}}`,
			CauseLocked, "A general error has occurred.; The account is locked. (Contoso.1.0.AccountLocked)"},
		{"top-level extended info", `{"@Message.ExtendedInfo":[{"MessageId":"Vendor.1.0.NoSuchUser","Message":"No such user."}]}`,
			CauseUnknownUser, "No such user. (Vendor.1.0.NoSuchUser)"},
		{"password text", `{"error":{"message":"Login failed: invalid password"}}`, CauseWrongPassword, "Login failed: invalid password"},
		{"HTML", `<html><body>401 Unauthorized</body></html>`, CauseUnknown, "<html><body>401 Unauthorized</body></html>"},
		{"empty", ``, CauseUnknown, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := &HTTPError{Status: 401}
			e.parse([]byte(c.body))
			if e.Cause() != c.cause || e.Detail() != c.detail {
				t.Fatalf("cause %v detail %q; want %v %q", e.Cause(), e.Detail(), c.cause, c.detail)
			}
		})
	}
}

// TestLogin: tokens come in X-Auth-Token whatever the 2xx (the DMTF mockup
// answers 204); an absolute Location is kept as a path; 404/405/501 mean
// no sessions; Authenticate falls back to Basic only for auto.
func TestLogin(t *testing.T) {
	var status int
	var loc string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPost:
			if status < 300 {
				w.Header().Set("X-Auth-Token", "t1")
				w.Header().Set("Location", loc)
			}
			w.WriteHeader(status)
		case r.Method == http.MethodDelete:
			if r.Header.Get("X-Auth-Token") != "t1" || r.URL.Path != "/redfish/v1/SessionService/Sessions/7" {
				w.WriteHeader(401)
				return
			}
			w.WriteHeader(204)
		}
	}))
	defer srv.Close()
	c := &Client{HTTP: srv.Client(), Base: srv.URL, User: "u", Password: []byte("p"), Timeout: time.Second}
	ctx := context.Background()
	root := &Root{Links: struct{ Sessions Link }{Link{"/redfish/v1/SessionService/Sessions"}}}
	status, loc = 204, srv.URL+"/redfish/v1/SessionService/Sessions/7"
	if err := c.Login(ctx, root.SessionsPath()); err != nil {
		t.Fatal(err)
	}
	if s := c.Session(); s == nil || s.Token != "t1" || s.Location != "/redfish/v1/SessionService/Sessions/7" {
		t.Fatalf("session %+v", s)
	}
	if err := c.Logout(ctx); err != nil || c.Mode() != "" {
		t.Fatalf("logout: %v, mode %q", err, c.Mode())
	}
	for _, st := range []int{404, 405, 501} {
		status = st
		if err := c.Login(ctx, root.SessionsPath()); !errors.Is(err, ErrNoSessionService) {
			t.Fatalf("%d: %v", st, err)
		}
		ch, err := c.Authenticate(ctx, root, AuthAuto)
		if err != nil || ch.Auth != AuthBasic || c.Mode() != AuthBasic {
			t.Fatalf("auto after %d: %+v %v", st, ch, err)
		}
		if _, err := c.Authenticate(ctx, root, AuthSession); !errors.Is(err, ErrNoSessionService) {
			t.Fatalf("forced session after %d: %v", st, err)
		}
	}
	status = 401
	if _, err := c.Authenticate(ctx, root, AuthAuto); err == nil {
		t.Fatal("a refused login fell back to Basic")
	} else if he := (*HTTPError)(nil); !errors.As(err, &he) || he.Status != 401 {
		t.Fatalf("401: %v", err)
	}
	if ch, err := c.Authenticate(ctx, &Root{}, AuthAuto); err != nil || ch.Auth != AuthBasic {
		t.Fatalf("no SessionService: %+v %v", ch, err)
	}
}

func FuzzHTTPErrorParse(f *testing.F) {
	for _, s := range []string{
		`{"error":{"code":"Base.1.0.GeneralError","message":"Incorrect username or password","@Message.ExtendedInfo":[{"MessageId":"Base.1.0.GeneralError"}]}}`,
		`{"@Message.ExtendedInfo":[{"MessageId":"A.B.AccountLocked","Message":"x"}]}`,
		`{"error":null}`, `[]`, `<html>`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e := &HTTPError{Method: "GET", URL: "/", Status: 401}
		e.parse(b)
		_ = e.Cause()
		_ = e.Error()
	})
}

func FuzzDecodeRoot(f *testing.F) {
	for _, s := range []string{
		`{"@odata.id":"/redfish/v1/","Systems":{"@odata.id":"/redfish/v1/Systems"},"Links":{"Sessions":{"@odata.id":"/redfish/v1/SessionService/Sessions"}}}`,
		`{"SessionService":{"@odata.id":"/redfish/v1/SessionService/"}}`, `{"Links":null}`, `{"Systems":"x"}`, `null`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Root
		if err := decode(b, &r); err != nil {
			return
		}
		p := r.SessionsPath()
		if r.Links.Sessions.ID == "" && r.SessionService.ID == "" && p != "" {
			t.Fatalf("sessions path %q from nothing", p)
		}
		_, _ = json.Marshal(r)
	})
}
