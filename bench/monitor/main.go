// Command monitor benchmarks the management server's continuous monitor:
// `lightsout server` watching a simulated fleet (default 50,000 BMCs) at a
// 60 s interval. It starts the simulator (`lightsout sim`, as many
// processes as RLIMIT_NOFILE requires) and the server as separate
// processes, pinned to different CPUs, and measures over a steady window
// the server's CPU (share of one core), its RSS per channel beyond an
// empty server's, the checks it made and their latency (from /metrics),
// and from the simulator's per-BMC counters that no BMC ever saw two
// concurrent sessions from it.
//
//	sudo go run ./bench/monitor                                        # 50,000 BMCs, ~6 min
//	sudo go run ./bench/monitor --count 5000 --interval 10s --window 30s   # smoke run
//
// See bench/README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/lightsout/lightsout/bench/internal/fleet"
	"github.com/lightsout/lightsout/bench/internal/gobuild"
	"github.com/lightsout/lightsout/bench/internal/markdown"
	"github.com/lightsout/lightsout/bench/internal/proc"
	"github.com/lightsout/lightsout/bench/internal/progress"
	"github.com/lightsout/lightsout/bench/internal/scratch"
	"github.com/lightsout/lightsout/internal/state"
)

type config struct {
	count        int
	interval     time.Duration
	warmup       time.Duration
	maxWarmup    time.Duration
	window       time.Duration
	settle       time.Duration
	sample       time.Duration
	shardMax     int
	readyTimeout time.Duration
	profile      string
	out          string
	strict       bool
	keep         bool
	fresh        bool
	redfish      bool // the fleet serves Redfish, the server checks over it
	compare      bool // with redfish: then the same fleet over IPMI, and the ratios
}

// Targets from the issue.
const (
	targetCPUShare   = 0.25 // of one core
	targetKiBPerChan = 4.0  // RSS per channel beyond the store's own
	// Redfish (--redfish): CPU per check at most this many times the IPMI
	// check's, the same fleet on the same server.
	targetRedfishRatio = 2.0
)

func main() {
	var c config
	flag.IntVar(&c.count, "count", 50000, "simulated BMCs (one OOB channel each)")
	flag.DurationVar(&c.interval, "interval", 60*time.Second, "lightsout server --interval")
	flag.DurationVar(&c.warmup, "warmup", 0, "least time from the server's ready line to the window (0: interval + the confirming check + 4 s, 75 s at 60s); the window starts once the monitor is also steady for two --sample periods")
	flag.DurationVar(&c.maxWarmup, "max-warmup", 10*time.Minute, "measure anyway (and say so) when the monitor is not steady this long after the server's ready line")
	flag.DurationVar(&c.window, "window", 120*time.Second, "measurement window")
	flag.DurationVar(&c.settle, "settle", 15*time.Second, "how long the empty server runs before its RSS is read (the baseline)")
	flag.DurationVar(&c.sample, "sample", 10*time.Second, "CPU and RSS sampling period during the run")
	flag.IntVar(&firstOctet, "base-octet", firstOctet, "second octet of the first simulator shard's addresses (127.N.0.1; shards take N, N+1, …): another run on the machine uses another")
	flag.IntVar(&c.shardMax, "sim-shard-max", 0, "BMCs per simulator process at most (0: what RLIMIT_NOFILE allows, minus 512)")
	flag.DurationVar(&c.readyTimeout, "ready-timeout", 3*time.Minute, "wait this long for a simulator's or the server's ready line")
	flag.BoolVar(&pin.On, "pin", runtime.NumCPU() >= 2, "pin the simulator to CPU 0 and the server to CPU 1 (taskset): the server is measured on one core")
	flag.StringVar(&c.profile, "profile", "", "write the server's CPU profile of the full run here (LIGHTSOUT_CPUPROFILE; from its start to SIGTERM)")
	flag.StringVar(&c.out, "out", "", "also write the report as Markdown to this file")
	flag.BoolVar(&c.strict, "strict", false, "exit 1 when any target is missed (a BMC that saw two concurrent sessions, or a leaked session, always fails)")
	flag.BoolVar(&c.fresh, "fresh", false, "start the server on the fresh import (every channel Unknown: each first check writes a transition and an event) instead of on stored Connectable states (a restart on an established fleet)")
	flag.BoolVar(&c.keep, "keep", false, "keep the scratch directory (inventories, database, logs)")
	flag.BoolVar(&c.redfish, "redfish", false, "every simulated BMC serves Redfish over HTTPS (lightsout sim --redfish) and the server checks the fleet over Redfish; then, unless --ipmi-compare=false, the same fleet over IPMI on a fresh server, and the ratio of CPU per check")
	flag.BoolVar(&c.compare, "ipmi-compare", true, "with --redfish: measure the same fleet over IPMI too, and print Redfish ÷ IPMI")
	flag.Parse()
	if flag.NArg() > 0 {
		fatalf(2, "unexpected arguments: %q", flag.Args())
	}
	switch {
	case c.count < 1:
		fatalf(2, "--count %d: must be at least 1", c.count)
	case firstOctet < 2 || firstOctet > 254:
		fatalf(2, "--base-octet %d: must be 2 to 254 (127.0.0.0/8, away from 127.0.x.y and 127.1.x.y)", firstOctet)
	case c.interval < time.Second:
		fatalf(2, "--interval %v: must be at least 1s (the server's minimum)", c.interval)
	case c.window < 10*time.Second:
		fatalf(2, "--window %v: must be at least 10s", c.window)
	case c.warmup < 0 || c.settle < 0 || c.sample <= 0:
		fatalf(2, "--warmup and --settle must not be negative, --sample must be positive")
	case c.shardMax < 0 || c.shardMax > 65000:
		fatalf(2, "--sim-shard-max %d: must be 0-65000 (one 127.x.0.0/16 per shard)", c.shardMax)
	}
	if c.warmup == 0 {
		c.warmup = autoWarmup(c.interval)
	}
	if c.profile != "" {
		p, err := filepath.Abs(c.profile)
		if err != nil {
			fatalf(2, "--profile: %v", err)
		}
		c.profile = p
	}

	b := &bench{cfg: c}
	proc.RunAndExit(b.run, b.cleanup)
}

