package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"github.com/lightsout/lightsout/internal/poll"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/api/apitest"
	"github.com/lightsout/lightsout/internal/manager"
	"github.com/lightsout/lightsout/internal/peertest"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
)

// The CLI and the server against Redfish services nobody here wrote:
// OpenStack's sushy-tools (HTTP Basic only) and DMTF's mockup server
// (sessions and Basic; any credentials accepted).

const sushyPass = "sushy-cli-pw-1"

// TestCLICheckRedfishPeers: `lightsout check` gives every verdict each
// peer can produce.
func TestCLICheckRedfishPeers(t *testing.T) {
	t.Setenv("LIGHTSOUT_PASSWORD", "")
	sushy := peertest.StartSushy(t, peertest.SushyOptions{User: "admin", Password: sushyPass})
	mock := peertest.StartMockup(t)
	good := writeFile(t, "good", sushyPass+"\n")
	bad := writeFile(t, "bad", "not-the-password\n")
	check := func(p *peertest.RedfishPeer, pwFile, uuid string, extra ...string) (string, int, error) {
		return runCLI(t, append([]string{"check", "--host", p.Addr.String(), "--protocol", "redfish", "--user", "admin",
			"--password-file", pwFile, "--guid", uuid, "-o", "json"}, extra...)...)
	}
	out, code, err := check(sushy, good, sushy.UUIDs[0])
	wantExit(t, "sushy right password", out, code, err, 0, `"state":"Connectable"`, `"auth":"basic"`, `"auth_why":"service root links no SessionService"`)
	out, code, err = check(sushy, bad, sushy.UUIDs[0])
	wantExit(t, "sushy wrong password", out, code, err, 1, `"state":"NotAuthenticated"`, `"reason":"auth_rejected"`, "HTTP 401", "Incorrect username or password")
	out, code, err = check(sushy, good, otherUUIDForTest)
	wantExit(t, "sushy wrong UUID", out, code, err, 1, `"state":"Invalid"`, `"reason":"guid_mismatch"`, sushy.UUIDs[0])
	out, code, err = check(sushy, good, sushy.UUIDs[0], "--redfish-auth", "session")
	wantExit(t, "sushy forced session", out, code, err, 1, `"reason":"protocol_error"`, "offers none")
	out, code, err = check(sushy, good, sushy.UUIDs[0], "--redfish-auth", "digest")
	wantExit(t, "bad --redfish-auth", out, code, err, 2, "--redfish-auth", "not auto, session or basic")

	// sushy-tools as Ironic's CI starts it by default: no authentication.
	open := peertest.StartSushy(t, peertest.SushyOptions{})
	out, code, err = check(open, good, open.UUIDs[0])
	wantExit(t, "default sushy-tools", out, code, err, 0, `"state":"Connectable"`)

	// A one-shot check keeps no session: HTTP Basic first, which the
	// mockup takes (three requests); a forced session is opened and
	// deleted.
	out, code, err = check(mock, good, mock.UUIDs[0])
	wantExit(t, "mockup", out, code, err, 0, `"state":"Connectable"`, `"auth":"basic"`, "keeps no session")
	out, code, err = check(mock, good, mock.UUIDs[0], "--redfish-auth", "session")
	wantExit(t, "mockup session", out, code, err, 0, `"state":"Connectable"`, `"auth":"session"`, `"logged_out":true`)
	out, code, err = check(mock, good, otherUUIDForTest)
	wantExit(t, "mockup wrong UUID", out, code, err, 1, `"state":"Invalid"`)

	// An inventory: redfish_auth forces Basic on the mockup.
	inv := writeFile(t, "fleet.yaml", fmt.Sprintf(`machines:
  - name: sushy-1
    address: 127.0.0.1
    port: %d
    protocol: redfish
    user: admin
    password_file: %s
    guid: %s
  - name: mock-1
    address: 127.0.0.1
    port: %d
    protocol: redfish
    redfish_auth: basic
    user: admin
    password_file: %s
    guid: %s
`, sushy.Addr.Port(), good, sushy.UUIDs[0], mock.Addr.Port(), good, mock.UUIDs[0]))
	out, code, err = runCLI(t, "check", "--inventory", inv, "-o", "json")
	wantExit(t, "inventory", out, code, err, 0, `"name":"sushy-1"`, `"name":"mock-1"`, `"auth_why":"forced by the account"`)

	sushy.Stop()
	mock.Stop()
	out, code, err = check(sushy, good, sushy.UUIDs[0])
	wantExit(t, "sushy stopped", out, code, err, 1, `"state":"NotResponding"`, `"reason":"port_refused"`)
	out, code, err = check(mock, good, mock.UUIDs[0])
	wantExit(t, "mockup stopped", out, code, err, 1, `"state":"NotResponding"`, `"reason":"port_refused"`)
}

const otherUUIDForTest = "0b8c5a2e-4f4d-4a53-9d8e-2c1f6a7b9e10"

