package web_test

import (
	"bufio"
	"context"
	"fmt"
	"github.com/lightsout/lightsout/internal/manager"
	"github.com/lightsout/lightsout/internal/poll"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/agent"
	"github.com/lightsout/lightsout/internal/api/apitest"
	"github.com/lightsout/lightsout/internal/hostlink"
	"github.com/lightsout/lightsout/internal/server"
	"github.com/lightsout/lightsout/internal/sim"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
	"github.com/lightsout/lightsout/internal/web"
)

func init() { web.RowsTTL = 0 }

// browser is a cookie-keeping HTTP client that does not follow redirects.
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
	csrf string
}

func newBrowser(t *testing.T, base string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: base, c: &http.Client{Jar: jar, Timeout: 2 * time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (b *browser) do(method, path string, form url.Values) (int, string, *http.Response) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.base+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if m := csrfRE.FindSubmatch(out); m != nil {
		b.csrf = string(m[1])
	}
	return resp.StatusCode, string(out), resp
}

func (b *browser) get(path string) (int, string) {
	code, body, _ := b.do("GET", path, nil)
	return code, body
}

func login(t *testing.T, e *apitest.Env, r store.Role) *browser {
	t.Helper()
	b := newBrowser(t, e.URL)
	code, body, resp := b.do("POST", "/login", url.Values{"token": {e.Tokens[r]}, "next": {"/"}})
	if code != http.StatusSeeOther {
		t.Fatalf("login as %s: %d %s", r, code, body)
	}
	var ck *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == web.CookieName {
			ck = c
		}
	}
	if ck == nil {
		t.Fatalf("login as %s set no session cookie", r)
	}
	if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Value == "" || strings.Contains(ck.Value, e.Tokens[r]) {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict, a random ID (not the token)", ck)
	}
	if code, body := b.get("/"); code != http.StatusOK || !strings.Contains(body, "<h1>Fleet</h1>") {
		t.Fatalf("GET / after login: %d %s", code, body)
	}
	return b
}

// start runs a server with a 4-BMC fleet (bmc-00004 with a wrong password)
// plus extra machines without an account, and waits for the fleet's states.
func start(t *testing.T, extra int) *apitest.Env {
	t.Helper()
	e := apitest.Start(t, apitest.Options{Subnet: 97, Fleet: sim.Config{Count: 4,
		Faults: map[string]sim.Faults{"bmc-00004": {WrongPassword: true}}},
		Configure: func(c *server.Config) { // an agent listener (cheap) for /agents
			c.AgentListen = "127.0.0.1:0"
			c.Agents.Interval = 100 * time.Millisecond
		}})
	e.ImportFleet(t)
	ctx := context.Background()
	for i := 1; i <= extra; i++ {
		g := "odd"
		if i%2 == 0 {
			g = "even"
		}
		if err := e.Server.Store.AddMachine(ctx, &store.Machine{Name: fmt.Sprintf("extra-%04d", i), Group: g}); err != nil {
			t.Fatal(err)
		}
	}
	var s manager.Summary
	if !poll.Wait(30*time.Second, func() bool {
		var err error
		if s, err = e.Server.Manager.Summarize(ctx); err != nil {
			t.Fatal(err)
		}
		return s.OOB[state.Connectable] == 3 && s.OOB[state.NotAuthenticated] == 1
	}) {
		t.Fatalf("the fleet did not settle: %+v", s)
	}
	return e
}

