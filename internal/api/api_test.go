package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/api/apitest"
	"github.com/lightsout/lightsout/internal/api/client"
	"github.com/lightsout/lightsout/internal/api/wire"
	"github.com/lightsout/lightsout/internal/manager"
	"github.com/lightsout/lightsout/internal/power"
	"github.com/lightsout/lightsout/internal/sim"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
	"github.com/lightsout/lightsout/internal/store/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// raw sends one request with the role's token ("" for none) and returns
// the status and body.
func raw(t *testing.T, e *apitest.Env, role store.Role, method, path, body string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if role != "" {
		req.Header.Set("Authorization", "Bearer "+e.Tokens[role])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// wantError asserts an error reply's status, code and field.
func wantError(t *testing.T, what string, status int, body []byte, wantStatus int, code, field string) wire.ErrorBody {
	t.Helper()
	var er wire.ErrorResponse
	if err := json.Unmarshal(body, &er); err != nil {
		t.Errorf("%s: not a JSON error (%d): %s", what, status, body)
		return er.Error
	}
	if status != wantStatus || er.Error.Code != code || er.Error.Field != field || er.Error.Message == "" {
		t.Errorf("%s: %d %s field %q (%s), want %d %s field %q", what, status, er.Error.Code, er.Error.Field,
			er.Error.Message, wantStatus, code, field)
	}
	return er.Error
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

func fleetConfig() sim.Config {
	return sim.Config{Count: 8, Seed: 11, Enclosures: []sim.EnclosureConfig{{Name: "enc-a", Blades: 2}}}
}

func TestAPISQLite(t *testing.T) { suite(t, "") }

func TestAPIPostgres(t *testing.T) { suite(t, pgtest.DSN(t)) }

// suite runs the API end to end: real server, real HTTP, simulated BMCs
// over real UDP. Subtests share one server and run in order.
func suite(t *testing.T, dsn string) {
	e := apitest.Start(t, apitest.Options{DSN: dsn, Fleet: fleetConfig()})
	adm := e.Client(t, store.RoleAdmin)
	op := e.Client(t, store.RoleOperator)
	view := e.Client(t, store.RoleViewer)

	t.Run("Auth", func(t *testing.T) {
		st, b := raw(t, e, "", "GET", "/api/v1/whoami", "")
		wantError(t, "no token", st, b, 401, "unauthorized", "")
		req, _ := http.NewRequest("GET", e.URL+"/api/v1/whoami", nil)
		req.Header.Set("Authorization", "Bearer lso_not-a-real-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		wantError(t, "bad token", resp.StatusCode, b, 401, "unauthorized", "")
		if resp.Header.Get("WWW-Authenticate") == "" {
			t.Error("401 without WWW-Authenticate")
		}
		for role, c := range map[store.Role]*client.Client{store.RoleAdmin: adm, store.RoleOperator: op, store.RoleViewer: view} {
			w, err := c.WhoAmI(ctx(t))
			if err != nil || w.Role != role {
				t.Errorf("whoami as %s: %+v %v", role, w, err)
			}
		}
		// Role gates: a viewer cannot read the audit log or tokens, an
		// operator cannot list tokens.
		st, b = raw(t, e, store.RoleViewer, "GET", "/api/v1/audit", "")
		wantError(t, "viewer audit", st, b, 403, "forbidden", "")
		st, b = raw(t, e, store.RoleOperator, "GET", "/api/v1/tokens", "")
		wantError(t, "operator tokens", st, b, 403, "forbidden", "")
		st, _ = raw(t, e, store.RoleOperator, "GET", "/api/v1/audit", "")
		if st != 200 {
			t.Errorf("operator audit: %d", st)
		}
		// A revoked token stops working at once.
		tr, err := adm.CreateToken(ctx(t), "short-lived", store.RoleViewer)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := client.New(e.URL, tr.Secret)
		if _, err := c.WhoAmI(ctx(t)); err != nil {
			t.Fatalf("new token: %v", err)
		}
		if err := adm.RevokeToken(ctx(t), "short-lived"); err != nil {
			t.Fatal(err)
		}
		var ce *client.Error
		if _, err := c.WhoAmI(ctx(t)); !errors.As(err, &ce) || ce.Status != 401 || !strings.Contains(ce.Message, "revoked") {
			t.Errorf("revoked token: %v", err)
		}
	})

	t.Run("ImportAllOrNothing", func(t *testing.T) {
		req := e.FleetImport(t)
		good := req.Content
		// Break the port of the third machine: its line is named, and
		// nothing is imported.
		lines := strings.Split(good, "\n")
		badLine, seen := 0, 0
		for i, l := range lines {
			if strings.Contains(l, "port:") && !strings.Contains(l, "enclosures") {
				seen++
				if seen == 4 { // enclosure's port, then machines 1..3
					lines[i] = strings.Replace(l, l[strings.Index(l, "port:"):], "port: 99999", 1)
					badLine = i + 1
					break
				}
			}
		}
		req.Content = strings.Join(lines, "\n")
		_, err := adm.Import(ctx(t), req)
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Status != 400 || ce.Code != "invalid_field" || ce.Field != "port" || ce.Line != badLine {
			t.Fatalf("bad import: %#v (want line %d)", err, badLine)
		}
		if len(ce.Errors) != 1 || ce.Errors[0].Line != badLine || ce.Errors[0].Field != "port" {
			t.Errorf("errors: %+v", ce.Errors)
		}
		// A missing password and one for an unknown machine: both reported.
		req = e.FleetImport(t)
		delete(req.Passwords, "bmc-00002")
		req.Passwords["bmc-99999"] = "x"
		_, err = adm.Import(ctx(t), req)
		if !errors.As(err, &ce) || ce.Code != "invalid_field" || len(ce.Errors) != 2 {
			t.Fatalf("password problems: %#v", err)
		}
		ms, err := adm.Machines(ctx(t), client.MachineQuery{})
		if err != nil || len(ms.Machines) != 0 {
			t.Fatalf("after refused imports: %d machines, %v", len(ms.Machines), err)
		}
		// A viewer may not import; an operator may.
		req = e.FleetImport(t)
		if _, err := view.Import(ctx(t), req); !errors.As(err, &ce) || ce.Status != 403 {
			t.Errorf("viewer import: %v", err)
		}
		res, err := op.Import(ctx(t), req)
		if err != nil || res.Machines != 8 || res.Enclosures != 1 {
			t.Fatalf("import: %+v %v", res, err)
		}
		// Again: every machine exists now, all refused, conflict named.
		if _, err := op.Import(ctx(t), req); !errors.As(err, &ce) || ce.Status != 409 || ce.Line == 0 {
			t.Errorf("second import: %#v", err)
		}
		// replace needs admin.
		req.Replace = true
		if _, err := op.Import(ctx(t), req); !errors.As(err, &ce) || ce.Status != 403 {
			t.Errorf("operator replace import: %v", err)
		}
	})

	t.Run("CheckNowFreshState", func(t *testing.T) {
		res, err := op.Check(ctx(t), nil, "")
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Code != "invalid_field" || ce.Field != "machines" {
			t.Errorf("check nothing: %v", err)
		}
		if _, err := view.Check(ctx(t), []string{"bmc-00001"}, ""); !errors.As(err, &ce) || ce.Status != 403 {
			t.Errorf("viewer check: %v", err)
		}
		names := []string{"bmc-00001", "bmc-00002", "bmc-00003", "bmc-00004", "bmc-00005", "bmc-00006", "bmc-00007", "bmc-00008"}
		res, err = op.Check(ctx(t), names, "")
		if err != nil || len(res) != 8 {
			t.Fatalf("check: %d results, %v", len(res), err)
		}
		for _, r := range res {
			if r.State.State != state.Connectable {
				t.Errorf("%s: %s/%s %s", r.Machine, r.State.State, r.State.Reason, r.State.Message)
			}
		}
		// A fault, then a check: the fresh state, not the old one.
		if err := e.Fleet.SetFaults("bmc-00005", sim.Faults{WrongPassword: true}); err != nil {
			t.Fatal(err)
		}
		res, err = op.Check(ctx(t), []string{"bmc-00005"}, "")
		if err != nil || len(res) != 1 || res[0].State.State != state.NotAuthenticated || res[0].State.Reason != state.ReasonWrongPassword {
			t.Fatalf("after wrong_password: %+v %v", res, err)
		}
		if res[0].Remedy == "" || res[0].Account.ID == 0 {
			t.Errorf("no remedy or account: %+v", res[0])
		}
		mv, err := view.Machine(ctx(t), "bmc-00005")
		if err != nil || mv.Channels[0].State.State != state.NotAuthenticated {
			t.Errorf("machine view after check: %+v %v", mv, err)
		}
	})

	t.Run("PowerRefusedOnNotResponding", func(t *testing.T) {
		if err := e.Fleet.SetFaults("bmc-00004", sim.Faults{Silent: true}); err != nil {
			t.Fatal(err)
		}
		res, err := op.Check(ctx(t), []string{"bmc-00004"}, "")
		if err != nil || res[0].State.State != state.NotResponding {
			t.Fatalf("silent BMC: %+v %v", res, err)
		}
		b, _ := e.Fleet.BMC("bmc-00004")
		before := b.PowerOn()
		var lines []power.Result
		sum, err := op.Power(ctx(t), wire.PowerRequest{Action: "off", Machines: []string{"bmc-00004"}},
			func(r power.Result) { lines = append(lines, r) })
		if err != nil || sum.Refused != 1 || len(lines) != 1 {
			t.Fatalf("power off silent: %+v %+v %v", sum, lines, err)
		}
		msg := lines[0].Message
		for _, want := range []string{"refused", "NotResponding", "silent", "since " + res[0].State.Since.UTC().Format(time.RFC3339), "UDP 623"} {
			if !strings.Contains(msg, want) {
				t.Errorf("refusal %q lacks %q", msg, want)
			}
		}
		if b.PowerOn() != before {
			t.Error("a refused operation changed the power")
		}
	})

	t.Run("PowerOffChangesSimulatedPower", func(t *testing.T) {
		if err := e.Fleet.SetPower("bmc-00003", true); err != nil {
			t.Fatal(err)
		}
		// A viewer may read the power status, not switch it.
		sum, err := view.Power(ctx(t), wire.PowerRequest{Action: "status", Machines: []string{"bmc-00003"}}, nil)
		if err != nil || sum.OK != 1 {
			t.Fatalf("viewer status: %+v %v", sum, err)
		}
		var ce *client.Error
		_, err = view.Power(ctx(t), wire.PowerRequest{Action: "off", Machines: []string{"bmc-00003"}}, nil)
		if !errors.As(err, &ce) || ce.Status != 403 || ce.Code != "forbidden" {
			t.Fatalf("viewer power off: %v", err)
		}
		b, _ := e.Fleet.BMC("bmc-00003")
		if !b.PowerOn() {
			t.Fatal("a forbidden power off switched the BMC off")
		}
		var got power.Result
		sum, err = op.Power(ctx(t), wire.PowerRequest{Action: "off", Machines: []string{"bmc-00003"}},
			func(r power.Result) { got = r })
		if err != nil || sum.OK != 1 || got.Result != "ok" || got.Power != "off" {
			t.Fatalf("power off: %+v %+v %v", sum, got, err)
		}
		if b.PowerOn() {
			t.Error("the simulated BMC is still on")
		}
		sum, err = op.Power(ctx(t), wire.PowerRequest{Action: "on", Machines: []string{"bmc-00003"}}, nil)
		if err != nil || sum.OK != 1 || !b.PowerOn() {
			t.Errorf("power on: %+v %v, on=%v", sum, err, b.PowerOn())
		}
	})

	t.Run("StaggeredBulkPower", func(t *testing.T) {
		names := []string{"bmc-00001", "bmc-00002", "bmc-00003", "bmc-00006", "bmc-00007"}
		body, _ := json.Marshal(wire.PowerRequest{Action: "status", Machines: names, Batch: 2, Interval: "300ms"})
		req, _ := http.NewRequest("POST", e.URL+"/api/v1/power", strings.NewReader(string(body)))
		req.Header.Set("Authorization", "Bearer "+e.Tokens[store.RoleOperator])
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
			t.Errorf("Content-Type %q", ct)
		}
		sc := bufio.NewScanner(resp.Body)
		var batches []int
		var arrived []time.Duration
		var sum *wire.PowerSummary
		for sc.Scan() {
			var l wire.PowerLine
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				t.Fatalf("line %q: %v", sc.Text(), err)
			}
			if l.Summary != nil {
				sum = l.Summary
				continue
			}
			if l.Result.Result != "ok" || l.Result.Power == "" {
				t.Errorf("%s: %+v", l.Result.Machine, *l.Result)
			}
			batches = append(batches, l.Result.Batch)
			arrived = append(arrived, time.Since(start))
		}
		if sum == nil || sum.OK != 5 {
			t.Fatalf("summary %+v", sum)
		}
		if want := []int{1, 1, 2, 2, 3}; len(batches) != 5 || batches[0] != 1 || batches[1] != 1 || batches[2] != 2 || batches[3] != 2 || batches[4] != 3 {
			t.Errorf("batches %v, want %v", batches, want)
		}
		// Streamed: the first batch arrived before the last one started
		// (two 300 ms rests later).
		if len(arrived) == 5 && arrived[4]-arrived[0] < 500*time.Millisecond {
			t.Errorf("results arrived at %v: not staggered or not streamed", arrived)
		}
	})

	t.Run("HistoryAfterFault", func(t *testing.T) {
		h, err := view.History(ctx(t), "bmc-00004", 0, 10)
		if err != nil || len(h.Transitions) == 0 {
			t.Fatalf("history: %+v %v", h, err)
		}
		last := h.Transitions[0]
		if last.From != state.Connectable || last.To != state.NotResponding || last.Reason != state.ReasonSilent {
			t.Errorf("newest transition %+v", last)
		}
		evs, err := view.Events(ctx(t), time.Now().Add(-time.Hour), "oob.state_changed", 0)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, ev := range evs {
			found = found || (ev.Source == "bmc-00004" && strings.Contains(ev.Message, "NotResponding"))
		}
		if !found {
			t.Errorf("no oob.state_changed event for bmc-00004 in %+v", evs)
		}
	})

	t.Run("Lifecycle", func(t *testing.T) {
		var ce *client.Error
		// Replacing by a spare whose channel is NotResponding is refused.
		spare := true
		if _, err := op.UpdateMachine(ctx(t), "bmc-00004", manager.MachinePatch{Spare: &spare}); err != nil {
			t.Fatal(err)
		}
		_, err := op.Replace(ctx(t), "bmc-00007", "bmc-00004")
		if !errors.As(err, &ce) || ce.Status != 409 || ce.Code != "refused" || !strings.Contains(ce.Message, "NotResponding") {
			t.Errorf("replace by a dead spare: %#v", err)
		}
		g := "web"
		if _, err := op.UpdateMachine(ctx(t), "bmc-00007", manager.MachinePatch{Group: &g}); err != nil {
			t.Fatal(err)
		}
		if _, err := op.UpdateMachine(ctx(t), "bmc-00008", manager.MachinePatch{Spare: &spare}); err != nil {
			t.Fatal(err)
		}
		rr, err := op.Replace(ctx(t), "bmc-00007", "bmc-00008")
		if err != nil || rr.Spare.Group != "web" || rr.Spare.Spare || rr.Old.Group != "" {
			t.Errorf("replace: %+v %v", rr, err)
		}
		// Adopt and register are admin's.
		if _, err := op.Adopt(ctx(t), "bmc-00006", ""); !errors.As(err, &ce) || ce.Status != 403 {
			t.Errorf("operator adopt: %v", err)
		}
		if err := e.Fleet.SetFaults("bmc-00006", sim.Faults{GUIDReplaced: true}); err != nil {
			t.Fatal(err)
		}
		res, err := op.Check(ctx(t), []string{"bmc-00006"}, "")
		if err != nil || res[0].State.State != state.Invalid {
			t.Fatalf("after GUID replaced: %+v %v", res, err)
		}
		mv, err := adm.Adopt(ctx(t), "bmc-00006", "")
		b, _ := e.Fleet.BMC("bmc-00006")
		if err != nil || mv.GUID == "" || mv.Channels[0].State.State != state.Connectable || !strings.EqualFold(mv.GUID, b.GUID().String()) {
			t.Errorf("adopt: %+v %v (BMC now %s)", mv, err, b.GUID())
		}
		mv, err = adm.Register(ctx(t), "bmc-00002")
		if err != nil || mv.GUID != "" || !mv.Registering {
			t.Errorf("register: %+v %v", mv, err)
		}
		// Allocate: one machine joins, a dead one is refused.
		var results []power.Result
		sum, err := op.Allocate(ctx(t), wire.AllocateRequest{Group: "db", Machines: []string{"bmc-00001", "bmc-00004"}},
			func(r power.Result) { results = append(results, r) })
		if err != nil || sum.OK != 1 || sum.Refused != 1 {
			t.Errorf("allocate: %+v %+v %v", sum, results, err)
		}
		if mv, _ := view.Machine(ctx(t), "bmc-00001"); mv.Group != "db" {
			t.Errorf("allocated machine's group %q", mv.Group)
		}
	})

	t.Run("CRUDAndErrorCodes", func(t *testing.T) {
		var ce *client.Error
		pw := "secret-pw"
		in := manager.MachineInput{Name: "extra-1", Group: "lab", Tags: []string{"t1"},
			Account: &manager.AccountInput{Address: "127.0.0.1", Port: 9, User: ptr("admin"), Password: &pw}}
		mv, err := op.AddMachine(ctx(t), in)
		if err != nil || mv.ID == 0 || len(mv.Channels) != 1 || mv.Channels[0].Account.Address != "127.0.0.1" {
			t.Fatalf("add machine: %+v %v", mv, err)
		}
		// conflict: the same name again.
		if _, err := op.AddMachine(ctx(t), manager.MachineInput{Name: "extra-1"}); !errors.As(err, &ce) || ce.Status != 409 || ce.Code != "conflict" {
			t.Errorf("duplicate: %#v", err)
		}
		// invalid_field with the field named.
		bad := in
		bad.Name = "extra-2"
		bad.Account = &manager.AccountInput{Address: "127.0.0.1", Port: 99999}
		if _, err := op.AddMachine(ctx(t), bad); !errors.As(err, &ce) || ce.Status != 400 || ce.Code != "invalid_field" || ce.Field != "port" {
			t.Errorf("bad port: %#v", err)
		}
		bad.Account = &manager.AccountInput{Address: "127.0.0.1", Privilege: "root"}
		if _, err := op.AddMachine(ctx(t), bad); !errors.As(err, &ce) || ce.Field != "privilege" {
			t.Errorf("bad privilege: %#v", err)
		}
		if _, err := view.Machine(ctx(t), "extra-2"); !errors.As(err, &ce) || ce.Status != 404 {
			t.Errorf("a refused add left a machine: %v", err)
		}
		// bad_request: malformed JSON, unknown field, wrong type.
		st, b := raw(t, e, store.RoleOperator, "POST", "/api/v1/machines", `{"name": "x",`)
		wantError(t, "truncated JSON", st, b, 400, "bad_request", "")
		st, b = raw(t, e, store.RoleOperator, "POST", "/api/v1/machines", `{"name": "x", "colour": "red"}`)
		wantError(t, "unknown field", st, b, 400, "bad_request", "colour")
		st, b = raw(t, e, store.RoleOperator, "POST", "/api/v1/machines", `{"name": "x", "slot": "three"}`)
		wantError(t, "wrong type", st, b, 400, "bad_request", "slot")
		st, b = raw(t, e, store.RoleOperator, "POST", "/api/v1/machines", `{"name": "x", "account": {"port": true}}`)
		wantError(t, "nested wrong type", st, b, 400, "bad_request", "account.port")
		st, b = raw(t, e, store.RoleOperator, "POST", "/api/v1/machines", "")
		wantError(t, "empty body", st, b, 400, "bad_request", "")
		st, b = raw(t, e, store.RoleOperator, "POST", "/api/v1/machines", `{"name":"x"} {"name":"y"}`)
		wantError(t, "two objects", st, b, 400, "bad_request", "")
		st, b = raw(t, e, store.RoleOperator, "POST", "/api/v1/machines", `{"name":"`+strings.Repeat("x", 2<<20)+`"}`)
		wantError(t, "too large", st, b, 413, "too_large", "")
		// not_found, with the parameter named.
		st, b = raw(t, e, store.RoleViewer, "GET", "/api/v1/machines/nope", "")
		wantError(t, "no machine", st, b, 404, "not_found", "name")
		st, b = raw(t, e, store.RoleViewer, "GET", "/api/v1/accounts/999999", "")
		wantError(t, "no account", st, b, 404, "not_found", "id")
		st, b = raw(t, e, store.RoleViewer, "GET", "/api/v1/accounts/abc", "")
		wantError(t, "bad id", st, b, 400, "invalid_field", "id")
		st, b = raw(t, e, store.RoleViewer, "GET", "/api/v1/machines?limit=0", "")
		wantError(t, "bad limit", st, b, 400, "invalid_field", "limit")
		st, b = raw(t, e, store.RoleViewer, "GET", "/api/v1/machines?grup=x", "")
		wantError(t, "unknown parameter", st, b, 400, "invalid_field", "grup")
		st, b = raw(t, e, store.RoleViewer, "GET", "/api/v1/events?since=yesterday", "")
		wantError(t, "bad since", st, b, 400, "invalid_field", "since")
		st, b = raw(t, e, store.RoleViewer, "GET", "/api/v1/nothing-here", "")
		wantError(t, "no route", st, b, 404, "not_found", "")
		st, b = raw(t, e, store.RoleViewer, "DELETE", "/api/v1/whoami", "")
		wantError(t, "wrong method", st, b, 405, "method_not_allowed", "")
		st, b = raw(t, e, store.RoleOperator, "POST", "/api/v1/power", `{"action":"explode","machines":["bmc-00001"]}`)
		wantError(t, "bad action", st, b, 400, "invalid_field", "action")
		st, b = raw(t, e, store.RoleOperator, "POST", "/api/v1/power", `{"action":"status","machines":["bmc-00001"],"interval":"5s"}`)
		wantError(t, "interval without batch", st, b, 400, "invalid_field", "interval")
		st, b = raw(t, e, store.RoleOperator, "POST", "/api/v1/power", `{"action":"status","machines":["ghost"]}`)
		wantError(t, "unknown machine", st, b, 404, "not_found", "machines")
		st, b = raw(t, e, store.RoleOperator, "POST", "/api/v1/import", `{"format":"xml","content":"x"}`)
		wantError(t, "bad format", st, b, 400, "invalid_field", "format")
		st, b = raw(t, e, store.RoleOperator, "POST", "/api/v1/import",
			`{"format":"yaml","content":"machines:\n  - {name: zero-suite, address: 10.9.9.9, cipher_suites: [17, 0]}\n"}`)
		wantError(t, "import with suite 0 allowed", st, b, 400, "invalid_field", "cipher_suites")

		// Operator edits, admin deletes.
		id := mv.Channels[0].Account.ID
		user := "root"
		cv, err := op.UpdateAccount(ctx(t), id, manager.AccountInput{User: &user})
		if err != nil || cv.Account.User != "root" {
			t.Errorf("update account: %+v %v", cv, err)
		}
		long := strings.Repeat("p", 21)
		if _, err := op.UpdateAccount(ctx(t), id, manager.AccountInput{Password: &long}); !errors.As(err, &ce) || ce.Field != "password" {
			t.Errorf("long password: %#v", err)
		}
		// A cipher suite allow-list: kept; suite 0 or an unknown suite is
		// refused naming the field, and the account keeps its list.
		allow := []int{17, 3}
		if cv, err := op.UpdateAccount(ctx(t), id, manager.AccountInput{CipherSuites: &allow}); err != nil || !slices.Equal(cv.Account.CipherSuites, allow) {
			t.Errorf("cipher_suites: %+v %v", cv.Account, err)
		}
		for _, bad := range [][]int{{17, 0}, {17, 4}} {
			if _, err := op.UpdateAccount(ctx(t), id, manager.AccountInput{CipherSuites: &bad}); !errors.As(err, &ce) || ce.Field != "cipher_suites" {
				t.Errorf("cipher_suites %v: %#v", bad, err)
			}
		}
		if cv, err := op.Account(ctx(t), id); err != nil || !slices.Equal(cv.Account.CipherSuites, allow) {
			t.Errorf("after refused edits: %+v %v", cv.Account, err)
		}
		if err := op.DeleteMachine(ctx(t), "extra-1"); !errors.As(err, &ce) || ce.Status != 403 {
			t.Errorf("operator delete: %v", err)
		}
		if err := adm.DeleteMachine(ctx(t), "extra-1"); err != nil {
			t.Errorf("admin delete: %v", err)
		}
		if _, err := view.Machine(ctx(t), "extra-1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("after delete: %v", err)
		}
		// The body never carries a password.
		st, b = raw(t, e, store.RoleViewer, "GET", "/api/v1/accounts", "")
		if st != 200 || strings.Contains(string(b), `"password":`) || strings.Contains(string(b), e.Fleet.Password()) {
			t.Errorf("accounts listing leaks a password: %s", b)
		}
		// Enclosures.
		encs, err := view.Enclosures(ctx(t))
		if err != nil || len(encs) != 1 || encs[0].Name != "enc-a" {
			t.Errorf("enclosures: %+v %v", encs, err)
		}
		if _, err := op.AddEnclosure(ctx(t), manager.EnclosureInput{Name: "enc-b", Address: "127.0.0.1", Slots: 100}); !errors.As(err, &ce) || ce.Field != "slots" {
			t.Errorf("100 slots: %#v", err)
		}
		if _, err := op.AddEnclosure(ctx(t), manager.EnclosureInput{Name: "enc-b", Address: "127.0.0.1", Slots: 4}); err != nil {
			t.Errorf("add enclosure: %v", err)
		}
		if err := adm.DeleteEnclosure(ctx(t), "enc-b"); err != nil {
			t.Errorf("delete enclosure: %v", err)
		}
		// An enclosure asked about its blades by standard IPMI bridging:
		// kind ipmb with its slot-to-address rule, refused when the rule
		// is not one.
		ipmbKind, badRule, rule := "ipmb", "0x83+2", "0x82,0x84,0x88,0x8a"
		if _, err := op.AddEnclosure(ctx(t), manager.EnclosureInput{Name: "shelf-c", Address: "127.0.0.3", Slots: 4, Kind: &ipmbKind, IPMB: &badRule}); !errors.As(err, &ce) || ce.Field != "ipmb" {
			t.Errorf("odd IPMB address: %#v", err)
		}
		if en, err := op.AddEnclosure(ctx(t), manager.EnclosureInput{Name: "shelf-c", Address: "127.0.0.3", Slots: 4, Kind: &ipmbKind, IPMB: &rule}); err != nil || en.Kind != "ipmb" || en.IPMB != rule {
			t.Errorf("add an ipmb enclosure: %+v %v", en, err)
		}
		if err := adm.DeleteEnclosure(ctx(t), "shelf-c"); err != nil {
			t.Errorf("delete enclosure: %v", err)
		}
		// Export has no password and parses back.
		out, err := view.Export(ctx(t), "csv")
		if err != nil || !strings.Contains(string(out), "bmc-00001") || strings.Contains(string(out), e.Fleet.Password()) {
			t.Errorf("export: %v\n%s", err, out)
		}
	})

	t.Run("AuditAndMetrics", func(t *testing.T) {
		entries, err := op.Audit(ctx(t), "bmc-00003", 0)
		if err != nil {
			t.Fatal(err)
		}
		var off bool
		for _, a := range entries {
			off = off || (a.Action == "power.off" && a.Result == "ok" && a.Actor == "operator")
		}
		if !off {
			t.Errorf("no audit entry for the power off: %+v", entries)
		}
		m, err := view.Metrics(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{`lightsout_channels{kind="oob",state="Connectable"}`, `lightsout_operations_total{action="power.off",result="ok"} 1`,
			`lightsout_operations_total{action="power.off",result="refused"} 1`, "lightsout_ipmi_sessions_total"} {
			if !strings.Contains(m, want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
		st, _ := raw(t, e, "", "GET", "/healthz", "")
		if st != 200 {
			t.Errorf("healthz %d", st)
		}
		st, b := raw(t, e, "", "GET", "/api/v1/openapi.json", "")
		if st != 200 || !json.Valid(b) {
			t.Errorf("openapi.json: %d", st)
		}
	})
}

func ptr[T any](v T) *T { return &v }

// An internal error is logged, not leaked.
func TestInternalErrorNotLeaked(t *testing.T) {
	e := apitest.Start(t, apitest.Options{})
	e.Server.Store.Close()
	st, b := raw(t, e, store.RoleViewer, "GET", "/api/v1/machines", "")
	// With the database closed even the token lookup fails: internal.
	body := wantError(t, "closed store", st, b, 500, "internal", "")
	if strings.Contains(body.Message, "sql") || strings.Contains(body.Message, "closed") {
		t.Errorf("internal error leaks details: %q", body.Message)
	}
	st, _ = raw(t, e, "", "GET", "/healthz", "")
	if st != 503 {
		t.Errorf("healthz with a closed database: %d", st)
	}
}
