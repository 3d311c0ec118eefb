package main

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"

	"github.com/lightsout/lightsout/bench/internal/proc"
)

// tick is one reading of the running server: its CPU and memory from /proc,
// a scrape of /metrics (as Prometheus would scrape it), and the problems it
// logged since the previous tick.
type tick struct {
	at      time.Time
	cpu     float64
	simCPU  float64 // all simulator shards
	busy    float64 // every CPU of the machine
	mem     proc.MemInfo
	met     metrics // nil when the scrape failed
	metErr  error
	logErrs int // ERROR and WARN lines
	logLast string
}

// sampler reads the server and the simulator shards.
type sampler struct {
	srv    *serverProc
	shards []*simShard
	logOff int64
}

func (s *sampler) take() (tick, error) {
	if !s.srv.Alive() {
		return tick{}, fmt.Errorf("the server exited during the run (%s): %s", s.srv.ExitStatus(), s.srv.StderrTail())
	}
	for _, sh := range s.shards {
		if !sh.Alive() {
			return tick{}, fmt.Errorf("simulator shard %d exited during the run: %s", sh.index, sh.StderrTail())
		}
	}
	t := tick{at: time.Now()}
	var err error
	if t.cpu, err = proc.CPUSeconds(s.srv.PID); err != nil {
		return t, err
	}
	if t.mem, err = proc.ReadMem(s.srv.PID); err != nil {
		return t, err
	}
	for _, sh := range s.shards {
		t.simCPU += sh.CPUSeconds()
	}
	t.busy = proc.MachineBusy()
	t.met, t.metErr = s.srv.scrape()
	t.logErrs, t.logLast = s.logProblems()
	return t, nil
}

// logProblems counts the ERROR and WARN lines the server logged since the
// last call, and returns the last one.
func (s *sampler) logProblems() (int, string) {
	f, err := os.Open(s.srv.errPath)
	if err != nil {
		return 0, ""
	}
	defer f.Close()
	if _, err := f.Seek(s.logOff, io.SeekStart); err != nil {
		return 0, ""
	}
	data, _ := io.ReadAll(io.LimitReader(f, 256<<20))
	// Only whole lines; the rest is read next time.
	if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
		data = data[:i+1]
	} else {
		data = nil
	}
	s.logOff += int64(len(data))
	n, last := 0, ""
	for _, line := range strings.Split(string(data), "\n") {
		if strings.Contains(line, "level=ERROR") || strings.Contains(line, "level=WARN") {
			n++
			last = line
		}
	}
	return n, last
}

// slice is what happened between two ticks.
type slice struct {
	from, to float64 // seconds since the server was ready
	secs     float64
	cpuShare float64
	simShare float64 // all simulator shards
	other    float64 // the rest of the machine's busy CPU: other processes, this bench, interrupts
	rssMiB   float64
	hasMet   bool
	checks   float64 // all observed states
	notConn  float64 // observations other than Connectable
	retrans  float64
	lagLate  float64 // share of the checks that started more than 1 s after they fell due
	latP50   float64
	latP99   float64
	unknown  float64 // channels still Unknown (never declared) at the end
	logErrs  int
	logLast  string
	inWindow bool
}