func TestLoginLogout(t *testing.T) {
	e := apitest.Start(t, apitest.Options{})
	anon := newBrowser(t, e.URL)
	code, _, resp := anon.do("GET", "/machines?q=x", nil)
	if code != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login?next=") {
		t.Fatalf("GET /machines without a session: %d %s", code, resp.Header.Get("Location"))
	}
	if code, body := anon.get("/login"); code != http.StatusOK || !strings.Contains(body, `name="token"`) {
		t.Fatalf("GET /login: %d %s", code, body)
	}
	if code, _, _ := anon.do("POST", "/login", url.Values{"token": {"not-a-token"}}); code != http.StatusUnauthorized {
		t.Fatalf("login with a wrong token: %d, want 401", code)
	}
	// The API keeps its own 404s under /api/.
	if code, body := anon.get("/api/v1/nope"); code != http.StatusNotFound || !strings.Contains(body, `"code"`) {
		t.Fatalf("GET /api/v1/nope: %d %s", code, body)
	}

	b := login(t, e, store.RoleAdmin)
	if code, _, _ := b.do("POST", "/logout", url.Values{}); code != http.StatusForbidden {
		t.Fatalf("logout without CSRF: %d, want 403", code)
	}
	if code, _, _ := b.do("POST", "/logout", url.Values{"csrf": {b.csrf}}); code != http.StatusSeeOther {
		t.Fatalf("logout: %d", code)
	}
	if code, _ := b.get("/"); code != http.StatusSeeOther {
		t.Fatalf("GET / after logout: %d, want a redirect to the login page", code)
	}
}

func TestRevokedTokenEndsSession(t *testing.T) {
	e := apitest.Start(t, apitest.Options{})
	b := login(t, e, store.RoleViewer)
	if err := e.Client(t, store.RoleAdmin).RevokeToken(context.Background(), "viewer"); err != nil {
		t.Fatal(err)
	}
	if code, _ := b.get("/"); code != http.StatusSeeOther {
		t.Fatalf("GET / after the token's revocation: %d, want a redirect to the login page", code)
	}
}

func TestRolesAndPower(t *testing.T) {
	e := start(t, 0)
	viewer := login(t, e, store.RoleViewer)
	code, body := viewer.get("/machines/bmc-00001")
	if code != http.StatusOK || !strings.Contains(body, "Connectable") {
		t.Fatalf("viewer GET machine: %d %s", code, body)
	}
	for _, s := range []string{"power-action", "/power?action=", "Check now", "Diagnose"} {
		if strings.Contains(body, s) {
			t.Errorf("the viewer's machine page shows %q", s)
		}
	}
	if code, _, _ := viewer.do("POST", "/machines/bmc-00001/power", url.Values{"csrf": {viewer.csrf}, "action": {"off"}, "confirm": {"yes"}}); code != http.StatusForbidden {
		t.Errorf("viewer power POST: %d, want 403", code)
	}

	op := login(t, e, store.RoleOperator)
	_, body = op.get("/machines/bmc-00001")
	for _, a := range []string{"on", "off", "cycle", "reset", "soft", "identify-on", "identify-off"} {
		if !strings.Contains(body, "/machines/bmc-00001/power?action="+a+`"`) {
			t.Errorf("the operator's machine page has no power %s button", a)
		}
	}
	if !strings.Contains(body, "Check now") || strings.Contains(body, "autocorrect") {
		t.Errorf("operator: want Check now and no autocorrect button")
	}
	// The confirmation step.
	code, body = op.get("/machines/bmc-00001/power?action=off")
	if code != http.StatusOK || !strings.Contains(body, `name="confirm" value="yes"`) {
		t.Fatalf("power confirmation page: %d %s", code, body)
	}
	for name, form := range map[string]url.Values{
		"no csrf":    {"action": {"off"}, "confirm": {"yes"}},
		"wrong csrf": {"csrf": {"x" + op.csrf}, "action": {"off"}, "confirm": {"yes"}},
	} {
		if code, _, _ := op.do("POST", "/machines/bmc-00001/power", form); code != http.StatusForbidden {
			t.Errorf("power POST with %s: %d, want 403", name, code)
		}
	}
	if code, _, _ := op.do("POST", "/machines/bmc-00001/power", url.Values{"csrf": {op.csrf}, "action": {"off"}}); code != http.StatusBadRequest {
		t.Errorf("power POST without confirmation: %d, want 400", code)
	}
	code, body, _ = op.do("POST", "/machines/bmc-00001/power", url.Values{"csrf": {op.csrf}, "action": {"off"}, "confirm": {"yes"}})
	if code != http.StatusOK || !strings.Contains(body, "power off: ok") {
		t.Fatalf("power off: %d %s", code, body)
	}
	if log, err := e.Server.Store.AuditLog(context.Background(), "bmc-00001", 100); err == nil {
		found := false
		for _, a := range log {
			found = found || (a.Action == "power.off" && a.Actor == "operator" && a.Target == "bmc-00001")
		}
		if !found {
			t.Errorf("no audit entry for the console's power off: %+v", log)
		}
	}
	// The machine page's live endpoint shows the power the operation read
	// back, before the monitor's next check; the power.done event tells the
	// page's script to fetch it.
	if code, body := op.get("/machines/bmc-00001/live"); code != http.StatusOK ||
		!regexp.MustCompile(`"state":"Connectable".*"power":"off".*"since_ago":"[0-9hms]+ ago"`).MatchString(body) {
		t.Errorf("GET /machines/bmc-00001/live after power off: %d %s", code, body)
	}
	if code, _ := viewer.get("/machines/bmc-00001/live"); code != http.StatusOK {
		t.Errorf("viewer GET live: %d", code)
	}
	if evs, err := e.Server.Store.ListEvents(context.Background(), store.EventFilter{Code: "power.done", Source: "bmc-00001"}); err != nil {
		t.Error(err)
	} else if len(evs) == 0 {
		// The recorder stores asynchronously.
		if !poll.Wait(500*time.Millisecond, func() bool {
			evs, _ = e.Server.Store.ListEvents(context.Background(), store.EventFilter{Code: "power.done", Source: "bmc-00001"})
			return len(evs) > 0
		}) {
			t.Error("no power.done event for the console's power off")
		}
	}
	code, body, _ = op.do("POST", "/machines/bmc-00001/check", url.Values{"csrf": {op.csrf}})
	if code != http.StatusOK || !strings.Contains(body, "check: Connectable") {
		t.Fatalf("check now: %d %s", code, body)
	}
	code, body, _ = op.do("POST", "/machines/bmc-00004/diagnose", url.Values{"csrf": {op.csrf}})
	if code != http.StatusOK || !strings.Contains(body, "<h2>Diagnosis") {
		t.Fatalf("diagnose: %d %s", code, body)
	}
	if code, _, _ := op.do("POST", "/machines/bmc-00004/diagnose", url.Values{"csrf": {op.csrf}, "autocorrect": {"yes"}}); code != http.StatusForbidden {
		t.Errorf("operator autocorrect: %d, want 403", code)
	}
	admin := login(t, e, store.RoleAdmin)
	if _, body := admin.get("/machines/bmc-00004"); !strings.Contains(body, `name="autocorrect" value="yes"`) {
		t.Errorf("the admin's machine page has no autocorrect button")
	}
	if code, _ := admin.get("/machines/nope"); code != http.StatusNotFound {
		t.Errorf("GET an unknown machine: %d, want 404", code)
	}
}

