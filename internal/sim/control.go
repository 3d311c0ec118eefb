package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sort"
	"strings"
	"time"
)

// The control API: a small JSON API to inspect the fleet and inject
// faults at run time. See docs/simulator.md.
//
//	GET    /v1/bmcs                  list (filters: ?kind=, ?enclosure=, ?faulty=true)
//	GET    /v1/bmcs/{name}           one BMC
//	PUT    /v1/bmcs/{name}/faults    replace its faults (body: Faults)
//	DELETE /v1/bmcs/{name}/faults    clear its faults
//	PUT    /v1/bmcs/{name}/power     {"on": false}
//	POST   /v1/swap                  {"a": "bmc-00001", "b": "bmc-00002"}
//	GET    /v1/enclosures            list enclosures
//	PUT    /v1/enclosures/{name}     {"down": true}
//	GET    /v1/fleet                 summary

// maxBody bounds request bodies.
const maxBody = 64 << 10

// APIError is the body of every control API error.
type APIError struct {
	// Status is the HTTP status (set by the Client).
	Status int `json:"-"`
	// Message says what went wrong.
	Message string `json:"error"`
	// Field and Reason are set for bad input (400).
	Field  string `json:"field,omitempty"`
	Reason string `json:"reason,omitempty"`
}

func (e *APIError) Error() string {
	return fmt.Sprintf("sim control API: %d: %s", e.Status, e.Message)
}

// FleetSummary is GET /v1/fleet.
type FleetSummary struct {
	BMCs         int    `json:"bmcs"`
	Enclosures   int    `json:"enclosures"`
	Seed         uint64 `json:"seed"`
	SessionSlots int    `json:"session_slots"`
	Addresses    string `json:"addresses"`
	Faulty       int    `json:"faulty"`
}

// Summary describes the fleet.
func (f *Fleet) Summary() FleetSummary {
	s := FleetSummary{
		BMCs:         len(f.servers),
		Enclosures:   len(f.enclosures),
		Seed:         f.seed,
		SessionSlots: f.slots,
		Addresses:    f.AddrRange(),
	}
	for _, b := range f.all {
		if !b.Faults().Zero() {
			s.Faulty++
		}
	}
	return s
}

// Handler serves the control API.
func (f *Fleet) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/fleet", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, f.Summary())
	})
	mux.HandleFunc("GET /v1/bmcs", f.listBMCs)
	mux.HandleFunc("GET /v1/bmcs/{name}", func(w http.ResponseWriter, r *http.Request) {
		b, ok := f.bmcOr404(w, r)
		if ok {
			writeJSON(w, http.StatusOK, b.Status())
		}
	})
	mux.HandleFunc("PUT /v1/bmcs/{name}/faults", func(w http.ResponseWriter, r *http.Request) {
		b, ok := f.bmcOr404(w, r)
		if !ok {
			return
		}
		raw, ok := readObject(w, r)
		if !ok {
			return
		}
		fs, err := decodeFaults(raw)
		if err != nil {
			writeErr(w, err)
			return
		}
		if err := b.setFaults(fs); err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, b.Status())
	})
	mux.HandleFunc("DELETE /v1/bmcs/{name}/faults", func(w http.ResponseWriter, r *http.Request) {
		b, ok := f.bmcOr404(w, r)
		if !ok {
			return
		}
		if err := b.setFaults(Faults{}); err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, b.Status())
	})
	mux.HandleFunc("PUT /v1/bmcs/{name}/power", func(w http.ResponseWriter, r *http.Request) {
		b, ok := f.bmcOr404(w, r)
		if !ok {
			return
		}
		on, ok := readBoolBody(w, r, "on")
		if !ok {
			return
		}
		b.SetPower(on)
		writeJSON(w, http.StatusOK, b.Status())
	})
	mux.HandleFunc("POST /v1/swap", func(w http.ResponseWriter, r *http.Request) {
		raw, ok := readObject(w, r)
		if !ok {
			return
		}
		var a, b string
		if err := onlyFields(raw, "a", "b"); err != nil {
			writeErr(w, err)
			return
		}
		if err := stringField(raw, "a", &a); err != nil {
			writeErr(w, err)
			return
		}
		if err := stringField(raw, "b", &b); err != nil {
			writeErr(w, err)
			return
		}
		if err := f.Swap(a, b); err != nil {
			writeErr(w, err)
			return
		}
		x, _ := f.BMC(a)
		y, _ := f.BMC(b)
		writeJSON(w, http.StatusOK, map[string]Status{"a": x.Status(), "b": y.Status()})
	})
	mux.HandleFunc("GET /v1/enclosures", func(w http.ResponseWriter, r *http.Request) {
		out := make([]EnclosureStatus, len(f.enclosures))
		for i, e := range f.enclosures {
			out[i] = e.Status()
		}
		writeJSON(w, http.StatusOK, map[string]any{"enclosures": out})
	})
	mux.HandleFunc("GET /v1/enclosures/{name}", func(w http.ResponseWriter, r *http.Request) {
		e, ok := f.enclOr404(w, r)
		if ok {
			writeJSON(w, http.StatusOK, e.Status())
		}
	})
	mux.HandleFunc("PUT /v1/enclosures/{name}", func(w http.ResponseWriter, r *http.Request) {
		e, ok := f.enclOr404(w, r)
		if !ok {
			return
		}
		down, ok := readBoolBody(w, r, "down")
		if !ok {
			return
		}
		e.down.Store(down)
		writeJSON(w, http.StatusOK, e.Status())
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, &APIError{Message: "no such endpoint: " + r.Method + " " + r.URL.Path + " (see GET /v1/bmcs, /v1/enclosures, /v1/fleet)"})
	})
	return mux
}