// autoWarmup covers the start-up transient: the monitor spreads the first
// checks over one interval, and a first observation is confirmed
// (state.DefaultDamping: 2 observations) by a second check
// Schedule.Confirm later (or one interval, when that is shorter), with
// jitter. Only then is every channel declared and written to the store;
// from there on a healthy fleet costs checks only.
func autoWarmup(interval time.Duration) time.Duration {
	s := state.DefaultSchedule
	confirm := interval
	if s.Confirm > 0 && s.Confirm < confirm {
		confirm = s.Confirm
	}
	return interval + time.Duration(float64(confirm)*(1+s.Jitter)) + 4*time.Second
}

type bench struct {
	cfg     config
	tmp     string
	root    string
	lsBin   string
	pwFile  string
	names   fleetNames
	nofile  uint64
	report  markdown.Report
	proto   string      // the leg being measured: ipmi or redfish
	legs    []legResult // what each leg measured
	cleanMu sync.Once
	mu      sync.Mutex
	shards  []*simShard
	server  *serverProc
	rows    [][]string // the results table
	notes   []string
	failed  bool // a target missed
	hard    bool // a BMC saw two sessions at once, or a session leaked
}

func (b *bench) cleanup() {
	b.cleanMu.Do(func() {
		b.mu.Lock()
		srv, shards := b.server, b.shards
		b.mu.Unlock()
		if srv != nil {
			srv.stop(30 * time.Second)
		}
		for _, s := range shards {
			s.Stop()
		}
		running.Shutdown()
		scratch.Remove(b.tmp, b.cfg.keep)
	})
}

func (b *bench) emit(format string, args ...any) {
	b.report.Printf(format, args...)
}

func (b *bench) run() int {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "bench/monitor needs root: the simulated fleet binds one loopback address per BMC on port 623 (127.x.y.z:623), and ports below 1024 need root.\nRun it as: sudo go run ./bench/monitor")
		return 2
	}
	c := b.cfg
	var err error
	if b.nofile, err = proc.RaiseNofile(uint64(c.count) + 1024); err != nil {
		progress.Logf("warning: raising RLIMIT_NOFILE: %v", err)
	}
	perShard := c.shardMax
	if perShard == 0 {
		perShard = min(int(b.nofile)-512, 65000)
		if c.redfish {
			// A BMC's UDP socket, its HTTPS listener and the server's
			// kept-alive connection to it.
			perShard = (int(b.nofile) - 512) / 3
		}
	}
	if perShard < 1 {
		fmt.Fprintf(os.Stderr, "bench/monitor: RLIMIT_NOFILE %d leaves no room for simulated BMCs\n", b.nofile)
		return 1
	}
	if b.tmp, err = scratch.New("lightsout-bench-monitor-"); err != nil {
		fmt.Fprintln(os.Stderr, "bench/monitor:", err)
		return 1
	}
	if err := b.build(); err != nil {
		fmt.Fprintln(os.Stderr, "bench/monitor:", err)
		return 1
	}
	if err := b.measure(perShard); err != nil {
		fmt.Fprintln(os.Stderr, "bench/monitor:", err)
		return 1
	}
	if err := b.report.WriteFile(c.out); err != nil {
		fmt.Fprintln(os.Stderr, "bench/monitor: --out:", err)
		return 1
	}
	if b.hard || (b.failed && c.strict) {
		return 1
	}
	return 0
}

func (b *bench) build() error {
	root, bins, err := gobuild.Build(b.tmp, "./cmd/lightsout")
	if err != nil {
		return err
	}
	b.root, b.lsBin = root, bins[0]
	// The server subcommand must exist.
	help, _ := exec.Command(b.lsBin, "server", "--help").CombinedOutput()
	if !strings.Contains(string(help), "--interval") {
		return fmt.Errorf("this lightsout has no `server` subcommand (lightsout server --help: %s)", firstLine(string(help)))
	}
	return nil
}

