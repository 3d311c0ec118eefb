package web_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/lightsout/lightsout/internal/store"
)

// streamed is one line of a diagnosis stream and when it arrived.
type streamed struct {
	Kind    string `json:"kind"`
	Step    int    `json:"step"`
	Need    string `json:"need"`
	Done    bool   `json:"done"`
	Text    string `json:"text"`
	HTML    string `json:"html"`
	Message string `json:"message"`
	arrived time.Duration
}

// TestDiagnoseStream: POST /machines/NAME/diagnose/stream on a blade of a
// dead enclosure answers one JSON line per step as the step starts and
// ends — the first line long before the diagnosis ends, so the lines are
// not held back — then the diagnosis section as the page renders it. A
// viewer, a missing CSRF token and an unknown machine get the error page
// and status, not a stream.
func TestDiagnoseStream(t *testing.T) {
	e, incs := incidentFleet(t)
	op := login(t, e, store.RoleOperator)
	if op.csrf == "" {
		t.Fatal("no CSRF token after login")
	}
	form := url.Values{"csrf": {op.csrf}}
	req, _ := http.NewRequest("POST", e.URL+"/machines/bmc-00002/diagnose/stream", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	start := time.Now()
	resp, err := op.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var lines []streamed
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var l streamed
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		l.arrived = time.Since(start)
		lines = append(lines, l)
	}
	if len(lines) < 4 {
		t.Fatalf("%d lines: %+v", len(lines), lines)
	}
	first, last := lines[0], lines[len(lines)-1]
	if first.Kind != "step" || first.Step != 0 || first.Done || !strings.Contains(first.Text, "checking the channel") {
		t.Errorf("first line %+v, want step 0 starting", first)
	}
	if last.Kind != "result" || !strings.Contains(last.HTML, `<section class="diag">`) || !strings.Contains(last.HTML, "<h2>Diagnosis</h2>") {
		t.Errorf("last line %+v, want the rendered diagnosis", last)
	}
	needs := map[string]bool{}
	for _, l := range lines {
		if l.Kind == "step" && l.Done {
			needs[l.Need] = true
		}
	}
	if !needs[""] || !needs["em_ping"] {
		t.Errorf("steps done %v; want the fresh check and the enclosure manager's ping", needs)
	}
	// Streamed, not buffered: the first step arrived while the silent
	// blade's check was still waiting on its timeout.
	t.Logf("first line after %v, result after %v, %d lines", first.arrived, last.arrived, len(lines))
	if last.arrived-first.arrived < 500*time.Millisecond {
		t.Errorf("the first step arrived %v, the result %v: the lines were held back", first.arrived, last.arrived)
	}

	// Refusals before anything runs: the error page and its status.
	viewer := login(t, e, store.RoleViewer)
	if code, body, _ := viewer.do("POST", "/machines/bmc-00002/diagnose/stream", url.Values{"csrf": {viewer.csrf}}); code != http.StatusForbidden || !strings.Contains(body, "needs role operator") {
		t.Errorf("viewer: %d %.200s", code, body)
	}
	if code, _, _ := op.do("POST", "/machines/bmc-00002/diagnose/stream", url.Values{}); code != http.StatusForbidden {
		t.Errorf("no CSRF token: %d", code)
	}
	if code, body, _ := op.do("POST", "/machines/ghost/diagnose/stream", url.Values{"csrf": {op.csrf}}); code != http.StatusNotFound || !strings.Contains(body, "ghost") {
		t.Errorf("unknown machine: %d %.200s", code, body)
	}

	// An incident's diagnosis: streamed, and the plain form post (no
	// script) renders the same block on a page of its own.
	var id string
	for _, i := range incs {
		if i.Kind == "cause" {
			id = i.ID
		}
	}
	code, body, resp := op.do("POST", "/incidents/diagnose/stream", url.Values{"csrf": {op.csrf}, "id": {id}})
	var res streamed
	ls := strings.Split(strings.TrimSpace(body), "\n")
	if code != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-ndjson" || json.Unmarshal([]byte(ls[len(ls)-1]), &res) != nil ||
		res.Kind != "result" || strings.Count(res.HTML, `<section class="diag"`) != 2 || !strings.Contains(res.HTML, "2 diagnosed") {
		t.Errorf("incident stream: %d %.300s", code, body)
	}
	steps := 0
	for _, l := range ls {
		if strings.Contains(l, `"kind":"step"`) && strings.Contains(l, `"done":true`) {
			steps++
		}
	}
	if steps < 2 {
		t.Errorf("incident stream: %d steps done, want the two machines' checks at least", steps)
	}
	code, body, _ = op.do("POST", "/incidents/diagnose", url.Values{"csrf": {op.csrf}, "id": {id}})
	if code != http.StatusOK || !strings.Contains(body, "<h1>Diagnosis of an incident</h1>") || strings.Count(body, `<section class="diag"`) != 2 {
		t.Errorf("incident page: %d %.300s", code, body)
	}
	if code, body, _ := op.do("POST", "/incidents/diagnose/stream", url.Values{"csrf": {op.csrf}, "id": {"nope"}}); code != http.StatusNotFound || !strings.Contains(body, "nope") {
		t.Errorf("unknown incident: %d %.200s", code, body)
	}
}