func (f *Fleet) listBMCs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for k := range q {
		if k != "kind" && k != "enclosure" && k != "faulty" {
			writeErr(w, fieldErr(k, "unknown query parameter (known: kind, enclosure, faulty)"))
			return
		}
	}
	kind := q.Get("kind")
	if kind != "" && kind != string(KindBMC) && kind != string(KindEnclosureManager) {
		writeErr(w, fieldErr("kind", "must be %q or %q, got %q", KindBMC, KindEnclosureManager, kind))
		return
	}
	encl := q.Get("enclosure")
	if encl != "" {
		if _, ok := f.enclByName[encl]; !ok {
			writeJSON(w, http.StatusNotFound, &APIError{Message: fmt.Sprintf("no enclosure named %q", encl)})
			return
		}
	}
	faulty := false
	if v := q.Get("faulty"); v != "" {
		switch v {
		case "true", "1":
			faulty = true
		case "false", "0":
		default:
			writeErr(w, fieldErr("faulty", "must be true or false, got %q", v))
			return
		}
	}
	out := make([]Status, 0, len(f.all))
	for _, b := range f.all {
		if kind != "" && string(b.kind) != kind || encl != "" && b.Enclosure() != encl || faulty && b.Faults().Zero() {
			continue
		}
		out = append(out, b.Status())
	}
	writeJSON(w, http.StatusOK, map[string]any{"count": len(out), "bmcs": out})
}

func (f *Fleet) bmcOr404(w http.ResponseWriter, r *http.Request) (*BMC, bool) {
	name := r.PathValue("name")
	b, ok := f.byName[name]
	if !ok {
		writeJSON(w, http.StatusNotFound, &APIError{Message: fmt.Sprintf("no BMC named %q", name)})
	}
	return b, ok
}

func (f *Fleet) enclOr404(w http.ResponseWriter, r *http.Request) (*Enclosure, bool) {
	name := r.PathValue("name")
	e, ok := f.enclByName[name]
	if !ok {
		writeJSON(w, http.StatusNotFound, &APIError{Message: fmt.Sprintf("no enclosure named %q", name)})
	}
	return e, ok
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// writeErr maps an error to a status: a FieldError is 400, an unknown name
// 404, anything else 500.
func writeErr(w http.ResponseWriter, err error) {
	var fe *FieldError
	switch {
	case errors.As(err, &fe):
		writeJSON(w, http.StatusBadRequest, &APIError{Message: fe.Error(), Field: fe.Field, Reason: fe.Reason})
	case errors.Is(err, ErrUnknown):
		writeJSON(w, http.StatusNotFound, &APIError{Message: err.Error()})
	default:
		writeJSON(w, http.StatusInternalServerError, &APIError{Message: err.Error()})
	}
}

// readObject reads the body as one JSON object, keeping each value raw so
// errors can name their field.
func readObject(w http.ResponseWriter, r *http.Request) (map[string]json.RawMessage, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeErr(w, fieldErr("body", "unreadable: %v", err))
		return nil, false
	}
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&raw); err != nil || raw == nil {
		reason := "must be a JSON object"
		if err != nil {
			reason += ": " + err.Error()
		}
		writeErr(w, fieldErr("body", "%s", reason))
		return nil, false
	}
	if dec.More() {
		writeErr(w, fieldErr("body", "must hold exactly one JSON object"))
		return nil, false
	}
	return raw, true
}

func onlyFields(raw map[string]json.RawMessage, known ...string) error {
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		found := false
		for _, n := range known {
			found = found || k == n
		}
		if !found {
			return fieldErr(k, "unknown field (known: %s)", strings.Join(known, ", "))
		}
	}
	return nil
}