var rowRE = regexp.MustCompile(`<tr class="machine"><td><a href="/machines/([^"]+)">`)

func rows(body string) []string {
	var out []string
	for _, m := range rowRE.FindAllStringSubmatch(body, -1) {
		out = append(out, m[1])
	}
	return out
}

func total(t *testing.T, body string) int {
	t.Helper()
	m := regexp.MustCompile(`<span id="total">(\d+)</span>`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no total in %s", body)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

func TestMachineTable(t *testing.T) {
	e := start(t, 246)
	b := login(t, e, store.RoleViewer)
	check := func(path string, wantTotal int, wantRows []string, wantLen int) []string {
		t.Helper()
		code, body := b.get(path)
		if code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, code, body)
		}
		got := rows(body)
		if n := total(t, body); n != wantTotal {
			t.Errorf("GET %s: total %d, want %d", path, n, wantTotal)
		}
		if len(got) != wantLen {
			t.Errorf("GET %s: %d rows, want %d", path, len(got), wantLen)
		}
		if wantRows != nil && strings.Join(got, ",") != strings.Join(wantRows, ",") {
			t.Errorf("GET %s: rows %v, want %v", path, got, wantRows)
		}
		return got
	}
	p1 := check("/machines", 250, nil, 100)
	if p1[0] != "bmc-00001" || p1[99] != "extra-0096" {
		t.Errorf("page 1: %s … %s", p1[0], p1[99])
	}
	p3 := check("/machines?page=3", 250, nil, 50)
	if p3[49] != "extra-0246" {
		t.Errorf("page 3 ends with %s", p3[49])
	}
	check("/machines?page=99", 250, nil, 50) // past the end: the last page
	check("/machines?state=Connectable", 3, []string{"bmc-00001", "bmc-00002", "bmc-00003"}, 3)
	check("/machines?state=NotAuthenticated", 1, []string{"bmc-00004"}, 1)
	check("/machines?state=Connectable&sort=-name", 3, []string{"bmc-00003", "bmc-00002", "bmc-00001"}, 3)
	check("/machines?q=EXTRA-000", 9, nil, 9)
	check("/machines?group=even&q=extra-001", 5, []string{"extra-0010", "extra-0012", "extra-0014", "extra-0016", "extra-0018"}, 5)
	got := check("/machines?sort=state", 250, nil, 100)
	if got[0] != "bmc-00004" {
		t.Errorf("sorted by state, the worst first: got %s first", got[0])
	}
	if code, _ := b.get("/machines?state=Bogus"); code != http.StatusBadRequest {
		t.Errorf("an unknown state: %d, want 400", code)
	}
	// Links keep the filters.
	_, body := b.get("/machines?group=odd")
	if !strings.Contains(body, `href="/machines?group=odd&amp;page=2"`) {
		t.Errorf("page 1 of group odd has no next link keeping the filter")
	}
}

