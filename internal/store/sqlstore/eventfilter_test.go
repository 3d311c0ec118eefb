package sqlstore

import (
	"strings"
	"testing"
	"time"
)

func TestListEvents(t *testing.T) {
	eachStore(t, func(t *testing.T, db *DB) {
		ctx := ctxT(t)
		t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
		add := func(code, source string, sev Severity, at time.Time) Event {
			t.Helper()
			e := Event{Code: code, Severity: sev, Source: source, At: at}
			mustNil(t, db.AddEvent(ctx, &e, 0))
			return e
		}
		add("oob.not_responding", "web-1", SeverityWarning, t0)
		add("oob.auth_refused", "web-2", SeverityCritical, t0.Add(time.Minute))
		add("audit.weak_auth", "web-1", SeverityWarning, t0.Add(2*time.Minute))
		add("audit_x.other", "web-1", SeverityInfo, t0.Add(3*time.Minute)) // "_" is no wildcard
		add("oob.state_changed", "web-1", SeverityInfo, t0.Add(4*time.Minute))
		last := add("audit.drift", "web-3", SeverityWarning, t0.Add(5*time.Minute))
		list := func(f EventFilter) string {
			t.Helper()
			evs, err := db.ListEvents(ctx, f)
			mustNil(t, err)
			var s []string
			for _, e := range evs {
				s = append(s, e.Code+"@"+e.Source)
				if !f.Match(e) {
					t.Errorf("%+v: listed %+v that Match refuses", f, e)
				}
			}
			return strings.Join(s, " ")
		}
		for _, c := range []struct {
			f    EventFilter
			want string
		}{
			{EventFilter{}, "audit.drift@web-3 oob.state_changed@web-1 audit_x.other@web-1 audit.weak_auth@web-1 oob.auth_refused@web-2 oob.not_responding@web-1"},
			{EventFilter{Code: "audit.*"}, "audit.drift@web-3 audit.weak_auth@web-1"},
			{EventFilter{Code: "oob.auth_refused"}, "oob.auth_refused@web-2"},
			{EventFilter{Code: "oob"}, ""},
			{EventFilter{Source: "web-1", MinSeverity: SeverityWarning}, "audit.weak_auth@web-1 oob.not_responding@web-1"},
			{EventFilter{MinSeverity: SeverityCritical}, "oob.auth_refused@web-2"},
			{EventFilter{MinSeverity: SeverityInfo, Limit: 2}, "audit.drift@web-3 oob.state_changed@web-1"},
			{EventFilter{Since: t0.Add(4 * time.Minute), Code: "oob.*"}, "oob.state_changed@web-1"},
			{EventFilter{Before: last.ID, Code: "audit.*"}, "audit.weak_auth@web-1"},
		} {
			if got := list(c.f); got != c.want {
				t.Errorf("ListEvents(%+v)\n got %s\nwant %s", c.f, got, c.want)
			}
		}
		_, err := db.ListEvents(ctx, EventFilter{MinSeverity: "fatal"})
		wantFieldErr(t, err, "severity", nil)
	})
}

func TestSeverityAndCodeMatch(t *testing.T) {
	if !SeverityCritical.AtLeast(SeverityWarning) || SeverityInfo.AtLeast(SeverityWarning) || !SeverityInfo.AtLeast("") {
		t.Error("AtLeast")
	}
	if _, err := ParseSeverity("warning"); err != nil {
		t.Error(err)
	}
	if _, err := ParseSeverity("WARNING"); err == nil {
		t.Error("ParseSeverity is exact")
	}
	for _, c := range []struct {
		pattern, code string
		want          bool
	}{
		{"", "x", true}, {"a.b", "a.b", true}, {"a.*", "a.b", true}, {"a.*", "a", false},
		{"a.*", "ab.c", false}, {"a*", "ab", false}, {"a.b", "a.bc", false},
	} {
		if got := MatchCode(c.pattern, c.code); got != c.want {
			t.Errorf("MatchCode(%q, %q) = %v", c.pattern, c.code, got)
		}
	}
}