func boolField(raw map[string]json.RawMessage, name string, dst *bool, required bool) error {
	v, ok := raw[name]
	if !ok {
		if required {
			return fieldErr(name, "missing (want true or false)")
		}
		return nil
	}
	if err := json.Unmarshal(v, dst); err != nil {
		return fieldErr(name, "must be true or false, got %s", v)
	}
	return nil
}

func stringField(raw map[string]json.RawMessage, name string, dst *string) error {
	v, ok := raw[name]
	if !ok {
		return fieldErr(name, "missing (want a BMC name)")
	}
	if err := json.Unmarshal(v, dst); err != nil || *dst == "" {
		return fieldErr(name, "must be a non-empty string (a BMC name), got %s", v)
	}
	return nil
}

func rateField(raw map[string]json.RawMessage, name string, dst *float64) error {
	v, ok := raw[name]
	if !ok {
		return nil
	}
	if err := json.Unmarshal(v, dst); err != nil || math.IsNaN(*dst) {
		return fieldErr(name, "must be a number between 0 and 1, got %s", v)
	}
	return nil
}

// decodeFaults reads a Faults object strictly: unknown fields and values
// of the wrong type are FieldErrors naming the field.
func decodeFaults(raw map[string]json.RawMessage) (Faults, error) {
	var f Faults
	if err := onlyFields(raw, "silent", "port_closed", "wrong_password", "user_removed", "guid_replaced",
		"slots_full", "insecure", "locked", "em_link", "bmc_key", "cipher_suites", "cipher0", "anonymous", "weak_auth", "default_password",
		"soft_off_ignored", "cert_replaced", "busy_503", "redfish_no_sessions", "redfish_no_basic", "redfish_session_limit", "session_hang", "redfish_tls_legacy",
		"quirk", "slow", "lossy", "timeout_rate", "malformed"); err != nil {
		return f, err
	}
	bools := []struct {
		name string
		dst  *bool
	}{
		{"silent", &f.Silent}, {"port_closed", &f.PortClosed}, {"wrong_password", &f.WrongPassword},
		{"user_removed", &f.UserRemoved}, {"guid_replaced", &f.GUIDReplaced}, {"slots_full", &f.SlotsFull},
		{"locked", &f.Locked}, {"em_link", &f.EMLink}, {"bmc_key", &f.BMCKey},
		{"insecure", &f.Insecure}, {"cipher0", &f.Cipher0}, {"anonymous", &f.Anonymous},
		{"weak_auth", &f.WeakAuth}, {"default_password", &f.DefaultPassword},
		{"soft_off_ignored", &f.SoftOffIgnored}, {"session_hang", &f.SessionHang}, {"redfish_tls_legacy", &f.RedfishTLSLegacy},
		{"cert_replaced", &f.CertReplaced}, {"busy_503", &f.Busy503},
		{"redfish_no_sessions", &f.RedfishNoSessions}, {"redfish_no_basic", &f.RedfishNoBasic},
	}
	for _, b := range bools {
		if err := boolField(raw, b.name, b.dst, false); err != nil {
			return f, err
		}
	}
	rates := []struct {
		name string
		dst  *float64
	}{{"lossy", &f.Lossy}, {"timeout_rate", &f.TimeoutRate}, {"malformed", &f.Malformed}}
	for _, r := range rates {
		if err := rateField(raw, r.name, r.dst); err != nil {
			return f, err
		}
	}
	if v, ok := raw["redfish_session_limit"]; ok {
		if err := json.Unmarshal(v, &f.RedfishSessionLimit); err != nil {
			return f, fieldErr("redfish_session_limit", "must be a whole number of sessions, got %s", v)
		}
	}
	if v, ok := raw["slow"]; ok {
		if err := f.Slow.UnmarshalJSON(v); err != nil {
			return f, fieldErr("slow", "%v", err)
		}
	}
	if v, ok := raw["cipher_suites"]; ok {
		if err := f.CipherSuites.UnmarshalJSON(v); err != nil {
			return f, fieldErr("cipher_suites", "%v", err)
		}
	}
	if v, ok := raw["quirk"]; ok {
		if err := f.Quirk.UnmarshalJSON(v); err != nil {
			return f, fieldErr("quirk", "%v", err)
		}
	}
	return f, f.Validate("")
}

// ---------------------------------------------------------------------------
// Serving

// ControlServer is the control API listening on a loopback address.
type ControlServer struct {
	srv *http.Server
	ln  net.Listener
}

// ServeControl starts the control API on addr (host:port; port 0 picks a
// free one). The host must be a loopback address or "localhost".
func (f *Fleet) ServeControl(addr string) (*ControlServer, error) {
	if err := checkControlAddr(addr); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("control API: %w", err)
	}
	cs := &ControlServer{ln: ln, srv: &http.Server{
		Handler:           f.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
	}}
	go func() { _ = cs.srv.Serve(ln) }()
	return cs, nil
}

