package web_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/lightsout/lightsout/internal/manager"
	"github.com/lightsout/lightsout/internal/store"
)

// TestBrowserFiltersGateEnclosures: on the incident fleet, the machine
// table shows conditions and filters by condition, reason, state and
// enclosure through the URL (the selects write it); a misspelt filter is a
// 400 naming it; a machine whose address another BMC answers at gets no
// power buttons but the refusal and the API's remedy in their place (and
// no confirmation even by URL), a Connectable one its buttons; the
// enclosures page gives each enclosure's health. Screenshots:
// machines-condition, machines-filtered, machine-refused, enclosures-health.
func TestBrowserFiltersGateEnclosures(t *testing.T) {
	e, _ := incidentFleet(t)
	c := newChrome(t, e)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	rows := func() string { return c.text(`table.machines tbody`) }
	count := func(sel string) int {
		return c.eval(`document.querySelectorAll(` + "`" + sel + "`" + `).length`)
	}
	// The overview counts machines by condition, each linking to them.
	c.login(store.RoleOperator, "/")
	c.do("overview conditions", 10*time.Second, chromedp.WaitVisible(css(`p.conditions`)))
	if got := c.text(`a[data-condition="Busy"] .n`); got != "1" {
		t.Errorf("overview Busy: %s, want 1 (bmc-00010)", got)
	}
	c.do("Busy machines", 10*time.Second, chromedp.Click(css(`a[data-condition="Busy"]`)), chromedp.WaitVisible(css(`table.machines`)))
	c.shot("machines-condition")
	if got := rows(); !strings.Contains(got, "bmc-00010") || count(`tr.machine`) != 1 {
		t.Errorf("condition=Busy: %q", got)
	}
	if got := c.text(`tr.machine a.cond`); got != "Busy" {
		t.Errorf("Busy row's condition badge: %q", got)
	}

	// The selects write the filter into the URL.
	c.do("filter by reason", 10*time.Second,
		chromedp.Navigate(e.URL+"/machines"),
		chromedp.WaitVisible(css(`select[name=reason]`)),
		chromedp.SetValue(css(`select[name=reason]`), "wrong_password"),
		chromedp.Submit(css(`form.filters`)),
		chromedp.WaitVisible(css(`select[name=reason]`)))
	loc, err := chromedp.Run(c.tab, chromedp.Location())
	if err != nil || !strings.Contains(loc, "reason=wrong_password") {
		t.Errorf("URL after filtering %q: %v", loc, err)
	}
	if got := rows(); count(`tr.machine`) != 2 || !strings.Contains(got, "bmc-00005") || !strings.Contains(got, "bmc-00006") {
		t.Errorf("reason=wrong_password: %q", got)
	}
	c.do("enclosure and state", 10*time.Second,
		chromedp.Navigate(e.URL+"/machines?enclosure=enc-b&state=NotResponding"), chromedp.WaitVisible(css(`table.machines`)))
	c.shot("machines-filtered")
	if n := count(`tr.machine`); n != 3 {
		t.Errorf("enclosure=enc-b&state=NotResponding: %d rows: %q", n, rows())
	}
	c.do("bad filter", 10*time.Second, chromedp.Navigate(e.URL+"/machines?condition=busy"), chromedp.WaitVisible(css(`p.error`)))
	if got := c.text(`p.error`); !strings.Contains(got, "condition") || !strings.Contains(got, `"busy" is not a condition`) {
		t.Errorf("bad filter: %q", got)
	}

	// Gated buttons: bmc-00008 answers with bmc-00009's GUID.
	var mv manager.MachineView
	apiDo(t, e, store.RoleViewer, "GET", "/api/v1/machines/bmc-00008", "", &mv)
	c.do("refused machine", 10*time.Second, chromedp.Navigate(e.URL+"/machines/bmc-00008"), chromedp.WaitVisible(css(`div.refused`)))
	c.shot("machine-refused")
	if n := count(`a.power-action`); n != 0 {
		t.Errorf("bmc-00008 (Invalid) offers %d power buttons", n)
	}
	if got := c.text(`div.refused`); !strings.Contains(got, "Invalid") || !strings.Contains(got, "guid_mismatch") {
		t.Errorf("refusal: %q", got)
	}
	if got := c.text(`div.refused p.remedy`); got != "Remedy: "+mv.Channels[0].Remedy {
		t.Errorf("refusal remedy %q, API %q", got, mv.Channels[0].Remedy)
	}
	c.do("confirmation by URL", 10*time.Second, chromedp.Navigate(e.URL+"/machines/bmc-00008/power?action=off"), chromedp.WaitVisible(css(`p.error`)))
	if n := count(`form.confirm`); n != 0 || !strings.Contains(c.text(`p.error`), "would be refused") {
		t.Errorf("power confirmation offered for a refused machine: %q", c.text(`p.error`))
	}
	for _, m := range []string{"bmc-00010", "bmc-00002"} { // Busy: refused too; blade of the dead enclosure
		c.do(m, 10*time.Second, chromedp.Navigate(e.URL+"/machines/"+m), chromedp.WaitVisible(css(`div.refused`)))
	}
	c.do("Connectable machine", 10*time.Second, chromedp.Navigate(e.URL+"/machines/bmc-00004"), chromedp.WaitVisible(css(`a.power-action`)))
	if n := count(`div.refused`); n != 0 || count(`a.power-action`) != 7 {
		t.Errorf("bmc-00004 (Connectable): %d refusals, %d buttons", n, count(`a.power-action`))
	}

	// Enclosure health.
	c.do("enclosures", 10*time.Second, chromedp.Navigate(e.URL+"/enclosures"), chromedp.WaitVisible(css(`table.enclosures`)))
	c.shot("enclosures-health")
	row := `tr.enclosure[data-name="enc-b"]`
	if got := c.text(row + ` .hl`); got != "down" {
		t.Errorf("enc-b health %q, want down", got)
	}
	if up, silent := c.text(row+` .n-up`), c.text(row+` .n-silent`); up != "0" || silent != "3" {
		t.Errorf("enc-b blades: %s up, %s silent; want 0 and 3", up, silent)
	}
}