func (b *bench) measure(perShard int) error {
	c := b.cfg
	ctx := context.Background()
	b.names = newFleetNames(c.count)

	// 1. The simulated fleet.
	b.pwFile = filepath.Join(b.tmp, "fleet.password")
	if _, err := fleet.WritePassword(b.pwFile); err != nil {
		return err
	}
	nShards := (c.count + perShard - 1) / perShard
	if nShards > maxShards() {
		return fmt.Errorf("%d BMCs at most %d per simulator process need %d processes; at most %d fit (raise --sim-shard-max or RLIMIT_NOFILE)", c.count, perShard, nShards, maxShards())
	}
	simStart := time.Now()
	for i, off := 0, 0; i < nShards; i++ {
		n := c.count / nShards
		if i < c.count%nShards {
			n++
		}
		s, err := startSim(b.lsBin, b.tmp, i, n, off, b.pwFile, c.redfish, c.readyTimeout)
		if err != nil {
			return err
		}
		b.mu.Lock()
		b.shards = append(b.shards, s)
		b.mu.Unlock()
		off += n
	}
	simReady := time.Since(simStart)
	var simRSS int64
	for _, s := range b.shards {
		m, _ := proc.ReadMem(s.PID)
		simRSS += m.RSS
	}
	progress.Logf("%d simulated BMCs in %d process(es), ready in %v, %.0f MiB resident", c.count, nShards, simReady.Round(time.Millisecond), float64(simRSS)/1024)
	b.header(nShards, perShard, simReady, simRSS)

	legs := []string{"ipmi"}
	if c.redfish {
		legs = []string{"redfish"}
		if c.compare {
			legs = append(legs, "ipmi")
		}
	}
	for _, proto := range legs {
		if err := b.leg(ctx, proto); err != nil {
			return err
		}
	}
	if len(b.legs) == 2 {
		b.compareLegs(b.legs[0], b.legs[1])
	}
	return nil
}