// checkControlAddr accepts host:port with a loopback host.
func checkControlAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fieldErr("control", "%q is not host:port: %v", addr, err)
	}
	if host != "localhost" {
		ip, err := netip.ParseAddr(host)
		if err != nil || !ip.Unmap().IsLoopback() {
			return fieldErr("control", "%q is not a loopback address (the control API binds only 127.0.0.0/8, ::1 or localhost)", host)
		}
	}
	return nil
}

// URL is the API's base URL (http://127.0.0.1:PORT).
func (cs *ControlServer) URL() string { return "http://" + cs.ln.Addr().String() }

// Close stops the API.
func (cs *ControlServer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return cs.srv.Shutdown(ctx)
}

// ---------------------------------------------------------------------------
// Client

// Client talks to a simulator's control API (for tests and tools).
type Client struct {
	BaseURL string
	HTTP    *http.Client
}

// NewClient returns a client for the API at baseURL (e.g.
// "http://127.0.0.1:40123").
func NewClient(baseURL string) *Client {
	return &Client{BaseURL: strings.TrimRight(baseURL, "/"), HTTP: &http.Client{Timeout: 30 * time.Second}}
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		ae := &APIError{Status: resp.StatusCode}
		if json.Unmarshal(data, ae) != nil || ae.Message == "" {
			ae.Message = strings.TrimSpace(string(data))
		}
		return ae
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(data, out)
}

// Fleet returns the fleet summary.
func (c *Client) Fleet(ctx context.Context) (FleetSummary, error) {
	var s FleetSummary
	err := c.do(ctx, http.MethodGet, "/v1/fleet", nil, &s)
	return s, err
}

// BMCs lists every endpoint.
func (c *Client) BMCs(ctx context.Context) ([]Status, error) {
	var out struct {
		BMCs []Status `json:"bmcs"`
	}
	err := c.do(ctx, http.MethodGet, "/v1/bmcs", nil, &out)
	return out.BMCs, err
}

// BMC returns one endpoint's status.
func (c *Client) BMC(ctx context.Context, name string) (Status, error) {
	var st Status
	err := c.do(ctx, http.MethodGet, "/v1/bmcs/"+url.PathEscape(name), nil, &st)
	return st, err
}

// SetFaults replaces a BMC's faults.
func (c *Client) SetFaults(ctx context.Context, name string, f Faults) (Status, error) {
	var st Status
	err := c.do(ctx, http.MethodPut, "/v1/bmcs/"+url.PathEscape(name)+"/faults", f, &st)
	return st, err
}

// ClearFaults removes a BMC's faults.
func (c *Client) ClearFaults(ctx context.Context, name string) (Status, error) {
	var st Status
	err := c.do(ctx, http.MethodDelete, "/v1/bmcs/"+url.PathEscape(name)+"/faults", nil, &st)
	return st, err
}

// SetPower switches a BMC's chassis power.
func (c *Client) SetPower(ctx context.Context, name string, on bool) (Status, error) {
	var st Status
	err := c.do(ctx, http.MethodPut, "/v1/bmcs/"+url.PathEscape(name)+"/power", map[string]bool{"on": on}, &st)
	return st, err
}

// Swap exchanges two BMCs' addresses.
func (c *Client) Swap(ctx context.Context, a, b string) error {
	return c.do(ctx, http.MethodPost, "/v1/swap", map[string]string{"a": a, "b": b}, nil)
}

// Enclosures lists the enclosures.
func (c *Client) Enclosures(ctx context.Context) ([]EnclosureStatus, error) {
	var out struct {
		Enclosures []EnclosureStatus `json:"enclosures"`
	}
	err := c.do(ctx, http.MethodGet, "/v1/enclosures", nil, &out)
	return out.Enclosures, err
}

// SetEnclosureDown takes an enclosure manager down or brings it back.
func (c *Client) SetEnclosureDown(ctx context.Context, name string, down bool) (EnclosureStatus, error) {
	var st EnclosureStatus
	err := c.do(ctx, http.MethodPut, "/v1/enclosures/"+url.PathEscape(name), map[string]bool{"down": down}, &st)
	return st, err
}

// readBoolBody reads a request body that must be a JSON object with exactly
// one boolean field, name; on bad input it has already answered 400.
func readBoolBody(w http.ResponseWriter, r *http.Request, name string) (bool, bool) {
	raw, ok := readObject(w, r)
	if !ok {
		return false, false
	}
	var v bool
	if err := onlyFields(raw, name); err != nil {
		writeErr(w, err)
		return false, false
	}
	if err := boolField(raw, name, &v, true); err != nil {
		writeErr(w, err)
		return false, false
	}
	return v, true
}