var countRE = regexp.MustCompile(`data-state="(\w+)" href="[^"]*"><span class="n">(\d+)</span>`)

func TestOverviewMatchesSummarize(t *testing.T) {
	e := start(t, 3)
	b := login(t, e, store.RoleViewer)
	_, body := b.get("/")
	sum, err := e.Server.Manager.Summarize(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, m := range countRE.FindAllStringSubmatch(body, -1) {
		got[m[1]], _ = strconv.Atoi(m[2])
	}
	if len(got) != 5 {
		t.Fatalf("overview shows %d state counts, want 5: %s", len(got), body)
	}
	for _, s := range web.States {
		if got[string(s)] != sum.OOB[s] {
			t.Errorf("%s: overview %d, Summarize %d", s, got[string(s)], sum.OOB[s])
		}
	}
	if !strings.Contains(body, fmt.Sprintf(`<span id="n-machines">%d</span> machines, <span id="n-channels">%d</span> OOB channels`, sum.Machines, sum.Channels)) {
		t.Errorf("overview totals differ from %+v", sum)
	}
	if !strings.Contains(body, `href="/machines?state=NotAuthenticated"`) {
		t.Errorf("the counts do not link to the filtered table")
	}
}

func TestEventsLive(t *testing.T) {
	e := apitest.Start(t, apitest.Options{})
	b := login(t, e, store.RoleViewer)
	if code, body := b.get("/events"); code != http.StatusOK || !strings.Contains(body, "/static/events.js") {
		t.Fatalf("GET /events: %d %s", code, body)
	}
	if code, body := b.get("/static/events.js"); code != http.StatusOK || !strings.Contains(body, "EventSource") {
		t.Fatalf("GET /static/events.js: %d", code)
	}
	req, _ := http.NewRequest("GET", e.URL+"/events/stream", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := b.c.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET /events/stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	// The handler subscribes before it answers: the headers above mean the
	// subscription is live, so the event recorded now reaches the stream.
	_, _ = e.Server.Events.Record(context.Background(), store.Event{At: time.Now(), Code: "audit.token_created",
		Severity: store.SeverityInfo, Source: "console-test", Message: "hello from the test"})
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "data:") && strings.Contains(sc.Text(), "hello from the test") {
			return
		}
	}
	t.Fatalf("the stream ended without the event: %v", sc.Err())
}

func TestStreamNeedsSession(t *testing.T) {
	e := apitest.Start(t, apitest.Options{})
	if code, _ := newBrowser(t, e.URL).get("/events/stream"); code != http.StatusSeeOther {
		t.Fatalf("GET /events/stream without a session: %d", code)
	}
}

