package api_test

import (
	"github.com/lightsout/lightsout/internal/poll"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/api/apitest"
	"github.com/lightsout/lightsout/internal/server"
	"github.com/lightsout/lightsout/internal/sim"
	"github.com/lightsout/lightsout/internal/store"
)

// sample is one parsed line of the text exposition.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

var labelRE = regexp.MustCompile(`(\w+)="([^"]*)"`)

// parseMetrics reads the text exposition's samples (no library: the
// format's lines are name{labels} value).
func parseMetrics(text string) []sample {
	var out []sample
	for _, l := range strings.Split(text, "\n") {
		if l == "" || l[0] == '#' {
			continue
		}
		name, rest, _ := strings.Cut(l, "{")
		var lbls, val string
		if rest == "" {
			name, val, _ = strings.Cut(l, " ")
		} else {
			lbls, val, _ = strings.Cut(rest, "} ")
		}
		v, err := strconv.ParseFloat(strings.Fields(val)[0], 64)
		if err != nil {
			continue
		}
		s := sample{name: name, labels: map[string]string{}, value: v}
		for _, m := range labelRE.FindAllStringSubmatch(lbls, -1) {
			s.labels[m[1]] = m[2]
		}
		out = append(out, s)
	}
	return out
}

// find returns the value of the one sample of name with the labels (a
// subset), and how many matched.
func find(ss []sample, name string, kv ...string) (float64, int) {
	var v float64
	n := 0
	for _, s := range ss {
		if s.name != name {
			continue
		}
		ok := true
		for i := 0; i+1 < len(kv); i += 2 {
			if s.labels[kv[i]] != kv[i+1] {
				ok = false
			}
		}
		if ok {
			v, n = s.value, n+1
		}
	}
	return v, n
}

