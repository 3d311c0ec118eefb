package agent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/agent"
	"github.com/lightsout/lightsout/internal/hostlink"
	"github.com/lightsout/lightsout/internal/poll"
	"github.com/lightsout/lightsout/internal/server"
	"github.com/lightsout/lightsout/internal/store"
)

// fakeClock is a clock that tests move forward; every party of a test
// (manager, agent, BMC link endpoint) reads the same one.
type fakeClock struct{ off atomic.Int64 }

func (c *fakeClock) Now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *fakeClock) Advance(d time.Duration) { c.off.Add(int64(d)) }

// sink collects what the hub reports.
type sink struct {
	mu     sync.Mutex
	events []store.Event
	audits []store.AuditEntry
}

func (s *sink) event(e store.Event) { s.mu.Lock(); s.events = append(s.events, e); s.mu.Unlock() }
func (s *sink) audit(a store.AuditEntry) {
	s.mu.Lock()
	s.audits = append(s.audits, a)
	s.mu.Unlock()
}

// waitEvent waits for an event with code whose message contains text.
func (s *sink) waitEvent(t *testing.T, code, text string, within time.Duration) store.Event {
	t.Helper()
	var found store.Event
	if poll.Wait(within, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, e := range s.events {
			if e.Code == code && strings.Contains(e.Message, text) {
				found = e
				return true
			}
		}
		return false
	}) {
		return found
	}
	s.mu.Lock()
	var got []string
	for _, e := range s.events {
		got = append(got, e.Code+": "+e.Message)
	}
	s.mu.Unlock()
	t.Fatalf("no %s event containing %q within %s (%d events: %q)", code, text, within, len(got), got)
	return found
}

func (s *sink) count(code string) (n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.events {
		if e.Code == code {
			n += max(e.Count, 1)
		}
	}
	return n
}

