package api_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/lightsout/lightsout/internal/poll"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/api/apitest"
	"github.com/lightsout/lightsout/internal/manager"
	"github.com/lightsout/lightsout/internal/sim"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
)

// catcher is a Redfish-looking HTTPS server on loopback that records what
// it is sent: the attacker's BMC of the exfiltration attempt.
type catcher struct {
	srv  *httptest.Server
	mu   sync.Mutex
	reqs []string // "METHOD path body"
}

func newCatcher(t *testing.T) *catcher {
	c := &catcher{}
	c.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<16))
		c.mu.Lock()
		c.reqs = append(c.reqs, r.Method+" "+r.URL.Path+" "+string(b)+" auth="+r.Header.Get("Authorization"))
		c.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/redfish/v1/", "/redfish/v1":
			fmt.Fprint(w, `{"@odata.id":"/redfish/v1/","RedfishVersion":"1.6.0","Systems":{"@odata.id":"/redfish/v1/Systems"},"SessionService":{"@odata.id":"/redfish/v1/SessionService"},"Links":{"Sessions":{"@odata.id":"/redfish/v1/SessionService/Sessions"}}}`)
		default:
			w.Header().Set("X-Auth-Token", "t")
			w.Header().Set("Location", "/redfish/v1/SessionService/Sessions/1")
			w.WriteHeader(http.StatusCreated)
			fmt.Fprint(w, `{}`)
		}
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c.srv.Listener = ln
	c.srv.StartTLS()
	t.Cleanup(c.srv.Close)
	return c
}

func (c *catcher) addrPort() (string, int) {
	a := c.srv.Listener.Addr().(*net.TCPAddr)
	return a.IP.String(), a.Port
}

// leaked reports any request that carried the password.
func (c *catcher) leaked(pw string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, r := range c.reqs {
		if strings.Contains(r, pw) || strings.Contains(r, "auth=Basic") || strings.HasPrefix(r, "POST ") {
			out = append(out, r)
		}
	}
	return out
}

// TestPasswordBoundToEndpoint is the exfiltration of issue 13: an operator
// points an account holding a password at an address they control (here
// with protocol redfish, so the password would be POSTed there) and asks
// for a check. Refused, naming the field, nothing changed; an operator's
// keep_password is forbidden; an admin may move it with keep_password
// (audited as such, every changed field with old and new values) and the
// new address's certificate is not trusted on first use: no credentials
// reach it until accept-cert. Giving the password again also moves it.
func TestPasswordBoundToEndpoint(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, apitest.Options{Subnet: 84, Fleet: sim.Config{Count: 3, Seed: 13}})
	e.ImportFleet(t)
	adm, op := e.Client(t, store.RoleAdmin), e.Client(t, store.RoleOperator)
	evil := newCatcher(t)
	host, port := evil.addrPort()
	pw := e.Fleet.Password()

	accts, err := op.Accounts(ctx(t), "bmc-00001")
	if err != nil || len(accts) != 1 {
		t.Fatalf("accounts: %+v %v", accts, err)
	}
	before := accts[0].Account
	path := fmt.Sprintf("/api/v1/accounts/%d", before.ID)
	move := fmt.Sprintf(`{"protocol":"redfish","address":%q,"port":%d`, host, port)

	// An operator, without the password: refused, field password.
	st, b := raw(t, e, store.RoleOperator, "PATCH", path, move+`}`)
	wantError(t, "operator moves without the password", st, b, 400, "invalid_field", "password")
	// Address only, or port only: the same.
	st, b = raw(t, e, store.RoleOperator, "PATCH", path, fmt.Sprintf(`{"port":%d}`, before.Port+1))
	wantError(t, "operator changes the port", st, b, 400, "invalid_field", "password")
	// An operator with keep_password: forbidden, field keep_password.
	st, b = raw(t, e, store.RoleOperator, "PATCH", path, move+`,"keep_password":true}`)
	wantError(t, "operator keep_password", st, b, 403, "forbidden", "keep_password")
	// keep_password with a password: contradictory.
	st, b = raw(t, e, store.RoleAdmin, "PATCH", path, move+`,"keep_password":true,"password":"x"}`)
	wantError(t, "keep_password and password", st, b, 400, "invalid_field", "keep_password")

	got, err := e.Server.Store.Account(ctx(t), before.ID)
	if err != nil || got.Address != before.Address || got.Protocol != before.Protocol || got.Port != before.Port || string(got.Password) != pw {
		t.Fatalf("a refused edit changed the account: %+v %v", got, err)
	}
	if _, err := op.Check(ctx(t), []string{"bmc-00001"}, ""); err != nil {
		t.Fatal(err)
	}
	if l := evil.leaked(pw); len(l) > 0 {
		t.Fatalf("the password reached the operator's address: %q", l)
	}

	// An admin with keep_password: moved, audited as such.
	st, b = raw(t, e, store.RoleAdmin, "PATCH", path, move+`,"keep_password":true}`)
	if st != 200 {
		t.Fatalf("admin keep_password: %d %s", st, b)
	}
	log, err := adm.Audit(ctx(t), "bmc-00001", 10)
	if err != nil {
		t.Fatal(err)
	}
	var detail string
	for _, a := range log {
		if a.Action == "account.update" && a.Result == "ok" {
			detail = a.Detail
			break
		}
	}
	for _, w := range []string{"protocol ipmi → redfish", fmt.Sprintf("address %s:%d → %s:%d", before.Address, before.Port, host, port),
		"password kept for the new protocol and address and port (keep_password, by an admin)", "certificate pin cleared"} {
		if !strings.Contains(detail, w) {
			t.Errorf("audit detail %q lacks %q", detail, w)
		}
	}
	if strings.Contains(detail, pw) {
		t.Errorf("audit detail holds the password: %q", detail)
	}
	// The new address's certificate is not trusted on first use: Invalid
	// / cert_changed, and no credentials were sent.
	res, err := op.Check(ctx(t), []string{"bmc-00001"}, "")
	if err != nil || len(res) != 1 || res[0].State.State != state.Invalid || res[0].State.Reason != state.ReasonCertChanged ||
		!strings.Contains(res[0].State.Message, "not trusted on first use") {
		t.Fatalf("check after the move: %+v %v", res, err)
	}
	if l := evil.leaked(pw); len(l) > 0 {
		t.Fatalf("credentials sent to a moved account's new address before its certificate was accepted: %q", l)
	}

	// An admin accepts the new certificate it presented (after checking
	// it): pinned, audited.
	if _, err := adm.AcceptCertificate(ctx(t), "bmc-00001", ""); err != nil {
		t.Fatalf("accept-cert after the move: %v", err)
	}
	sum := sha256.Sum256(evil.srv.Certificate().Raw)
	if pin, err := e.Server.Store.CertPin(ctx(t), "bmc-00001"); err != nil || pin != hex.EncodeToString(sum[:]) {
		t.Fatalf("pin after accept-cert: %q %v", pin, err)
	}

	// Moved back with the password given again (an operator may).
	in := manager.AccountInput{Protocol: before.Protocol, Address: before.Address, Port: before.Port, Password: &pw}
	if _, err := op.UpdateAccount(ctx(t), before.ID, in); err != nil {
		t.Fatalf("operator moves back with the password: %v", err)
	}
	waitState(t, op, "bmc-00001", func(s store.ChannelState) bool { return s.State == state.Connectable })
}

