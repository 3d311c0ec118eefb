// Package client is a small Go client for the lightsout REST API
// (/api/v1; see docs/api.md). Errors the server reports are *Error values
// (use errors.As) carrying the HTTP status, the stable code, the message
// and the offending field. Power and allocate stream their results: the
// callback sees each machine's result as the server reports it.
package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/lightsout/lightsout/internal/api/wire"
	"github.com/lightsout/lightsout/internal/incident"
	"github.com/lightsout/lightsout/internal/manager"
	"github.com/lightsout/lightsout/internal/power"
	"github.com/lightsout/lightsout/internal/store"
)

// Client talks to one server with one token.
type Client struct {
	base  *url.URL
	token string
	// HTTP is the underlying client; it must not follow redirects to
	// other hosts with the token (the default client drops the
	// Authorization header on such redirects).
	HTTP *http.Client
	// UserAgent is sent with every request.
	UserAgent string
}

// New returns a client for the server at baseURL (http://host:port) with
// the bearer token (may be empty for the unauthenticated routes).
func New(baseURL, token string) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server URL %q: want http://HOST:PORT or https://HOST:PORT", baseURL)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("server URL %q: give only scheme, host, port and path", baseURL)
	}
	if strings.ContainsAny(token, "\r\n") {
		return nil, errors.New("the API token holds a line break; is the token file right?")
	}
	return &Client{base: u, token: strings.TrimSpace(token), HTTP: &http.Client{}, UserAgent: "lightsout-client"}, nil
}

// BaseURL is the server's URL.
func (c *Client) BaseURL() string { return c.base.String() }

// Error is an error reply of the server.
type Error struct {
	Status  int
	Code    string
	Message string
	Field   string
	Line    int
	Errors  []wire.FieldProblem
}

func (e *Error) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("server: %d %s", e.Status, http.StatusText(e.Status))
	}
	return e.Message
}

// Is matches the store's and power's sentinels by code, so callers can
// write errors.Is(err, store.ErrNotFound) across the wire.
func (e *Error) Is(target error) bool {
	switch target {
	case store.ErrNotFound:
		return e.Code == wire.CodeNotFound
	case store.ErrConflict:
		return e.Code == wire.CodeConflict
	case power.ErrRefused:
		return e.Code == wire.CodeRefused
	case manager.ErrForbidden:
		return e.Code == wire.CodeForbidden
	}
	return false
}

func (c *Client) url(path string, q url.Values) string {
	u := *c.base
	u.Path = strings.TrimRight(u.Path, "/") + path
	if len(q) > 0 {
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// do sends a request with an optional JSON body and returns the response
// when its status is 2xx; otherwise it decodes the error.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url(path, q), rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		err = unwrapURL(err)
		if errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("cannot reach the lightsout server at %s: %w (is it running? start it with 'lightsout server', or point --server or $LIGHTSOUT_SERVER at one)", c.base, err)
		}
		return nil, fmt.Errorf("cannot reach the lightsout server at %s: %w", c.base, err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, decodeError(resp)
}

func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func decodeError(resp *http.Response) error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var er wire.ErrorResponse
	if json.Unmarshal(raw, &er) == nil && er.Error.Code != "" {
		b := er.Error
		return &Error{Status: resp.StatusCode, Code: b.Code, Message: b.Message, Field: b.Field, Line: b.Line, Errors: b.Errors}
	}
	msg := strings.TrimSpace(string(raw))
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	return &Error{Status: resp.StatusCode, Code: "http_" + strconv.Itoa(resp.StatusCode),
		Message: fmt.Sprintf("server answered %d: %s (is this a lightsout server?)", resp.StatusCode, msg)}
}

// call does a JSON request and decodes a JSON reply into out (nil: discard).
func (c *Client) call(ctx context.Context, method, path string, q url.Values, body, out any) error {
	resp, err := c.do(ctx, method, path, q, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: cannot decode the reply: %w", method, path, err)
	}
	return nil
}

func esc(s string) string { return url.PathEscape(s) }

// WhoAmI returns the token's name and role.
func (c *Client) WhoAmI(ctx context.Context) (wire.WhoAmI, error) {
	var out wire.WhoAmI
	return out, c.call(ctx, "GET", "/api/v1/whoami", nil, nil, &out)
}

