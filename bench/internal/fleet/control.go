package fleet

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Counters are a BMC's counters as the control API reports them.
type Counters struct {
	PacketsIn            int64 `json:"packets_in"`
	SessionsOpened       int64 `json:"sessions_opened"`
	SessionsClosed       int64 `json:"sessions_closed"`
	ClosedByClient       int64 `json:"sessions_closed_by_client"`
	SessionsOpen         int64 `json:"sessions_open"`
	MaxSessionsOpen      int64 `json:"max_sessions_open"`
	MaxSessionsPerClient int64 `json:"max_sessions_per_client"`
	SessionsRefused      int64 `json:"sessions_refused"`
	AuthAttempts         int64 `json:"auth_attempts"`
	AuthFailures         int64 `json:"auth_failures"`
	MaxInFlight          int64 `json:"max_in_flight"`
}

// BMC is a server BMC as the control API lists it.
type BMC struct {
	Name  string `json:"name"`
	Power string `json:"power"`
	GUID  struct {
		Raw string `json:"raw"` // wire order, what Get System GUID returns
	} `json:"guid"`
	Counters Counters `json:"counters"`
	// Redfish is there when the simulator serves Redfish.
	Redfish *RedfishCounters `json:"redfish,omitempty"`
	// RedfishCertSHA256 is the fingerprint of its Redfish certificate.
	RedfishCertSHA256 string `json:"redfish_cert_sha256,omitempty"`
	// SessionsBySource counts the sessions each client address opened on
	// it since the simulator started.
	SessionsBySource map[string]uint64 `json:"sessions_by_source,omitempty"`
}

// RedfishCounters are a BMC's Redfish counters as the control API reports
// them.
type RedfishCounters struct {
	Requests        int64 `json:"requests"`
	SessionsOpened  int64 `json:"sessions_opened"`
	SessionsClosed  int64 `json:"sessions_closed"`
	SessionsOpen    int64 `json:"sessions_open"`
	MaxSessionsOpen int64 `json:"max_sessions_open"`
	Unauthorized    int64 `json:"unauthorized"`
	Busy            int64 `json:"busy"`
}

var errNoControl = errors.New("no control API")

// Listing is the control API's list of BMCs.
type Listing struct {
	Count int   `json:"count"`
	BMCs  []BMC `json:"bmcs"`
}

// List reads every server BMC of the simulator (GET /v1/bmcs?kind=bmc:
// the whole list in one answer, about 1.2 KB per BMC; the API has no
// paging), waiting at most timeout.
func (s *Sim) List(timeout time.Duration) (Listing, error) {
	var l Listing
	if s.ControlURL == "" {
		return l, errNoControl
	}
	cl := &http.Client{Timeout: timeout}
	resp, err := cl.Get(s.ControlURL + "/v1/bmcs?kind=bmc")
	if err != nil {
		return l, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return l, fmt.Errorf("GET /v1/bmcs: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&l); err != nil {
		return l, fmt.Errorf("GET /v1/bmcs: %v", err)
	}
	return l, nil
}

// Totals are counters summed over BMCs.
type Totals struct {
	PacketsIn, SessionsOpened, SessionsClosed, SessionsOpen int64
	SessionsRefused, AuthAttempts, AuthFailures             int64
	ClosedByClient                                          int64
}

// LeftOpen is, over an interval (a Sub), the sessions opened in it that
// no Close Session ended: what the client that ran then left behind to
// expire, whatever earlier clients left (SessionsOpen, a level, counts
// those too).
func (t Totals) LeftOpen() int64 { return max(0, t.SessionsOpened-t.ClosedByClient) }

// Add adds one BMC's counters.
func (t *Totals) Add(c Counters) {
	t.PacketsIn += c.PacketsIn
	t.SessionsOpened += c.SessionsOpened
	t.SessionsClosed += c.SessionsClosed
	t.ClosedByClient += c.ClosedByClient
	t.SessionsOpen += c.SessionsOpen
	t.SessionsRefused += c.SessionsRefused
	t.AuthAttempts += c.AuthAttempts
	t.AuthFailures += c.AuthFailures
}

// Sub is what happened between two readings: t − o, except SessionsOpen,
// a level and not a count, which is t's.
func (t Totals) Sub(o Totals) Totals {
	return Totals{
		PacketsIn:       t.PacketsIn - o.PacketsIn,
		SessionsOpened:  t.SessionsOpened - o.SessionsOpened,
		SessionsClosed:  t.SessionsClosed - o.SessionsClosed,
		ClosedByClient:  t.ClosedByClient - o.ClosedByClient,
		SessionsOpen:    t.SessionsOpen,
		SessionsRefused: t.SessionsRefused - o.SessionsRefused,
		AuthAttempts:    t.AuthAttempts - o.AuthAttempts,
		AuthFailures:    t.AuthFailures - o.AuthFailures,
	}
}

// Totals sums the counters of every BMC of the simulator (one List).
func (s *Sim) Totals(timeout time.Duration) (Totals, error) {
	var t Totals
	l, err := s.List(timeout)
	if err != nil {
		return t, err
	}
	for _, b := range l.BMCs {
		t.Add(b.Counters)
	}
	return t, nil
}
