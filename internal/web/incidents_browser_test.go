package web_test

import (
	"fmt"
	"github.com/lightsout/lightsout/internal/poll"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/lightsout/lightsout/internal/api/apitest"
	"github.com/lightsout/lightsout/internal/incident"
	"github.com/lightsout/lightsout/internal/sim"
	"github.com/lightsout/lightsout/internal/store"
)

// incidentFleet is a fleet with the demo's story: enclosure enc-b dead
// with its blades (bmc-00001..3), two BMCs refusing the password
// (bmc-00005, bmc-00006), two with swapped addresses (bmc-00008,
// bmc-00009) and one without a free session slot (bmc-00010, Busy). It
// returns once the API lists those four incidents.
func incidentFleet(t *testing.T) (*apitest.Env, []incident.Incident) {
	t.Helper()
	e := apitest.Start(t, apitest.Options{Subnet: 96,
		Fleet: sim.Config{Count: 10, Seed: 5, Enclosures: []sim.EnclosureConfig{{Name: "enc-b", Blades: 3}},
			Faults: map[string]sim.Faults{"bmc-00005": {WrongPassword: true}, "bmc-00006": {WrongPassword: true}, "bmc-00010": {SlotsFull: true}},
			Swaps:  [][]string{{"bmc-00008", "bmc-00009"}}}})
	if err := e.Fleet.SetEnclosureDown("enc-b", true); err != nil {
		t.Fatal(err)
	}
	e.ImportFleet(t)
	var incs []incident.Incident
	if !poll.Wait(30*time.Second, func() bool {
		incs = nil
		apiDo(t, e, store.RoleViewer, "GET", "/api/v1/incidents", "", &incs)
		kinds := map[string]int{}
		refused := 0 // members of the wrong-password incident: both, not the first alone
		for _, i := range incs {
			kinds[i.Kind]++
			if i.Kind == incident.KindCause {
				refused = len(i.Members)
			}
		}
		return len(incs) == 4 && kinds[incident.KindEnclosure] == 1 && kinds[incident.KindSwap] == 1 && kinds[incident.KindCause] == 1 && kinds[incident.KindCondition] == 1 && refused == 2
	}) {
		t.Fatalf("the fleet's incidents did not settle: %+v", incs)
	}
	return e, incs
}

// TestBrowserIncidents: the overview leads with the API's incidents, worst
// first, above the counts, each with its remedy and links to its machines;
// a member link opens the machine; "Diagnose now" diagnoses the incident's
// machines and shows each cause; a viewer gets no diagnose button.
// Screenshots: overview-incidents, incident-diagnosis.
func TestBrowserIncidents(t *testing.T) {
	e, incs := incidentFleet(t)
	c := newChrome(t, e)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }

	c.login(store.RoleOperator, "/")
	c.do("overview", 10*time.Second, chromedp.WaitVisible(css(`#incidents article.incident`)))
	c.shot("overview-incidents")
	if n := c.eval(`document.querySelectorAll("#incidents article.incident").length`); n != len(incs) {
		t.Fatalf("overview shows %d incidents, the API %d", n, len(incs))
	}
	// Above the counts.
	if c.eval(`document.querySelector("#incidents").compareDocumentPosition(document.querySelector(".counts")) & Node.DOCUMENT_POSITION_FOLLOWING ? 1 : 0`) != 1 {
		t.Error("the incidents are not above the counts")
	}
	for i, inc := range incs {
		sel := fmt.Sprintf(`#incidents article.incident:nth-of-type(%d)`, i+1)
		if id := c.eval(fmt.Sprintf(`document.querySelector(%q).dataset.id === %q ? 1 : 0`, sel, inc.ID)); id != 1 {
			t.Errorf("incident %d is not %s (the API's order)", i+1, inc.ID)
		}
		if got := c.text(sel + ` .title`); got != inc.Title {
			t.Errorf("incident %s title %q, API %q", inc.ID, got, inc.Title)
		}
		if got := c.text(sel + ` p.remedy`); got != "Remedy: "+inc.Remedy {
			t.Errorf("incident %s remedy %q, API %q", inc.ID, got, inc.Remedy)
		}
		if got := c.text(sel + ` p.members`); got != strings.Join(inc.Members, ", ") {
			t.Errorf("incident %s members %q, API %v", inc.ID, got, inc.Members)
		}
	}
	if !strings.Contains(c.text(`#incidents article.incident:first-of-type .title`), "enclosure enc-b is unreachable") {
		t.Errorf("first incident: %q, want the dead enclosure", c.text(`#incidents article.incident:first-of-type .title`))
	}

	// A member link opens its machine.
	c.do("member link", 10*time.Second,
		chromedp.Click(css(`article[data-kind="swap"] a.member[href="/machines/bmc-00009"]`)),
		chromedp.WaitVisible(css(`section.channel`)))
	if h1 := c.text(`h1`); h1 != "bmc-00009" {
		t.Errorf("member link led to %q", h1)
	}

	// One click diagnoses the incident's machines.
	c.do("diagnose the refused passwords", 60*time.Second,
		chromedp.Navigate(e.URL+"/"),
		chromedp.WaitVisible(css(`article[data-kind="cause"] form button`)),
		chromedp.Click(css(`article[data-kind="cause"] form button`)),
		chromedp.WaitVisible(css(`section.diag`)))
	c.shot("incident-diagnosis")
	if n := c.eval(`document.querySelectorAll("section.diag").length`); n != 2 {
		t.Errorf("diagnosed %d machines, want the incident's 2", n)
	}
	for _, m := range []string{"bmc-00005", "bmc-00006"} {
		got := c.text(fmt.Sprintf(`section.diag[data-machine=%q] h3`, m))
		if !strings.Contains(got, "password") {
			t.Errorf("%s diagnosis: %q, want the wrong password named", m, got)
		}
	}

	// A viewer sees the incidents, without the button.
	c.do("log out", 10*time.Second, chromedp.Click(css(`form.who button`)), chromedp.WaitVisible(css(`#token`)))
	c.login(store.RoleViewer, "/")
	c.do("viewer overview", 10*time.Second, chromedp.WaitVisible(css(`#incidents article.incident`)))
	if n := c.eval(`document.querySelectorAll("#incidents form").length`); n != 0 {
		t.Errorf("a viewer gets %d diagnose buttons", n)
	}
}