// TestServerRedfishPeer: the server monitors a sushy-tools BMC, powers it
// through `lightsout power`, and refuses its replaced certificate until an
// admin runs `lightsout accept-cert`.
func TestServerRedfishPeer(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("LIGHTSOUT_SERVER", "")
	t.Setenv("LIGHTSOUT_TOKEN", "")
	t.Setenv("LIGHTSOUT_PASSWORD", "")
	sushy := peertest.StartSushy(t, peertest.SushyOptions{User: "admin", Password: sushyPass})
	e := apitest.Start(t, apitest.Options{})
	good := writeFile(t, "good", sushyPass+"\n")
	inv := writeFile(t, "fleet.yaml", fmt.Sprintf(`machines:
  - name: sushy-1
    address: 127.0.0.1
    port: %d
    protocol: redfish
    user: admin
    password_file: %s
    guid: %s
`, sushy.Addr.Port(), good, sushy.UUIDs[0]))
	out, code, err := as(t, e, store.RoleAdmin, "import", inv)
	wantExit(t, "import", out, code, err, 0)
	adm := e.Client(t, store.RoleAdmin)
	waitCheck := func(what string, st state.OOB, r state.Reason) manager.CheckResult {
		t.Helper()
		var last []manager.CheckResult
		var got manager.CheckResult
		if !poll.Wait(20*time.Second, func() bool {
			res, err := adm.Check(context.Background(), []string{"sushy-1"}, "")
			if err == nil && len(res) == 1 && res[0].State.State == st && res[0].State.Reason == r {
				got = res[0]
				return true
			}
			last = res
			return false
		}) {
			t.Fatalf("%s: want %s/%s, have %+v", what, st, r, last)
		}
		return got
	}
	first := waitCheck("first check", state.Connectable, state.ReasonOK)

	// redfish_auth through the API: forcing a session on a service that
	// has none is a protocol error naming the fix; auto again works.
	id := itoa(int(first.Account.ID))
	out, code, err = as(t, e, store.RoleOperator, "accounts", "set", id, "--redfish-auth", "session")
	wantExit(t, "set session", out, code, err, 0)
	r := waitCheck("forced session", state.NotResponding, state.ReasonProtocol)
	if r.Account.RedfishAuth != "session" {
		t.Fatalf("account %+v", r.Account)
	}
	out, code, err = as(t, e, store.RoleAdmin, "export")
	wantExit(t, "export", out, code, err, 0, "redfish_auth: session")
	out, code, err = as(t, e, store.RoleOperator, "accounts", "set", id, "--redfish-auth", "digest")
	wantExit(t, "set digest", out, code, err, 2, "redfish_auth", "not auto, session or basic")
	out, code, err = as(t, e, store.RoleOperator, "accounts", "set", id, "--redfish-auth", "auto")
	wantExit(t, "set auto", out, code, err, 0)
	waitCheck("auto again", state.Connectable, state.ReasonOK)

	out, code, err = as(t, e, store.RoleViewer, "power", "status", "sushy-1")
	wantExit(t, "power status", out, code, err, 0, "on")
	out, code, err = as(t, e, store.RoleOperator, "power", "off", "sushy-1")
	wantExit(t, "power off", out, code, err, 0, "1 ok")
	// sushy-tools applies a reset 1-11 s after accepting it, as hardware does.
	waitSushyPower(t, sushy, "Off")
	waitCheck("after off", state.Connectable, state.ReasonOK)
	out, code, err = as(t, e, store.RoleOperator, "power", "on", "sushy-1")
	wantExit(t, "power on", out, code, err, 0, "1 ok")
	waitSushyPower(t, sushy, "On")
	out, code, err = as(t, e, store.RoleViewer, "power", "status", "sushy-1", "-o", "json")
	wantExit(t, "power status json", out, code, err, 0, `"on"`)

	// identify status reads the lamp back from sushy-tools' IndicatorLED
	// (Lit when it starts); identify off turns it Off in sushy-tools
	// itself, and status follows.
	out, code, err = as(t, e, store.RoleViewer, "power", "identify", "status", "sushy-1", "-o", "json")
	wantExit(t, "identify status (Lit)", out, code, err, 0, `"action":"identify-status"`, `"detail":"identify on"`)
	out, code, err = as(t, e, store.RoleOperator, "power", "identify", "off", "sushy-1")
	wantExit(t, "identify off", out, code, err, 0, "1 ok")
	if led := peerSystemField(t, sushy, "admin", sushyPass, "IndicatorLED"); led != "Off" {
		t.Fatalf("after identify off sushy-tools reads IndicatorLED %q", led)
	}
	out, code, err = as(t, e, store.RoleViewer, "power", "identify", "status", "sushy-1")
	wantExit(t, "identify status (Off)", out, code, err, 0, "identify off", "1 ok")

	// A new certificate: refused, no credentials sent, until accepted.
	sushy.Restart()
	cr := waitCheck("replaced certificate", state.Invalid, state.ReasonCertChanged)
	if !strings.Contains(cr.Remedy, "accept") {
		t.Errorf("remedy %q", cr.Remedy)
	}
	out, code, err = as(t, e, store.RoleOperator, "power", "status", "sushy-1")
	wantExit(t, "power refused", out, code, err, 1, "Invalid")
	out, code, err = as(t, e, store.RoleAdmin, "accept-cert", "sushy-1")
	wantExit(t, "accept-cert", out, code, err, 0)
	waitCheck("accepted", state.Connectable, state.ReasonOK)

	sushy.Stop()
	waitCheck("stopped", state.NotResponding, state.ReasonPortRefused)
}

