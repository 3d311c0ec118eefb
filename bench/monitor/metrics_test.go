package main

import (
	"math"
	"strings"
	"testing"
	"time"
)

const exposition = `# HELP lightsout_checks_total Channel checks run by the monitor, by observed state.
# TYPE lightsout_checks_total counter
lightsout_checks_total{state="Connectable"} 990
lightsout_checks_total{state="NotResponding"} 10
# TYPE lightsout_check_duration_seconds histogram
lightsout_check_duration_seconds_bucket{le="0.005"} 800
lightsout_check_duration_seconds_bucket{le="0.01"} 900
lightsout_check_duration_seconds_bucket{le="0.025"} 990
lightsout_check_duration_seconds_bucket{le="+Inf"} 1000
lightsout_check_duration_seconds_sum 12.5
lightsout_check_duration_seconds_count 1000
lightsout_channels{kind="oob",state="Connectable"} 499
lightsout_channels{kind="oob",state="Unknown"} 1
go_memstats_sys_bytes 1.048576e+07
`

func TestParseMetrics(t *testing.T) {
	m, err := parseMetrics(strings.NewReader(exposition))
	if err != nil {
		t.Fatal(err)
	}
	c := m.byLabel("lightsout_checks_total", "state")
	if c["Connectable"] != 990 || c["NotResponding"] != 10 || len(c) != 2 {
		t.Errorf("checks by state: %v", c)
	}
	st := m.byLabel("lightsout_channels", "state")
	if st["Connectable"] != 499 || st["Unknown"] != 1 {
		t.Errorf("channels by state: %v", st)
	}
	if v, ok := m.get("go_memstats_sys_bytes"); !ok || v != 10485760 {
		t.Errorf("go_memstats_sys_bytes = %v, %v", v, ok)
	}
	h, ok := m.histogram("lightsout_check_duration_seconds")
	if !ok || len(h.les) != 4 || !math.IsInf(h.les[3], 1) || h.count != 1000 || h.sum != 12.5 {
		t.Fatalf("histogram: %+v %v", h, ok)
	}
	// p50: rank 500 of 800 in [0, 5 ms] → 3.125 ms.
	if v, lo, hi := h.quantile(.5); math.Abs(v-0.003125) > 1e-9 || lo != 0 || hi != 0.005 {
		t.Errorf("p50 = %v in [%v, %v]", v, lo, hi)
	}
	// p99: rank 990 is the 25 ms bucket's upper edge.
	if v, _, _ := h.quantile(.99); math.Abs(v-0.025) > 1e-9 {
		t.Errorf("p99 = %v", v)
	}
	// p99.9 falls in +Inf: the largest finite bound.
	if v, lo, hi := h.quantile(.999); v != 0.025 || lo != 0.025 || !math.IsInf(hi, 1) {
		t.Errorf("p99.9 = %v in [%v, %v]", v, lo, hi)
	}
	if got := cumulativeAt(h, 0.01); got != 900 {
		t.Errorf("cumulativeAt(10 ms) = %v", got)
	}
	d := h.sub(h)
	if d.count != 0 || d.counts[3] != 0 || !math.IsNaN(func() float64 { v, _, _ := d.quantile(.5); return v }()) {
		t.Errorf("h − h = %+v", d)
	}
}

func TestAutoWarmup(t *testing.T) {
	for _, c := range []struct{ interval, want time.Duration }{
		{60 * time.Second, 75 * time.Second}, // 60 + 10×1.1 + 4
		{10 * time.Second, 25 * time.Second}, // 10 + 10×1.1 + 4
	} {
		if got := autoWarmup(c.interval); got != c.want {
			t.Errorf("autoWarmup(%v) = %v, want %v", c.interval, got, c.want)
		}
	}
}

func TestGlobalNames(t *testing.T) {
	n := newFleetNames(50000)
	s := &simShard{index: 1, offset: 16667}
	if got := n.global(s, "bmc-00001"); got != "bmc-16668" {
		t.Errorf("global = %q", got)
	}
	if got := newFleetNames(150000).global(&simShard{offset: 99999}, "bmc-00001"); got != "bmc-100000" {
		t.Errorf("global = %q", got)
	}
}
