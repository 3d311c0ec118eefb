package web_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/lightsout/lightsout/internal/peertest"
	"github.com/lightsout/lightsout/internal/store"
)

// TestBrowserConsole drives the console in headless Chromium: log in by
// pasting the token, follow an overview count to the filtered table, power
// off through the confirmation step, and watch a live event arrive.
func TestBrowserConsole(t *testing.T) {
	chromium := peertest.Need(t, "chromium")[0]
	e := start(t, 0)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()))
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 90*time.Second)
	defer cancel()

	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	if err := chromedp.Do(ctx,
		chromedp.Navigate(e.URL+"/machines/bmc-00001"),
		chromedp.WaitVisible(css(`#token`)),
		chromedp.SendKeys(css(`#token`), e.Tokens[store.RoleOperator]),
		chromedp.Submit(css(`#token`)),
		chromedp.WaitVisible(css(`form.who`)),
	); err != nil {
		t.Fatalf("log in: %v", err)
	}
	if h1, err := chromedp.Run(ctx, chromedp.Text(css(`h1`))); err != nil || h1 != "bmc-00001" {
		t.Fatalf("after login: h1 %q (%v), want the page asked for (bmc-00001)", h1, err)
	}
	if err := chromedp.Do(ctx,
		chromedp.Navigate(e.URL+"/"),
		chromedp.Click(css(`a[data-state="NotAuthenticated"]`)),
		chromedp.WaitVisible(css(`table.machines`)),
	); err != nil {
		t.Fatalf("overview → table: %v", err)
	}
	table, err := chromedp.Run(ctx, chromedp.Text(css(`table.machines tbody`)))
	if err != nil || !strings.Contains(table, "bmc-00004") || strings.Contains(table, "bmc-00001") {
		t.Fatalf("NotAuthenticated table: %q (%v)", table, err)
	}
	if err := chromedp.Do(ctx,
		chromedp.Navigate(e.URL+"/machines/bmc-00002"),
		chromedp.Click(css(`a.power-action[href$="action=off"]`)),
		chromedp.WaitVisible(css(`form.confirm button`)),
		chromedp.Click(css(`form.confirm button`)),
		chromedp.WaitVisible(css(`p.notice`)),
	); err != nil {
		t.Fatalf("power off: %v", err)
	}
	if notice, err := chromedp.Run(ctx, chromedp.Text(css(`p.notice`))); err != nil || !strings.Contains(notice, "power off: ok") {
		t.Fatalf("power off: notice %q (%v)", notice, err)
	}
	if err := chromedp.Do(ctx,
		chromedp.Navigate(e.URL+"/events"),
		chromedp.WaitVisible(css(`#live`)),
		chromedp.Sleep(500*time.Millisecond), // the EventSource connects
	); err != nil {
		t.Fatalf("events: %v", err)
	}
	if _, err := e.Server.Events.Record(context.Background(), store.Event{At: time.Now(), Code: "audit.token_created",
		Severity: store.SeverityInfo, Source: "browser-test", Message: "hello from the browser test"}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.Search(`//tbody[@id="events"]/tr/td[contains(., "hello from the browser test")]`)),
	); err != nil {
		t.Fatalf("the live event did not appear: %v", err)
	}
}
