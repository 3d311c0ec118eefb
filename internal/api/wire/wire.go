// Package wire holds the JSON request and response bodies of the REST API
// (/api/v1) that are not already types of the manager or the store. The
// server (internal/api) and the Go client (internal/api/client) share them.
package wire

import (
	"github.com/lightsout/lightsout/internal/manager"
	"github.com/lightsout/lightsout/internal/power"
	"github.com/lightsout/lightsout/internal/store"
)

// Error codes of ErrorBody.Code. They are stable: clients branch on them.
const (
	CodeUnauthorized     = "unauthorized"       // 401: no token, unknown or revoked token
	CodeForbidden        = "forbidden"          // 403: the token's role is too low
	CodeNotFound         = "not_found"          // 404: no such route, machine, account, ...
	CodeMethodNotAllowed = "method_not_allowed" // 405
	CodeConflict         = "conflict"           // 409: a name or address is already taken
	CodeRefused          = "refused"            // 409: the operation was refused (channel not Connectable, ...)
	CodeInvalidField     = "invalid_field"      // 400: a field's value is wrong; Field names it
	CodeBadRequest       = "bad_request"        // 400: the body is not the JSON expected
	CodeTooLarge         = "too_large"          // 413: the body exceeds the limit
	CodeRateLimited      = "rate_limited"       // 429: too many failed authentications from the address (Retry-After)
	CodeInternal         = "internal"           // 500: logged on the server, not detailed here
	CodeUnavailable      = "unavailable"        // 503: the database does not answer (healthz)
)

// ErrorResponse is the body of every error reply.
type ErrorResponse struct {
	Error ErrorBody `json:"error"`
}

// ErrorBody describes one refused request.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Field names the offending field (JSON field, query parameter or
	// inventory column), when there is one.
	Field string `json:"field,omitempty"`
	// Line is the inventory line of the (first) problem, for imports.
	Line int `json:"line,omitempty"`
	// Errors lists every problem of an import, in line order.
	Errors []FieldProblem `json:"errors,omitempty"`
}

// FieldProblem is one problem in an imported inventory.
type FieldProblem struct {
	Line      int    `json:"line,omitempty"`
	Machine   string `json:"machine,omitempty"`
	Enclosure string `json:"enclosure,omitempty"`
	Field     string `json:"field,omitempty"`
	Reason    string `json:"reason"`
}

// WhoAmI is the caller's token name and role.
type WhoAmI struct {
	Name string     `json:"name"`
	Role store.Role `json:"role"`
}

// Machines is a page of machines. NextAfter, when non-zero, is the
// "after" parameter of the next page.
type Machines struct {
	Machines  []manager.MachineView `json:"machines"`
	NextAfter int64                 `json:"next_after,omitempty"`
}

// History is a page of a machine's transitions, newest first. NextBefore,
// when non-zero, is the "before" parameter of the next (older) page.
type History struct {
	Transitions []store.Transition `json:"transitions"`
	NextBefore  int64              `json:"next_before,omitempty"`
}

// AdoptRequest re-pins a machine's GUID; empty adopts the one its BMC
// reports now.
type AdoptRequest struct {
	GUID string `json:"guid"`
}

// AcceptCertificateRequest re-pins a Redfish BMC's certificate; empty
// accepts the one the BMC presented at its last check.
type AcceptCertificateRequest struct {
	Fingerprint string `json:"fingerprint"`
}

// ReplaceRequest names the spare that takes the machine's place.
type ReplaceRequest struct {
	Spare string `json:"spare"`
}

// ReplaceResponse shows both machines after a replacement.
type ReplaceResponse struct {
	Old   manager.MachineView `json:"old"`
	Spare manager.MachineView `json:"spare"`
}

// Accounts lists OOB channels.
type Accounts struct {
	Accounts []manager.ChannelView `json:"accounts"`
}

// Enclosures lists enclosure managers.
type Enclosures struct {
	Enclosures []store.Enclosure `json:"enclosures"`
}