// Health checks /healthz.
func (c *Client) Health(ctx context.Context) error {
	return c.call(ctx, "GET", "/healthz", nil, nil, nil)
}

// Summary counts machines and channels by state.
func (c *Client) Summary(ctx context.Context) (manager.Summary, error) {
	var out manager.Summary
	return out, c.call(ctx, "GET", "/api/v1/summary", nil, nil, &out)
}

// Incidents returns the fleet's incidents, worst first.
func (c *Client) Incidents(ctx context.Context) ([]incident.Incident, error) {
	var out []incident.Incident
	return out, c.call(ctx, "GET", "/api/v1/incidents", nil, nil, &out)
}

// MachineQuery filters and pages a machine listing.
type MachineQuery struct {
	Group, Tag string
	// State, Reason, Condition select machines with a channel in them
	// (one channel matching all three); Enclosure the blades of one.
	State, Reason, Condition, Enclosure string
	// Zone keeps one zone's machines ("default": those naming none).
	Zone  string
	Limit int
	After int64
}

// Machines returns one page of machines.
func (c *Client) Machines(ctx context.Context, q MachineQuery) (wire.Machines, error) {
	v := url.Values{}
	setIf(v, "group", q.Group)
	setIf(v, "tag", q.Tag)
	setIf(v, "state", q.State)
	setIf(v, "reason", q.Reason)
	setIf(v, "condition", q.Condition)
	setIf(v, "enclosure", q.Enclosure)
	setIf(v, "zone", q.Zone)
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.After > 0 {
		v.Set("after", strconv.FormatInt(q.After, 10))
	}
	var out wire.Machines
	return out, c.call(ctx, "GET", "/api/v1/machines", v, nil, &out)
}

// AllMachines pages through every machine matching q.
func (c *Client) AllMachines(ctx context.Context, q MachineQuery, each func(manager.MachineView) error) error {
	if q.Limit == 0 {
		q.Limit = 1000
	}
	for {
		page, err := c.Machines(ctx, q)
		if err != nil {
			return err
		}
		for _, m := range page.Machines {
			if err := each(m); err != nil {
				return err
			}
		}
		if page.NextAfter == 0 {
			return nil
		}
		q.After = page.NextAfter
	}
}

func setIf(v url.Values, k, s string) {
	if s != "" {
		v.Set(k, s)
	}
}

// Machine returns one machine with its channels.
func (c *Client) Machine(ctx context.Context, name string) (manager.MachineView, error) {
	var out manager.MachineView
	return out, c.call(ctx, "GET", "/api/v1/machines/"+esc(name), nil, nil, &out)
}

// AddMachine creates a machine (and its first account).
func (c *Client) AddMachine(ctx context.Context, in manager.MachineInput) (manager.MachineView, error) {
	var out manager.MachineView
	return out, c.call(ctx, "POST", "/api/v1/machines", nil, in, &out)
}

// UpdateMachine edits a machine.
func (c *Client) UpdateMachine(ctx context.Context, name string, p manager.MachinePatch) (manager.MachineView, error) {
	var out manager.MachineView
	return out, c.call(ctx, "PATCH", "/api/v1/machines/"+esc(name), nil, p, &out)
}

// DeleteMachine deletes a machine with its accounts and history.
func (c *Client) DeleteMachine(ctx context.Context, name string) error {
	return c.call(ctx, "DELETE", "/api/v1/machines/"+esc(name), nil, nil, nil)
}

// History returns a machine's transitions, newest first.
func (c *Client) History(ctx context.Context, name string, before int64, limit int) (wire.History, error) {
	v := url.Values{}
	if before > 0 {
		v.Set("before", strconv.FormatInt(before, 10))
	}
	if limit > 0 {
		v.Set("limit", strconv.Itoa(limit))
	}
	var out wire.History
	return out, c.call(ctx, "GET", "/api/v1/machines/"+esc(name)+"/history", v, nil, &out)
}

// AcceptCertificate re-pins a Redfish BMC's certificate (empty: the one
// it presented at its last check).
func (c *Client) AcceptCertificate(ctx context.Context, name, fingerprint string) (manager.MachineView, error) {
	var out manager.MachineView
	return out, c.call(ctx, "POST", "/api/v1/machines/"+esc(name)+"/accept-certificate", nil, wire.AcceptCertificateRequest{Fingerprint: fingerprint}, &out)
}