func startClockedServer(t *testing.T, dir, listen string, clk *fakeClock, sk *sink, allow ...string) *server.Server {
	t.Helper()
	hc := agent.HubConfig{Interval: hb, Version: agent.Version, Clock: clk.Now, OnEvent: sk.event, OnAudit: sk.audit, Logger: dbgLogger()}
	for _, a := range allow {
		hc.Allow = append(hc.Allow, mustPrefix(t, a))
	}
	srv, err := server.New(context.Background(), server.Config{DataDir: dir, AgentListen: listen, Agents: hc})
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

func listenable(t *testing.T, addr string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	ln.Close()
}

func endpoint(t *testing.T, addr string, srv *server.Server, clk *fakeClock) *hostlink.Endpoint {
	t.Helper()
	cert, err := hostlink.SelfSigned([]string{"127.0.0.1", "::1"}, time.Now(), 10*365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ep, err := hostlink.NewEndpoint(hostlink.EndpointConfig{Addr: addr, Cert: cert, ClientCAs: srv.CA.Pool(), Clock: clk.Now,
		UUID: "4c4c4544-0042-3510-8048-b2c04f333231", Firmware: "7.00.00"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Close() })
	return ep
}

func waitLink(t *testing.T, h *agent.Hub, name, state, path string, within time.Duration) agent.LinkStatus {
	t.Helper()
	var found agent.LinkStatus
	if poll.Wait(within, func() bool {
		for _, s := range h.List() {
			if s.Name == name && s.Link != nil && s.Link.State == state && s.Link.Path == path {
				found = *s.Link
				return true
			}
		}
		return false
	}) {
		return found
	}
	for _, s := range h.List() {
		if s.Name == name {
			t.Fatalf("%s: link %+v after %s, want %s over %q", name, s.Link, within, state, path)
		}
	}
	t.Fatalf("%s: not listed", name)
	return found
}

func readStatus(t *testing.T, dir string) agent.LocalStatus {
	t.Helper()
	st, err := agent.ReadLocalStatus(dir)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func certOf(st agent.LocalStatus, kind string) agent.CertView {
	for _, c := range st.Certs {
		if c.Kind == kind {
			return c
		}
	}
	return agent.CertView{}
}

func auditHas(t *testing.T, dir, action, text string) bool {
	t.Helper()
	recs, err := agent.ReadAudit(dir, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Action == action && strings.Contains(r.Detail, text) {
			return true
		}
	}
	return false
}

// TestHostLinkAndCertificateLifecycle drives one agent's host link and
// certificates through their life with a clock the test moves: the link
// certificate is issued after enrollment, the link comes up over IPv4 and
// falls back to IPv6 (audited, reported); 340 days later both
// certificates are due, warned about and renewed without a new token; with
// no manager reachable they expire, which the link reports as CertExpired
// with a remedy and the manager (once back) as PendingUp "certificate
// expired"; a join token put in the token file enrolls the agent again and
// the link recovers.
func TestHostLinkAndCertificateLifecycle(t *testing.T) {
	listenable(t, "[::1]:0")
	dir := t.TempDir()
	clk := &fakeClock{}
	sk := &sink{}
	srv := startClockedServer(t, dir, "127.0.0.1:0", clk, sk)
	addr := srv.AgentAddr.String()
	closed := false
	defer func() {
		if !closed {
			srv.Close()
		}
	}()
	ep4 := endpoint(t, "127.0.0.1:0", srv, clk)
	ep6 := endpoint(t, "[::1]:0", srv, clk)

	tok, _, _ := srv.Agents.CreateJoinToken(context.Background(), 0)
	adir := filepath.Join(dir, "host")
	tokenFile := filepath.Join(dir, "token")
	os.WriteFile(tokenFile, []byte(tok), 0o600)
	link := &hostlink.Config{DisableInBand: true, IPv4: ep4.Addr(), IPv6: ep6.Addr(), Timeout: time.Second, Retries: -1}
	startAgent(t, agent.Config{Manager: addr, DataDir: adir, JoinToken: tok, TokenFile: tokenFile, Name: "web-1",
		Link: link, LinkInterval: time.Hour, CertCheck: 20 * time.Millisecond, Clock: clk.Now})

	waitState(t, srv.Agents, "web-1", agent.Up, "", 5*time.Second)
	// The link certificate comes from the manager once the agent is Up;
	// the link is then checked at once (a renewal triggers a check).
	l := waitLink(t, srv.Agents, "web-1", agent.LinkUp, agent.PathIPv4, 5*time.Second)
	if l.Address != ep4.Addr() || l.IPv4Failed || l.CertNotAfter.Before(clk.Now().Add(300*24*time.Hour)) {
		t.Fatalf("link over IPv4: %+v", l)
	}
	sk.waitEvent(t, agent.EvLinkPath, "uses ipv4", time.Second)
	sk.waitEvent(t, agent.EvCertRenewed, "link certificate", time.Second)
	if !auditHas(t, adir, "host link path", "uses ipv4 at "+ep4.Addr()) {
		t.Error("the agent's audit log does not name the IPv4 path")
	}

	// IPv4 goes away: restart-link finds IPv6, says why, and audits it.
	ep4.Close()
	res, err := srv.Agents.Do(context.Background(), "web-1", agent.OpRestartLink)
	if err != nil || !res.OK || !strings.Contains(string(res.Result), `"ipv6"`) {
		t.Fatalf("restart-link: %+v %v", res, err)
	}
	l = waitLink(t, srv.Agents, "web-1", agent.LinkUp, agent.PathIPv6, 2*time.Second)
	if !l.IPv4Failed || !strings.Contains(l.Reason, "refused") {
		t.Fatalf("IPv6 fallback: %+v", l)
	}
	sk.waitEvent(t, agent.EvLinkPath, "uses ipv6", time.Second)
	if !auditHas(t, adir, "host link path", "IPv4 failed") {
		t.Error("the agent's audit log does not record the IPv6 fallback")
	}
	waitAudit(t, sk, "agent.link_path", "uses ipv6")

	// 340 days on: both certificates are within 30 days of expiry.
	before := readStatus(t, adir)
	clk.Advance(340 * 24 * time.Hour)
	sk.waitEvent(t, agent.EvCertExpiring, "agent certificate expires in", 3*time.Second)
	sk.waitEvent(t, agent.EvCertExpiring, "link certificate expires in", 3*time.Second)
	var st agent.LocalStatus
	if !poll.Wait(5*time.Second, func() bool {
		st = readStatus(t, adir)
		a, k := certOf(st, "agent"), certOf(st, "link")
		return a.State == agent.CertOK && k.State == agent.CertOK &&
			a.NotAfter.After(certOf(before, "agent").NotAfter) && k.NotAfter.After(certOf(before, "link").NotAfter)
	}) {
		t.Fatalf("certificates not renewed: %+v (before %+v)", st.Certs, before.Certs)
	}
	if n := sk.count(agent.EvCertRenewed); n < 3 {
		t.Fatalf("%d renewals reported, want the first link certificate and two renewals", n)
	}
	// The renewed agent certificate opens the channel (no new token).
	if err := srv.Agents.RestartSession(context.Background(), "web-1"); err != nil {
		t.Fatal(err)
	}
	waitState(t, srv.Agents, "web-1", agent.Up, "", 5*time.Second)
	if st, _ := findStatus(srv.Agents, "web-1"); st.CertNotAfter.Before(clk.Now().Add(300 * 24 * time.Hour)) {
		t.Fatalf("the manager sees the old certificate: %s", st.CertNotAfter)
	}

	// The manager goes away; two years on, both certificates have expired.
	srv.Close()
	closed = true
	clk.Advance(2 * 365 * 24 * time.Hour)
	linkRes := waitLocalLink(t, adir, agent.LinkCertExpired, 5*time.Second)
	if !strings.Contains(linkRes.Reason, "expired") || !strings.Contains(linkRes.Remedy, "renew") {
		t.Fatalf("expired link: %+v", linkRes)
	}
	if !poll.Wait(5*time.Second, func() bool {
		return auditHas(t, adir, "certificate expired", "link certificate expired") && auditHas(t, adir, "certificate expired", "agent certificate expired")
	}) {
		recs, _ := agent.ReadAudit(adir, 50)
		t.Fatalf("expiry not audited: %+v", recs)
	}
	if st := readStatus(t, adir); st.Queued == 0 {
		t.Fatalf("events while no manager is reachable must be queued: %+v", st)
	}

	// The manager is back (same data directory): the agent's certificate
	// has expired, which is PendingUp with that reason, never silence.
	srv2 := startClockedServer(t, dir, addr, clk, sk)
	defer srv2.Close()
	waitState(t, srv2.Agents, "web-1", agent.PendingUp, agent.ReasonExpired, 5*time.Second)

	// An admin's fresh token in the token file: the agent enrolls again
	// (new key, same node), gets a new link certificate, the link recovers.
	tok2, _, _ := srv2.Agents.CreateJoinToken(context.Background(), 0)
	os.WriteFile(tokenFile, []byte(tok2), 0o600)
	waitState(t, srv2.Agents, "web-1", agent.Up, "", 10*time.Second)
	ep4b := endpoint(t, ep4.Addr(), srv2, clk) // IPv4 back too
	_ = ep4b
	res, err = srv2.Agents.Do(context.Background(), "web-1", agent.OpRestartLink)
	if err != nil || !res.OK {
		t.Fatalf("restart-link after re-enrollment: %+v %v", res, err)
	}
	waitLink(t, srv2.Agents, "web-1", agent.LinkUp, agent.PathIPv4, 5*time.Second)
	sk.waitEvent(t, agent.EvReEnrolled, "enrolled again", 2*time.Second)
	if !auditHas(t, adir, "re-enrolled", tokenFile) {
		t.Error("re-enrollment not in the agent's audit log")
	}
	// The events held while no manager was reachable were delivered.
	sk.waitEvent(t, agent.EvCertExpired, "link certificate expired", 2*time.Second)
}

func waitAudit(t *testing.T, sk *sink, action, text string) {
	t.Helper()
	poll.Until(t, 2*time.Second, fmt.Sprintf("a %s audit entry containing %q", action, text), func() bool {
		sk.mu.Lock()
		defer sk.mu.Unlock()
		for _, a := range sk.audits {
			if a.Action == action && strings.Contains(a.Detail, text) {
				return true
			}
		}
		return false
	})
}

func waitLocalLink(t *testing.T, dir, state string, within time.Duration) agent.LinkStatus {
	t.Helper()
	var st agent.LocalStatus
	if poll.Wait(within, func() bool {
		var err error
		st, err = agent.ReadLocalStatus(dir)
		return err == nil && st.Link != nil && st.Link.State == state
	}) {
		return *st.Link
	}
	b, _ := json.Marshal(st)
	t.Fatalf("agent's link not %s within %s: %s", state, within, b)
	return agent.LinkStatus{}
}

func findStatus(h *agent.Hub, name string) (agent.Status, bool) {
	for _, s := range h.List() {
		if s.Name == name {
			return s, true
		}
	}
	return agent.Status{}, false
}

func mustPrefix(t *testing.T, s string) netip.Prefix {
	t.Helper()
	p, err := netip.ParsePrefix(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