// TestEditsDoNotLockAccounts: ten PATCHes of an account's password (each
// a different wrong one, then the same again) make at most one failed
// login on the BMC (counted by the simulated BMC itself), and the reply
// says when the next attempt is.
func TestEditsDoNotLockAccounts(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, apitest.Options{Subnet: 83, Fleet: sim.Config{Count: 2, Seed: 17}})
	e.ImportFleet(t)
	op := e.Client(t, store.RoleOperator)
	const name = "bmc-00002"
	waitState(t, op, name, func(s store.ChannelState) bool { return s.State == state.Connectable })
	bmc, _ := e.Fleet.BMC(name)
	accts, err := op.Accounts(ctx(t), name)
	if err != nil || len(accts) != 1 {
		t.Fatal(accts, err)
	}
	id := accts[0].Account.ID
	failures := bmc.Counters().AuthFailures
	var last manager.ChannelView
	for i := range 10 {
		body := fmt.Sprintf(`{"password":"wrong-%d"}`, i/2) // pairs: a change, then the same again
		st, b := raw(t, e, store.RoleOperator, "PATCH", fmt.Sprintf("/api/v1/accounts/%d", id), body)
		if st != 200 {
			t.Fatalf("PATCH %d: %d %s", i, st, b)
		}
		last = manager.ChannelView{}
		if err := json.Unmarshal(b, &last); err != nil {
			t.Fatal(err)
		}
	}
	// The first edit's login happens (bounded wait), then nothing more.
	poll.Wait(10*time.Second, func() bool { return bmc.Counters().AuthFailures != failures })
	if _, err := op.Check(ctx(t), []string{name}, ""); err != nil {
		t.Fatal(err)
	}
	if n := bmc.Counters().AuthFailures - failures; n > 1 {
		t.Fatalf("10 PATCHes made %d failed logins on the BMC, want ≤ 1", n)
	} else {
		t.Logf("10 PATCHes: %d failed BMC login(s)", n)
	}
	if last.NextAttempt == nil || last.NextAttempt.Before(time.Now().Add(time.Minute)) {
		t.Errorf("the last PATCH does not say when the next attempt is: %+v", last.NextAttempt)
	}
}

