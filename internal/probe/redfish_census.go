package probe

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"strings"
	"sync"

	"github.com/lightsout/lightsout/internal/redfish"
)

// ErrCertNotPinned: the census was not read because the BMC's certificate
// is not the one pinned for it (or none is pinned yet): no credentials are
// sent to it.
var ErrCertNotPinned = errors.New("the BMC's certificate is not the pinned one: no credentials sent")

// censusClient is a client of t's BMC that has checked the certificate
// against the pinned one as a check does (a service root read without
// credentials; nothing is sent to a certificate that is not pinned) and
// then authenticated: with a session of its own (marked Ours) unless the
// service offers none or refuses one for want of room (HTTP 503, its
// session table full: then HTTP Basic, which such services still take).
// local is the address this host's connection to the BMC came from, as the
// BMC sees it without NAT. logout ends the client's own session.
func (p *RedfishProber) censusClient(ctx context.Context, t Target) (c *redfish.Client, path string, local func() string, logout func(), err error) {
	var mu sync.Mutex
	from := ""
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
		if a, ok := i.Conn.LocalAddr().(*net.TCPAddr); ok {
			mu.Lock()
			from = a.IP.String()
			mu.Unlock()
		}
	}})
	local = func() string { mu.Lock(); defer mu.Unlock(); return from }
	logout = func() {}
	c = &redfish.Client{HTTP: &http.Client{Transport: p.tr, CheckRedirect: noRedirect}, Base: "https://" + t.Addr.String(),
		User: t.User, Password: t.Password, Timeout: t.timeout()}
	root, resp, err := c.GetRoot(ctx)
	if err != nil && !(statusOf(err) == http.StatusUnauthorized || statusOf(err) == http.StatusForbidden) {
		return nil, "", local, logout, fmt.Errorf("service root: %w", err)
	}
	if p.pins != nil {
		got := ""
		if resp != nil && resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 {
			sum := sha256.Sum256(resp.TLS.PeerCertificates[0].Raw)
			got = hex.EncodeToString(sum[:])
		}
		pinned, perr := p.pins.CertPin(ctx, t.Name)
		if perr != nil {
			return nil, "", local, logout, fmt.Errorf("certificate pin: %w", perr)
		}
		if got == "" || !strings.EqualFold(pinned, got) {
			return nil, "", local, logout, ErrCertNotPinned
		}
	}
	path = redfish.DefaultSessions
	if root != nil && root.SessionsPath() != "" {
		path = root.SessionsPath()
	}
	if t.RedfishAuth == redfish.AuthBasic {
		c.UseBasic()
		return c, path, local, logout, nil
	}
	lerr := c.Login(ctx, path)
	switch {
	case lerr == nil:
		logout = func() { _ = c.Logout(context.WithoutCancel(ctx)) }
	case errors.Is(lerr, redfish.ErrNoSessionService), statusOf(lerr) == http.StatusServiceUnavailable:
		c.UseBasic()
	default:
		return nil, "", local, logout, fmt.Errorf("login: %w", lerr)
	}
	return c, path, local, logout, nil
}

// Census reads t's BMC's Redfish session census (redfish.Client.Sessions)
// through a censusClient, and logs out. self is the address the BMC
// reports for the census's own session, or, with none open (Basic), the
// address this host connected from ("" when neither is known).
func (p *RedfishProber) Census(ctx context.Context, t Target) (entries []redfish.SessionEntry, total int, self string, err error) {
	c, path, local, logout, err := p.censusClient(ctx, t)
	if err != nil {
		return nil, 0, "", err
	}
	defer logout()
	entries, total, err = c.Sessions(ctx, path)
	for _, e := range entries {
		if e.Ours {
			self = e.Client
		}
	}
	if self == "" && c.Mode() == redfish.AuthBasic {
		self = local()
	}
	return entries, total, self, err
}

// ErrNotStale: a session asked to be closed is not one this host left open
// under the account's user (another console's, the census's own, or no
// longer listed): it is left alone.
var ErrNotStale = errors.New("not a session this host left open under the account's user")

// CloseSessions deletes the Redfish sessions at uris on t's BMC — only
// those the census, read again now, lists from this host's address under
// t's user (never another console's, never the closing client's own). It
// returns how many it deleted; the others are named in the error.
func (p *RedfishProber) CloseSessions(ctx context.Context, t Target, uris []string) (int, error) {
	c, path, local, logout, err := p.censusClient(ctx, t)
	if err != nil {
		return 0, err
	}
	defer logout()
	entries, _, err := c.Sessions(ctx, path)
	if err != nil {
		return 0, fmt.Errorf("reading the sessions: %w", err)
	}
	self := local()
	for _, e := range entries {
		if e.Ours && e.Client != "" {
			self = e.Client
		}
	}
	n := 0
	var errs []error
	for _, u := range uris {
		var found *redfish.SessionEntry
		for i := range entries {
			if redfish.SameSession(entries[i].URI, u) {
				found = &entries[i]
			}
		}
		switch {
		case found == nil:
			errs = append(errs, fmt.Errorf("session %s: no longer listed", u))
			continue
		case found.Ours || found.User != t.User || self == "" || !SameClient(found.Client, self):
			errs = append(errs, fmt.Errorf("session %s (user %q, from %q): %w", u, found.User, found.Client, ErrNotStale))
			continue
		}
		if _, err := c.Do(ctx, http.MethodDelete, found.URI, nil); err != nil && statusOf(err) != http.StatusNotFound {
			errs = append(errs, fmt.Errorf("session %s: %w", u, err))
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// SameClient reports whether two client addresses a Redfish service
// reports (ClientOriginIPAddress) or this host connected from are the same
// address: IPv4-mapped IPv6 ("::ffff:10.0.0.5") and zones aside; "" is
// never the same as anything.
func SameClient(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	pa, ea := netip.ParseAddr(a)
	pb, eb := netip.ParseAddr(b)
	if ea != nil || eb != nil {
		return strings.EqualFold(a, b)
	}
	return pa.Unmap().WithZone("") == pb.Unmap().WithZone("")
}