// ImportRequest carries an inventory file's text and the passwords the
// client read for it (the server never reads client-side files).
type ImportRequest struct {
	Format  string `json:"format"`  // yaml | csv
	Content string `json:"content"` // the file's text
	// Source names the file in error messages (e.g. "fleet.yaml").
	Source             string            `json:"source,omitempty"`
	Passwords          map[string]string `json:"passwords,omitempty"`           // by machine name
	EnclosurePasswords map[string]string `json:"enclosure_passwords,omitempty"` // by enclosure name
	// Replace updates machines that already exist (admin) instead of
	// refusing the import.
	Replace bool `json:"replace,omitempty"`
}

// ImportResponse says what an import stored.
type ImportResponse struct {
	Machines   int `json:"machines"`
	Enclosures int `json:"enclosures"`
}

// CheckRequest names machines and/or a group to check now.
type CheckRequest struct {
	Machines []string `json:"machines,omitempty"`
	Group    string   `json:"group,omitempty"`
}

// CheckResponse holds the fresh states.
type CheckResponse struct {
	Results []manager.CheckResult `json:"results"`
}

// PowerRequest is a bulk power or identify operation: Batch machines at a
// time (0: all at once), Interval (a Go duration such as "10s") between
// batches. AgentFallback (a Go duration from 1s to 30m, only with action
// soft, admin) asks the machine's agent — the one enrolled under the
// machine's name — to run os-shutdown if the power still reads on that
// long after the soft-off.
type PowerRequest struct {
	Action        string   `json:"action"`
	Machines      []string `json:"machines,omitempty"`
	Group         string   `json:"group,omitempty"`
	Batch         int      `json:"batch,omitempty"`
	Interval      string   `json:"interval,omitempty"`
	AgentFallback string   `json:"agent_fallback,omitempty"`
}

// AllocateRequest assigns machines to a group and powers them on.
type AllocateRequest struct {
	Group    string   `json:"group"`
	Machines []string `json:"machines"`
	Batch    int      `json:"batch,omitempty"`
	Interval string   `json:"interval,omitempty"`
}

// PowerLine is one line of a power or allocate stream: a machine's
// result, or, last, the summary (exactly one of the two is set).
type PowerLine struct {
	*power.Result
	Summary *PowerSummary `json:"summary,omitempty"`
}

// PowerSummary counts a bulk operation's outcomes.
type PowerSummary struct {
	OK      int `json:"ok"`
	Refused int `json:"refused"`
	Failed  int `json:"failed"`
}

// Add counts r.
func (s *PowerSummary) Add(r power.Result) {
	switch r.Result {
	case power.ResultOK:
		s.OK++
	case power.ResultRefused:
		s.Refused++
	default:
		s.Failed++
	}
}

// Events lists events, newest first.
type Events struct {
	Events []store.Event `json:"events"`
}

// Audit lists audit entries, newest first.
type Audit struct {
	Entries []store.AuditEntry `json:"entries"`
}

// Tokens lists API tokens (never their secrets).
type Tokens struct {
	Tokens []store.Token `json:"tokens"`
}

// TokenRequest creates a token.
type TokenRequest struct {
	Name string     `json:"name"`
	Role store.Role `json:"role"`
}

// TokenResponse is a new token with its secret, shown once.
type TokenResponse struct {
	Token  store.Token `json:"token"`
	Secret string      `json:"secret"`
}

// EventCatalogue lists every event code the server knows.
type EventCatalogue struct {
	Codes []EventKind `json:"codes"`
}

// EventKind is one event code: default severity, what it means, its
// default dedup window ("0s": none) and whether the fleet correlator
// looks at it.
type EventKind struct {
	Code      string         `json:"code"`
	Severity  store.Severity `json:"severity"`
	Summary   string         `json:"summary"`
	Dedup     string         `json:"dedup"`
	Correlate bool           `json:"correlate"`
}