func TestEnclosureAndSecurityPages(t *testing.T) {
	e := apitest.Start(t, apitest.Options{Subnet: 97, Fleet: sim.Config{Count: 5, Enclosures: []sim.EnclosureConfig{{Name: "enc-a", Blades: 3}}}})
	e.ImportFleet(t)
	b := login(t, e, store.RoleViewer)
	if code, body := b.get("/enclosures"); code != http.StatusOK || !strings.Contains(body, `href="/enclosures/enc-a"`) {
		t.Fatalf("GET /enclosures: %d %s", code, body)
	}
	code, body := b.get("/enclosures/enc-a")
	if code != http.StatusOK || strings.Count(body, `class="blade st-`) != 3 {
		t.Fatalf("GET /enclosures/enc-a: %d, want 3 blades in the slot grid:\n%s", code, body)
	}
	if !strings.Contains(body, `class="verdict verdict-`) || !strings.Contains(body, "Isolation:") {
		t.Errorf("enclosure page has no isolation verdict:\n%s", body)
	}
	if code, _ := b.get("/enclosures/nope"); code != http.StatusNotFound {
		t.Errorf("GET an unknown enclosure: %d, want 404", code)
	}
	code, body = b.get("/security?status=all")
	if code != http.StatusOK {
		t.Fatalf("GET /security: %d %s", code, body)
	}
	sum, _ := e.Server.Manager.Summarize(context.Background())
	if n := total(t, body); n != sum.Channels {
		t.Errorf("security view lists %d channels, want %d", n, sum.Channels)
	}
	if code, _ := b.get("/security?status=bogus"); code != http.StatusBadRequest {
		t.Errorf("GET /security?status=bogus: %d, want 400", code)
	}
}