// Adopt re-pins a machine's GUID (empty: the one its BMC reports).
func (c *Client) Adopt(ctx context.Context, name, guid string) (manager.MachineView, error) {
	var out manager.MachineView
	return out, c.call(ctx, "POST", "/api/v1/machines/"+esc(name)+"/adopt", nil, wire.AdoptRequest{GUID: guid}, &out)
}

// Replace hands old's place to spare.
func (c *Client) Replace(ctx context.Context, old, spare string) (wire.ReplaceResponse, error) {
	var out wire.ReplaceResponse
	return out, c.call(ctx, "POST", "/api/v1/machines/"+esc(old)+"/replace", nil, wire.ReplaceRequest{Spare: spare}, &out)
}

// Register clears a machine's GUID so its next Connectable check pins it.
func (c *Client) Register(ctx context.Context, name string) (manager.MachineView, error) {
	var out manager.MachineView
	return out, c.call(ctx, "POST", "/api/v1/machines/"+esc(name)+"/register", nil, nil, &out)
}

// Accounts lists OOB accounts, of one machine when machine is not empty.
func (c *Client) Accounts(ctx context.Context, machine string) ([]manager.ChannelView, error) {
	v := url.Values{}
	setIf(v, "machine", machine)
	var out wire.Accounts
	return out.Accounts, c.call(ctx, "GET", "/api/v1/accounts", v, nil, &out)
}

// Account returns one account with its state.
func (c *Client) Account(ctx context.Context, id int64) (manager.ChannelView, error) {
	var out manager.ChannelView
	return out, c.call(ctx, "GET", fmt.Sprintf("/api/v1/accounts/%d", id), nil, nil, &out)
}

// AddAccount adds an OOB account to in.Machine.
func (c *Client) AddAccount(ctx context.Context, in manager.AccountInput) (manager.ChannelView, error) {
	var out manager.ChannelView
	return out, c.call(ctx, "POST", "/api/v1/accounts", nil, in, &out)
}

// UpdateAccount edits an account.
func (c *Client) UpdateAccount(ctx context.Context, id int64, in manager.AccountInput) (manager.ChannelView, error) {
	var out manager.ChannelView
	return out, c.call(ctx, "PATCH", fmt.Sprintf("/api/v1/accounts/%d", id), nil, in, &out)
}

// DeleteAccount deletes an account.
func (c *Client) DeleteAccount(ctx context.Context, id int64) error {
	return c.call(ctx, "DELETE", fmt.Sprintf("/api/v1/accounts/%d", id), nil, nil, nil)
}

// Enclosures lists enclosure managers.
func (c *Client) Enclosures(ctx context.Context) ([]store.Enclosure, error) {
	var out wire.Enclosures
	return out.Enclosures, c.call(ctx, "GET", "/api/v1/enclosures", nil, nil, &out)
}

// Enclosure returns one enclosure manager.
func (c *Client) Enclosure(ctx context.Context, name string) (store.Enclosure, error) {
	var out store.Enclosure
	return out, c.call(ctx, "GET", "/api/v1/enclosures/"+esc(name), nil, nil, &out)
}

// AddEnclosure registers an enclosure manager.
func (c *Client) AddEnclosure(ctx context.Context, in manager.EnclosureInput) (store.Enclosure, error) {
	var out store.Enclosure
	return out, c.call(ctx, "POST", "/api/v1/enclosures", nil, in, &out)
}

// UpdateEnclosure edits an enclosure manager.
func (c *Client) UpdateEnclosure(ctx context.Context, name string, in manager.EnclosureInput) (store.Enclosure, error) {
	var out store.Enclosure
	return out, c.call(ctx, "PATCH", "/api/v1/enclosures/"+esc(name), nil, in, &out)
}

// DeleteEnclosure deletes an enclosure manager.
func (c *Client) DeleteEnclosure(ctx context.Context, name string) error {
	return c.call(ctx, "DELETE", "/api/v1/enclosures/"+esc(name), nil, nil, nil)
}

