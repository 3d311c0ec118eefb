// Package redfish is lightsout's Redfish client for one BMC: the service
// root read without credentials (certificate and body from the one
// answer), authentication as the service offers it (a session when the
// root links a SessionService, HTTP Basic when it does not or when session
// creation answers 404/405/501, or what the account forces), and typed
// errors that say what answered: HTTPError (status, URL, the service's
// message and MessageIds), BodyError (the answer is not the resource),
// NoReplyError (no answer before the deadline, and whether the connection
// had been accepted). The probe classifies those; power acts through
// gofish's typed resources over the same client (Gofish).
package redfish

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// Auth is how a client authenticates.
type Auth string

const (
	// AuthAuto: a session when the service root links a SessionService,
	// else HTTP Basic; Basic also when session creation answers 404, 405
	// or 501.
	AuthAuto Auth = "auto"
	// AuthSession: X-Auth-Token sessions only.
	AuthSession Auth = "session"
	// AuthBasic: HTTP Basic on every request, no session.
	AuthBasic Auth = "basic"
)

// ParseAuth reads an account's redfish_auth ("" is auto).
func ParseAuth(s string) (Auth, error) {
	switch Auth(strings.ToLower(strings.TrimSpace(s))) {
	case "", AuthAuto:
		return AuthAuto, nil
	case AuthSession:
		return AuthSession, nil
	case AuthBasic:
		return AuthBasic, nil
	}
	return "", fmt.Errorf("%q is not auto, session or basic", s)
}

// MaxBody bounds what is read of one answer.
const MaxBody = 4 << 20

// Client talks to one Redfish service. It is not safe for concurrent use.
type Client struct {
	// HTTP sends the requests (its Transport is usually the fleet's shared
	// one); redirects are not followed.
	HTTP *http.Client
	// Base is "https://host:port".
	Base     string
	User     string
	Password []byte
	// Timeout bounds each request, answer body included (default 10 s).
	Timeout time.Duration

	mode     Auth   // AuthSession or AuthBasic once authenticated; "" sends no credentials
	token    string // X-Auth-Token of the session
	location string // the session's URI, for logout
}

// Session is an open session, for reuse by another Client of the same
// account.
type Session struct {
	Token    string
	Location string
}

// Mode is the authentication in use ("" before Authenticate).
func (c *Client) Mode() Auth { return c.mode }

// Session returns the open session (nil with Basic or none).
func (c *Client) Session() *Session {
	if c.mode != AuthSession || c.token == "" {
		return nil
	}
	return &Session{Token: c.token, Location: c.location}
}

// UseSession sends s's token from now on (a session opened earlier).
func (c *Client) UseSession(s Session) {
	c.mode, c.token, c.location = AuthSession, s.Token, s.Location
}

// UseBasic sends HTTP Basic credentials from now on.
func (c *Client) UseBasic() { c.mode, c.token, c.location = AuthBasic, "", "" }

// Response is one answer, read whole.
type Response struct {
	Status int
	Header http.Header
	TLS    *tls.ConnectionState
	Body   []byte
}

// Do sends one request; body (if not nil) is sent as JSON. A status
// outside 2xx is an *HTTPError (the Response is returned as well); no
// answer before the deadline is a *NoReplyError.
func (c *Client) Do(ctx context.Context, method, path string, body any) (*Response, error) {
	return c.do(ctx, method, path, body, nil)
}

func (c *Client) do(ctx context.Context, method, path string, body any, hdr map[string]string) (*Response, error) {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var connected, answered atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(i httptrace.GotConnInfo) {
			connected.Store(true)
			if i.Reused {
				answered.Store(true)
			}
		},
		ConnectDone: func(_, _ string, err error) {
			if err == nil {
				connected.Store(true)
			}
		},
		TLSHandshakeDone: func(_ tls.ConnectionState, err error) {
			if err == nil {
				answered.Store(true)
			}
		},
	})
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	u := path
	if !strings.HasPrefix(path, "http://") && !strings.HasPrefix(path, "https://") {
		u = c.Base + path
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("OData-Version", "4.0")
	req.Header.Set("User-Agent", "lightsout")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	switch c.mode {
	case AuthSession:
		req.Header.Set("X-Auth-Token", c.token)
	case AuthBasic:
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(c.User+":"+string(c.Password))))
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, noReply(method, req.URL.Path, err, connected.Load(), answered.Load())
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody))
	if err != nil {
		// The status line came: the service answered, then stopped.
		return nil, noReply(method, req.URL.Path, err, true, true)
	}
	r := &Response{Status: resp.StatusCode, Header: resp.Header, TLS: resp.TLS, Body: b}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		he := &HTTPError{Method: method, URL: req.URL.Path, Status: resp.StatusCode,
			RetryAfter: resp.Header.Get("Retry-After"), Allow: resp.Header.Get("Allow"),
			Challenge: strings.Join(resp.Header.Values("WWW-Authenticate"), ", ")}
		he.parse(b)
		return r, he
	}
	return r, nil
}

// noReply wraps a transport error: a deadline is a *NoReplyError; refusals,
// resets and TLS failures stay as they are (with the request named).
func noReply(method, path string, err error, connected, answered bool) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if isTimeout(err) {
		return &NoReplyError{Method: method, URL: path, Connected: connected, Answered: answered, Err: err}
	}
	return fmt.Errorf("%s %s: %w", method, path, err)
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// Link is an @odata.id reference.
type Link struct {
	ID string `json:"@odata.id"`
}