// leg measures the server checking the whole fleet over proto (ipmi or
// redfish) and reports it.
func (b *bench) leg(ctx context.Context, proto string) error {
	c := b.cfg
	b.proto, b.rows, b.notes = proto, nil, nil
	sfx := ""
	if c.redfish {
		sfx = "-" + proto
		progress.Logf("== %s ==", legName(proto))
	}

	// 2. Baseline: a server with an empty inventory.
	emptyDir := filepath.Join(b.tmp, "data-empty"+sfx)
	srv, err := startServer(b.lsBin, emptyDir, filepath.Join(b.tmp, "server-empty"+sfx), c.interval, nil, c.readyTimeout)
	if err != nil {
		return err
	}
	b.setServer(srv)
	progress.Logf("empty server: settling %v", c.settle)
	time.Sleep(c.settle)
	if !srv.Alive() {
		return fmt.Errorf("the empty server exited (%s): %s", srv.ExitStatus(), srv.StderrTail())
	}
	cpuE0, _ := proc.CPUSeconds(srv.PID)
	time.Sleep(5 * time.Second)
	cpuE1, _ := proc.CPUSeconds(srv.PID)
	memEmpty, err := proc.ReadMem(srv.PID)
	if err != nil {
		return err
	}
	metEmpty, errMetEmpty := srv.scrape()
	srv.stop(30 * time.Second)
	b.setServer(nil)
	progress.Logf("empty server: RSS %.1f MiB, idle CPU %.1f%%", float64(memEmpty.RSS)/1024, (cpuE1-cpuE0)/5*100)

	// 3. The inventory, imported before the server starts on it.
	inv, err := mergeInventories(b.shards, b.names, b.pwFile, proto, filepath.Join(b.tmp, "fleet"+sfx+".yaml"))
	if err != nil {
		return err
	}
	dataDir := filepath.Join(b.tmp, "data"+sfx)
	progress.Logf("importing %d machines into %s", len(inv.Machines), dataDir)
	importTime, err := importInventory(ctx, dataDir, inv)
	if err != nil {
		return err
	}
	progress.Logf("imported in %v", importTime.Round(time.Millisecond))
	inv = nil
	var seedTime time.Duration
	if !c.fresh {
		progress.Logf("storing every channel's state as Connectable and its learned BMC profile (a restart on an established fleet; --fresh skips this)")
		if proto == "redfish" {
			progress.Logf("and every Redfish BMC's certificate pin")
		}
		t := time.Now()
		n, err := seedStates(ctx, dataDir, b.shards, b.names, proto)
		if err != nil {
			return fmt.Errorf("seeding channel states: %v", err)
		}
		seedTime = time.Since(t)
		progress.Logf("%d channel states stored in %v", n, seedTime.Round(time.Millisecond))
	}
	dbSize, dbFiles := dataDirSize(dataDir)

	// 4. The server on the full inventory.
	var env []string
	prof := c.profile
	if prof != "" {
		if sfx != "" { // one profile per leg
			ext := filepath.Ext(prof)
			prof = strings.TrimSuffix(prof, ext) + sfx + ext
		}
		env = append(env, "LIGHTSOUT_CPUPROFILE="+prof)
	}
	srv, err = startServer(b.lsBin, dataDir, filepath.Join(b.tmp, "server"+sfx), c.interval, env, c.readyTimeout)
	if err != nil {
		return err
	}
	b.setServer(srv)
	startCPU, _ := proc.CPUSeconds(srv.PID)
	memStart, _ := proc.ReadMem(srv.PID)
	minEnd := srv.ready.Add(c.warmup)
	maxEnd := srv.ready.Add(max(c.maxWarmup, c.warmup))
	progress.Logf("warm-up at least %v (at most %v, until the monitor is steady), then a %v window", c.warmup, max(c.maxWarmup, c.warmup), c.window)

	smp := &sampler{srv: srv, shards: b.shards}
	prev, err := smp.take()
	if err != nil {
		return err
	}
	var slices []slice
	good := 0
	steadyAt := time.Duration(-1)
	for {
		time.Sleep(c.sample)
		tk, err := smp.take()
		if err != nil {
			return err
		}
		sl := makeSlice(prev, tk, srv.ready)
		slices = append(slices, sl)
		prev = tk
		progress.Logf("warm-up %s", sl)
		if sl.logLast != "" {
			progress.Logf("  server logged: %s", trimTo(sl.logLast, 200))
		}
		if sl.steady() {
			good++
		} else {
			good = 0
		}
		if tk.at.Before(minEnd) {
			continue
		}
		if tk.met == nil { // no /metrics: the fixed warm-up only
			break
		}
		if good >= 2 {
			steadyAt = tk.at.Sub(srv.ready)
			break
		}
		if !tk.at.Before(maxEnd) {
			b.note(fmt.Sprintf("The monitor was not steady after the longest warm-up (--max-warmup %v): the window was measured anyway. See the timeline.", c.maxWarmup))
			b.failed = true
			break
		}
	}
	// The window: from the last warm-up tick, sampled every --sample (one
	// /metrics scrape each, as Prometheus would).
	first := prev
	m0, errM0 := first.met, first.metErr
	var sim0, sim1 fleet.Totals
	var errSim0, errSim1 error
	if errM0 != nil {
		progress.Logf("no /metrics (%v): counting checks from the simulator's counters instead", errM0)
		sim0, errSim0 = totals(b.shards)
	}
	var rf0, rf1 fleet.RedfishCounters
	var errRF0, errRF1 error
	if proto == "redfish" {
		rf0, errRF0 = redfishTotals(b.shards)
	}
	simCPU0 := first.simCPU
	winEnd := first.at.Add(c.window)
	progress.Logf("window: %v from %s", c.window, first.at.Format("15:04:05"))
	winFrom := len(slices)
	winTicks := []tick{first}
	for time.Until(winEnd) > 0 {
		time.Sleep(min(c.sample, time.Until(winEnd)))
		tk, err := smp.take()
		if err != nil {
			return err
		}
		sl := makeSlice(prev, tk, srv.ready)
		sl.inWindow = true
		slices = append(slices, sl)
		winTicks = append(winTicks, tk)
		prev = tk
		progress.Logf("window  %s", sl)
		if sl.logLast != "" {
			progress.Logf("  server logged: %s", trimTo(sl.logLast, 200))
		}
	}
	last := prev
	simCPU1 := last.simCPU
	m1, errM1 := last.met, last.metErr
	if errM0 != nil {
		sim1, errSim1 = totals(b.shards)
	}
	if proto == "redfish" {
		rf1, errRF1 = redfishTotals(b.shards)
	}
	t0, t1 := first.at, last.at
	cpu0, cpu1 := first.cpu, last.cpu
	memEnd := last.mem
	winSlices := slices[winFrom:]
	winLogErrs := 0
	for _, sl := range winSlices {
		winLogErrs += sl.logErrs
	}

	// 5. Stop the server (it closes its sessions), then audit the fleet.
	// The requests in flight are counted before the stop too: a stop
	// cancels the checks in flight, and a cancelled request must not let
	// the next one (the check's Close Session) join it at the BMC.
	preStop, errPre := audit(b.shards, b.names.global, proto == "redfish")
	stopTime := srv.stop(60 * time.Second)
	exitStatus := srv.ExitStatus()
	b.setServer(nil)
	progress.Logf("server stopped in %v (%s); reading every BMC's counters", stopTime.Round(time.Millisecond), exitStatus)
	aud, err := audit(b.shards, b.names.global, proto == "redfish")
	if err != nil {
		return err
	}

	// 6. Report.
	if c.redfish {
		b.emit("\n# %s\n", legName(proto))
	}
	window := t1.Sub(t0).Seconds()
	cpuShare := (cpu1 - cpu0) / window
	b.target("server CPU over the window, share of one core", fmt.Sprintf("**%.1f%%** (%.2f s CPU in %.0f s)", cpuShare*100, cpu1-cpu0, window),
		fmt.Sprintf("≤ %.0f%%", targetCPUShare*100), cpuShare <= targetCPUShare, false)
	lo, hi := sliceShares(winSlices)
	b.info(fmt.Sprintf("  %v slices of the window: lowest / highest", c.sample), fmt.Sprintf("%.1f%% / %.1f%%", lo*100, hi*100))
	if steadyAt >= 0 {
		b.info("warm-up: ready to steady (every channel declared, no store errors logged, checks on time)", steadyAt.Round(time.Second).String())
	}
	b.info("server CPU from start to the window (load, first checks, declarations)", fmt.Sprintf("%.1f s in %.0f s (%.1f%%)", cpu0-startCPU, t0.Sub(srv.Started).Seconds(), (cpu0-startCPU)/t0.Sub(srv.Started).Seconds()*100))
	b.target("problems the server logged in the window (ERROR/WARN: failed store writes and the like)", fmt.Sprintf("%d", winLogErrs), "0", winLogErrs == 0, false)

	// Memory: the window's highest VmRSS sample (the Go heap saw-tooths
	// between GC cycles), against the empty server's.
	n := float64(c.count)
	peak := winTicks[0]
	var rssSum float64
	for _, t := range winTicks {
		rssSum += float64(t.mem.RSS)
		if t.mem.RSS > peak.mem.RSS {
			peak = t
		}
	}
	rssMean := rssSum / float64(len(winTicks))
	dRSS := float64(peak.mem.RSS - memEmpty.RSS) // KiB
	perChan := dRSS / n
	goRes := func(m metrics) (float64, bool) {
		sys, ok1 := m.get("go_memstats_sys_bytes")
		rel, ok2 := m.get("go_memstats_heap_released_bytes")
		return (sys - rel) / 1024, ok1 && ok2
	}
	b.info("RSS, empty inventory (after "+c.settle.String()+")", fmt.Sprintf("%.1f MiB", float64(memEmpty.RSS)/1024))
	b.info(fmt.Sprintf("RSS, %d channels, in the window (VmRSS every %v): mean / highest", c.count, c.sample),
		fmt.Sprintf("%.1f / %.1f MiB (%.2f / %.2f KiB per channel over the empty server)", rssMean/1024, float64(peak.mem.RSS)/1024,
			(rssMean-float64(memEmpty.RSS))/n, perChan))
	b.info("peak RSS of the whole run (VmHWM)", fmt.Sprintf("%.1f MiB (%.2f KiB per channel over the empty server)", float64(memEnd.HWM)/1024, float64(memEnd.HWM-memEmpty.RSS)/n))
	gE, okE := goRes(metEmpty)
	gF, okF := goRes(peak.met)
	if errMetEmpty == nil && peak.met != nil && okE && okF {
		dGo := gF - gE
		dOther := dRSS - dGo
		b.memRow("RSS per channel beyond the store's own, at the window's highest RSS: growth of the Go runtime's memory (heap, stacks, runtime) ÷ N", fmt.Sprintf("**%.2f KiB**", dGo/n), dGo/n)
		b.info("  the rest of the growth: outside the Go runtime (SQLite page cache and C heap, mapped files)", fmt.Sprintf("%.1f MiB (%.2f KiB per channel)", dOther/1024, dOther/n))
		hi, ok1 := peak.met.get("go_memstats_heap_inuse_bytes")
		lo, ok2 := metEmpty.get("go_memstats_heap_inuse_bytes")
		al, ok3 := peak.met.get("go_memstats_heap_alloc_bytes")
		if ok1 && ok2 && ok3 {
			b.info("  Go heap in use then, empty → full; of it allocated (live + not yet collected)", fmt.Sprintf("%.1f → %.1f MiB (%.2f KiB per channel); %.1f MiB", lo/(1<<20), hi/(1<<20), (hi-lo)/1024/n, al/(1<<20)))
		}
	} else {
		b.memRow("RSS per channel: (highest RSS in the window − RSS_empty) ÷ N (store included: no /metrics to tell them apart)", fmt.Sprintf("**%.2f KiB**", perChan), perChan)
	}
	b.info("  RssAnon / RssFile / RssShmem at the end", fmt.Sprintf("%.1f / %.1f / %.1f MiB (empty: %.1f / %.1f / %.1f)",
		float64(memEnd.RssAnon)/1024, float64(memEnd.RssFile)/1024, float64(memEnd.RssShmem)/1024,
		float64(memEmpty.RssAnon)/1024, float64(memEmpty.RssFile)/1024, float64(memEmpty.RssShmem)/1024))
	b.info("server threads, file descriptors at the end", fmt.Sprintf("%d, %d (%.3f per BMC)", memEnd.Threads, memEnd.FDs, float64(memEnd.FDs)/n))
	res := legResult{proto: proto, cpuShare: cpuShare, fds: memEnd.FDs, kibPerChan: perChan}
	if gE, okE := goRes(metEmpty); errMetEmpty == nil && peak.met != nil && okE {
		if gF, okF := goRes(peak.met); okF {
			res.goKiBPerChan, res.goOK = (gF-gE)/n, true
		}
	}

	// Checks and latency.
	expected := n * window / c.interval.Seconds()
	if errM0 == nil && errM1 == nil {
		c0, c1 := m0.byLabel("lightsout_checks_total", "state"), m1.byLabel("lightsout_checks_total", "state")
		var total float64
		var parts []string
		keys := make([]string, 0, len(c1))
		for k := range c1 {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			d := c1[k] - c0[k]
			total += d
			if d > 0 {
				parts = append(parts, fmt.Sprintf("%s %.0f", k, d))
			}
		}
		b.info("checks in the window (lightsout_checks_total)", fmt.Sprintf("%.0f (%.0f/s; N × window ÷ interval = %.0f)", total, total/window, expected))
		res.checks = total
		if total > 0 {
			b.info("server CPU per check (window CPU ÷ checks)", fmt.Sprintf("**%.0f µs**", (cpu1-cpu0)/total*1e6))
		}
		if len(parts) > 0 {
			b.info("  by observed state", strings.Join(parts, ", "))
		}
		h0, ok0 := m0.histogram("lightsout_check_duration_seconds")
		h1, ok1 := m1.histogram("lightsout_check_duration_seconds")
		if ok0 && ok1 {
			d := h1.sub(h0)
			b.info("check latency p50 / p90 / p99 (window)", fmtQuantiles(d)+fmt.Sprintf("; mean %.1f ms", d.sum/d.count*1000))
		} else {
			b.info("check latency", "no lightsout_check_duration_seconds in /metrics")
		}
		l0, ok0 := m0.histogram("lightsout_monitor_lag_seconds")
		l1, ok1 := m1.histogram("lightsout_monitor_lag_seconds")
		if ok0 && ok1 {
			b.info("monitor lag (check start − due time) p50 / p90 / p99", fmtQuantiles(l1.sub(l0)))
		}
		st := m1.byLabel("lightsout_channels", "state")
		var sp []string
		notConn := 0.0
		for _, k := range []string{"Connectable", "NotResponding", "NotAuthenticated", "Invalid", "Unknown"} {
			if st[k] > 0 {
				sp = append(sp, fmt.Sprintf("%s %.0f", k, st[k]))
			}
			if k != "Connectable" {
				notConn += st[k]
			}
		}
		b.target("channels by declared state at the end (lightsout_channels)", strings.Join(sp, ", "), "all Connectable",
			st["Connectable"] == n && notConn == 0, false)
		p0 := m0.byLabel("lightsout_ipmi_packets_total", "kind")
		p1 := m1.byLabel("lightsout_ipmi_packets_total", "kind")
		if proto == "redfish" {
			if errRF0 == nil && errRF1 == nil {
				b.info("Redfish requests and session logins the simulator served in the window", fmt.Sprintf("%d (%.1f per check); %d logins",
					rf1.Requests-rf0.Requests, float64(rf1.Requests-rf0.Requests)/math.Max(total, 1), rf1.SessionsOpened-rf0.SessionsOpened))
			} else {
				b.note(fmt.Sprintf("The simulator's Redfish counters could not be read: %v", errors.Join(errRF0, errRF1)))
			}
		} else {
			b.info("IPMI datagrams in the window: sent / received / retransmitted", fmt.Sprintf("%.0f / %.0f / %.0f (%.1f sent per check)",
				p1["sent"]-p0["sent"], p1["received"]-p0["received"], p1["retransmitted"]-p0["retransmitted"], (p1["sent"]-p0["sent"])/math.Max(total, 1)))
		}
	} else {
		why := errM0
		if why == nil {
			why = errM1
		}
		b.note(fmt.Sprintf("/metrics could not be read (%v): checks are counted from the simulator's counters, and check latency and the channels' states are not available.", why))
		if errSim0 == nil && errSim1 == nil {
			d := sim1.SessionsOpened - sim0.SessionsOpened
			b.info("checks in the window (sessions the simulator saw opened)", fmt.Sprintf("%d (%.0f/s; N × window ÷ interval = %.0f)", d, float64(d)/window, expected))
		}
	}
	b.info("simulator CPU in the window (all shards, CPU "+simCPU+")", fmt.Sprintf("%.1f s (%.1f%% of one core)", simCPU1-simCPU0, (simCPU1-simCPU0)/window*100))
	otherShare := math.Max(0, (last.busy-first.busy)/window-cpuShare-(simCPU1-simCPU0)/window)
	b.info("other CPU use on the machine in the window (other processes, this bench, interrupts)", fmt.Sprintf("%.1f%% of one core", otherShare*100))
	if otherShare > 0.2 {
		b.note(fmt.Sprintf("Other processes used %.0f%% of a core during the window: the machine was not quiet, and the figures are disturbed (see the timeline's other CPU column).", otherShare*100))
	}

	// The fleet's view.
	checkedBy := "sessions opened ≥ 1"
	if proto == "redfish" {
		checkedBy = "Redfish requests ≥ 1; the session rows below count Redfish sessions"
	}
	b.target("BMCs checked at least once (simulator: "+checkedBy+")", fmt.Sprintf("%d/%d", aud.Checked, aud.BMCs), "all", aud.Checked == c.count && aud.BMCs == c.count, false)
	if len(aud.Unchecked) > 0 {
		b.note("never checked: " + someNames(aud.Unchecked, 10))
	}
	b.target("most sessions from us open at once on any BMC (max_sessions_per_client)", fmt.Sprintf("**%d**", aud.MaxPerClient), "≤ 1", aud.MaxPerClient <= 1, true)
	if len(aud.OverPerClient) > 0 {
		b.note("BMCs that saw two or more concurrent sessions from us: " + someNames(aud.OverPerClient, 10))
	}
	b.target("most sessions open at once on any BMC (max_sessions_open; only we use the simulator)", fmt.Sprintf("%d", aud.MaxOpen), "≤ 1", aud.MaxOpen <= 1, true)
	if len(aud.OverOpen) > 0 {
		b.note("BMCs that saw two or more concurrent sessions: " + someNames(aud.OverOpen, 10))
	}
	b.target("sessions still open after the server stopped", fmt.Sprintf("%d", aud.Totals.SessionsOpen), "0", aud.Totals.SessionsOpen == 0, true)
	if len(aud.StillOpen) > 0 {
		b.note("BMCs with a session left open: " + someNames(aud.StillOpen, 10))
	}
	if proto != "redfish" { // the simulator counts IPMI requests in flight only
		b.target("most distinct requests in flight at once on any BMC (max_in_flight)", fmt.Sprintf("%d", aud.MaxInFlight), "≤ 1", aud.MaxInFlight <= 1, false)
	}
	if errPre == nil && len(preStop.OverInFlight) != len(aud.OverInFlight) {
		b.note(fmt.Sprintf("Read just before the server stopped, %d BMCs had seen two requests in flight at once; after, %d: the difference came from the stop (it cancels the checks in flight).", len(preStop.OverInFlight), len(aud.OverInFlight)))
	}
	if len(aud.OverInFlight) > 0 {
		b.note(fmt.Sprintf("%d BMCs saw two or more distinct requests in flight at once (max_in_flight counts the copies of a retransmitted request once: a second request is another message, not a copy): %s", len(aud.OverInFlight), someNames(aud.OverInFlight, 10)))
	}
	t := aud.Totals
	b.info("whole run, simulator: sessions opened / closed / refused; auth attempts / failures", fmt.Sprintf("%d / %d / %d; %d / %d",
		t.SessionsOpened, t.SessionsClosed, t.SessionsRefused, t.AuthAttempts, t.AuthFailures))
	if len(aud.WithAuthFailures) > 0 {
		// The security audit's guesses (null user, vendor default
		// credentials) are refused authentications by design: a healthy
		// fleet shows them wherever an audit ran, and no check's.
		audits := "no /metrics at the end of the window"
		if m1 != nil {
			if n, ok := m1.get("lightsout_security_audits_total"); ok {
				audits = fmt.Sprintf("%.0f security audits run by the end of the window", n)
			}
		}
		b.note(fmt.Sprintf("BMCs that refused an authentication (the simulator counts every RAKP 2 or RAKP 4 with an error status: the security audit's guesses — null user, vendor default credentials, 3 per audit — are refused by design, and a retransmitted RAKP 1 or RAKP 3 the BMC had already answered draws an error reply that no check takes as its verdict; %s; none of these is a refused session, which counts Open Session status 0x01): %s", audits, someNames(aud.WithAuthFailures, 10)))
	}
	if len(aud.WithRefusedSession) > 0 {
		b.note("BMCs that refused a session for want of a slot: " + someNames(aud.WithRefusedSession, 10))
	}
	b.info("server start to ready (opens the store, loads every channel)", fmt.Sprintf("%v (RSS %.1f MiB then)", srv.ready.Sub(srv.Started).Round(time.Millisecond), float64(memStart.RSS)/1024))
	b.info("server stop (SIGTERM to exit)", fmt.Sprintf("%v, %s", stopTime.Round(time.Millisecond), exitStatus))
	b.info("import of the inventory (manager.Import, before the server starts)", fmt.Sprintf("%v; data directory %.1f MiB (%s)", importTime.Round(time.Millisecond), float64(dbSize)/(1<<20), dbFiles))
	if !c.fresh {
		b.info("channel states and learned BMC profiles stored before the server starts (store.SaveState and SaveProfile, one transaction each)", seedTime.Round(time.Millisecond).String())
	}

	res.ok = !b.failed
	b.legs = append(b.legs, res)
	b.emit("\n## Results\n\n")
	b.emit("%s", markdown.Table([]string{"figure", "value", "target", "result"}, b.rows, []bool{false, true, false, false}))
	if len(b.notes) > 0 {
		b.emit("\n")
		for i, n := range b.notes {
			b.emit("%d. %s\n", i+1, n)
		}
	}
	b.emit("\nRSS per channel: the highest of the server's VmRSS samples in the window minus an empty server's VmRSS (fresh data directory, after %v), ÷ N. "+
		"It includes the monitor's per-channel state, the IPMI engine's per-BMC state, the store's SQLite page cache and C heap (outside the Go heap), "+
		"and whatever the Go heap holds above its live data (the server collects at GOGC=50 unless GOGC is set; `go test ./internal/server -run '^$' -bench ServerLiveBytes -benchtime 1x -v` lists the live data by owner). The target row counts only the growth of the Go runtime's memory "+
		"(go_memstats_sys_bytes − go_memstats_heap_released_bytes from /metrics); the rest of the growth is outside the Go runtime: the store's own.\n", c.settle)
	b.emit("\n## Timeline\n\nEvery %v, from the server's ready line: its CPU (share of one core) and RSS; from /metrics the checks, observations other than Connectable, IPMI retransmissions, the share of checks that started more than 1 s after they fell due (lightsout_monitor_lag_seconds), check latency, channels never declared (Unknown); and ERROR/WARN lines in the server's log.\n\n", c.sample)
	b.emit("%s", markdown.Table(timelineHeader, timelineRows(slices), timelineRight))
	if c.profile != "" {
		b.emit("\nCPU profile of the server's whole run (start to SIGTERM, warm-up included): `%s` — `go tool pprof -top %s %s`\n", c.profile, b.lsBin, c.profile)
	}
	b.emit("\n## Targets\n\n")
	for _, r := range b.rows {
		if r[3] != "" {
			b.emit("    %-4s  %s: %s (target %s)\n", strings.ReplaceAll(r[3], "*", ""), strings.TrimSpace(r[0]), strings.ReplaceAll(r[1], "*", ""), r[2])
		}
	}
	return nil
}