// TestBrowserDiagnosisStreams: in Chromium, Diagnose on a blade of a dead
// enclosure shows its steps as they run — the first well before the
// result — then the diagnosis with the steps folded under it, without
// leaving the machine page; the overview's "Diagnose now" on an incident
// streams in place the same way. Screenshots: diagnosis-streaming,
// diagnosis-streamed, incident-diagnosis-streaming,
// incident-diagnosis-streamed.
func TestBrowserDiagnosisStreams(t *testing.T) {
	e, _ := incidentFleet(t)
	c := newChrome(t, e)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	c.login(store.RoleOperator, "/machines/bmc-00002")
	c.do("diagnose", 10*time.Second,
		chromedp.WaitVisible(css(`form.diagnose button`)),
		chromedp.Click(css(`form.diagnose button`)),
		chromedp.WaitVisible(css(`#diagnosis ol.diag-steps li.step`)))
	c.shot("diagnosis-streaming")
	c.do("the diagnosis ends", 60*time.Second, chromedp.WaitVisible(css(`#diagnosis[data-state="done"] section.diag`)))
	c.shot("diagnosis-streamed")
	loc, err := chromedp.Run(c.tab, chromedp.Location())
	if err != nil || !strings.HasSuffix(loc, "/machines/bmc-00002") {
		t.Errorf("the page left for %q (%v); the stream should not navigate", loc, err)
	}
	steps := c.eval(`document.querySelectorAll("#diagnosis li.step.done").length`)
	firstAt := c.eval(`Number(document.querySelector("#diagnosis li.step").getAttribute("data-at"))`)
	resultAt := c.eval(`Number(document.querySelector("#diagnosis").getAttribute("data-result-at"))`)
	t.Logf("%d steps; first shown at %d ms, result at %d ms", steps, firstAt, resultAt)
	if steps < 2 {
		t.Errorf("%d steps shown, want the check and the enclosure manager's ping at least", steps)
	}
	if resultAt-firstAt < 500 {
		t.Errorf("first step shown at %d ms, the result at %d ms: not streamed", firstAt, resultAt)
	}
	if got := c.text(`#diagnosis section.diag h3`); !strings.Contains(got, "enclosure") {
		t.Errorf("diagnosis: %q, want the enclosure named", got)
	}
	if got := c.text(`#diagnosis details.diag-steps summary`); !strings.HasPrefix(got, "Steps (") {
		t.Errorf("steps summary %q", got)
	}

	// The overview's "Diagnose now" on the dead enclosure streams too,
	// each step named with its machine, the results under the incident.
	art := `article[data-kind="enclosure"]`
	c.do("diagnose the enclosure incident", 10*time.Second,
		chromedp.Navigate(e.URL+"/"),
		chromedp.WaitVisible(css(art+` form.diagnose button`)),
		chromedp.Click(css(art+` form.diagnose button`)),
		chromedp.WaitVisible(css(art+` ol.diag-steps li.step`)))
	c.shot("incident-diagnosis-streaming")
	if got := c.text(art + ` ol.diag-steps li.step`); !strings.HasPrefix(got, "bmc-0000") {
		t.Errorf("incident step %q, want its machine first", got)
	}
	c.do("the incident's diagnosis ends", 60*time.Second, chromedp.WaitVisible(css(art+` div.diagnosis[data-state="done"] section.diag`)))
	c.shot("incident-diagnosis-streamed")
	// The incident names one blade to diagnose (the enclosure's verdict
	// needs one).
	if n := c.eval(`document.querySelectorAll('` + art + ` section.diag').length`); n != 1 || !strings.Contains(c.text(art+` section.diag h3`), "enclosure") {
		t.Errorf("%d diagnoses under the enclosure incident (%q), want its blade's, naming the enclosure", n, c.text(art+` div.diagnosis`))
	}
	firstAt = c.eval(`Number(document.querySelector('` + art + ` li.step').getAttribute("data-at"))`)
	resultAt = c.eval(`Number(document.querySelector('` + art + ` div.diagnosis').getAttribute("data-result-at"))`)
	if resultAt-firstAt < 500 {
		t.Errorf("incident: first step shown at %d ms, the result at %d ms: not streamed", firstAt, resultAt)
	}
	if loc, _ := chromedp.Run(c.tab, chromedp.Location()); loc != e.URL+"/" {
		t.Errorf("the overview left for %q", loc)
	}
}