// Root is what lightsout reads of the service root.
type Root struct {
	ODataID        string `json:"@odata.id"`
	RedfishVersion string
	UUID           string
	Vendor         string
	Product        string
	Systems        Link
	SessionService Link
	AccountService Link
	Links          struct {
		Sessions Link
	}
}

// SessionsPath is where sessions are created: Links.Sessions, else the
// SessionService's Sessions; "" when the service offers no sessions.
func (r *Root) SessionsPath() string {
	if r.Links.Sessions.ID != "" {
		return r.Links.Sessions.ID
	}
	if r.SessionService.ID != "" {
		return strings.TrimSuffix(r.SessionService.ID, "/") + "/Sessions"
	}
	return ""
}

// ServiceRoot is the service root's path.
const ServiceRoot = "/redfish/v1/"

// DefaultSessions is the sessions collection DSP0266 names, for a service
// whose root cannot be read before logging in.
const DefaultSessions = "/redfish/v1/SessionService/Sessions"

// GetRoot reads the service root with the client's current credentials
// (none before Authenticate). The Response has the TLS state of the same
// answer.
func (c *Client) GetRoot(ctx context.Context) (*Root, *Response, error) {
	resp, err := c.Do(ctx, http.MethodGet, ServiceRoot, nil)
	if err != nil {
		return nil, resp, err
	}
	var root Root
	if err := decode(resp.Body, &root); err != nil {
		return nil, resp, &BodyError{Resource: "ServiceRoot", URL: ServiceRoot, Err: err}
	}
	return &root, resp, nil
}

// Get reads the resource at path into v; resource names it in errors.
func (c *Client) Get(ctx context.Context, path, resource string, v any) error {
	resp, err := c.Do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	if err := decode(resp.Body, v); err != nil {
		return &BodyError{Resource: resource, URL: path, Err: err}
	}
	return nil
}

func decode(b []byte, v any) error {
	if len(bytes.TrimSpace(b)) == 0 {
		return errors.New("empty body, JSON expected")
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("malformed JSON: %w", err)
	}
	return nil
}

// Login opens a session at sessionsPath (POST {UserName, Password}). The
// token comes in X-Auth-Token (201, or 200/204 as some services answer).
// 404, 405 and 501 are ErrNoSessionService (wrapping the *HTTPError).
func (c *Client) Login(ctx context.Context, sessionsPath string) error {
	if sessionsPath == "" {
		return ErrNoSessionService
	}
	c.mode = ""
	resp, err := c.Do(ctx, http.MethodPost, sessionsPath, map[string]string{"UserName": c.User, "Password": string(c.Password)})
	var he *HTTPError
	if errors.As(err, &he) && (he.Status == http.StatusNotFound || he.Status == http.StatusMethodNotAllowed || he.Status == http.StatusNotImplemented) {
		return fmt.Errorf("%w: %w", ErrNoSessionService, err)
	}
	if err != nil {
		return err
	}
	tok := resp.Header.Get("X-Auth-Token")
	if tok == "" {
		return &BodyError{Resource: "Session", URL: sessionsPath, Err: fmt.Errorf("HTTP %d without an X-Auth-Token header", resp.Status)}
	}
	loc := resp.Header.Get("Location")
	if loc == "" {
		var s struct {
			ID string `json:"@odata.id"`
		}
		if json.Unmarshal(resp.Body, &s) == nil {
			loc = s.ID
		}
	}
	if u, err := url.Parse(loc); err == nil && u.IsAbs() {
		loc = u.RequestURI()
	}
	c.mode, c.token, c.location = AuthSession, tok, loc
	return nil
}

// Logout deletes the session (if one is open) and forgets it.
func (c *Client) Logout(ctx context.Context) error {
	if c.mode != AuthSession {
		return nil
	}
	loc := c.location
	defer func() { c.mode, c.token, c.location = "", "", "" }()
	if loc == "" {
		return errors.New("the session has no URI to delete")
	}
	_, err := c.Do(ctx, http.MethodDelete, loc, nil)
	return err
}

// Choice is how Authenticate chose.
type Choice struct {
	Auth Auth
	// Why: "forced", "learned", "service root links a SessionService",
	// "service root links no SessionService", "session creation answered
	// HTTP 405".
	Why string
}

// Authenticate sets up the client's credentials for want (AuthAuto
// decides from root, and falls back to Basic when session creation answers
// 404/405/501). With AuthSession forced and no session offered it fails
// with ErrNoSessionService.
func (c *Client) Authenticate(ctx context.Context, root *Root, want Auth) (Choice, error) {
	switch want {
	case AuthBasic:
		c.UseBasic()
		return Choice{AuthBasic, "forced"}, nil
	case AuthSession:
		return Choice{AuthSession, "forced"}, c.Login(ctx, root.SessionsPath())
	}
	p := root.SessionsPath()
	if p == "" {
		c.UseBasic()
		return Choice{AuthBasic, "service root links no SessionService"}, nil
	}
	err := c.Login(ctx, p)
	if errors.Is(err, ErrNoSessionService) {
		c.UseBasic()
		why := "session creation refused"
		var he *HTTPError
		if errors.As(err, &he) {
			why = fmt.Sprintf("session creation answered HTTP %d", he.Status)
		}
		return Choice{AuthBasic, why}, nil
	}
	return Choice{AuthSession, "service root links a SessionService"}, err
}
