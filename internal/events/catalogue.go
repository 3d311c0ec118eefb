// Package events turns what lightsout notices into typed, deduplicated
// events: a catalogue of codes with severities, the Recorder (dedup windows
// over store.AddEvent, retention, live subscribers, webhooks), and the
// detectors that work on rates and on the whole fleet: timeout floods per
// source (Flood) and fleet correlation by firmware, enclosure and subnet
// (Correlator). The detectors are pure (an injected clock, no I/O); the
// Recorder is the thin I/O around them. See docs/events.md.
package events

import (
	"strings"

	"github.com/lightsout/lightsout/internal/evcode"
)

// Event codes: the catalogue is internal/evcode's; these names stay for
// the packages that record events through a Recorder.
const (
	OOBStateChanged        = evcode.OOBStateChanged
	OOBNotResponding       = evcode.OOBNotResponding
	OOBAuthRefused         = evcode.OOBAuthRefused
	OOBIdentityMismatch    = evcode.OOBIdentityMismatch
	OOBDegraded            = evcode.OOBDegraded
	OOBTimeoutFlood        = evcode.OOBTimeoutFlood
	OOBTimeoutFloodCleared = evcode.OOBTimeoutFloodCleared
	OOBConflictingReplies  = evcode.OOBConflictingReplies
	FleetCorrelated        = evcode.FleetCorrelated
	FleetZoneUnwatched     = evcode.FleetZoneUnwatched
	IncidentOpened         = evcode.IncidentOpened
	IncidentClosed         = evcode.IncidentClosed
	AuditCipher0Enabled    = evcode.AuditCipher0Enabled
	AuditAnonymousLogin    = evcode.AuditAnonymousLogin
	AuditWeakAuth          = evcode.AuditWeakAuth
	AuditDefaultPassword   = evcode.AuditDefaultPassword
	AuditDrift             = evcode.AuditDrift
	PowerFailed            = evcode.PowerFailed
	PowerRefused           = evcode.PowerRefused
	PowerDone              = evcode.PowerDone
)

// Kind describes one code (evcode.Kind).
type Kind = evcode.Kind

// Catalogue returns every known code, sorted (evcode.Catalogue).
func Catalogue() []Kind { return evcode.Catalogue() }

// Lookup returns the kind of code (evcode.Lookup): unknown codes get info
// severity, no dedup, no correlation.
func Lookup(code string) (Kind, bool) { return evcode.Lookup(code) }

// fleetSource is the Source of fleet findings: "fleet:" + the correlated
// code + ":" + the primary factor, so two codes on one group stay two
// events.
func fleetSource(code string, f Factor, value string) string {
	return "fleet:" + code + ":" + string(f) + "=" + value
}

// IsFleetSource reports whether source names a fleet finding.
func IsFleetSource(source string) bool { return strings.HasPrefix(source, "fleet:") }