// Import stores an inventory, all or nothing.
func (c *Client) Import(ctx context.Context, in wire.ImportRequest) (wire.ImportResponse, error) {
	var out wire.ImportResponse
	return out, c.call(ctx, "POST", "/api/v1/import", nil, in, &out)
}

// Export returns the inventory file ("yaml" or "csv"), without passwords.
func (c *Client) Export(ctx context.Context, format string) ([]byte, error) {
	v := url.Values{}
	setIf(v, "format", format)
	resp, err := c.do(ctx, "GET", "/api/v1/export", v, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

// Check checks machines (and/or a group) now.
func (c *Client) Check(ctx context.Context, machines []string, group string) ([]manager.CheckResult, error) {
	var out wire.CheckResponse
	return out.Results, c.call(ctx, "POST", "/api/v1/check", nil, wire.CheckRequest{Machines: machines, Group: group}, &out)
}

// Power runs a bulk power action; each calls back with every machine's
// result as the server streams it. It returns the summary.
func (c *Client) Power(ctx context.Context, req wire.PowerRequest, each func(power.Result)) (wire.PowerSummary, error) {
	return c.stream(ctx, "/api/v1/power", req, each)
}

// Allocate assigns machines to a group and powers them on, streamed like
// Power.
func (c *Client) Allocate(ctx context.Context, req wire.AllocateRequest, each func(power.Result)) (wire.PowerSummary, error) {
	return c.stream(ctx, "/api/v1/allocate", req, each)
}

// ErrTruncated: a stream ended before its summary line (the server or the
// connection went away): some machines' results are unknown.
var ErrTruncated = errors.New("the server's stream ended before its summary: some results are unknown")

func (c *Client) stream(ctx context.Context, path string, body any, each func(power.Result)) (wire.PowerSummary, error) {
	resp, err := c.do(ctx, "POST", path, nil, body)
	if err != nil {
		return wire.PowerSummary{}, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var line wire.PowerLine
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return wire.PowerSummary{}, fmt.Errorf("%s: bad line from the server: %w", path, err)
		}
		switch {
		case line.Summary != nil:
			return *line.Summary, nil
		case line.Result != nil && each != nil:
			each(*line.Result)
		}
	}
	if err := sc.Err(); err != nil {
		return wire.PowerSummary{}, fmt.Errorf("%w: %v", ErrTruncated, err)
	}
	return wire.PowerSummary{}, ErrTruncated
}

// Events lists events newest first.
func (c *Client) Events(ctx context.Context, since time.Time, code string, limit int) ([]store.Event, error) {
	v := url.Values{}
	if !since.IsZero() {
		v.Set("since", since.UTC().Format(time.RFC3339))
	}
	setIf(v, "code", code)
	if limit > 0 {
		v.Set("limit", strconv.Itoa(limit))
	}
	var out wire.Events
	return out.Events, c.call(ctx, "GET", "/api/v1/events", v, nil, &out)
}

// Audit lists audit entries newest first.
func (c *Client) Audit(ctx context.Context, target string, limit int) ([]store.AuditEntry, error) {
	v := url.Values{}
	setIf(v, "target", target)
	if limit > 0 {
		v.Set("limit", strconv.Itoa(limit))
	}
	var out wire.Audit
	return out.Entries, c.call(ctx, "GET", "/api/v1/audit", v, nil, &out)
}

// Tokens lists API tokens.
func (c *Client) Tokens(ctx context.Context) ([]store.Token, error) {
	var out wire.Tokens
	return out.Tokens, c.call(ctx, "GET", "/api/v1/tokens", nil, nil, &out)
}

// CreateToken creates a token and returns it with its secret.
func (c *Client) CreateToken(ctx context.Context, name string, role store.Role) (wire.TokenResponse, error) {
	var out wire.TokenResponse
	return out, c.call(ctx, "POST", "/api/v1/tokens", nil, wire.TokenRequest{Name: name, Role: role}, &out)
}

// RevokeToken revokes a token.
func (c *Client) RevokeToken(ctx context.Context, name string) error {
	return c.call(ctx, "DELETE", "/api/v1/tokens/"+esc(name), nil, nil, nil)
}

// Metrics returns the Prometheus exposition text.
func (c *Client) Metrics(ctx context.Context) (string, error) {
	resp, err := c.do(ctx, "GET", "/metrics", nil, nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}