// waitSushyPower waits up to 15 s for sushy-tools to read want.
func waitSushyPower(t *testing.T, p *peertest.RedfishPeer, want string) {
	t.Helper()
	var have string
	if poll.Wait(15*time.Second, func() bool { have = sushyPower(t, p); return have == want }) {
		return
	}
	t.Fatalf("sushy-tools reads PowerState %q, want %q", have, want)
}

// sushyPower reads the first system's PowerState from sushy-tools itself.
func sushyPower(t *testing.T, p *peertest.RedfishPeer) string {
	t.Helper()
	return peerSystemField(t, p, "admin", sushyPass, "PowerState")
}

// TestServerRedfishIdentifyMockup: `lightsout power identify` through the
// server against DMTF's mockup server (public-rackmount1, IndicatorLED
// Off): status reads it, on PATCHes it Lit in the mockup itself, status
// follows, off again.
func TestServerRedfishIdentifyMockup(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("LIGHTSOUT_SERVER", "")
	t.Setenv("LIGHTSOUT_TOKEN", "")
	t.Setenv("LIGHTSOUT_PASSWORD", "")
	mock := peertest.StartMockup(t)
	e := apitest.Start(t, apitest.Options{})
	pw := writeFile(t, "pw", "any-password\n")
	inv := writeFile(t, "fleet.yaml", fmt.Sprintf(`machines:
  - name: mock-1
    address: 127.0.0.1
    port: %d
    protocol: redfish
    user: admin
    password_file: %s
    guid: %s
`, mock.Addr.Port(), pw, mock.UUIDs[0]))
	out, code, err := as(t, e, store.RoleAdmin, "import", inv)
	wantExit(t, "import", out, code, err, 0)
	adm := e.Client(t, store.RoleAdmin)
	var last []manager.CheckResult
	if !poll.Wait(20*time.Second, func() bool {
		res, err := adm.Check(context.Background(), []string{"mock-1"}, "")
		last = res
		return err == nil && len(res) == 1 && res[0].State.State == state.Connectable
	}) {
		t.Fatalf("mockup not Connectable: %+v", last)
	}
	led := func() string { return peerSystemField(t, mock, "admin", "any-password", "IndicatorLED") }
	if l := led(); l != "Off" {
		t.Fatalf("the mockup starts with IndicatorLED %q, want Off", l)
	}
	out, code, err = as(t, e, store.RoleViewer, "power", "identify", "status", "mock-1")
	wantExit(t, "identify status (Off)", out, code, err, 0, "identify off", "1 ok")
	out, code, err = as(t, e, store.RoleOperator, "power", "identify", "on", "mock-1")
	wantExit(t, "identify on", out, code, err, 0, "1 ok")
	if l := led(); l != "Lit" {
		t.Fatalf("after identify on the mockup reads IndicatorLED %q", l)
	}
	out, code, err = as(t, e, store.RoleViewer, "power", "identify", "status", "mock-1", "-o", "json")
	wantExit(t, "identify status (Lit)", out, code, err, 0, `"action":"identify-status"`, `"detail":"identify on"`)
	out, code, err = as(t, e, store.RoleOperator, "power", "identify", "off", "mock-1")
	wantExit(t, "identify off", out, code, err, 0, "1 ok")
	out, code, err = as(t, e, store.RoleViewer, "power", "identify", "status", "mock-1")
	wantExit(t, "identify status (Off again)", out, code, err, 0, "identify off")
	// A viewer may read the lamp but not turn it on.
	out, code, err = as(t, e, store.RoleViewer, "power", "identify", "on", "mock-1")
	if code == 0 {
		t.Fatalf("a viewer turned the identify lamp on: %s %v", out, err)
	}
}

// peerSystemField reads one property of the peer's first system from the
// peer itself (HTTP Basic), not through lightsout.
func peerSystemField(t *testing.T, p *peertest.RedfishPeer, user, pw, field string) string {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // a throwaway test peer
	req, _ := http.NewRequest(http.MethodGet, p.URL+p.Systems[0], nil)
	req.SetBasicAuth(user, pw)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	v, _ := s[field].(string)
	return v
}