// TestAuthFailuresThrottled: failed bearer authentications and console
// logins from one address share a budget (10); then 429 with Retry-After,
// before any token is looked up (a valid token from that address too),
// and every failure is counted in lightsout_auth_failures_total.
func TestAuthFailuresThrottled(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, apitest.Options{})
	bearer := func(tok string) (int, http.Header, []byte) {
		req, _ := http.NewRequest("GET", e.URL+"/api/v1/whoami", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, b
	}
	login := func(tok string) (int, http.Header) {
		c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := c.PostForm(e.URL+"/login", map[string][]string{"token": {tok}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header
	}
	for i := range 5 {
		if st, _, b := bearer(fmt.Sprintf("lso_wrong-%d", i)); st != 401 {
			t.Fatalf("bad token %d: %d %s", i, st, b)
		}
		if st, _ := login(fmt.Sprintf("lso_wrong-login-%d", i)); st != 401 {
			t.Fatalf("bad login %d: %d", i, st)
		}
	}
	st, h, b := bearer(e.Tokens[store.RoleAdmin])
	wantError(t, "after 10 failures", st, b, 429, "rate_limited", "")
	if h.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	if st, h := login("lso_wrong-again"); st != 429 || h.Get("Retry-After") == "" {
		t.Errorf("console login after 10 failures: %d, Retry-After %q", st, h.Get("Retry-After"))
	}
	_, mb := raw(t, e, "", "GET", "/metrics", "")
	for _, w := range []string{`lightsout_auth_failures_total{kind="bearer"} 5`, `lightsout_auth_failures_total{kind="login"} 5`} {
		if !strings.Contains(string(mb), w) {
			t.Errorf("/metrics lacks %s", w)
		}
	}
}

// TestMovesOtherWaysIn: an enclosure manager's password is bound like an
// account's (operator: refused without it; admin: keep_password, audited),
// and an import with replace that moves a machine audits the move with its
// old and new address.
func TestMovesOtherWaysIn(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, apitest.Options{Subnet: 81, Fleet: sim.Config{Count: 2, Seed: 23}})
	e.ImportFleet(t)
	adm := e.Client(t, store.RoleAdmin)
	if st, b := raw(t, e, store.RoleOperator, "POST", "/api/v1/enclosures", `{"name":"enc-m","address":"127.0.0.5","user":"root","password":"em-pw","slots":4}`); st != 201 {
		t.Fatalf("add enclosure: %d %s", st, b)
	}
	st, b := raw(t, e, store.RoleOperator, "PATCH", "/api/v1/enclosures/enc-m", `{"address":"127.0.0.6"}`)
	wantError(t, "enclosure moved without its password", st, b, 400, "invalid_field", "password")
	st, b = raw(t, e, store.RoleOperator, "PATCH", "/api/v1/enclosures/enc-m", `{"address":"127.0.0.6","keep_password":true}`)
	wantError(t, "operator keep_password on an enclosure", st, b, 403, "forbidden", "keep_password")
	if en, err := e.Server.Store.Enclosure(ctx(t), "enc-m"); err != nil || en.Address != "127.0.0.5" || string(en.Password) != "em-pw" {
		t.Fatalf("refused edits changed the enclosure: %+v %v", en, err)
	}
	if st, b := raw(t, e, store.RoleAdmin, "PATCH", "/api/v1/enclosures/enc-m", `{"address":"127.0.0.6","keep_password":true}`); st != 200 {
		t.Fatalf("admin keep_password: %d %s", st, b)
	}
	if en, err := e.Server.Store.Enclosure(ctx(t), "enc-m"); err != nil || en.Address != "127.0.0.6" || string(en.Password) != "em-pw" {
		t.Fatalf("after the admin's move: %+v %v", en, err)
	}
	log, err := adm.Audit(ctx(t), "enc-m", 5)
	if err != nil || len(log) == 0 || !strings.Contains(log[0].Detail, "address 127.0.0.5:623 → 127.0.0.6:623") ||
		!strings.Contains(log[0].Detail, "keep_password, by an admin") {
		t.Fatalf("enclosure move audit: %+v %v", log, err)
	}

	// Import with replace moving bmc-00001 to another port.
	req := e.FleetImport(t)
	req.Replace = true
	accts, _ := adm.Accounts(ctx(t), "bmc-00001")
	old := accts[0].Account
	req.Content = strings.Replace(req.Content, fmt.Sprintf("port: %d", old.Port), fmt.Sprintf("port: %d", old.Port+1000), 1)
	if !strings.Contains(req.Content, fmt.Sprintf("port: %d", old.Port+1000)) {
		t.Skipf("the fleet's inventory does not spell bmc-00001's port as expected:\n%s", req.Content)
	}
	if _, err := adm.Import(ctx(t), req); err != nil {
		t.Fatalf("import with replace: %v", err)
	}
	log, err = adm.Audit(ctx(t), "bmc-00001", 5)
	found := false
	for _, a := range log {
		found = found || a.Action == "account.update" && strings.Contains(a.Detail, fmt.Sprintf(":%d → ", old.Port)) &&
			!strings.Contains(a.Detail, "password changed") && strings.Contains(a.Detail, "inventory import with replace")
	}
	if err != nil || !found {
		t.Fatalf("the import's move is not audited: %+v %v", log, err)
	}
}
