package probe

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/lightsout/lightsout/internal/redfish"
)

// ErrCertNotPinned: the census was not read because the BMC's certificate
// is not the one pinned for it (or none is pinned yet): no credentials are
// sent to it.
var ErrCertNotPinned = errors.New("the BMC's certificate is not the pinned one: no credentials sent")

// Census reads t's BMC's Redfish session census (redfish.Client.Sessions):
// it checks the certificate against the pinned one as a check does (a
// service root read without credentials; nothing is sent to a certificate
// that is not pinned), logs in with a session of its own (marked Ours; Basic
// when the service offers no sessions), reads every session, and logs out.
// self is the address the BMC reports for the census's own session ("" when
// it does not, or no session was opened).
func (p *RedfishProber) Census(ctx context.Context, t Target) (entries []redfish.SessionEntry, total int, self string, err error) {
	c := &redfish.Client{HTTP: &http.Client{Transport: p.tr, CheckRedirect: noRedirect}, Base: "https://" + t.Addr.String(),
		User: t.User, Password: t.Password, Timeout: t.timeout()}
	root, resp, err := c.GetRoot(ctx)
	if err != nil && !(statusOf(err) == http.StatusUnauthorized || statusOf(err) == http.StatusForbidden) {
		return nil, 0, "", fmt.Errorf("service root: %w", err)
	}
	if p.pins != nil {
		got := ""
		if resp != nil && resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 {
			sum := sha256.Sum256(resp.TLS.PeerCertificates[0].Raw)
			got = hex.EncodeToString(sum[:])
		}
		pinned, perr := p.pins.CertPin(ctx, t.Name)
		if perr != nil {
			return nil, 0, "", fmt.Errorf("certificate pin: %w", perr)
		}
		if got == "" || !strings.EqualFold(pinned, got) {
			return nil, 0, "", ErrCertNotPinned
		}
	}
	path := redfish.DefaultSessions
	if root != nil && root.SessionsPath() != "" {
		path = root.SessionsPath()
	}
	if t.RedfishAuth != redfish.AuthBasic {
		if lerr := c.Login(ctx, path); lerr == nil {
			defer func() { _ = c.Logout(context.WithoutCancel(ctx)) }()
		} else if !errors.Is(lerr, redfish.ErrNoSessionService) {
			return nil, 0, "", fmt.Errorf("login: %w", lerr)
		}
	}
	entries, total, err = c.Sessions(ctx, path)
	for _, e := range entries {
		if e.Ours {
			self = e.Client
		}
	}
	return entries, total, self, err
}
