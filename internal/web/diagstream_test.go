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
	e, _ := incidentFleet(t)
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
}

// TestBrowserDiagnosisStreams: in Chromium, Diagnose on a blade of a dead
// enclosure shows its steps as they run — the first well before the
// result — then the diagnosis with the steps folded under it, without
// leaving the machine page. Screenshots: diagnosis-streaming,
// diagnosis-streamed.
func TestBrowserDiagnosisStreams(t *testing.T) {
	e, _ := incidentFleet(t)
	c := newChrome(t, e)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	c.login(store.RoleOperator, "/machines/bmc-00002")
	c.do("diagnose", 10*time.Second,
		chromedp.WaitVisible(css(`form.diagnose button`)),
		chromedp.Click(css(`form.diagnose button`)),
		chromedp.WaitVisible(css(`#diag-steps li.step`)))
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
}
