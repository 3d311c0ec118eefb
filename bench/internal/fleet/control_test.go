package fleet

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestTotals(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/bmcs" || r.URL.Query().Get("kind") != "bmc" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(`{"count": 2, "bmcs": [
			{"name": "bmc-00001", "power": "on", "guid": {"raw": "00112233445566778899aabbccddeeff"},
			 "counters": {"packets_in": 9, "sessions_opened": 1, "sessions_closed": 1, "auth_attempts": 1, "max_sessions_per_client": 1}},
			{"name": "bmc-00002", "power": "off",
			 "counters": {"packets_in": 7, "sessions_opened": 2, "sessions_open": 1, "sessions_refused": 1, "auth_failures": 1}}]}`))
	}))
	defer srv.Close()
	s := &Sim{ControlURL: srv.URL}
	l, err := s.List(time.Second)
	if err != nil || l.Count != 2 || len(l.BMCs) != 2 || l.BMCs[0].GUID.Raw == "" || l.BMCs[1].Power != "off" || l.BMCs[0].Counters.MaxSessionsPerClient != 1 {
		t.Fatalf("List = %+v, %v", l, err)
	}
	got, err := s.Totals(time.Second)
	want := Totals{PacketsIn: 16, SessionsOpened: 3, SessionsClosed: 1, SessionsOpen: 1, SessionsRefused: 1, AuthAttempts: 1, AuthFailures: 1}
	if err != nil || got != want {
		t.Fatalf("Totals = %+v, %v", got, err)
	}
	if d := got.Sub(Totals{PacketsIn: 10, SessionsOpened: 3, SessionsOpen: 5}); d.PacketsIn != 6 || d.SessionsOpened != 0 || d.SessionsOpen != 1 || d.AuthFailures != 1 {
		t.Errorf("Sub = %+v", d)
	}
	// Sessions a run opened and did not close itself; an earlier run's
	// leftovers (the level SessionsOpen) do not count.
	run := Totals{SessionsOpened: 10, ClosedByClient: 7, SessionsOpen: 12}.Sub(Totals{SessionsOpen: 9})
	if run.LeftOpen() != 3 || (Totals{SessionsOpened: 1, ClosedByClient: 2}).LeftOpen() != 0 {
		t.Errorf("LeftOpen = %d", run.LeftOpen())
	}
	if _, err := (&Sim{}).List(time.Second); err == nil {
		t.Error("List without a control API: no error")
	}
}
