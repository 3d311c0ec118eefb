package web_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/poll"
	"github.com/lightsout/lightsout/internal/store"
)

// TestInstancesPage: a real server (it registers itself) and a second
// instance registered in its database as another process would; the
// console lists both as `lightsout instances` does — this one marked,
// zones, channels owned, checks/s — and escapes what the row holds.
func TestInstancesPage(t *testing.T) {
	e := start(t, 0)
	ctx := context.Background()
	self := e.Server.Node.Name()
	// The server's own row counts its 4 channels once it has heartbeaten
	// with them.
	if !poll.Wait(30*time.Second, func() bool {
		l, err := e.Server.Store.Instances(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range l {
			if in.Name == self && in.Channels == 4 {
				return true
			}
		}
		return false
	}) {
		t.Fatalf("instance %s never reported its 4 channels", self)
	}
	peer := store.Instance{Name: "mgr-<b>", Zones: []string{"dc2", "dc3"}, PeerAddress: "127.0.0.1:1", Source: "127.0.0.66",
		Channels: 12, Checks: 0, View: []string{"mgr-<b>"}}
	if _, err := e.Server.Store.Heartbeat(ctx, peer, time.Minute, true); err != nil {
		t.Fatal(err)
	}
	b := login(t, e, store.RoleViewer)
	code, body := b.get("/instances")
	if code != http.StatusOK {
		t.Fatalf("GET /instances: %d %s", code, body)
	}
	for _, want := range []string{
		`<a href="/instances" class="on">Instances</a>`,
		`>2 live instances; 16 channels owned by the live ones.</p>`,
		`data-name="` + self + `" data-live="true"><td>` + self + ` <span class="flag" title="the instance serving this page">this instance</span>`,
		`data-name="mgr-&lt;b&gt;" data-live="true"><td>mgr-&lt;b&gt;</td>`,
		`<td class="zones">dc2, dc3</td>`, `<td class="zones">default</td>`,
		`<td class="channels">12</td>`, `<td class="channels">4</td>`,
		`<td>127.0.0.66</td>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("no %q in\n%s", want, body)
		}
	}
	if strings.Contains(body, "<b>") {
		t.Errorf("raw <b> in the page:\n%s", body)
	}
	// The page needs a session.
	if code, _ := newBrowser(t, e.URL).get("/instances"); code == http.StatusOK {
		t.Errorf("GET /instances without a session: %d, want a redirect to the login", code)
	}
}
