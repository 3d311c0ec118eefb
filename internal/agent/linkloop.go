package agent

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/lightsout/lightsout/internal/hostlink"
)

// The host link loop: the agent's path to its own BMC, checked and reported.

// linkLoop checks the host link every LinkInterval (and when asked to).
func (a *agentd) linkLoop(ctx context.Context) {
	defer a.wg.Done()
	t := time.NewTicker(a.cfg.LinkInterval)
	defer t.Stop()
	for {
		if a.currentLinkCert() == nil {
			// Nothing to present yet: the certificate comes from a
			// manager (its renewal kicks a check). Not a link failure.
			a.mu.Lock()
			a.link = &LinkStatus{State: LinkUnknown, Reason: "waiting for the link certificate from a manager", Checked: a.cfg.Clock()}
			a.mu.Unlock()
			a.writeStatus(true)
		} else {
			a.checkLink(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-a.linkKick:
		}
	}
}

// checkLink runs one host link check and reports what changed: the path
// in use (audited: the seed's "which protocol the agent uses"), the state,
// and every timeout (counted, reported with a count for flood detection).
func (a *agentd) checkLink(ctx context.Context) hostlink.Observation {
	a.linkMu.Lock()
	defer a.linkMu.Unlock()
	lc := *a.cfg.Link
	lc.Certificate = a.currentLinkCert
	lc.Clock = a.cfg.Clock
	o := hostlink.Check(ctx, lc)
	now := a.cfg.Clock()
	st := LinkStatus{State: o.State, Path: o.Path, Address: o.Address, Reason: o.Reason, Remedy: o.Remedy,
		IPv4Failed: o.IPv4Failed, CertNotAfter: o.CertNotAfter, Checked: now}
	a.mu.Lock()
	prev := a.link
	if prev != nil {
		st.Timeouts = prev.Timeouts
	}
	st.Timeouts += uint64(o.Timeouts)
	wall := time.Now()
	if o.Timeouts > 0 {
		a.linkRate = append(a.linkRate, rateSample{at: wall, n: o.Timeouts})
	}
	for len(a.linkRate) > 0 && wall.Sub(a.linkRate[0].at) > 5*time.Minute {
		a.linkRate = a.linkRate[1:]
	}
	n := 0
	for _, s := range a.linkRate {
		n += s.n
	}
	// A minute's rate over the last 5 minutes, or over the time the link
	// has been watched if that is shorter (at least a minute, so one bad
	// check at start-up does not read as a storm).
	if a.linkSince.IsZero() {
		a.linkSince = wall
	}
	window := min(max(wall.Sub(a.linkSince), time.Minute), 5*time.Minute)
	st.TimeoutRate = float64(n) / window.Minutes()
	a.link = &st
	a.mu.Unlock()

	if o.Timeouts > 0 {
		a.queueEvent(Event{At: now, Code: EvLinkTimeout, Severity: "warning", Count: o.Timeouts,
			Message: fmt.Sprintf("agent %s: %d host link request(s) timed out (%s)", a.cfg.Name, o.Timeouts, timeoutWhere(o)),
			Data:    mustJSON(map[string]any{"timeouts": o.Timeouts, "total": st.Timeouts, "attempts": o.Attempts})})
	}
	if prev == nil || prev.Path != st.Path {
		var msg string
		switch {
		case st.Path == "":
			msg = fmt.Sprintf("agent %s: host link has no working path (%s)", a.cfg.Name, st.Reason)
		case st.IPv4Failed:
			msg = fmt.Sprintf("agent %s: host link uses %s at %s (IPv4 failed: %s)", a.cfg.Name, st.Path, st.Address, st.Reason)
		default:
			msg = fmt.Sprintf("agent %s: host link uses %s at %s", a.cfg.Name, st.Path, st.Address)
		}
		a.audit("host link path", msg)
		a.queueEvent(Event{At: now, Code: EvLinkPath, Severity: "info", Message: msg,
			Data: mustJSON(map[string]any{"path": st.Path, "address": st.Address, "ipv4_failed": st.IPv4Failed})})
	}
	if prev == nil && st.State != LinkUp || prev != nil && prev.State != st.State {
		sev := "info"
		if st.State != LinkUp {
			sev = "warning"
		}
		if st.State == LinkCertExpired {
			sev = "critical"
		}
		msg := fmt.Sprintf("agent %s: host link %s", a.cfg.Name, st.State)
		switch {
		case st.State == LinkUp && st.IPv4Failed:
			msg += fmt.Sprintf(" over %s at %s (IPv4 failed: %s)", st.Path, st.Address, st.Reason)
		case st.State == LinkUp:
			msg += fmt.Sprintf(" over %s at %s", st.Path, st.Address)
		case st.Reason != "":
			msg += " (" + st.Reason + ")"
		}
		if st.Remedy != "" && st.State != LinkUp {
			msg += ": " + st.Remedy
		}
		a.audit("host link state", msg)
		a.queueEvent(Event{At: now, Code: EvLinkState, Severity: sev, Message: msg,
			Data: mustJSON(map[string]any{"state": st.State, "reason": st.Reason})})
		if st.State == LinkCertExpired || st.State == LinkNotTrusted {
			kick(a.certKick)
		}
	}
	a.writeStatus(true)
	return o
}

func timeoutWhere(o hostlink.Observation) string {
	var parts []string
	for _, at := range o.Attempts {
		if at.Timeout || at.Tries > 1 {
			parts = append(parts, at.Path+" "+at.Address)
		}
	}
	if len(parts) == 0 {
		return "retried"
	}
	return strings.Join(parts, ", ")
}
