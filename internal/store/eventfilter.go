package store

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
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

// ListEvents lists events newest (by LastAt) first, filtered by f.
func (db *DB) ListEvents(ctx context.Context, f EventFilter) ([]Event, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	where, args := "1 = 1", []any{}
	if !f.Since.IsZero() {
		where += " AND last_at >= ?"
		args = append(args, ts(f.Since))
	}
	if f.Code != "" {
		if fam, ok := strings.CutSuffix(f.Code, "*"); ok && strings.HasSuffix(fam, ".") {
			// An exact prefix comparison: LIKE would take "_" in a
			// code as a wildcard.
			where += " AND substr(code, 1, ?) = ?"
			args = append(args, utf8.RuneCountInString(fam), fam)
		} else {
			where += " AND code = ?"
			args = append(args, f.Code)
		}
	}
	if f.Source != "" {
		where += " AND source = ?"
		args = append(args, f.Source)
	}
	if f.MinSeverity != "" {
		if severityRank(f.MinSeverity) == 0 {
			return nil, &FieldError{Field: "severity", Reason: fmt.Sprintf("%q is not info, warning or critical", f.MinSeverity)}
		}
		var sev []string
		for _, s := range []Severity{SeverityInfo, SeverityWarning, SeverityCritical} {
			if s.AtLeast(f.MinSeverity) {
				sev = append(sev, "'"+string(s)+"'")
			}
		}
		where += " AND severity IN (" + strings.Join(sev, ", ") + ")"
	}
	if f.Before > 0 {
		where += " AND id < ?"
		args = append(args, f.Before)
	}
	args = append(args, f.Limit)
	rows, err := db.read().query(ctx, `SELECT id, at, code, severity, source, message, count, last_at, data FROM events
WHERE `+where+` ORDER BY last_at DESC, id DESC LIMIT ?`, args...)
	if err != nil {
		return nil, mapErr(err, "")
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var e Event
		var at, last int64
		var sev, data string
		if err := rows.Scan(&e.ID, &at, &e.Code, &sev, &e.Source, &e.Message, &e.Count, &last, &data); err != nil {
			return nil, mapErr(err, "")
		}
		e.At, e.LastAt, e.Severity, e.Data = fromTS(at), fromTS(last), Severity(sev), toRaw(data)
		out = append(out, e)
	}
	return out, mapErr(rows.Err(), "")
}