func (b *bench) setServer(s *serverProc) {
	b.mu.Lock()
	b.server = s
	b.mu.Unlock()
}

func (b *bench) info(what, value string) {
	b.rows = append(b.rows, []string{what, value, "", ""})
}

// target adds a row with a PASS/FAIL; hard failures make the run fail
// without --strict.
func (b *bench) target(what, value, target string, ok, hard bool) {
	res := "PASS"
	if !ok {
		res = "**FAIL**"
		b.failed = true
		if hard {
			b.hard = true
		}
	}
	b.rows = append(b.rows, []string{what, value, target, res})
}

func (b *bench) note(s string) { b.notes = append(b.notes, s) }

// memRow is the memory per channel: a target for IPMI; reported only for
// Redfish (a kept-alive TLS connection per BMC has no target of its own).
func (b *bench) memRow(what, value string, kib float64) {
	if b.proto == "redfish" {
		b.info(what, value)
		return
	}
	b.target(what, value, fmt.Sprintf("≤ %.0f KiB", targetKiBPerChan), kib <= targetKiBPerChan, false)
}

// sliceShares is the lowest and highest CPU share over the sampling
// periods of the window.
func sliceShares(s []slice) (lo, hi float64) {
	lo = math.Inf(1)
	for _, x := range s {
		if x.secs < 1 {
			continue
		}
		lo, hi = math.Min(lo, x.cpuShare), math.Max(hi, x.cpuShare)
	}
	if math.IsInf(lo, 1) {
		lo = 0
	}
	return lo, hi
}

