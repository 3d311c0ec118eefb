package store

import (
	"fmt"
	"strings"
	"time"
)

// EventFilter selects events for ListEvents. Zero fields select everything.
type EventFilter struct {
	// Since keeps events whose LastAt is at or after it.
	Since time.Time
	// Code is one code ("oob.timeout_flood") or a family ending in ".*"
	// ("audit.*").
	Code string
	// Source is one source (machine, enclosure or fleet finding).
	Source string
	// MinSeverity keeps events at least this severe (info < warning <
	// critical).
	MinSeverity Severity
	// Before, when not 0, keeps events with ID < Before (paging by ID).
	Before int64
	// Limit is at most this many (0: 100).
	Limit int
}

// severityRank orders severities; 0 for unknown.
func severityRank(s Severity) int {
	switch s {
	case SeverityInfo:
		return 1
	case SeverityWarning:
		return 2
	case SeverityCritical:
		return 3
	}
	return 0
}

// AtLeast reports whether s is at least as severe as min (an empty min
// admits everything).
func (s Severity) AtLeast(min Severity) bool {
	return min == "" || severityRank(s) >= severityRank(min)
}

// ParseSeverity checks a severity name.
func ParseSeverity(s string) (Severity, error) {
	if severityRank(Severity(s)) == 0 {
		return "", fmt.Errorf("%q is not info, warning or critical", s)
	}
	return Severity(s), nil
}

// MatchCode reports whether code is selected by pattern: equal, or pattern
// "fam.*" and code starting with "fam.". An empty pattern matches all.
func MatchCode(pattern, code string) bool {
	if pattern == "" || pattern == code {
		return true
	}
	if fam, ok := strings.CutSuffix(pattern, "*"); ok && strings.HasSuffix(fam, ".") {
		return strings.HasPrefix(code, fam)
	}
	return false
}

// Match reports whether e passes f (Since, Code, Source, MinSeverity; not
// Before or Limit), for filtering live events the way ListEvents filters
// stored ones.
func (f EventFilter) Match(e Event) bool {
	if !f.Since.IsZero() && e.LastAt.Before(f.Since) {
		return false
	}
	if f.Source != "" && e.Source != f.Source {
		return false
	}
	return MatchCode(f.Code, e.Code) && e.Severity.AtLeast(f.MinSeverity)
}
