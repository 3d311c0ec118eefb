package api_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/lightsout/lightsout/internal/api/apitest"
	"github.com/lightsout/lightsout/internal/api/client"
	"github.com/lightsout/lightsout/internal/manager"
	"github.com/lightsout/lightsout/internal/store"
)

// TestMachinesPaged: GET /api/v1/machines answers 100 machines by default
// with the cursor of the next page, at most 1000 on request (1001 is
// refused naming limit), and filters by zone and name prefix in the
// database; following the cursors lists every machine once.
func TestMachinesPaged(t *testing.T) {
	e := apitest.Start(t, apitest.Options{})
	for i := range 250 {
		m := store.Machine{Name: fmt.Sprintf("node-%03d", i)}
		if i%5 == 0 {
			m.Zone = "dc2"
		}
		if err := e.Server.Store.AddMachine(ctx(t), &m); err != nil {
			t.Fatal(err)
		}
	}
	cl := e.Client(t, store.RoleViewer)
	page, err := cl.Machines(ctx(t), client.MachineQuery{})
	if err != nil || len(page.Machines) != 100 || page.NextAfter == 0 {
		t.Fatalf("default page: %d machines, next %d, %v", len(page.Machines), page.NextAfter, err)
	}
	seen := map[string]bool{}
	if err := cl.AllMachines(ctx(t), client.MachineQuery{Limit: 100}, func(mv manager.MachineView) error {
		if seen[mv.Name] {
			t.Errorf("%s listed twice", mv.Name)
		}
		seen[mv.Name] = true
		return nil
	}); err != nil || len(seen) != 250 {
		t.Fatalf("all pages: %d machines, %v", len(seen), err)
	}
	st, b := raw(t, e, store.RoleViewer, "GET", "/api/v1/machines?limit=1001", "")
	wantError(t, "limit above the maximum", st, b, 400, "invalid_field", "limit")
	st, b = raw(t, e, store.RoleViewer, "GET", "/api/v1/machines?zone=dc2&prefix=node-1&limit=1000", "")
	if st != 200 {
		t.Fatalf("zone and prefix: %d %s", st, b)
	}
	var got struct {
		Machines []struct {
			Name string `json:"name"`
			Zone string `json:"zone"`
		} `json:"machines"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Machines) != 20 { // node-100..node-199, every fifth
		t.Errorf("zone dc2, prefix node-1: %d machines", len(got.Machines))
	}
	for _, m := range got.Machines {
		if m.Zone != "dc2" || m.Name[:6] != "node-1" {
			t.Errorf("selected %+v", m)
		}
	}
}