func trimTo(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func fmtQuantiles(h histogram) string {
	var parts []string
	for _, q := range []float64{.5, .9, .99} {
		v, lo, hi := h.quantile(q)
		if math.IsNaN(v) {
			return "no observations"
		}
		if math.IsInf(hi, 1) {
			parts = append(parts, fmt.Sprintf("> %s", fmtSec(lo)))
			continue
		}
		parts = append(parts, fmtSec(v))
		_ = lo
	}
	return strings.Join(parts, " / ") + " (interpolated in the histogram's buckets)"
}

func fmtSec(s float64) string {
	switch {
	case s < 0.001:
		return fmt.Sprintf("%.2f ms", s*1000)
	case s < 1:
		return fmt.Sprintf("%.1f ms", s*1000)
	}
	return fmt.Sprintf("%.2f s", s)
}

func (b *bench) header(nShards, perShard int, simReady time.Duration, simRSS int64) {
	c := b.cfg
	b.emit("# lightsout monitor benchmark\n\n")
	b.emit("- command: `%s`\n", commandLine())
	b.emit("- date: %s\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	cpu := ""
	if m := proc.CPUModel(); m != "" {
		cpu = ", " + m
	}
	_, kernel, _, _ := proc.Uname()
	b.emit("- machine: %d CPUs%s; kernel %s; %s; RLIMIT_NOFILE %d\n", runtime.NumCPU(), cpu, kernel, runtime.Version(), b.nofile)
	b.emit("- lightsout: %s\n", gobuild.Describe(b.lsBin, b.root, false))
	b.emit("- fleet: %d simulated BMCs (`lightsout sim`), all healthy, in %d process(es) of at most %d (one UDP socket per BMC; RLIMIT_NOFILE %d), addresses 127.%d.0.1 upwards, one 127.x.0.0/16 per process; ready in %v, %.0f MiB resident in all\n",
		c.count, nShards, perShard, b.nofile, firstOctet, simReady.Round(100*time.Millisecond), float64(simRSS)/1024)
	if c.redfish {
		b.emit("- Redfish (--redfish): every BMC also serves Redfish over HTTPS on its address, port 443 (`lightsout sim --redfish`: a self-signed ECDSA P-256 certificate, a SessionService, one listener and connection per BMC, so at most %d BMCs per simulator process); the server checks the fleet over Redfish (one kept session and at most one kept-alive connection per BMC, at most %d idle connections in all or half the server's RLIMIT_NOFILE, TLS sessions resumed: docs/redfish.md)", perShard, maxIdleRedfishConns)
		if c.compare {
			b.emit(", then the same fleet over IPMI on a fresh server, and the ratios")
		}
		b.emit("\n")
	}
	if pin.On {
		b.emit("- CPU pinning: simulator on CPU %s, server on CPU %s (taskset; the server's Go runtime sees one CPU)\n", simCPU, serverCPU)
	} else {
		b.emit("- no CPU pinning: simulator and server share every CPU\n")
	}
	b.emit("- server: `lightsout server --data DIR --listen 127.0.0.1:0 --interval %v` (SQLite in DIR; the inventory imported with manager.Import before it starts; other flags default)\n", c.interval)
	if c.fresh {
		b.emit("- start (--fresh): the server starts on the fresh import, every channel Unknown; each channel's first check declares it Connectable and writes a transition and an event (two store transactions)\n")
	} else {
		b.emit("- start: as after a restart on an established fleet: before the server starts, every channel's state is stored as the monitor would declare it (Connectable, the simulator's power state and System GUID; with --redfish also each BMC's certificate pin and learned authentication), so its checks find nothing new and write nothing; `--fresh` measures the fresh import instead\n")
	}
	b.emit("- warm-up: at least %v from the server's ready line (the first checks are spread over one interval; each channel's first check declares it, a store write), and until two %v samples in a row are steady (no channel Unknown, no ERROR/WARN in the server's log, < 1%% of checks started > 1 s late; at most %v); then a %v window. /metrics is scraped every %v throughout, as Prometheus would\n",
		c.warmup, c.sample, max(c.maxWarmup, c.warmup), c.window, c.sample)
}

// commandLine is how this run was started, as a go run command line.
func commandLine() string {
	args := []string{"go", "run", "./bench/monitor"}
	for _, a := range os.Args[1:] {
		if strings.ContainsAny(a, " \t'\"$`\\") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		args = append(args, a)
	}
	return strings.Join(args, " ")
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

func fatalf(code int, format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench/monitor: "+format+"\n", args...)
	os.Exit(code)
}