func TestCrossOriginPostRefused(t *testing.T) {
	e := apitest.Start(t, apitest.Options{})
	req, _ := http.NewRequest("POST", e.URL+"/login", strings.NewReader(url.Values{"token": {e.Tokens[store.RoleAdmin]}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://evil.example")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || len(resp.Cookies()) != 0 {
		t.Fatalf("cross-origin login: %d %v, want 403 and no cookie", resp.StatusCode, resp.Cookies())
	}
}

// enrollAgent runs a host agent named name against e's agent listener
// (stopped at the test's end) and waits until the hub has it Up.
func enrollAgent(t *testing.T, e *apitest.Env, name string) int64 {
	t.Helper()
	return enrollAgentWith(t, e, agent.Config{Name: name})
}

// enrollAgentWith is enrollAgent with more of the agent's configuration
// (a host link); it returns the agent's node ID.
func enrollAgentWith(t *testing.T, e *apitest.Env, cfg agent.Config) int64 {
	t.Helper()
	tok, _, err := e.Server.Agents.CreateJoinToken(context.Background(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Manager, cfg.DataDir, cfg.JoinToken = e.Server.AgentAddr.String(), filepath.Join(e.Dir, "agent-"+cfg.Name), tok
	cfg.MinBackoff = 20 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		agent.Run(ctx, cfg)
	}()
	t.Cleanup(func() { cancel(); <-done })
	st := waitAgent(t, e, cfg.Name, "agent Up", func(s agent.Status) bool { return s.State == agent.Up })
	return st.ID
}

// waitAgent waits (10s) until the hub lists agent name as ok says.
func waitAgent(t *testing.T, e *apitest.Env, name, what string, ok func(agent.Status) bool) agent.Status {
	t.Helper()
	var last *agent.Status
	var got agent.Status
	if !poll.Wait(10*time.Second, func() bool {
		last = nil
		for _, s := range e.Server.Agents.List() {
			if s.Name == name {
				last = &s
				if ok(s) {
					got = s
					return true
				}
			}
		}
		return false
	}) {
		t.Fatalf("agent %s: no %s: %+v", name, what, last)
	}
	return got
}

// bmcEndpoint is the BMC side of a host link on loopback, trusting the
// server's agent CA (which issues the agents' link certificates).
func bmcEndpoint(t *testing.T, e *apitest.Env) *hostlink.Endpoint {
	t.Helper()
	cert, err := hostlink.SelfSigned([]string{"127.0.0.1"}, time.Now(), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ep, err := hostlink.NewEndpoint(hostlink.EndpointConfig{Addr: "127.0.0.1:0", Cert: cert, ClientCAs: e.Server.CA.Pool()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Close() })
	return ep
}

// TestAgentsPage: /agents lists the enrolled agents (a viewer sees them)
// with their certificate, host link and queue, a summary line, and the
// diagnosis (summary and remedy) under each agent that is not healthy: a
// host link Down with timeouts, a revoked certificate. A server without
// an agent listener says agents are not enabled.
func TestAgentsPage(t *testing.T) {
	e := apitest.Start(t, apitest.Options{Configure: func(c *server.Config) {
		c.AgentListen = "127.0.0.1:0"
		c.Agents.Interval = 100 * time.Millisecond
	}})
	enrollAgent(t, e, "web-1")
	w1 := waitAgent(t, e, "web-1", "certificate", func(s agent.Status) bool { return !s.CertNotAfter.IsZero() })

	// web-2: a host link Up over IPv4.
	up := bmcEndpoint(t, e)
	enrollAgentWith(t, e, agent.Config{Name: "web-2", LinkInterval: time.Hour,
		Link: &hostlink.Config{DisableInBand: true, DisableIPv6: true, IPv4: up.Addr(), Timeout: 2 * time.Second, Retries: -1}})
	waitAgent(t, e, "web-2", "host link Up", func(s agent.Status) bool { return s.Link != nil && s.Link.State == agent.LinkUp })

	// web-3: a BMC that never answers: the link is Down, with timeouts.
	silent := bmcEndpoint(t, e)
	silent.SetFault(hostlink.FaultSilent)
	enrollAgentWith(t, e, agent.Config{Name: "web-3", LinkInterval: 100 * time.Millisecond,
		Link: &hostlink.Config{DisableInBand: true, DisableIPv6: true, IPv4: silent.Addr(), Timeout: 100 * time.Millisecond, Retries: -1}})
	down := waitAgent(t, e, "web-3", "host link Down with timeouts", func(s agent.Status) bool {
		return s.Link != nil && s.Link.State == agent.LinkDown && s.Link.Timeouts > 0 && s.Link.TimeoutRate > 0
	})

	// web-4: revoked; it keeps connecting with its revoked certificate.
	id4 := enrollAgent(t, e, "web-4")
	if _, err := e.Server.Agents.Revoke(context.Background(), id4); err != nil {
		t.Fatal(err)
	}
	waitAgent(t, e, "web-4", "PendingUp (revoked)", func(s agent.Status) bool { return s.State == agent.PendingUp && s.Revoked })

	b := login(t, e, store.RoleViewer)
	code, body := b.get("/agents")
	if code != http.StatusOK {
		t.Fatalf("GET /agents: %d %s", code, body)
	}
	// The agents' certificates last a year (pki.ClientValidity).
	cert1 := fmt.Sprintf(`<td class="agent-cert"><span class="cert cert-ok" title="expires %s">%s <small>(%d days)</small></span></td>`,
		w1.CertNotAfter.Local().Format("2006-01-02 15:04:05"), w1.CertNotAfter.UTC().Format(time.DateOnly), int(time.Until(w1.CertNotAfter).Hours()/24))
	for _, want := range []string{`<a href="/agents" class="on">Agents</a>`, `<tr class="agent" data-state="Up" data-id="1">`,
		`<span class="badge ag-Up">Up</span>`, `<td>0x0001</td>`, `<td>web-1</td>`, `s ago</td>`,
		`<span class="count ag-Up" data-state="Up"><span class="n">3</span>`,
		`<span class="count ag-Down" data-state="Down"><span class="n">0</span>`,
		`<span class="count ag-PendingUp" data-state="PendingUp"><span class="n">1</span>`,
		// The summary line.
		`id="agents-summary">4 agents: 3 Up, 0 Down, 1 PendingUp; links: 1 Up, 1 not Up; <span title="agent and host link certificates">certificates expiring within 30 days: 0</span>.</p>`,
		// Columns: certificate, host link (state, path, address, timeouts, link certificate).
		`<th>Certificate</th><th>Host link</th><th>Queued</th><th>Last heartbeat</th>`,
		cert1,
		`<span class="badge lk-Up">Up</span> <span class="link-path">ipv4</span> <span class="link-addr">` + up.Addr() + `</span><br><small>cert</small> <span class="cert cert-ok"`,
		`<span class="badge lk-Down">Down</span>`,
		`<span class="flag">revoked</span>`,
		// The diagnoses: the link Down, the revoked certificate.
		`<tr class="agent unwell" data-state="Up" data-id="3">`,
		`<tr class="agent-diag" data-cause="agent_link_down"><td colspan="10"><p class="diag-summary"><b>agent_link_down:</b> agent web-3 (0x0003)&#39;s host link to its BMC is down: `,
		`<p class="remedy"><b>Remedy:</b> restart the link: <code>lightsout agent op 3 restart-link</code> (autocorrect does)`,
		`<tr class="agent unwell" data-state="PendingUp" data-id="4">`,
		`<tr class="agent-diag" data-cause="agent_cert_revoked"><td colspan="10"><p class="diag-summary"><b>agent_cert_revoked:</b> agent web-4 (0x0004) keeps connecting with a revoked certificate</p>`,
		`<p class="remedy"><b>Remedy:</b> if the revocation (<code>lightsout agent revoke</code>) was intended, stop <code>lightsout agent run</code> on the host`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("GET /agents: no %q in\n%s", want, body)
		}
	}
	// web-3's timeouts: a total and a rate (both grow between the wait and the page).
	if m := regexp.MustCompile(`<span class="link-timeouts flag">(\d+) timeouts? \((\d+\.\d)/min\)</span>`).FindStringSubmatch(body); m == nil {
		t.Errorf("GET /agents: no link timeouts with a rate in\n%s", body)
	} else if n, _ := strconv.ParseUint(m[1], 10, 64); n < down.Link.Timeouts {
		t.Errorf("GET /agents: %s link timeouts, the hub had %d before", m[1], down.Link.Timeouts)
	}
	// Healthy agents (web-1 without a link, web-2 with one Up) get no
	// diagnosis; the two that are not get one each.
	if n := strings.Count(body, `<tr class="agent-diag"`); n != 2 {
		t.Errorf("GET /agents: %d diagnosis rows, want 2", n)
	}
	for _, healthy := range []string{`data-id="1"`, `data-id="2"`} {
		if !strings.Contains(body, `<tr class="agent" data-state="Up" `+healthy+`>`) {
			t.Errorf("GET /agents: agent %s is not listed as healthy", healthy)
		}
	}
	if strings.Contains(body, "not enabled") {
		t.Errorf("GET /agents with a listener says agents are not enabled")
	}

	plain := apitest.Start(t, apitest.Options{})
	code, body = login(t, plain, store.RoleViewer).get("/agents")
	if code != http.StatusOK || !strings.Contains(body, "Agents are not enabled") || !strings.Contains(body, "--agent-listen") ||
		strings.Contains(body, `<table class="agents">`) {
		t.Fatalf("GET /agents without a listener: %d %s", code, body)
	}
}

// TestFleetFindingsOnEventsPage: a fleet finding is listed in its own
// section above the events; without one, the page says there is none.
func TestFleetFindingsOnEventsPage(t *testing.T) {
	e := apitest.Start(t, apitest.Options{})
	b := login(t, e, store.RoleViewer)
	if _, body := b.get("/events"); !strings.Contains(body, `id="no-findings"`) {
		t.Fatalf("no 'no findings' note on a quiet fleet:\n%s", body)
	}
	if _, err := e.Server.Events.Record(context.Background(), store.Event{At: time.Now(), Code: "fleet.correlated",
		Severity: store.SeverityWarning, Source: "fleet:oob.degraded:firmware=Dell 4.40",
		Message: "3 of 4 BMCs with firmware Dell 4.40 are degraded: bmc-1, bmc-2, bmc-3"}); err != nil {
		t.Fatal(err)
	}
	_, body := b.get("/events")
	i := strings.Index(body, "Fleet findings")
	j := strings.Index(body, "All events")
	k := strings.Index(body, "3 of 4 BMCs with firmware Dell 4.40")
	if i < 0 || j < 0 || k < i || k > j || strings.Contains(body, `id="no-findings"`) {
		t.Fatalf("fleet finding not listed in its section (%d %d %d):\n%s", i, j, k, body)
	}
}
