package probe

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"syscall"
	"testing"

	"github.com/stmcginnis/gofish/schemas"

	"github.com/lightsout/lightsout/internal/redfish"
	"github.com/lightsout/lightsout/internal/state"
)

func TestClassifyRedfish(t *testing.T) {
	h := func(status int, ids ...string) *redfish.HTTPError {
		return &redfish.HTTPError{Method: "GET", URL: "/redfish/v1/Systems", Status: status, MessageIDs: ids, Messages: make([]string, len(ids))}
	}
	withMsg := func(e *redfish.HTTPError, m string) *redfish.HTTPError { e.Message = m; return e }
	retry := func(e *redfish.HTTPError, ra string) *redfish.HTTPError { e.RetryAfter = ra; return e }
	cases := []struct {
		name string
		err  error
		st   state.OOB
		r    state.Reason
	}{
		{"nil", nil, state.Connectable, state.ReasonOK},
		{"401 bare", h(401), state.NotAuthenticated, state.ReasonAuthRejected},
		{"403 bare", h(403), state.NotAuthenticated, state.ReasonAuthRejected},
		{"sushy 401", withMsg(h(401, "Base.1.0.GeneralError"), "Incorrect username or password"), state.NotAuthenticated, state.ReasonAuthRejected},
		{"401 no valid session", h(401, "Base.1.8.NoValidSession"), state.NotAuthenticated, state.ReasonAuthRejected},
		{"401 locked id", h(401, "Vendor.1.0.AccountLocked"), state.NotAuthenticated, state.ReasonLocked},
		{"403 disabled text", withMsg(h(403), "The account is disabled."), state.NotAuthenticated, state.ReasonLocked},
		{"401 unknown user id", h(401, "Vendor.1.0.NoSuchUser"), state.NotAuthenticated, state.ReasonUnknownUser},
		{"401 wrong password id", h(401, "Vendor.1.2.InvalidPassword"), state.NotAuthenticated, state.ReasonWrongPassword},
		{"401 wrong password text", withMsg(h(401), "Login failed: incorrect password"), state.NotAuthenticated, state.ReasonWrongPassword},
		{"wrapped 401", fmt.Errorf("login: %w", h(401)), state.NotAuthenticated, state.ReasonAuthRejected},
		{"503", h(503), state.Connectable, state.ReasonBusy},
		{"503 retry-after", retry(h(503), "5"), state.Connectable, state.ReasonBusy},
		{"429 retry-after", retry(h(429), "30"), state.Connectable, state.ReasonBusy},
		{"429 no retry-after", h(429), state.NotResponding, state.ReasonProtocol},
		{"404", h(404, "Base.1.8.ResourceMissingAtURI"), state.NotResponding, state.ReasonProtocol},
		{"500", h(500), state.NotResponding, state.ReasonProtocol},
		{"405", h(405), state.NotResponding, state.ReasonProtocol},
		{"gofish 401", &schemas.Error{HTTPReturnedStatusCode: 401}, state.NotAuthenticated, state.ReasonAuthRejected},
		{"gofish 503", &schemas.Error{HTTPReturnedStatusCode: 503}, state.Connectable, state.ReasonBusy},
		{"malformed JSON", &redfish.BodyError{Resource: "ServiceRoot", URL: "/redfish/v1/", Err: errors.New("malformed JSON")}, state.NotResponding, state.ReasonProtocol},
		{"system without UUID", &redfish.BodyError{Resource: "ComputerSystem", URL: "/redfish/v1/Systems/1", Err: errors.New("has no UUID")}, state.NotResponding, state.ReasonProtocol},
		{"forced session, none offered", fmt.Errorf("%w: %w", redfish.ErrNoSessionService, h(405)), state.NotResponding, state.ReasonProtocol},
		{"no reply, nothing answered", &redfish.NoReplyError{Err: context.DeadlineExceeded}, state.NotResponding, state.ReasonSilent},
		{"no reply, TCP accepted only", &redfish.NoReplyError{Connected: true, Err: context.DeadlineExceeded}, state.NotResponding, state.ReasonSilent},
		{"no reply after TLS", &redfish.NoReplyError{Connected: true, Answered: true, Err: context.DeadlineExceeded}, state.NotResponding, state.ReasonStalled},
		{"refused", fmt.Errorf("GET /redfish/v1/: %w", syscall.ECONNREFUSED), state.NotResponding, state.ReasonPortRefused},
		{"host unreachable", syscall.EHOSTUNREACH, state.NotResponding, state.ReasonUnreachable},
		{"net unreachable", syscall.ENETUNREACH, state.NotResponding, state.ReasonUnreachable},
		{"tls alert", fmt.Errorf("GET /: %w", tls.AlertError(40)), state.NotResponding, state.ReasonTLS},
		{"tls record header", &tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, state.NotResponding, state.ReasonTLS},
		{"reset", syscall.ECONNRESET, state.NotResponding, state.ReasonProtocol},
		{"EOF", io.EOF, state.NotResponding, state.ReasonProtocol},
		{"not HTTP", errors.New("net/http: HTTP/1.x transport connection broken: malformed HTTP response"), state.NotResponding, state.ReasonProtocol},
		{"cancelled", context.Canceled, state.NotResponding, state.ReasonSilent},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, r := ClassifyRedfish(c.err)
			if st != c.st || r != c.r {
				t.Fatalf("ClassifyRedfish(%v) = %s/%s, want %s/%s", c.err, st, r, c.st, c.r)
			}
		})
	}
}
