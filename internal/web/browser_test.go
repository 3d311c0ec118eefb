package web_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/lightsout/lightsout/internal/agent"
	"github.com/lightsout/lightsout/internal/api/apitest"
	"github.com/lightsout/lightsout/internal/hostlink"
	"github.com/lightsout/lightsout/internal/manager"
	"github.com/lightsout/lightsout/internal/peertest"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
	"github.com/lightsout/lightsout/internal/web"
)

// artifactDir is where the browser tests write their screenshots:
// $LIGHTSOUT_ARTIFACTS, else internal/web/testdata/artifacts (git-ignored),
// created if missing, so CI can keep them.
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("LIGHTSOUT_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("testdata", "artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("artifacts: %v", err)
	}
	abs, _ := filepath.Abs(dir)
	return abs
}

// apiDo does an API request with a role's token and decodes the JSON.
func apiDo(t *testing.T, e *apitest.Env, r store.Role, method, path, body string, out any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.Tokens[r])
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	c := &http.Client{Timeout: 30 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
}

// TestBrowserConsole drives the console in headless Chromium: log in by
// pasting the token, compare the overview's counts with the API's summary,
// follow a count to the filtered table, read a NotAuthenticated machine's
// remedy, watch a machine's power change live (no reload) when the API
// powers it off, power off through the confirmation step, watch a live
// warning arrive while info stays hidden, filter events by severity, code
// and time in the URL, and check that a viewer gets no power buttons. Every page
// is screenshotted into artifactDir.
func TestBrowserConsole(t *testing.T) {
	chromium := peertest.Need(t, "chromium")[0]
	began := time.Now()
	e := start(t, 0)
	arts := artifactDir(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900))
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	tab, cancel := chromedp.NewContext(actx)
	defer cancel()
	tab, cancel = context.WithTimeout(tab, 60*time.Second)
	defer cancel()
	// Start the browser on the tab's own context: the first run binds it,
	// and the steps below run on shorter-lived contexts.
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	t.Logf("fleet settled and chromium started in %v", time.Since(began).Round(time.Millisecond))

	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	// do runs steps with a bounded wait, failing the test with what.
	do := func(what string, d time.Duration, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		ctx, cancel := context.WithTimeout(tab, d)
		defer cancel()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(tab, 5*time.Second)
		defer cancel()
		s, err := chromedp.Run(ctx, chromedp.Text(css(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}
	eval := func(js string) int {
		t.Helper()
		ctx, cancel := context.WithTimeout(tab, 5*time.Second)
		defer cancel()
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](js))
		if err != nil {
			t.Fatalf("evaluate %s: %v", js, err)
		}
		return n
	}
	shot := func(name string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(tab, 10*time.Second)
		defer cancel()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(arts, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	login := func(r store.Role, path string) {
		t.Helper()
		do("log in as "+string(r), 10*time.Second,
			chromedp.Navigate(e.URL+path),
			chromedp.WaitVisible(css(`#token`)),
			chromedp.SendKeys(css(`#token`), e.Tokens[r]),
			chromedp.Submit(css(`#token`)),
			chromedp.WaitVisible(css(`form.who`)),
		)
	}

	// Log in: the login page keeps the page asked for.
	do("login page", 10*time.Second, chromedp.Navigate(e.URL+"/machines/bmc-00001"), chromedp.WaitVisible(css(`#token`)))
	shot("login")
	login(store.RoleOperator, "/machines/bmc-00001")
	if h1 := text(`h1`); h1 != "bmc-00001" {
		t.Fatalf("after login: h1 %q, want the page asked for (bmc-00001)", h1)
	}

	// The overview's numbers are the API's summary.
	var sum manager.Summary
	apiDo(t, e, store.RoleViewer, "GET", "/api/v1/summary", "", &sum)
	do("overview", 10*time.Second, chromedp.Navigate(e.URL+"/"), chromedp.WaitVisible(css(`.counts`)))
	shot("overview")
	if got := text(`#n-machines`); got != strconv.Itoa(sum.Machines) {
		t.Errorf("overview machines %s, API %d", got, sum.Machines)
	}
	if got := text(`#n-channels`); got != strconv.Itoa(sum.Channels) {
		t.Errorf("overview channels %s, API %d", got, sum.Channels)
	}
	for _, st := range web.States {
		if got := text(`a[data-state="` + string(st) + `"] .n`); got != strconv.Itoa(sum.OOB[st]) {
			t.Errorf("overview %s: %s, API %d", st, got, sum.OOB[st])
		}
	}
	if sum.OOB[state.Connectable] != 3 || sum.OOB[state.NotAuthenticated] != 1 {
		t.Errorf("API summary %+v: want 3 Connectable, 1 NotAuthenticated", sum)
	}

	// A count leads to the machines in that state.
	do("overview → table", 10*time.Second,
		chromedp.Click(css(`a[data-state="NotAuthenticated"]`)),
		chromedp.WaitVisible(css(`table.machines`)),
	)
	if table := text(`table.machines tbody`); !strings.Contains(table, "bmc-00004") || strings.Contains(table, "bmc-00001") {
		t.Fatalf("NotAuthenticated table: %q", table)
	}
	do("machine table", 10*time.Second, chromedp.Navigate(e.URL+"/machines"), chromedp.WaitVisible(css(`table.machines`)))
	shot("machines")

	// The NotAuthenticated machine's page gives the API's remedy.
	var mv manager.MachineView
	apiDo(t, e, store.RoleViewer, "GET", "/api/v1/machines/bmc-00004", "", &mv)
	if len(mv.Channels) != 1 || mv.Channels[0].Remedy == "" {
		t.Fatalf("API machine bmc-00004: %+v", mv)
	}
	do("NotAuthenticated machine", 10*time.Second,
		chromedp.Navigate(e.URL+"/machines/bmc-00004"),
		chromedp.WaitVisible(css(`section.channel p.remedy`)),
	)
	if st := text(`section.channel .ch-state`); st != "NotAuthenticated" {
		t.Errorf("bmc-00004 state on the page: %q", st)
	}
	if remedy := text(`section.channel p.remedy`); remedy != "Remedy: "+mv.Channels[0].Remedy {
		t.Errorf("bmc-00004 remedy on the page %q, API %q", remedy, mv.Channels[0].Remedy)
	}
	shot("machine-notauthenticated")

	// Live: the page of a Connectable machine follows a power off done
	// elsewhere (the API), without reloading.
	do("live machine page", 10*time.Second,
		chromedp.Navigate(e.URL+"/machines/bmc-00003"),
		chromedp.WaitVisible(css(`section.channel .ch-power`)),
	)
	if _, err := chromedp.Run(tab, chromedp.Poll[bool](`document.getElementById("live-machine").textContent === "Live updates on"`,
		chromedp.WithPollingTimeout(5*time.Second))); err != nil {
		t.Fatalf("the machine page's event stream did not connect: %v", err)
	}
	if p := text(`section.channel .ch-power`); p != "on" {
		t.Fatalf("bmc-00003 power before: %q, want on", p)
	}
	eval(`window.notReloaded = 1`)
	// The "(… ago)" beside since is rewritten by each live update too.
	eval(`document.querySelector("section.channel .ch-since-ago").textContent = "stale"; 1`)
	t0 := time.Now()
	apiDo(t, e, store.RoleOperator, "POST", "/api/v1/power", `{"action":"off","machines":["bmc-00003"]}`, nil)
	do("the power cell did not turn off live", 10*time.Second, chromedp.WaitVisible(css(`section.channel .ch-power.pw-off`)))
	t.Logf("bmc-00003: power off seen live %v after the API call", time.Since(t0).Round(time.Millisecond))
	if p := text(`section.channel .ch-power`); p != "off" {
		t.Errorf("bmc-00003 power after: %q", p)
	}
	if eval(`window.notReloaded || 0`) != 1 {
		t.Error("the machine page reloaded")
	}
	if ago := text(`section.channel .ch-since-ago`); !strings.HasSuffix(ago, " ago") {
		t.Errorf("bmc-00003 since (ago) after a live update: %q", ago)
	}
	if st := text(`section.channel .ch-state`); st != "Connectable" {
		t.Errorf("bmc-00003 state after power off: %q", st)
	}
	shot("machine-live")

	// Power off through the console's confirmation step.
	do("power off", 20*time.Second,
		chromedp.Navigate(e.URL+"/machines/bmc-00002"),
		chromedp.Click(css(`a.power-action[href$="action=off"]`)),
		chromedp.WaitVisible(css(`form.confirm button`)),
		chromedp.Click(css(`form.confirm button`)),
		chromedp.WaitVisible(css(`p.notice`)),
	)
	if notice := text(`p.notice`); !strings.Contains(notice, "power off: ok") {
		t.Fatalf("power off: notice %q", notice)
	}
	shot("machine")

	// Events: info is hidden by default, live too; a warning appears live.
	do("events", 10*time.Second,
		chromedp.Navigate(e.URL+"/events"),
		chromedp.WaitVisible(css(`#live`)),
		chromedp.Sleep(300*time.Millisecond), // the EventSource connects
	)
	for _, ev := range []store.Event{
		{At: time.Now(), Code: "audit.token_created", Severity: store.SeverityInfo, Source: "browser-test", Message: "hello from the browser test"},
		{At: time.Now(), Code: "power.failed", Severity: store.SeverityWarning, Source: "browser-test", Message: "a warning from the browser test"},
	} {
		if _, err := e.Server.Events.Record(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	do("the live warning did not appear", 10*time.Second,
		chromedp.WaitVisible(chromedp.Search(`//tbody[@id="events"]/tr/td[contains(., "a warning from the browser test")]`)))
	if n := eval(`[...document.querySelectorAll("#events td")].filter(td => td.textContent.includes("hello from the browser test")).length`); n != 0 {
		t.Error("an info event shows on the default events page")
	}
	shot("events")
	// "show info too": the filter in the URL, the info event listed.
	do("show info", 10*time.Second,
		chromedp.Click(css(`#show-info`)),
		chromedp.WaitVisible(chromedp.Search(`//tbody[@id="events"]/tr/td[contains(., "hello from the browser test")]`)))
	do("filter by code", 10*time.Second,
		chromedp.Navigate(e.URL+"/events?severity=info&code=power.*&since=1h"),
		chromedp.WaitVisible(chromedp.Search(`//tbody[@id="events"]/tr/td[contains(., "a warning from the browser test")]`)))
	if n := eval(`[...document.querySelectorAll("#events td")].filter(td => td.textContent.includes("hello from the browser test")).length`); n != 0 {
		t.Error("code=power.* lists an audit event")
	}
	shot("events-filtered")
	do("bad since", 10*time.Second, chromedp.Navigate(e.URL+"/events?since=yesterday"), chromedp.WaitVisible(css(`p.error`)))
	if got := text(`p.error`); !strings.Contains(got, "since") || !strings.Contains(got, `"yesterday"`) {
		t.Errorf("bad since: %q", got)
	}

	do("enclosures", 10*time.Second, chromedp.Navigate(e.URL+"/enclosures"), chromedp.WaitVisible(css(`h1`)))
	shot("enclosures")
	do("security", 10*time.Second, chromedp.Navigate(e.URL+"/security"), chromedp.WaitVisible(css(`h1`)))
	shot("security")
	// Agents: one healthy with its host link Up, one whose BMC never
	// answers (link Down, timeouts), one revoked; the two unhealthy ones
	// get their diagnosis under them.
	up := bmcEndpoint(t, e)
	enrollAgentWith(t, e, agent.Config{Name: "host-1", LinkInterval: time.Hour,
		Link: &hostlink.Config{DisableInBand: true, DisableIPv6: true, IPv4: up.Addr(), Timeout: 2 * time.Second, Retries: -1}})
	waitAgent(t, e, "host-1", "host link Up", func(s agent.Status) bool { return s.Link != nil && s.Link.State == agent.LinkUp })
	silent := bmcEndpoint(t, e)
	silent.SetFault(hostlink.FaultSilent)
	enrollAgentWith(t, e, agent.Config{Name: "host-2", LinkInterval: 100 * time.Millisecond,
		Link: &hostlink.Config{DisableInBand: true, DisableIPv6: true, IPv4: silent.Addr(), Timeout: 100 * time.Millisecond, Retries: -1}})
	waitAgent(t, e, "host-2", "host link Down with timeouts", func(s agent.Status) bool {
		return s.Link != nil && s.Link.State == agent.LinkDown && s.Link.TimeoutRate > 0
	})
	id3 := enrollAgent(t, e, "host-3")
	if _, err := e.Server.Agents.Revoke(context.Background(), id3); err != nil {
		t.Fatal(err)
	}
	waitAgent(t, e, "host-3", "PendingUp (revoked)", func(s agent.Status) bool { return s.State == agent.PendingUp })
	do("agents", 10*time.Second, chromedp.Navigate(e.URL+"/agents"), chromedp.WaitVisible(css(`tr.agent-diag`)))
	if sum := text(`#agents-summary`); sum != "3 agents: 2 Up, 0 Down, 1 PendingUp; links: 1 Up, 1 not Up; certificates expiring within 30 days: 0." {
		t.Errorf("agents: summary %q", sum)
	}
	if n := eval(`document.querySelectorAll("tr.agent").length`); n != 3 {
		t.Errorf("agents: %d rows, want 3", n)
	}
	if n := eval(`document.querySelectorAll('tr.agent-diag[data-cause="agent_link_down"], tr.agent-diag[data-cause="agent_cert_revoked"]').length`); n != 2 {
		t.Errorf("agents: %d diagnoses (link down, revoked), want 2", n)
	}
	if rm := text(`tr.agent-diag[data-cause="agent_cert_revoked"] p.remedy`); !strings.HasPrefix(rm, "Remedy: if the revocation (lightsout agent revoke) was intended") {
		t.Errorf("agents: revoked remedy %q", rm)
	}
	if lk := text(`tr.agent[data-id="2"] td.link`); !strings.Contains(lk, "Down") || !strings.Contains(lk, "timeout") || !strings.Contains(lk, "/min") {
		t.Errorf("agents: host-2's link cell %q", lk)
	}
	// The layout holds: the table fits the 1280px window.
	if w := eval(`Math.round(document.querySelector("table.agents").getBoundingClientRect().right)`); w > 1280 {
		t.Errorf("agents: the table is %dpx wide, past the window", w)
	}
	shot("agents")

	// A viewer gets the machine page without power (or other) actions.
	do("log out", 10*time.Second, chromedp.Click(css(`form.who button`)), chromedp.WaitVisible(css(`#token`)))
	login(store.RoleViewer, "/machines/bmc-00001")
	if h1 := text(`h1`); h1 != "bmc-00001" {
		t.Fatalf("viewer: h1 %q", h1)
	}
	if role := text(`form.who .role`); role != string(store.RoleViewer) {
		t.Errorf("viewer: role %q", role)
	}
	if n := eval(`document.querySelectorAll('a.power-action, form[action$="/power"], .actions').length`); n != 0 {
		t.Errorf("the viewer's machine page has %d power/action elements", n)
	}
	if n := eval(`document.querySelectorAll("section.channel .ch-power").length`); n != 1 {
		t.Errorf("the viewer's machine page shows %d power cells, want 1", n)
	}
	shot("machine-viewer")
	t.Logf("screenshots in %s; total %v", arts, time.Since(began).Round(time.Millisecond))
}