func makeSlice(a, b tick, ready time.Time) slice {
	s := slice{
		from: a.at.Sub(ready).Seconds(), to: b.at.Sub(ready).Seconds(),
		secs:    b.at.Sub(a.at).Seconds(),
		rssMiB:  float64(b.mem.RSS) / 1024,
		logErrs: b.logErrs, logLast: b.logLast,
	}
	if s.secs > 0 {
		s.cpuShare = (b.cpu - a.cpu) / s.secs
		s.simShare = (b.simCPU - a.simCPU) / s.secs
		s.other = math.Max(0, (b.busy-a.busy)/s.secs-s.cpuShare-s.simShare)
	}
	if a.met == nil || b.met == nil {
		return s
	}
	s.hasMet = true
	c0, c1 := a.met.byLabel("lightsout_checks_total", "state"), b.met.byLabel("lightsout_checks_total", "state")
	for k, v := range c1 {
		d := v - c0[k]
		s.checks += d
		if k != "Connectable" {
			s.notConn += d
		}
	}
	p0, p1 := a.met.byLabel("lightsout_ipmi_packets_total", "kind"), b.met.byLabel("lightsout_ipmi_packets_total", "kind")
	s.retrans = p1["retransmitted"] - p0["retransmitted"]
	if h1, ok := b.met.histogram("lightsout_monitor_lag_seconds"); ok {
		if h0, ok := a.met.histogram("lightsout_monitor_lag_seconds"); ok {
			d := h1.sub(h0)
			if d.count > 0 {
				s.lagLate = 1 - cumulativeAt(d, 1)/d.count
			}
		}
	}
	if h1, ok := b.met.histogram("lightsout_check_duration_seconds"); ok {
		if h0, ok := a.met.histogram("lightsout_check_duration_seconds"); ok {
			d := h1.sub(h0)
			s.latP50, _, _ = d.quantile(.5)
			s.latP99, _, _ = d.quantile(.99)
		}
	}
	s.unknown = b.met.byLabel("lightsout_channels", "state")["Unknown"]
	return s
}

// cumulativeAt is the histogram's count of observations ≤ le (le must be
// one of its bounds; otherwise the next lower bound's count).
func cumulativeAt(h histogram, le float64) float64 {
	v := 0.0
	for i, b := range h.les {
		if b <= le {
			v = h.counts[i]
		}
	}
	return v
}

// steady says whether a slice looks like the monitor's steady state: every
// channel declared, nothing logged as a problem (a failed store write
// leaves the channel dirty, to be saved again on its next check), and the
// checks starting on time (fewer than 1% more than 1 s late).
func (s slice) steady() bool {
	return s.hasMet && s.unknown == 0 && s.logErrs == 0 && s.lagLate < 0.01
}

func (s slice) String() string {
	str := fmt.Sprintf("%4.0f–%4.0fs  CPU %5.1f%%  RSS %6.1f MiB  sim CPU %5.1f%%  other CPU %5.1f%%", s.from, s.to, s.cpuShare*100, s.rssMiB, s.simShare*100, s.other*100)
	if s.hasMet {
		str += fmt.Sprintf("  checks %5.0f/s  not Connectable %4.0f  retransmits %5.0f  late >1s %5.1f%%  latency p50 %s p99 %s  Unknown %5.0f",
			s.checks/s.secs, s.notConn, s.retrans, s.lagLate*100, fmtSecShort(s.latP50), fmtSecShort(s.latP99), s.unknown)
	}
	if s.logErrs > 0 {
		str += fmt.Sprintf("  logged problems %d", s.logErrs)
	}
	return str
}

func fmtSecShort(v float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	return fmtSec(v)
}

// timelineRows renders slices for the report's timeline table.
func timelineRows(sl []slice) [][]string {
	var rows [][]string
	for _, s := range sl {
		phase := "warm-up"
		if s.inWindow {
			phase = "window"
		}
		r := []string{fmt.Sprintf("%.0f–%.0f", s.from, s.to), phase, fmt.Sprintf("%.1f%%", s.cpuShare*100), fmt.Sprintf("%.1f", s.rssMiB), fmt.Sprintf("%.0f%%", s.simShare*100), fmt.Sprintf("%.0f%%", s.other*100)}
		if s.hasMet {
			r = append(r, fmt.Sprintf("%.0f", s.checks/s.secs), fmt.Sprintf("%.0f", s.notConn), fmt.Sprintf("%.0f", s.retrans),
				fmt.Sprintf("%.1f%%", s.lagLate*100), fmtSecShort(s.latP50), fmtSecShort(s.latP99), fmt.Sprintf("%.0f", s.unknown))
		} else {
			r = append(r, "–", "–", "–", "–", "–", "–", "–")
		}
		r = append(r, fmt.Sprintf("%d", s.logErrs))
		rows = append(rows, r)
	}
	return rows
}

var timelineHeader = []string{"s since ready", "phase", "CPU", "RSS MiB", "sim CPU", "other CPU", "checks/s", "not Connectable", "retransmits", "started > 1 s late", "latency p50", "latency p99", "Unknown", "logged errors"}
var timelineRight = []bool{true, false, true, true, true, true, true, true, true, true, true, true, true, true}