// TestChannelMetricsAndProbe: /metrics carries per-channel series with the
// machine's labels; /probe?target=NAME checks one machine now and answers
// blackbox_exporter's probe_success with its channel series (operator
// token; bad target refused); above --channel-metrics-max the series are
// off and a metric says so.
func TestChannelMetricsAndProbe(t *testing.T) {
	e := apitest.Start(t, apitest.Options{Subnet: 98,
		Fleet: sim.Config{Count: 4, Seed: 3, Enclosures: []sim.EnclosureConfig{{Name: "enc-m", Blades: 1}},
			Faults: map[string]sim.Faults{"bmc-00002": {WrongPassword: true}, "bmc-00003": {SlotsFull: true}}}})
	e.ImportFleet(t)
	var ss []sample
	var st int
	var b []byte
	if !poll.Wait(30*time.Second, func() bool {
		st, b = raw(t, e, "", "GET", "/metrics", "")
		ss = parseMetrics(string(b))
		_, n := find(ss, "lightsout_channel_last_check_timestamp_seconds")
		busy, _ := find(ss, "lightsout_channel_condition", "machine", "bmc-00003", "condition", "Busy")
		return st == 200 && n == 4 && busy == 1
	}) {
		t.Fatalf("/metrics never had 4 checked channels with bmc-00003 Busy: %d\n%s", st, b)
	}
	checks := []struct {
		name string
		kv   []string
		want float64
	}{
		{"lightsout_channel_series_enabled", nil, 1},
		{"lightsout_channel_up", []string{"machine", "bmc-00001", "protocol", "ipmi", "enclosure", "enc-m", "zone", "default"}, 1},
		{"lightsout_channel_up", []string{"machine", "bmc-00002"}, 0},
		{"lightsout_channel_state", []string{"machine", "bmc-00002", "state", "NotAuthenticated"}, 1},
		{"lightsout_channel_state", []string{"machine", "bmc-00002", "state", "Connectable"}, 0},
		{"lightsout_channel_condition", []string{"machine", "bmc-00004", "condition", "Degraded"}, 0},
	}
	for _, c := range checks {
		if v, n := find(ss, c.name, c.kv...); n != 1 || v != c.want {
			t.Errorf("%s%v: %v (%d samples), want %v", c.name, c.kv, v, n, c.want)
		}
	}
	if v, n := find(ss, "lightsout_incident_open", "id", "cause:NotAuthenticated/wrong_password/user=admin/group=", "severity", "critical", "kind", "cause"); n != 1 || v != 1 {
		t.Errorf("lightsout_incident_open for the refused password: %v (%d)", v, n)
	}
	if _, n := find(ss, "lightsout_channel_state", "machine", "bmc-00001"); n != 5 {
		t.Errorf("bmc-00001 has %d state series, want one per state (5)", n)
	}
	if v, _ := find(ss, "lightsout_channel_last_check_timestamp_seconds", "machine", "bmc-00001"); v < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("last check %v: not within the last minute", v)
	}

	// /probe: a fresh check of one machine.
	st, b = raw(t, e, store.RoleOperator, "GET", "/probe?target=bmc-00002", "")
	ps := parseMetrics(string(b))
	if v, n := find(ps, "probe_success"); st != 200 || n != 1 || v != 0 {
		t.Fatalf("probe bmc-00002: %d %s", st, b)
	}
	if v, _ := find(ps, "lightsout_channel_state", "machine", "bmc-00002", "state", "NotAuthenticated"); v != 1 {
		t.Errorf("probe bmc-00002 state series:\n%s", b)
	}
	if _, n := find(ps, "lightsout_channel_up", "machine", "bmc-00001"); n != 0 {
		t.Errorf("probe bmc-00002 answers for another machine:\n%s", b)
	}
	st, b = raw(t, e, store.RoleOperator, "GET", "/probe?target=bmc-00001&module=oob", "")
	ps = parseMetrics(string(b))
	if v, _ := find(ps, "probe_success"); st != 200 || v != 1 {
		t.Errorf("probe bmc-00001: %d %s", st, b)
	}
	if v, n := find(ps, "probe_duration_seconds"); n != 1 || v <= 0 {
		t.Errorf("probe_duration_seconds %v (%d)", v, n)
	}
	for _, tc := range []struct {
		role store.Role
		path string
		code int
		want string
	}{
		{store.RoleViewer, "/probe?target=bmc-00001", 403, "operator"},
		{"", "/probe?target=bmc-00001", 401, ""},
		{store.RoleOperator, "/probe", 400, "target"},
		{store.RoleOperator, "/probe?target=bmc-00001&module=icmp", 400, "module"},
		{store.RoleOperator, "/probe?target=nope", 404, ""},
		{store.RoleOperator, "/probe?target=bmc-00001&targets=x", 400, "targets"},
	} {
		if st, b := raw(t, e, tc.role, "GET", tc.path, ""); st != tc.code || !strings.Contains(string(b), tc.want) {
			t.Errorf("%s as %q: %d %s, want %d naming %q", tc.path, tc.role, st, b, tc.code, tc.want)
		}
	}
}

// Above the bound the per-channel series are off; a metric says so.
func TestChannelMetricsBound(t *testing.T) {
	e := apitest.Start(t, apitest.Options{Subnet: 98, Fleet: sim.Config{Count: 3, Seed: 3},
		Configure: func(c *server.Config) { c.ChannelMetricsMax = 2 }})
	e.ImportFleet(t)
	_, b := raw(t, e, "", "GET", "/metrics", "")
	ss := parseMetrics(string(b))
	if v, n := find(ss, "lightsout_channel_series_enabled"); n != 1 || v != 0 {
		t.Errorf("series_enabled %v (%d), want 0 with 3 channels over a limit of 2", v, n)
	}
	if v, _ := find(ss, "lightsout_channel_series_limit"); v != 2 {
		t.Errorf("series_limit %v", v)
	}
	if _, n := find(ss, "lightsout_channel_up"); n != 0 {
		t.Errorf("%d lightsout_channel_up series above the bound", n)
	}
	if _, n := find(ss, "lightsout_channels", "state", "Connectable"); n != 1 {
		t.Error("the fleet totals went with the per-channel series")
	}
}
