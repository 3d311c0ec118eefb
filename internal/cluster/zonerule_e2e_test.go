package cluster_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/cluster"
	"github.com/lightsout/lightsout/internal/inventory"
	"github.com/lightsout/lightsout/internal/poll"
	"github.com/lightsout/lightsout/internal/server"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
)

// TestZoneFromSubnet: a server with --zone-rule places machines imported
// or added (through the API) without a zone by their BMC subnet, keeps a
// zone a machine names, and checks only the zone it serves.
func TestZoneFromSubnet(t *testing.T) {
	rules, err := cluster.ParseZoneRules([]string{"127.0.44.0/24=dc1", "127.0.45.0/24=dc2", "127.0.45.128/25=dc2-b"})
	if err != nil {
		t.Fatal(err)
	}
	sch := state.Schedule{Interval: time.Hour, Jitter: 0.1, Confirm: time.Minute, MaxBackoff: time.Hour, AuthRetry: time.Hour}
	s, err := server.New(context.Background(), server.Config{DataDir: t.TempDir(), Schedule: sch, Timeout: 200 * time.Millisecond,
		Cluster: cluster.Config{Name: "z1", Zones: []string{"dc1"}, ZoneRules: rules, PeerAddress: "127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	inv := &inventory.Inventory{Machines: []inventory.Machine{
		{Name: "a1", Address: "127.0.44.1", User: "u"},
		{Name: "a2", Address: "127.0.44.2", User: "u"},
		{Name: "b1", Address: "127.0.45.1", User: "u"},
		{Name: "b2", Address: "127.0.45.200", User: "u"},               // the longer prefix
		{Name: "c1", Address: "127.0.46.1", User: "u"},                 // no rule: default
		{Name: "named", Address: "127.0.44.9", User: "u", Zone: "lab"}, // a named zone is kept
	}}
	pw := map[string][]byte{}
	for _, m := range inv.Machines {
		pw[m.Name] = []byte("pw")
	}
	if _, err := s.Manager.Import(context.Background(), scaleAdmin, inv, pw, nil, false); err != nil {
		t.Fatal(err)
	}
	// Added through the API.
	hs := httptest.NewServer(apiOf(s))
	t.Cleanup(hs.Close)
	tok, err := server.CreateToken(context.Background(), s.Store, "t", store.RoleOperator, "")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"name": "a3", "account": map[string]any{"address": "127.0.44.3", "user": "u", "password": "pw"}})
	req, _ := http.NewRequest("POST", hs.URL+"/api/v1/machines", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /api/v1/machines: %s", resp.Status)
	}
	want := map[string]string{"a1": "dc1", "a2": "dc1", "a3": "dc1", "b1": "dc2", "b2": "dc2-b", "c1": "", "named": "lab"}
	for name, z := range want {
		m, err := s.Store.Machine(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		if m.Zone != z {
			t.Errorf("%s (%s): zone %q, want %q", name, name, m.Zone, z)
		}
	}
	// The instance serves dc1: it holds a1, a2 and a3 only.
	if !poll.Wait(10*time.Second, func() bool { return s.Node.Held() == 3 }) {
		t.Errorf("instance serving dc1 holds %d machines, want 3 (a1, a2, a3)", s.Node.Held())
	}
}
