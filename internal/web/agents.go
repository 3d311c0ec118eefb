package web

import (
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/lightsout/lightsout/internal/agent"
	"github.com/lightsout/lightsout/internal/diag"
)

// --- agents (the management domain) ---

// CertWarn is how close to its expiry an agent's or link's certificate is
// highlighted (and counted in the page's summary): the agent diagnosis's
// renewal window.
const CertWarn = diag.DefaultRenewBefore

type agentCount struct {
	State string
	N     int
}

// certView is a certificate's expiry as the agents page shows it.
type certView struct {
	NotAfter time.Time
	Date     string // 2006-01-02, UTC
	Left     string // "123 days", "expired 3 days ago"
	Class    string // "cert-ok", "cert-warn" (within CertWarn), "cert-crit" (expired)
}

// linkView is an agent's host link as the agents page shows it.
type linkView struct {
	State   string
	Path    string // "ipv4", "ipv6 (IPv4 failed)"; "" when none
	Address string
	Reason  string
	// Timeouts is shown when > 0, with Rate ("2.5/min") when the rate is.
	Timeouts uint64
	Rate     string
	Cert     *certView
	Checked  time.Time
}

// agentRow is one agent of the page: its status, what the page derives
// from it, and its diagnosis when it is not healthy.
type agentRow struct {
	agent.Status
	Cert     *certView
	HostLink *linkView       // nil: the agent reported no host link
	Diag     *diag.Diagnosis // nil: healthy
}

// agentsSummary is the page's one-line summary.
type agentsSummary struct {
	Total, Up, Down, PendingUp int
	Links, LinksUp, LinksNotUp int // agents that reported a host link
	CertsExpiring              int // agent and link certificates within CertWarn (or expired)
}

type agentsData struct {
	Enabled  bool   // the server has an agent listener
	Listen   string // its address
	Counts   []agentCount
	Summary  agentsSummary
	Agents   []agentRow
	Interval time.Duration
	Unwell   int // agents with a diagnosis
}

// certOf renders a certificate expiry relative to now (nil for none).
func certOf(now, t time.Time) *certView {
	if t.IsZero() {
		return nil
	}
	v := &certView{NotAfter: t, Date: t.UTC().Format(time.DateOnly), Class: "cert-ok"}
	d := t.Sub(now)
	switch {
	case d < 0:
		v.Class = "cert-crit"
		v.Left = "expired " + days(int(math.Ceil(-d.Hours()/24))) + " ago"
	default:
		if d <= CertWarn {
			v.Class = "cert-warn"
		}
		if n := int(math.Floor(d.Hours() / 24)); n > 0 {
			v.Left = days(n)
		} else {
			v.Left = "less than a day"
		}
	}
	return v
}

func days(n int) string {
	if n == 1 {
		return "1 day"
	}
	return fmt.Sprintf("%d days", n)
}

// expiring reports whether a certificate is within CertWarn of expiry, or
// past it.
func (v *certView) expiring() bool { return v != nil && v.Class != "cert-ok" }

func linkOf(now time.Time, l *agent.LinkStatus) *linkView {
	if l == nil {
		return nil
	}
	v := &linkView{State: cmpOr(l.State, agent.LinkUnknown), Path: l.Path, Address: l.Address, Reason: l.Reason,
		Timeouts: l.Timeouts, Cert: certOf(now, l.CertNotAfter), Checked: l.Checked}
	if l.IPv4Failed && v.Path != "" {
		v.Path += " (IPv4 failed)"
	}
	if l.TimeoutRate > 0 {
		v.Rate = fmt.Sprintf("%.1f/min", l.TimeoutRate)
	}
	return v
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// agentRows builds the page's rows and summary from the hub's list, each
// agent diagnosed by diag.DecideAgent at now.
func agentRows(list []agent.Status, now time.Time) ([]agentRow, agentsSummary) {
	var sum agentsSummary
	rows := make([]agentRow, 0, len(list))
	for _, st := range list {
		rw := agentRow{Status: st, Cert: certOf(now, st.CertNotAfter), HostLink: linkOf(now, st.Link)}
		sum.Total++
		switch st.State {
		case agent.Up:
			sum.Up++
		case agent.Down:
			sum.Down++
		case agent.PendingUp:
			sum.PendingUp++
		}
		if rw.HostLink != nil {
			sum.Links++
			if rw.HostLink.State == agent.LinkUp {
				sum.LinksUp++
			} else {
				sum.LinksNotUp++
			}
			if rw.HostLink.Cert.expiring() {
				sum.CertsExpiring++
			}
		}
		if rw.Cert.expiring() {
			sum.CertsExpiring++
		}
		if d := diag.DecideAgent(diag.AgentFacts{Status: st, Now: now, ManagerVersion: agent.Version}); !d.Healthy() {
			rw.Diag = &d
		}
		rows = append(rows, rw)
	}
	return rows, sum
}

// agents: GET /agents, the agent domain like 'lightsout domain status',
// with each agent's certificate, host link and, when it is not healthy,
// its diagnosis.
func (c *Console) agents(w http.ResponseWriter, r *http.Request, s *session) error {
	d := agentsData{Enabled: c.hub != nil && c.agAddr != nil}
	if d.Enabled {
		d.Listen = c.agAddr.String()
	}
	if c.hub != nil {
		d.Agents, d.Summary = agentRows(c.hub.List(), time.Now())
		d.Interval = c.hub.Interval()
		d.Counts = []agentCount{{agent.Up, d.Summary.Up}, {agent.PendingUp, d.Summary.PendingUp}, {agent.Down, d.Summary.Down}}
		for _, a := range d.Agents {
			if a.Diag != nil {
				d.Unwell++
			}
		}
	}
	c.render(w, http.StatusOK, "agents", pageData{Title: "Agents", Nav: "agents", S: s, Data: d})
	return nil
}

// span is a piece of text, code or not.
type span struct {
	Text string
	Code bool
}

// codeSpans splits a diagnosis's text on its backquotes: the quoted
// commands become code spans. The template escapes every piece.
func codeSpans(s string) []span {
	parts := strings.Split(s, "`")
	if len(parts)%2 == 0 { // an unpaired backquote: plain text
		return []span{{Text: s}}
	}
	out := make([]span, 0, len(parts))
	for i, p := range parts {
		if p != "" {
			out = append(out, span{Text: p, Code: i%2 == 1})
		}
	}
	return out
}
