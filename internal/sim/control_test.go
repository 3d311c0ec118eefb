package sim

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lightsout/lightsout/internal/guid"
	"github.com/lightsout/lightsout/internal/inventory"
)

func TestControlAPI(t *testing.T) {
	f := newTestFleet(t, Config{Count: 4, Seed: 21, Enclosures: []EnclosureConfig{{Name: "enc-9", Blades: 2}}}, false)
	cs, err := f.ServeControl("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	api := NewClient(cs.URL())
	ctx := context.Background()

	all, err := api.BMCs(ctx)
	if err != nil || len(all) != 5 {
		t.Fatalf("list: %d %v", len(all), err)
	}
	b := f.BMCs()[2]
	st, err := api.BMC(ctx, b.Name())
	if err != nil || st.Address != b.Addr().Addr().String() || st.Port != int(b.Addr().Port()) || st.GUID.Raw != b.GUID().Hex() ||
		st.RegisteredGUID != b.RegisteredGUID().String() || st.Power != powerWord(b.PowerOn()) || st.Kind != KindBMC {
		t.Fatalf("status: %+v %v", st, err)
	}
	st, err = api.SetFaults(ctx, b.Name(), Faults{Lossy: 0.1, Slow: Duration(2e8), SlotsFull: true})
	if err != nil || st.Faults.Lossy != 0.1 || !st.Faults.SlotsFull || b.Faults().Slow != Duration(2e8) {
		t.Fatalf("set faults: %+v %v", st.Faults, err)
	}
	// The Redfish faults go through the control API too (they were
	// refused as unknown fields).
	rf := Faults{CertReplaced: true, Busy503: true, RedfishNoSessions: true, RedfishNoBasic: true}
	if st, err = api.SetFaults(ctx, b.Name(), rf); err != nil || st.Faults != rf {
		t.Fatalf("Redfish faults: %+v %v", st.Faults, err)
	}
	st, err = api.SetFaults(ctx, b.Name(), Faults{Quirk: QuirkNoPing | QuirkOpenSess01})
	if err != nil || st.Faults.Quirk != QuirkNoPing|QuirkOpenSess01 || !slices.Contains(st.Faults.Names(), "quirk=no_ping,opensess_0x01") {
		t.Fatalf("set quirk: %+v %v", st.Faults, err)
	}
	if st, err = api.ClearFaults(ctx, b.Name()); err != nil || !st.Faults.Zero() {
		t.Fatalf("clear: %+v %v", st.Faults, err)
	}
	if st, err = api.SetPower(ctx, b.Name(), !b.PowerOn()); err != nil || st.Power != powerWord(b.PowerOn()) {
		t.Fatalf("power: %+v %v", st, err)
	}
	es, err := api.Enclosures(ctx)
	if err != nil || len(es) != 1 || es[0].Name != "enc-9" || len(es[0].Blades) != 2 {
		t.Fatalf("enclosures: %+v %v", es, err)
	}
	if e, err := api.SetEnclosureDown(ctx, "enc-9", true); err != nil || !e.Down {
		t.Fatalf("down: %+v %v", e, err)
	}
	if st, _ := api.BMC(ctx, "bmc-00001"); !st.EnclosureDown || st.Enclosure != "enc-9" || st.Slot != 1 {
		t.Errorf("blade of a down enclosure: %+v", st)
	}
	if err := api.Swap(ctx, "bmc-00003", "bmc-00004"); err != nil {
		t.Fatal(err)
	}
	if st, _ := api.BMC(ctx, "bmc-00003"); st.SwappedWith != "bmc-00004" {
		t.Errorf("after swap: %+v", st)
	}
	sum, err := api.Fleet(ctx)
	if err != nil || sum.BMCs != 4 || sum.Enclosures != 1 || sum.Seed != 21 {
		t.Errorf("summary: %+v %v", sum, err)
	}

	// Bad input: 400 naming the field; unknown names: 404.
	for _, c := range []struct {
		method, path, body string
		status             int
		field              string
	}{
		{"PUT", "/v1/bmcs/bmc-00001/faults", `{"silent": true, "bogus": 1}`, 400, "bogus"},
		{"PUT", "/v1/bmcs/bmc-00001/faults", `{"lossy": 1.5}`, 400, "lossy"},
		{"PUT", "/v1/bmcs/bmc-00001/faults", `{"lossy": "half"}`, 400, "lossy"},
		{"PUT", "/v1/bmcs/bmc-00001/faults", `{"slow": "soon"}`, 400, "slow"},
		{"PUT", "/v1/bmcs/bmc-00001/faults", `{"silent": "yes"}`, 400, "silent"},
		{"PUT", "/v1/bmcs/bmc-00001/faults", `[1,2]`, 400, "body"},
		{"PUT", "/v1/bmcs/bmc-00001/faults", `{"silent": true} {}`, 400, "body"},
		{"PUT", "/v1/bmcs/bmc-09999/faults", `{"silent": true}`, 404, ""},
		{"GET", "/v1/bmcs/nope", ``, 404, ""},
		{"DELETE", "/v1/bmcs/nope/faults", ``, 404, ""},
		{"POST", "/v1/swap", `{"a": "bmc-00001"}`, 400, "b"},
		{"POST", "/v1/swap", `{"a": "bmc-00001", "b": "bmc-00001"}`, 400, "b"},
		{"POST", "/v1/swap", `{"a": "bmc-00001", "b": "zzz"}`, 404, ""},
		{"POST", "/v1/swap", `{"a": "bmc-00001", "b": 2}`, 400, "b"},
		{"PUT", "/v1/enclosures/enc-9", `{}`, 400, "down"},
		{"PUT", "/v1/enclosures/enc-9", `{"down": 1}`, 400, "down"},
		{"PUT", "/v1/enclosures/enc-0", `{"down": true}`, 404, ""},
		{"PUT", "/v1/bmcs/bmc-00001/power", `{"on": "off"}`, 400, "on"},
		{"GET", "/v1/bmcs?kind=server", ``, 400, "kind"},
		{"GET", "/v1/bmcs?colour=red", ``, 400, "colour"},
		{"GET", "/v1/nothing", ``, 404, ""},
	} {
		req, _ := http.NewRequest(c.method, cs.URL()+c.path, strings.NewReader(c.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var ae APIError
		_ = json.Unmarshal(data, &ae)
		if resp.StatusCode != c.status || ae.Field != c.field || ae.Message == "" {
			t.Errorf("%s %s %s: %d %s; want %d field %q", c.method, c.path, c.body, resp.StatusCode, data, c.status, c.field)
		}
	}
	var ae *APIError
	if _, err := api.BMC(ctx, "nope"); !errors.As(err, &ae) || ae.Status != 404 {
		t.Errorf("client error: %v", err)
	}

	faulty, err := http.Get(cs.URL() + "/v1/bmcs?faulty=true&kind=bmc")
	if err != nil {
		t.Fatal(err)
	}
	defer faulty.Body.Close()
	var list struct {
		Count int `json:"count"`
	}
	_ = json.NewDecoder(faulty.Body).Decode(&list)
	if list.Count != 0 {
		t.Errorf("faulty BMCs: %d", list.Count)
	}

	if _, err := f.ServeControl("0.0.0.0:0"); err == nil {
		t.Error("control API bound a non-loopback address")
	}
}

func TestExportInventory(t *testing.T) {
	f := newTestFleet(t, Config{Count: 5, Seed: 3, Enclosures: []EnclosureConfig{{Name: "enc-1", Blades: 2}}}, false)
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "fleet.password")
	if err := f.WritePasswordFile(pwFile); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(pwFile)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("password file mode %v %v", st.Mode(), err)
	}
	for _, name := range []string{"fleet.yaml", "fleet.csv"} {
		path := filepath.Join(dir, name)
		if err := f.ExportInventory(path, pwFile); err != nil {
			t.Fatal(err)
		}
		inv, err := inventory.Load(path)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(inv.Machines) != 5 {
			t.Fatalf("%s: %d machines", name, len(inv.Machines))
		}
		for i, m := range inv.Machines {
			b := f.BMCs()[i]
			spelled, err := guid.Parse(m.GUID)
			if err != nil || !b.RegisteredGUID().Matches(spelled) || m.GUID != b.RegisteredGUID().String() {
				t.Errorf("%s %s: guid %q", name, m.Name, m.GUID)
			}
			if m.Name != b.Name() || m.HostPort() != b.HomeAddr().String() || m.User != AdminUser ||
				m.EffectiveProtocol() != "ipmi" || m.Enclosure != b.Enclosure() || m.Slot != b.Slot() || m.PasswordFile != "fleet.password" {
				t.Errorf("%s: %+v", name, m)
			}
			pw, err := m.Password(inv.Dir)
			if err != nil || string(pw) != f.Password() {
				t.Errorf("%s %s: password from file: %v", name, m.Name, err)
			}
		}
	}
	if err := f.ExportInventory(filepath.Join(dir, "fleet.txt"), pwFile); err == nil {
		t.Error("exported to .txt")
	}
	if got := relativeTo(dir, "/etc/x.pw"); got != "/etc/x.pw" {
		t.Errorf("relativeTo outside: %s", got)
	}
}
