package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/agent"
	"github.com/lightsout/lightsout/internal/agentstate"
)

// TestAgentsPageRendering renders the agents page from statuses the live
// tests cannot easily produce: certificates expiring and expired, a link
// on IPv6 after IPv4 failed, queued operations, version skew; and checks
// that what agents report is escaped, never raw HTML.
func TestAgentsPageRendering(t *testing.T) {
	now := time.Now()
	day := 24 * time.Hour
	list := []agent.Status{
		{ID: 1, Name: "ok-1", State: agent.Up, Version: agent.Version, LastHeartbeat: now, CertNotAfter: now.Add(200*day + time.Hour),
			Capabilities: []string{"heartbeat", agent.OpRenewCerts, agent.OpRestartLink},
			Link:         &agent.LinkStatus{State: agent.LinkUp, Path: agent.PathIPv4, Address: "169.254.0.1:443", CertNotAfter: now.Add(300 * day)}},
		{ID: 2, Name: "soon-2", State: agent.Up, Version: "0.0.1", VersionSkew: true, LastHeartbeat: now, Queued: 3,
			CertNotAfter: now.Add(10*day + time.Hour), Capabilities: []string{"heartbeat"},
			Link: &agent.LinkStatus{State: agent.LinkUp, Path: agent.PathIPv6, Address: "[fe80::1%usb0]:443", IPv4Failed: true,
				Reason: "ipv4: <script>alert(1)</script>", Timeouts: 7, TimeoutRate: 2.5, CertNotAfter: now.Add(-2*day - time.Hour)}},
		{ID: 3, Name: "old-3", State: agent.PendingUp, Reason: agent.ReasonExpired, Code: agentstate.CertExpired, CertNotAfter: now.Add(-40 * day)},
		{ID: 0, Address: "10.0.0.9", State: agent.PendingUp, Reason: "<b>bold</b> & co"},
	}
	rows, sum := agentRows(list, now)
	if want := (agentsSummary{Total: 4, Up: 2, PendingUp: 2, Links: 2, LinksUp: 2, CertsExpiring: 3}); sum != want {
		t.Errorf("summary %+v, want %+v", sum, want)
	}
	if rows[0].Diag != nil {
		t.Errorf("healthy agent diagnosed: %+v", rows[0].Diag)
	}
	for i := 1; i < len(rows); i++ {
		if rows[i].Diag == nil {
			t.Errorf("agent %d: no diagnosis", i)
		}
	}

	c := New(Config{})
	w := httptest.NewRecorder()
	c.render(w, http.StatusOK, "agents", pageData{Title: "Agents", Nav: "agents", S: &session{Name: "v", Role: "viewer"},
		Data: agentsData{Enabled: true, Listen: "127.0.0.1:8624", Agents: rows, Summary: sum, Interval: 10 * time.Second}})
	body := w.Body.String()
	if w.Code != http.StatusOK {
		t.Fatalf("render: %d %s", w.Code, body)
	}
	for _, want := range []string{
		`>4 agents: 2 Up, 0 Down, 2 PendingUp; links: 2 Up, 0 not Up; <span class="cert-warn" title="agent and host link certificates">certificates expiring within 30 days: 3</span>.</p>`,
		`<span class="cert cert-ok" title="expires ` + ts(list[0].CertNotAfter) + `">` + list[0].CertNotAfter.UTC().Format(time.DateOnly) + ` <small>(200 days)</small>`,
		`<span class="cert cert-warn" title="expires ` + ts(list[1].CertNotAfter) + `">` + list[1].CertNotAfter.UTC().Format(time.DateOnly) + ` <small>(10 days)</small>`,
		`<span class="cert cert-crit" title="expires ` + ts(list[2].CertNotAfter) + `">` + list[2].CertNotAfter.UTC().Format(time.DateOnly) + ` <small>(expired 40 days ago)</small>`,
		`<small>cert</small> <span class="cert cert-crit"`, `(expired 3 days ago)`,
		`<span class="link-path">ipv6 (IPv4 failed)</span> <span class="link-addr">[fe80::1%usb0]:443</span>`,
		`<span class="link-timeouts flag">7 timeouts (2.5/min)</span>`,
		`<td class="queued"><span class="flag">3</span></td>`,
		`0.0.1 <span class="flag" title="the agent's version differs from the manager's">version skew</span>`,
		`data-cause="agent_cert_expiring"`, `data-cause="agent_cert_expired"`, `data-cause="agent_pending_up"`,
		`&lt;b&gt;bold&lt;/b&gt; &amp; co`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("no %q in\n%s", want, body)
		}
	}
	// The IPv4 failure's reason is only shown for a link that is not Up;
	// the unknown peer's reason is escaped wherever it appears.
	for _, bad := range []string{"<script>", "<b>bold</b>"} {
		if strings.Contains(body, bad) {
			t.Errorf("raw %q in the page:\n%s", bad, body)
		}
	}
}

func TestCodeSpans(t *testing.T) {
	for in, want := range map[string][]span{
		"plain":               {{Text: "plain"}},
		"run `a b` then `c`.": {{Text: "run "}, {Text: "a b", Code: true}, {Text: " then "}, {Text: "c", Code: true}, {Text: "."}},
		"odd ` quote":         {{Text: "odd ` quote"}},
		"":                    {},
	} {
		got := codeSpans(in)
		if len(got) != len(want) {
			t.Errorf("codeSpans(%q) = %+v, want %+v", in, got, want)
			continue
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("codeSpans(%q) = %+v, want %+v", in, got, want)
			}
		}
	}
}
