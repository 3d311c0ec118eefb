// Command check benchmarks `lightsout check` against its peers on a
// simulated fleet: FreeIPMI's ipmipower and bmc-info, and a go-ipmi
// baseline (bench/check/goipmi). For each fleet size it starts
// `lightsout sim` as a separate process (one loopback address per BMC on
// port 623, so it needs root), runs every client once, one after another,
// and measures wall time, CPU time (user+sys, from the child's rusage) and
// peak RSS. A fault run checks that lightsout classifies a fleet with
// silent and wrong-password BMCs within its timeout.
//
//	sudo go run ./bench/check --sizes 1000,10000 --out bench/results.md
//
// See bench/README.md.
package main

import (
	"debug/buildinfo"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	simfleet "github.com/lightsout/lightsout/bench/internal/fleet"
	"github.com/lightsout/lightsout/bench/internal/gobuild"
	"github.com/lightsout/lightsout/bench/internal/markdown"
	"github.com/lightsout/lightsout/bench/internal/proc"
	"github.com/lightsout/lightsout/bench/internal/progress"
	"github.com/lightsout/lightsout/bench/internal/scratch"
)

type config struct {
	sizes        []int
	out          string
	faultRun     bool
	quirkRun     bool
	faultTimeout time.Duration
	strict       bool
	parallel     int
	rfTimeout    time.Duration // lightsout check --timeout for the Redfish row (0: check's default)
	fanout       int
	procTimeout  time.Duration
	readyTimeout time.Duration
	settle       time.Duration
	repeat       int
	smoke        int
	warmup       bool
	keep         bool
	ippPerProc   int
	redfish      bool   // the Redfish row: fleets start with Redfish too
	peer         string // "" (lightsout sim) or "ipmi_sim": who serves the BMCs
}

func main() {
	var c config
	sizes := flag.String("sizes", "1000,10000", "fleet sizes to measure, comma-separated")
	flag.StringVar(&c.out, "out", "", "also write the report as Markdown to this file")
	flag.BoolVar(&c.faultRun, "fault-run", true, "at the largest size, run a fleet with 10% silent and 10% wrong_password BMCs")
	flag.DurationVar(&c.faultTimeout, "fault-timeout", 3*time.Second, "lightsout check --timeout in the fault run")
	flag.BoolVar(&c.quirkRun, "quirk-run", true, "at the largest size, run a fleet where every third BMC carries a vendor quirk (no_ping, suite3_only, opensess_0x01; docs/interop.md)")
	flag.BoolVar(&c.strict, "strict", false, "exit 1 when a target is missed")
	flag.IntVar(&c.parallel, "parallel", 10000, "lightsout check --parallel")
	flag.DurationVar(&c.rfTimeout, "redfish-timeout", 0, "lightsout check --timeout for the Redfish row and its warm-up (0: check's default); on a loaded machine the simulator, one process serving every BMC's TLS handshakes, may not serve 1,000 of them within the default")
	flag.BoolVar(&pin.On, "pin", runtime.NumCPU() >= 2, "pin the simulator to CPU 0 and every client to CPU 1 (taskset), so clients are measured on one core each and the simulator does not compete with them; --pin=false measures client and simulator sharing all CPUs")
	flag.IntVar(&c.fanout, "fanout", 1024, "bmc-info -F (FreeIPMI's maximum is 1024)")
	flag.DurationVar(&c.procTimeout, "proc-timeout", 10*time.Minute, "kill a client still running after this long")
	flag.DurationVar(&c.readyTimeout, "ready-timeout", 60*time.Second, "how long to wait for the simulator's ready line")
	flag.DurationVar(&c.settle, "settle", 2*time.Second, "pause between runs, so the simulator is idle when the next client starts")
	flag.IntVar(&c.repeat, "repeat", 1, "runs per client and size; the run with the median wall time is reported")
	flag.IntVar(&c.smoke, "smoke", 100, "first check every client against a fleet of this many BMCs (0: skip)")
	flag.BoolVar(&c.warmup, "warmup", true, "before the timed runs of a size, one untimed lightsout check pass over the fleet")
	flag.BoolVar(&c.keep, "keep", false, "keep the scratch directory (outputs of every run)")
	noRedfish := flag.Bool("no-redfish", false, "skip the Redfish row (lightsout check over Redfish; the fleets then serve IPMI only)")
	flag.StringVar(&c.peer, "bmcs", "lightsout-sim", "who serves the BMCs: lightsout-sim (our simulator, one process) or ipmi_sim (one OpenIPMI ipmi_sim process per BMC on 127.2.x.y:623: a server nobody here wrote; no Redfish row, no fault run, no session counters)")
	flag.IntVar(&c.ippPerProc, "ipmipower-hosts-per-process", 0, "split ipmipower's hosts over concurrent processes of at most this many (0: as many as RLIMIT_NOFILE allows, 2 sockets per host)")
	flag.Parse()
	if flag.NArg() > 0 {
		fatalf(2, "unexpected arguments: %q", flag.Args())
	}
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fatalf(2, "--sizes: %q is not a positive number", s)
		}
		c.sizes = append(c.sizes, n)
	}
	sort.Ints(c.sizes)
	c.redfish = !*noRedfish
	switch c.peer {
	case "lightsout-sim":
		c.peer = ""
	case "ipmi_sim":
		c.redfish, c.faultRun = false, false
	default:
		fatalf(2, "--bmcs: %q is neither lightsout-sim nor ipmi_sim", c.peer)
	}
	if c.repeat < 1 || c.parallel < 1 || c.fanout < 1 {
		fatalf(2, "--repeat, --parallel and --fanout must be at least 1")
	}

	b := &bench{cfg: c}
	proc.RunAndExit(b.run, b.cleanup)
}

type bench struct {
	cfg     config
	tmp     string
	root    string // module root
	lsBin   string
	goBin   string
	report  markdown.Report
	env     envInfo
	targets []string
	failed  bool
	cleanMu sync.Once
	sim     server
	simMu   sync.Mutex
}

type envInfo struct {
	nproc      int
	cpu        string
	kernel     string
	goVersion  string
	nofile     string
	lsVersion  string
	goipmiVer  string
	ipmipower  string // path, "" if missing
	bmcInfo    string
	ippVersion string
	biVersion  string
	ippDriver  string // FreeIPMI's default driver as observed
}

func (b *bench) cleanup() {
	b.cleanMu.Do(func() {
		b.simMu.Lock()
		s := b.sim
		b.simMu.Unlock()
		if s != nil {
			s.Stop()
		}
		// Kill whatever is still running; from now on nothing new starts.
		running.Shutdown()
		scratch.Remove(b.tmp, b.cfg.keep)
	})
}

func (b *bench) setSim(s server) {
	b.simMu.Lock()
	b.sim = s
	b.simMu.Unlock()
}

// emit prints a report section and keeps it for --out.
func (b *bench) emit(format string, args ...any) {
	b.report.Printf(format, args...)
}

func (b *bench) run() int {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "bench/check needs root: the simulated fleet binds one loopback address per BMC on port 623 (127.9.x.y:623), and ports below 1024 need root.\nRun it as: sudo go run ./bench/check --sizes 1000,10000 --out bench/results.md")
		return 2
	}
	if _, err := proc.RaiseNofile(0); err != nil {
		progress.Logf("warning: raising RLIMIT_NOFILE: %v", err)
	}
	var err error
	if b.tmp, err = scratch.New("lightsout-bench-"); err != nil {
		fatalf(1, "%v", err)
	}
	if err := b.build(); err != nil {
		fmt.Fprintln(os.Stderr, "bench/check:", err)
		return 1
	}
	b.probeEnv()
	b.header()

	if b.cfg.smoke > 0 {
		if err := b.smokeTest(b.cfg.smoke); err != nil {
			fmt.Fprintln(os.Stderr, "bench/check:", err)
			return 1
		}
	}
	var last *sizeResult
	for _, n := range b.cfg.sizes {
		r, err := b.measureSize(n)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench/check:", err)
			return 1
		}
		last = r
	}
	if last != nil {
		b.sizeTargets(last)
	}
	if b.cfg.faultRun {
		if err := b.faultRunAt(b.cfg.sizes[len(b.cfg.sizes)-1]); err != nil {
			fmt.Fprintln(os.Stderr, "bench/check:", err)
			return 1
		}
	}
	if b.cfg.quirkRun {
		var base *row
		if last != nil {
			base = last.get("lightsout")
		}
		if err := b.quirkRunAt(b.cfg.sizes[len(b.cfg.sizes)-1], base); err != nil {
			fmt.Fprintln(os.Stderr, "bench/check:", err)
			return 1
		}
	}
	b.emit("\n## Targets\n\n")
	for _, t := range b.targets {
		b.emit("    %s\n", t)
	}
	if err := b.report.WriteFile(b.cfg.out); err != nil {
		fmt.Fprintln(os.Stderr, "bench/check: --out:", err)
		return 1
	}
	if b.failed && b.cfg.strict {
		return 1
	}
	return 0
}

// build compiles lightsout and the go-ipmi baseline into the scratch dir.
func (b *bench) build() error {
	var bins []string
	var err error
	if b.root, bins, err = gobuild.Build(b.tmp, "./cmd/lightsout", "./bench/check/goipmi"); err != nil {
		return err
	}
	b.lsBin, b.goBin = bins[0], bins[1]
	return nil
}

func (b *bench) probeEnv() {
	e := &b.env
	e.nproc = runtime.NumCPU()
	e.cpu = proc.CPUModel()
	if sys, rel, hw, ok := proc.Uname(); ok {
		e.kernel = sys + " " + rel + " " + hw
	}
	if out, err := exec.Command("go", "env", "GOVERSION").Output(); err == nil {
		e.goVersion = strings.TrimSpace(string(out))
	}
	var rl syscall.Rlimit
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)
	e.nofile = fmt.Sprintf("%d (hard %d)", rl.Cur, rl.Max)
	e.lsVersion = gobuild.Describe(b.lsBin, b.root, true)
	e.goipmiVer = "go-ipmi (version unknown)"
	if bi, err := buildinfo.ReadFile(b.goBin); err == nil {
		for _, d := range bi.Deps {
			if d.Path == "github.com/bougou/go-ipmi" {
				e.goipmiVer = "go-ipmi " + d.Version
			}
		}
	}
	if p, err := exec.LookPath("ipmipower"); err == nil {
		e.ipmipower = p
		out, _ := runQuick([]string{p, "--version"}, childEnv(nil), 10*time.Second)
		e.ippVersion = firstLine(out)
	}
	if p, err := exec.LookPath("bmc-info"); err == nil {
		e.bmcInfo = p
		out, _ := runQuick([]string{p, "--version"}, childEnv(nil), 10*time.Second)
		e.biVersion = firstLine(out)
	}
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

func (b *bench) header() {
	e := b.env
	b.emit("# lightsout check benchmark\n\n")
	b.emit("- date: %s\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	b.emit("- machine: %d CPUs (nproc)", e.nproc)
	if e.cpu != "" {
		b.emit(", %s", e.cpu)
	}
	b.emit("; kernel %s; %s; RLIMIT_NOFILE %s\n", e.kernel, e.goVersion, e.nofile)
	if b.cfg.peer == "ipmi_sim" {
		v, _ := runQuick([]string{"dpkg-query", "-W", "-f", "${Version}", "openipmi"}, childEnv(nil), 10*time.Second)
		b.emit("- BMCs: one OpenIPMI `ipmi_sim` process per BMC (openipmi %s) on 127.2.x.y:623 — a server nobody here wrote; \"simulator\" below means these processes, and \"sim CPU s\" their CPU time summed\n", strings.TrimSpace(v))
	}
	if pin.On {
		b.emit("- CPU pinning (--pin): the simulator (a separate process or processes) runs on CPU %s, every client on CPU %s (taskset) — each client gets one core, and the simulator does not compete with it; ipmipower split over several processes shares that one core too\n", simCPU, clientCPU)
	} else {
		b.emit("- no CPU pinning: the simulator (`lightsout sim`, a separate process) shares all CPUs with the client under test, so wall times measure client + simulator\n")
	}
	b.emit("- lightsout: %s\n", e.lsVersion)
	b.emit("- goipmi baseline: bench/check/goipmi, %s (one goroutine and socket per host, cipher suite 3)\n", e.goipmiVer)
	if e.ipmipower != "" {
		b.emit("- ipmipower: %s (%s)\n", e.ippVersion, e.ipmipower)
	} else {
		b.emit("- ipmipower: not installed (rows skipped)\n")
	}
	if e.bmcInfo != "" {
		b.emit("- bmc-info: %s (%s)\n", e.biVersion, e.bmcInfo)
	} else {
		b.emit("- bmc-info: not installed (row skipped)\n")
	}
}

// childEnv is our environment without LIGHTSOUT_PASSWORD, plus extra.
func childEnv(extra []string) []string {
	return proc.Env([]string{"LIGHTSOUT_PASSWORD"}, extra...)
}

// newFleet starts a simulator of n BMCs (with an optional fleet file body)
// in a fresh scratch directory. With redfish (and no fleet file body) every
// BMC serves Redfish over HTTPS as well as IPMI (`redfish: true` in a fleet
// file, the same as `lightsout sim --redfish`); the exported inventory, which
// then lists Redfish accounts, becomes DIR/fleet-redfish.yaml, and
// DIR/fleet.yaml is the same fleet with IPMI accounts (port 623) for the
// IPMI clients.
func (b *bench) newFleet(tag string, n int, fleetYAML string, redfish bool) (server, *fleet, error) {
	dir := filepath.Join(b.tmp, tag)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, err
	}
	if b.cfg.peer == "ipmi_sim" {
		return b.newIPMISimFleet(dir, n)
	}
	if _, err := simfleet.WritePassword(filepath.Join(dir, "pw")); err != nil {
		return nil, nil, err
	}
	fleetFile := ""
	redfish = redfish && fleetYAML == ""
	noRedfish := ""
	if redfish {
		if why := redfishFits(n); why != "" {
			redfish, noRedfish = false, why
			progress.Logf("%s: no Redfish row: %s", tag, why)
		}
	}
	if redfish {
		fleetYAML = fmt.Sprintf("# lightsout bench: every BMC serves IPMI and Redfish\ncount: %d\nredfish: true\n", n)
		fleetFile = filepath.Join(dir, "sim.yaml")
		if err := os.WriteFile(fleetFile, []byte(fleetYAML), 0o600); err != nil {
			return nil, nil, err
		}
	} else if fleetYAML != "" {
		fleetFile = filepath.Join(dir, "faults.yaml")
		if err := os.WriteFile(fleetFile, []byte(fleetYAML), 0o600); err != nil {
			return nil, nil, err
		}
	}
	s, err := simfleet.Start(simfleet.Options{
		Bin: b.lsBin, Dir: dir, Count: n, BaseAddr: simBaseAddr,
		Inventory: dir + "/fleet.yaml", PasswordFile: dir + "/pw", FleetFile: fleetFile,
		CPU: pin.CPU(simCPU), Env: childEnv(nil), Procs: running, ReadyTimeout: b.cfg.readyTimeout,
	})
	if err != nil {
		return nil, nil, err
	}
	b.setSim(s)
	if redfish {
		if err := splitInventory(dir); err != nil {
			s.Stop()
			b.setSim(nil)
			return nil, nil, fmt.Errorf("the Redfish inventory: %v", err)
		}
	}
	f, err := loadFleet(dir)
	if err != nil {
		s.Stop()
		b.setSim(nil)
		return nil, nil, fmt.Errorf("reading the exported inventory: %v", err)
	}
	if redfish {
		f.RedfishInventory = filepath.Join(dir, "fleet-redfish.yaml")
	}
	f.NoRedfish = noRedfish
	if len(f.Hosts) != n {
		progress.Logf("warning: inventory lists %d BMCs, asked for %d", len(f.Hosts), n)
	}
	return s, f, nil
}

// redfishFits says why a fleet of n BMCs cannot serve Redfish here ("" when
// it can): the simulator holds a UDP socket and a TCP listener per BMC and,
// during the Redfish run, an accepted connection per host checked at once,
// and the client a connection per host, all under RLIMIT_NOFILE.
func redfishFits(n int) string {
	need := uint64(3*n + 1024)
	if have := proc.Nofile(); need > have {
		return fmt.Sprintf("at %d BMCs the simulator needs about %d file descriptors with Redfish; RLIMIT_NOFILE is %d", n, need, have)
	}
	return ""
}

// newIPMISimFleet starts n ipmi_sim processes in dir.
func (b *bench) newIPMISimFleet(dir string, n int) (server, *fleet, error) {
	bin, err := exec.LookPath("ipmi_sim")
	if err != nil {
		return nil, nil, fmt.Errorf("--bmcs ipmi_sim: ipmi_sim is not installed (Debian package openipmi)")
	}
	s, err := startIPMISimFleet(bin, dir, n, b.cfg.readyTimeout)
	if s != nil {
		b.setSim(s)
	}
	if err != nil {
		if s != nil {
			b.stopFleet(s)
		}
		return nil, nil, err
	}
	f, err := loadFleet(dir)
	if err != nil {
		b.stopFleet(s)
		return nil, nil, fmt.Errorf("reading the written inventory: %v", err)
	}
	f.NoRedfish = "ipmi_sim serves no Redfish"
	// ipmi_sim derives its session keys from the privilege in Open Session
	// (FreeIPMI's opensesspriv quirk, ipmi-quirks.md): FreeIPMI's tools
	// need the workaround set by hand, as an operator would, or every
	// session fails "privilege level cannot be obtained for this user".
	// lightsout needs no flag.
	cf, err := os.OpenFile(f.Conf, os.O_APPEND|os.O_WRONLY, 0)
	if err == nil {
		_, err = cf.WriteString("workaround-flags opensesspriv\n")
		cf.Close()
	}
	if err != nil {
		b.stopFleet(s)
		return nil, nil, err
	}
	return s, f, nil
}

func (b *bench) stopFleet(s server) {
	s.Stop()
	b.setSim(nil)
}

// ---- clients ----

type client struct {
	key   string
	label string
	skip  string // why the row is skipped
	ref   bool   // the row the ratios compare against
	// argvs gives the processes to run for this fleet, and a note.
	argvs func(f *fleet) ([][]string, string)
	env   func(f *fleet) []string
	parse func(procResult, *fleet) *outcome
	show  func(f *fleet) string // command line for the report
	noSim bool                  // the simulator's counters (IPMI only) do not see this client
	// before, if set, runs before each run of the client (the cold Redfish
	// row empties its cache directory).
	before func(f *fleet)
}

// fdsPerHost is what one ipmipower process needs per host: it opens an IPMI
// socket and a ping socket for every host at start.
const fdsPerHost = 2

// ipmipowerShards splits hosts so each ipmipower process fits in
// RLIMIT_NOFILE.
func ipmipowerShards(hosts []string, max int) [][]string {
	limit := int(proc.Nofile())
	per := (limit - 64) / fdsPerHost
	if max > 0 && max < per {
		per = max
	}
	if per < 1 {
		per = 1
	}
	k := (len(hosts) + per - 1) / per
	if k <= 1 {
		return [][]string{hosts}
	}
	size := (len(hosts) + k - 1) / k
	var out [][]string
	for i := 0; i < len(hosts); i += size {
		j := i + size
		if j > len(hosts) {
			j = len(hosts)
		}
		out = append(out, hosts[i:j])
	}
	return out
}

func (b *bench) clients() []client {
	e := b.env
	var cs []client
	cs = append(cs, client{
		key:   "lightsout",
		label: "lightsout check",
		argvs: func(f *fleet) ([][]string, string) {
			return [][]string{{b.lsBin, "check", "--inventory", f.Inventory, "-o", "json", "--parallel", strconv.Itoa(b.cfg.parallel)}}, ""
		},
		env:   func(*fleet) []string { return childEnv(nil) },
		parse: parseLightsout,
		show: func(f *fleet) string {
			return fmt.Sprintf("lightsout check --inventory DIR/fleet.yaml -o json --parallel %d", b.cfg.parallel)
		},
	})
	if b.cfg.redfish {
		// Two rows: warm (the memo an earlier run left in --cache-dir: the
		// warm-up's, then the previous round's), the target's row; and
		// cold (an empty --cache-dir before each run: a first run).
		for _, cold := range []bool{false, true} {
			rf := client{
				key:   "lightsout-redfish",
				label: "lightsout check (Redfish, HTTPS; warm: the last run's memo)",
				env:   func(*fleet) []string { return childEnv(nil) },
				parse: parseLightsout,
				show: func(f *fleet) string {
					return strings.ReplaceAll("lightsout "+strings.Join(b.redfishArgv(f, cold)[1:], " "), f.Dir, "DIR")
				},
				noSim: true,
			}
			if cold {
				rf.key, rf.label = "lightsout-redfish-cold", "lightsout check (Redfish, HTTPS; cold: first run, no memo)"
				rf.before = func(f *fleet) { _ = os.RemoveAll(redfishCacheDir(f, true)) }
			}
			rf.argvs = func(f *fleet) ([][]string, string) {
				return [][]string{b.redfishArgv(f, cold)}, ""
			}
			cs = append(cs, rf)
		}
	}
	ipp := func(driver []string, label, key string, ref bool) client {
		c := client{key: key, label: label, ref: ref, parse: parseIpmipower,
			env: func(*fleet) []string { return childEnv([]string{"LC_ALL=C"}) }}
		if e.ipmipower == "" {
			c.skip = "ipmipower not installed"
			return c
		}
		c.argvs = func(f *fleet) ([][]string, string) {
			var argvs [][]string
			for _, shard := range ipmipowerShards(f.Hosts, b.cfg.ippPerProc) {
				argv := append([]string{e.ipmipower}, driver...)
				argv = append(argv, "--config-file", f.Conf, "-h", hostArg(shard), "--stat")
				argvs = append(argvs, argv)
			}
			note := ""
			if len(argvs) > 1 {
				why := fmt.Sprintf("one process opens %d sockets per host and %d hosts would exceed RLIMIT_NOFILE %d", fdsPerHost, len(f.Hosts), proc.Nofile())
				if b.cfg.ippPerProc > 0 && len(f.Hosts)*fdsPerHost+64 <= int(proc.Nofile()) {
					why = fmt.Sprintf("--ipmipower-hosts-per-process %d", b.cfg.ippPerProc)
				}
				note = fmt.Sprintf("run as %d concurrent ipmipower processes of ≤%d hosts (%s); wall = first start to last exit, CPU and peak RSS summed",
					len(argvs), len(ipmipowerShards(f.Hosts, b.cfg.ippPerProc)[0]), why)
			}
			return argvs, note
		}
		c.show = func(f *fleet) string {
			argv := append([]string{"ipmipower"}, driver...)
			argv = append(argv, "--config-file", "DIR/freeipmi.conf", "-h", abbreviate(hostArg(f.Hosts), len(f.Hosts)), "--stat")
			return strings.Join(argv, " ")
		}
		return c
	}
	defDriver := e.ippDriver
	if defDriver == "" {
		defDriver = "not determined"
	}
	cs = append(cs, ipp(nil, "ipmipower --stat (default driver: "+defDriver+")", "ipmipower-default", false))
	cs = append(cs, ipp([]string{"-D", "LAN_2_0"}, "ipmipower -D LAN_2_0 --stat (RMCP+) = reference", "ipmipower", true))
	bi := client{key: "bmc-info", label: fmt.Sprintf("bmc-info -D LAN_2_0 --get-system-guid -F %d", b.cfg.fanout), parse: parseBmcInfo,
		env: func(*fleet) []string { return childEnv([]string{"LC_ALL=C"}) }}
	if e.bmcInfo == "" {
		bi.skip = "bmc-info not installed"
	} else {
		bi.argvs = func(f *fleet) ([][]string, string) {
			return [][]string{{e.bmcInfo, "-D", "LAN_2_0", "--config-file", f.Conf, "-h", hostArg(f.Hosts), "--get-system-guid", "-F", strconv.Itoa(b.cfg.fanout)}}, ""
		}
		bi.show = func(f *fleet) string {
			return fmt.Sprintf("bmc-info -D LAN_2_0 --config-file DIR/freeipmi.conf -h %s --get-system-guid -F %d", abbreviate(hostArg(f.Hosts), len(f.Hosts)), b.cfg.fanout)
		}
	}
	cs = append(cs, bi)
	cs = append(cs, client{
		key:   "goipmi",
		label: "goipmi baseline (" + e.goipmiVer + ")",
		argvs: func(f *fleet) ([][]string, string) {
			return [][]string{{b.goBin, "--inventory", f.Inventory}}, ""
		},
		env:   func(f *fleet) []string { return childEnv([]string{"LIGHTSOUT_PASSWORD=" + f.Password}) },
		parse: parseGoipmi,
		show:  func(*fleet) string { return "LIGHTSOUT_PASSWORD=… goipmi --inventory DIR/fleet.yaml" },
	})
	return cs
}

// ---- one size ----

type row struct {
	c      client
	n      int
	res    procResult
	out    *outcome
	note   []string
	simCPU float64
	sim    simfleet.Totals
	simErr error
	cmd    string
	// rounds are the runs in the order they ran (round i of every client
	// ran back to back); res and the rest above are the median run's.
	rounds []attempt
	argvs  [][]string
}

// attempt is one run of a client.
type attempt struct {
	res    procResult
	out    *outcome
	simCPU float64
	sim    simfleet.Totals
	simErr error
}

// as is r with one attempt's figures, for per-round ratios.
func (r *row) as(a attempt) *row {
	x := *r
	x.res, x.out, x.simCPU, x.sim, x.simErr = a.res, a.out, a.simCPU, a.sim, a.simErr
	return &x
}

func (r *row) hostsPerSec() float64 {
	if r.res.Wall <= 0 {
		return 0
	}
	return float64(r.out.OK) / r.res.Wall.Seconds()
}

// refHostsPerSec is the rate other rows are compared with. When the
// reference printed no result for some hosts but the simulator saw a
// session opened for every host (ipmipower losing output lines), it is
// N ÷ wall: the comparison then does not hold the lost lines against it.
func (r *row) refHostsPerSec() (float64, bool) {
	if r.out.OK < r.n && r.simErr == nil && r.sim.SessionsOpened >= int64(r.n) && r.res.Wall > 0 && r.res.Err == nil {
		return float64(r.n) / r.res.Wall.Seconds(), true
	}
	return r.hostsPerSec(), false
}

func (r *row) cpuPerHostUS() float64 {
	return float64(r.res.CPU().Microseconds()) / float64(r.n)
}

type sizeResult struct {
	n    int
	rows []*row
}

func (sr *sizeResult) get(key string) *row {
	for _, r := range sr.rows {
		if r.c.key == key && r.c.skip == "" && r.out != nil {
			return r
		}
	}
	return nil
}

// simBaseAddr is the first BMC's address: away from 127.1.x.y, where
// `lightsout sim`, the demo and tests that keep the default put fleets,
// so that a test running on the same machine cannot bind the bench's
// addresses (seen: every client 0/10000 while another suite ran). As long
// as 127.1.x.y, so ipmipower's host list keeps its length.
const simBaseAddr = "127.9.0.1"

// simAPITimeout bounds one read of the simulator's counters.
const simAPITimeout = 60 * time.Second

// runClient runs one client against a fleet (repeat times), and reads the
// simulator's CPU time and counters around the run.
func (b *bench) runClient(c client, s server, f *fleet, tag string) *row {
	r := b.prepareRow(c, f)
	for i := 0; i < b.cfg.repeat && r.c.skip == ""; i++ {
		if !b.runOnce(r, s, f, tag, i) {
			break
		}
	}
	return b.finishRow(r)
}

// prepareRow is a client's row before any run: skipped (with why), or
// with its command lines.
func (b *bench) prepareRow(c client, f *fleet) *row {
	r := &row{c: c, n: len(f.Hosts)}
	if c.skip == "" && strings.HasPrefix(c.key, "lightsout-redfish") && f.RedfishInventory == "" {
		c.skip = "this fleet serves no Redfish"
		if f.NoRedfish != "" {
			c.skip = f.NoRedfish
		}
		r.c = c
	}
	if c.skip != "" {
		return r
	}
	r.cmd = c.show(f)
	argvs, note := c.argvs(f)
	if note != "" {
		r.note = append(r.note, note)
	}
	r.argvs = argvs
	return r
}

// runOnce runs r's client once (run i) and keeps the attempt; false when
// the simulator is gone.
func (b *bench) runOnce(r *row, s server, f *fleet, tag string, i int) bool {
	c := r.c
	if !s.Alive() {
		r.note = append(r.note, "the simulator exited: "+s.StderrTail())
		return false
	}
	if c.before != nil {
		c.before(f)
	}
	before, berr := s.Totals(simAPITimeout)
	time.Sleep(b.cfg.settle)
	cpu0 := s.CPUSeconds()
	progress.Logf("running %s on %d BMCs%s", c.label, len(f.Hosts), map[bool]string{true: fmt.Sprintf(" (run %d/%d)", i+1, b.cfg.repeat), false: ""}[b.cfg.repeat > 1])
	res := runProcs(r.argvs, c.env(f), filepath.Join(f.Dir, fmt.Sprintf("%s-%s-%d", tag, c.key, i)), b.cfg.procTimeout)
	cpu1 := s.CPUSeconds()
	out := c.parse(res, f)
	a := attempt{res: res, out: out, simCPU: cpu1 - cpu0}
	time.Sleep(b.cfg.settle) // let sessions close and the simulator go idle
	after, aerr := s.Totals(simAPITimeout)
	if berr == nil && aerr == nil {
		a.sim = after.Sub(before)
	} else {
		a.simErr = errors.Join(berr, aerr)
	}
	progress.Logf("  %s: %d/%d ok, wall %.2fs, CPU %.2fs, peak RSS %.1f MiB, exit %v%s", c.key, out.OK, len(f.Hosts), res.Wall.Seconds(), res.CPU().Seconds(), float64(res.MaxRSSKiB)/1024, res.ExitCodes, map[bool]string{true: " TIMED OUT", false: ""}[res.TimedOut])
	r.rounds = append(r.rounds, a)
	return true
}

// finishRow takes the median run (by wall time) as the row's figures and
// notes what it saw.
func (b *bench) finishRow(r *row) *row {
	c := r.c
	if c.skip != "" {
		return r
	}
	runs := slices.Clone(r.rounds)
	if len(runs) == 0 {
		return r
	}
	sort.Slice(runs, func(i, j int) bool { return runs[i].res.Wall < runs[j].res.Wall })
	m := runs[len(runs)/2]
	if len(runs) > 1 {
		var walls []string
		for _, a := range runs {
			walls = append(walls, fmt.Sprintf("%.2f", a.res.Wall.Seconds()))
		}
		r.note = append(r.note, fmt.Sprintf("%d runs, wall s %s; the median is shown", len(runs), strings.Join(walls, ", ")))
	}
	r.res, r.out, r.simCPU, r.sim, r.simErr = m.res, m.out, m.simCPU, m.sim, m.simErr
	if r.res.TimedOut {
		r.note = append(r.note, fmt.Sprintf("killed after %v", b.cfg.procTimeout))
	}
	if r.res.Err != nil {
		r.note = append(r.note, "error: "+r.res.Err.Error())
	}
	if r.out.OK < r.n {
		msgs := topErrors(r.out.Errors, 4)
		if msgs == "" {
			msgs = "no message"
		}
		r.note = append(r.note, fmt.Sprintf("exit status %v; %d hosts not ok: %s", r.res.ExitCodes, r.n-r.out.OK, msgs))
	}
	if r.out.Reported > 0 && r.out.Reported < r.n {
		lost := fmt.Sprintf("no result line at all for %d hosts", r.n-r.out.Reported)
		if r.out.Garbage > 0 {
			lost += fmt.Sprintf(" (and %d unparseable line fragments)", r.out.Garbage)
		}
		if strings.HasPrefix(c.key, "ipmipower") {
			lost += ": ipmipower queues its output in a 32 KiB ring buffer that overwrites unwritten lines when thousands of hosts finish at once"
		}
		if r.simErr == nil {
			lost += fmt.Sprintf("; the simulator counted %d sessions opened during the run", r.sim.SessionsOpened)
		}
		r.note = append(r.note, lost)
	}
	if n := r.sim.LeftOpen(); n > 0 && !c.noSim {
		r.note = append(r.note, fmt.Sprintf("%d of the sessions it opened were not closed by Close Session (left to expire)", n))
	}
	return r
}

func (b *bench) detectDefaultDriver(f *fleet) {
	if b.env.ipmipower == "" || len(f.Hosts) == 0 {
		return
	}
	out, _ := runQuick([]string{b.env.ipmipower, "--config-file", f.Conf, "-h", f.Hosts[0], "--stat", "--debug"}, childEnv([]string{"LC_ALL=C"}), 60*time.Second)
	switch {
	case strings.Contains(out, "IPMI 2.0 Open Session Request"):
		b.env.ippDriver = "LAN_2_0, IPMI 2.0 RMCP+"
	case strings.Contains(out, "IPMI 1.5 Activate Session Request"):
		b.env.ippDriver = "LAN, IPMI 1.5"
	default:
		b.env.ippDriver = "unknown"
	}
	progress.Logf("ipmipower's default driver, from --debug on one host: %s", b.env.ippDriver)
}

// smokeTest checks every client against a small fleet before scaling up.
func (b *bench) smokeTest(n int) error {
	s, f, err := b.newFleet("smoke", n, "", b.cfg.redfish)
	if err != nil {
		return err
	}
	defer b.stopFleet(s)
	b.detectDefaultDriver(f)
	b.emit("\n## Smoke test (%d BMCs)\n\n", n)
	saved := b.cfg.settle
	b.cfg.settle = 500 * time.Millisecond
	defer func() { b.cfg.settle = saved }()
	for _, c := range b.clients() {
		r := b.runClient(c, s, f, "smoke")
		switch {
		case c.skip != "":
			b.emit("- %s: skipped (%s)\n", c.label, c.skip)
		case r.out == nil:
			b.emit("- %s: did not run\n", c.label)
		case r.out.OK == n:
			b.emit("- %s: %d/%d ok\n", c.label, r.out.OK, n)
		default:
			b.emit("- %s: **%d/%d ok** — %s\n", c.label, r.out.OK, n, strings.Join(r.note, "; "))
		}
	}
	return nil
}

func (b *bench) measureSize(n int) (*sizeResult, error) {
	tag := fmt.Sprintf("n%d", n)
	s, f, err := b.newFleet(tag, n, "", b.cfg.redfish)
	if err != nil {
		return nil, err
	}
	defer b.stopFleet(s)
	if b.env.ippDriver == "" {
		b.detectDefaultDriver(f)
	}
	if b.cfg.warmup {
		progress.Logf("warm-up: untimed lightsout check over %d BMCs", n)
		res := runProcs([][]string{{b.lsBin, "check", "--inventory", f.Inventory, "-o", "json", "--parallel", strconv.Itoa(b.cfg.parallel)}},
			childEnv(nil), filepath.Join(f.Dir, "warmup"), b.cfg.procTimeout)
		progress.Logf("  warm-up: %d/%d Connectable in %.2fs", parseLightsout(res, f).OK, n, res.Wall.Seconds())
	}
	if f.RedfishInventory != "" {
		// Always (--warmup or not): the warm Redfish row's first run needs
		// the memo of an earlier run.
		progress.Logf("warm-up: untimed lightsout check over Redfish, %d BMCs (leaves the warm row's memo)", n)
		res := runProcs([][]string{b.redfishArgv(f, false)},
			childEnv(nil), filepath.Join(f.Dir, "warmup-redfish"), b.cfg.procTimeout)
		progress.Logf("  warm-up (Redfish): %d/%d Connectable in %.2fs", parseLightsout(res, f).OK, n, res.Wall.Seconds())
	}
	// Rounds: every client runs once per round, in turn, so that a drift
	// of the machine's speed (a shared VM's neighbours) weighs on all of
	// them alike rather than on whichever ran during it.
	sr := &sizeResult{n: n}
	for _, c := range b.clients() {
		sr.rows = append(sr.rows, b.prepareRow(c, f))
	}
	alive := true
	for i := 0; i < b.cfg.repeat && alive; i++ {
		for _, r := range sr.rows {
			if r.c.skip == "" && !b.runOnce(r, s, f, tag, i) {
				alive = false
				break
			}
		}
	}
	for _, r := range sr.rows {
		b.finishRow(r)
	}
	b.sizeTable(sr, f)
	return sr, nil
}

func fmtRatio(x float64) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return "n/a"
	}
	return fmt.Sprintf("%.2f×", x)
}

func (b *bench) sizeTable(sr *sizeResult, f *fleet) {
	ref := sr.get("ipmipower")
	b.emit("\n## %d BMCs\n\n", sr.n)
	b.emit("Ratios compare with `ipmipower -D LAN_2_0 --stat` (RMCP+, like for like with lightsout's RMCP+ sessions).")
	var refRate float64
	if ref != nil {
		var adj bool
		refRate, adj = ref.refHostsPerSec()
		if adj {
			b.emit(" ipmipower printed results for only %d of %d hosts although the simulator saw %d sessions opened, so the hosts/s ratios use its N ÷ wall = %.0f hosts/s.", ref.out.OK, ref.n, ref.sim.SessionsOpened, refRate)
		}
	}
	b.emit("\n\n")
	hdr := []string{"tool", "hosts ok/N", "wall s", "hosts/s", "CPU/host µs", "peak RSS MiB", "hosts/s ÷ ipmipower", "CPU/host ÷ ipmipower", "sim CPU s"}
	var rows [][]string
	var notes []string
	for i, r := range sr.rows {
		mark := ""
		if r.c.skip != "" || r.out == nil {
			why := r.c.skip
			if why == "" {
				why = "did not run"
			}
			rows = append(rows, []string{r.c.label, "skipped", "", "", "", "", "", "", ""})
			notes = append(notes, fmt.Sprintf("%s: skipped — %s", r.c.label, why))
			continue
		}
		if len(r.note) > 0 {
			mark = fmt.Sprintf(" [%d]", i+1)
			notes = append(notes, fmt.Sprintf("[%d] %s: %s", i+1, r.c.label, strings.Join(r.note, "; ")))
		}
		ok := fmt.Sprintf("%d/%d", r.out.OK, r.n)
		if r.out.OK < r.n {
			ok = "⚠ " + ok
		}
		hr, cr := math.NaN(), math.NaN()
		if refRate > 0 {
			hr = r.hostsPerSec() / refRate
		}
		if ref != nil && ref.cpuPerHostUS() > 0 {
			cr = r.cpuPerHostUS() / ref.cpuPerHostUS()
		}
		rows = append(rows, []string{
			r.c.label + mark, ok,
			fmt.Sprintf("%.2f", r.res.Wall.Seconds()),
			fmt.Sprintf("%.0f", r.hostsPerSec()),
			fmt.Sprintf("%.0f", r.cpuPerHostUS()),
			fmt.Sprintf("%.1f", float64(r.res.MaxRSSKiB)/1024),
			fmtRatio(hr), fmtRatio(cr),
			fmt.Sprintf("%.2f", r.simCPU),
		})
	}
	b.emit("%s", markdown.Table(hdr, rows, []bool{false, true, true, true, true, true, true, true, true}))
	if len(notes) > 0 {
		b.emit("\n")
		for _, n := range notes {
			b.emit("- %s\n", n)
		}
	}
	// What the simulator saw.
	if b.cfg.peer == "ipmi_sim" {
		b.emit("\nipmi_sim keeps no session counters the benchmark can read: no datagram or session table for this fleet. FreeIPMI's tools ran with `workaround-flags opensesspriv` in their config file (ipmi_sim derives session keys from the Open Session privilege); lightsout and go-ipmi ran without any flag.\n")
		b.emitCommands(sr)
		return
	}
	b.emit("\nAs the simulator saw each run (sums over all BMCs):\n\n")
	hdr2 := []string{"tool", "datagrams in", "per host", "sessions opened", "auth attempts", "sessions refused", "left open"}
	var rows2 [][]string
	for _, r := range sr.rows {
		if r.c.skip != "" || r.out == nil {
			continue
		}
		if r.c.noSim {
			rows2 = append(rows2, []string{r.c.label, "n/a: HTTPS, not counted by the simulator's control API", "", "", "", "", ""})
			continue
		}
		if r.simErr != nil {
			rows2 = append(rows2, []string{r.c.label, "n/a: " + r.simErr.Error(), "", "", "", "", ""})
			continue
		}
		rows2 = append(rows2, []string{r.c.label,
			strconv.FormatInt(r.sim.PacketsIn, 10),
			fmt.Sprintf("%.1f", float64(r.sim.PacketsIn)/float64(r.n)),
			strconv.FormatInt(r.sim.SessionsOpened, 10),
			strconv.FormatInt(r.sim.AuthAttempts, 10),
			strconv.FormatInt(r.sim.SessionsRefused, 10),
			strconv.FormatInt(r.sim.LeftOpen(), 10)})
	}
	b.emit("%s", markdown.Table(hdr2, rows2, []bool{false, true, true, true, true, true, true}))
	b.emitCommands(sr)
}

func (b *bench) emitCommands(sr *sizeResult) {
	b.emit("\nCommands (DIR is the fleet's scratch directory):\n\n")
	for _, r := range sr.rows {
		if r.cmd != "" {
			b.emit("    %s\n", r.cmd)
		}
	}
}

func (b *bench) target(ok bool, format string, args ...any) {
	word := "PASS"
	if !ok {
		word = "FAIL"
		b.failed = true
	}
	b.targets = append(b.targets, word+"  "+fmt.Sprintf(format, args...))
}

func (b *bench) skipTarget(format string, args ...any) {
	b.targets = append(b.targets, "SKIP  "+fmt.Sprintf(format, args...))
}

func (b *bench) sizeTargets(sr *sizeResult) {
	b.redfishTarget(sr)
	ls, ref := sr.get("lightsout"), sr.get("ipmipower")
	switch {
	case ls == nil:
		b.target(false, "lightsout check did not run at %d BMCs", sr.n)
		return
	case ref == nil || ref.out.OK == 0:
		b.skipTarget("throughput and CPU targets at %d BMCs: no usable ipmipower -D LAN_2_0 run to compare with", sr.n)
		return
	}
	b.target(ls.out.OK == sr.n, "lightsout check: %d/%d BMCs Connectable at %d BMCs", ls.out.OK, sr.n, sr.n)
	refRate, adj := ref.refHostsPerSec()
	hr := ls.hostsPerSec() / refRate
	how := ""
	if adj {
		how = " (ipmipower: N ÷ wall, its lost output lines not held against it)"
	}
	b.target(hr >= 3, "lightsout hosts/s ≥ 3× ipmipower -D LAN_2_0 at %d BMCs: %.0f vs %.0f hosts/s%s = %.2f×", sr.n, ls.hostsPerSec(), refRate, how, hr)
	cr := ls.cpuPerHostUS() / ref.cpuPerHostUS()
	b.target(cr <= 1.0/3, "lightsout CPU/host ≤ ⅓ of ipmipower -D LAN_2_0 at %d BMCs: %.0f vs %.0f µs = %.2f×", sr.n, ls.cpuPerHostUS(), ref.cpuPerHostUS(), cr)
	if note := pairedRatios(ls, ref); note != "" {
		b.targets = append(b.targets, fmt.Sprintf("NOTE  at %d BMCs, %s", sr.n, note))
	}
	if ref.out.OK < ref.n && !adj {
		b.targets = append(b.targets, fmt.Sprintf("NOTE  ipmipower -D LAN_2_0 had %d/%d hosts ok at %d BMCs: its hosts/s counts only those", ref.out.OK, ref.n, sr.n))
	}
}

// redfishCacheDir is the Redfish rows' --cache-dir (warm or cold), in the
// fleet's scratch directory: never the user's.
func redfishCacheDir(f *fleet, cold bool) string {
	if cold {
		return filepath.Join(f.Dir, "redfish-cache-cold")
	}
	return filepath.Join(f.Dir, "redfish-cache")
}

// redfishArgv is a Redfish row's command line.
func (b *bench) redfishArgv(f *fleet, cold bool) []string {
	argv := []string{b.lsBin, "check", "--inventory", f.RedfishInventory, "-o", "json", "--parallel", strconv.Itoa(b.cfg.parallel),
		"--cache-dir", redfishCacheDir(f, cold)}
	if b.cfg.rfTimeout > 0 {
		argv = append(argv, "--timeout", b.cfg.rfTimeout.String())
	}
	return argv
}

// redfishTarget: the Redfish row's CPU per host ≤ 2× lightsout's own
// IPMI check's in the same run (issue 14), with the ratios round by round.
func (b *bench) redfishTarget(sr *sizeResult) {
	rf, ls := sr.get("lightsout-redfish"), sr.get("lightsout")
	if rf == nil || ls == nil || rf.out.OK == 0 || ls.out.OK == 0 {
		return
	}
	cr := rf.cpuPerHostUS() / ls.cpuPerHostUS()
	b.target(cr <= 2 && rf.out.OK == sr.n, "lightsout check over Redfish (warm: the last run's memo): CPU/host ≤ 2× its IPMI check at %d BMCs: %.0f vs %.0f µs = %.2f× (%d/%d Connectable)",
		sr.n, rf.cpuPerHostUS(), ls.cpuPerHostUS(), cr, rf.out.OK, sr.n)
	n := min(len(rf.rounds), len(ls.rounds))
	var rs []string
	for i := 0; i < n; i++ {
		r, l := rf.as(rf.rounds[i]), ls.as(ls.rounds[i])
		if l.cpuPerHostUS() > 0 {
			rs = append(rs, fmtRatio(r.cpuPerHostUS()/l.cpuPerHostUS()))
		}
	}
	if len(rs) >= 2 {
		b.targets = append(b.targets, fmt.Sprintf("NOTE  at %d BMCs, Redfish (warm) ÷ IPMI CPU/host round by round: %s", sr.n, strings.Join(rs, ", ")))
	}
	if cold := sr.get("lightsout-redfish-cold"); cold != nil && cold.out.OK > 0 {
		b.targets = append(b.targets, fmt.Sprintf("NOTE  at %d BMCs, a first run over Redfish (cold: no memo, full TLS handshakes, three requests) costs %.0f µs/host = %.2f× the IPMI check (%d/%d Connectable)",
			sr.n, cold.cpuPerHostUS(), cold.cpuPerHostUS()/ls.cpuPerHostUS(), cold.out.OK, sr.n))
	}
}

// pairedRatios compares two clients round by round (each round ran both,
// one after the other): the ratios a drift of the machine affects least.
// "" with fewer than two common rounds.
func pairedRatios(ls, ref *row) string {
	n := min(len(ls.rounds), len(ref.rounds))
	if n < 2 {
		return ""
	}
	var hr, cr []float64
	for i := 0; i < n; i++ {
		l, r := ls.as(ls.rounds[i]), ref.as(ref.rounds[i])
		rate, _ := r.refHostsPerSec()
		if rate <= 0 || r.cpuPerHostUS() <= 0 {
			continue
		}
		hr = append(hr, l.hostsPerSec()/rate)
		cr = append(cr, l.cpuPerHostUS()/r.cpuPerHostUS())
	}
	if len(hr) < 2 {
		return ""
	}
	list := func(xs []float64) string {
		var ss []string
		for _, x := range xs {
			ss = append(ss, fmtRatio(x))
		}
		return strings.Join(ss, ", ")
	}
	med := func(xs []float64) float64 {
		ys := slices.Clone(xs)
		slices.Sort(ys)
		if len(ys)%2 == 0 {
			return (ys[len(ys)/2-1] + ys[len(ys)/2]) / 2
		}
		return ys[len(ys)/2]
	}
	return fmt.Sprintf("paired by round (lightsout and ipmipower -D LAN_2_0 back to back): hosts/s ratios %s (median %s); CPU/host ratios %s (median %s)",
		list(hr), fmtRatio(med(hr)), list(cr), fmtRatio(med(cr)))
}

// ---- fault run ----

func faultFleetYAML(n int) (string, map[string]string) {
	var sb strings.Builder
	want := map[string]string{}
	fmt.Fprintf(&sb, "# lightsout bench fault run: every 10th BMC silent, every 10th+5th wrong_password\ncount: %d\nfaults:\n", n)
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("bmc-%05d", i)
		switch i % 10 {
		case 0:
			fmt.Fprintf(&sb, "  %s: {silent: true}\n", name)
			want[name] = "NotResponding/silent"
		case 5:
			fmt.Fprintf(&sb, "  %s: {wrong_password: true}\n", name)
			want[name] = "NotAuthenticated/wrong_password"
		default:
			want[name] = "Connectable"
		}
	}
	return sb.String(), want
}

func (b *bench) faultRunAt(n int) error {
	body, want := faultFleetYAML(n)
	s, f, err := b.newFleet(fmt.Sprintf("fault%d", n), n, body, false)
	if err != nil {
		return err
	}
	defer b.stopFleet(s)
	to := b.cfg.faultTimeout
	ls := client{key: "lightsout-fault", label: "lightsout check --timeout " + to.String(),
		argvs: func(f *fleet) ([][]string, string) {
			return [][]string{{b.lsBin, "check", "--inventory", f.Inventory, "-o", "json", "--timeout", to.String(), "--parallel", strconv.Itoa(b.cfg.parallel)}}, ""
		},
		env:   func(*fleet) []string { return childEnv(nil) },
		parse: parseLightsout,
		show: func(*fleet) string {
			return fmt.Sprintf("lightsout check --inventory DIR/fleet.yaml -o json --timeout %s --parallel %d", to, b.cfg.parallel)
		},
	}
	r := b.runClient(ls, s, f, "fault")
	b.emit("\n## Fault run (%d BMCs: every 10th silent, every 10th+5th wrong_password)\n\n", n)
	if r.out == nil {
		b.target(false, "fault run: lightsout check did not run")
		return nil
	}
	nSilent, nWrong := 0, 0
	for _, w := range want {
		switch w {
		case "NotResponding/silent":
			nSilent++
		case "NotAuthenticated/wrong_password":
			nWrong++
		}
	}
	b.emit("Fleet: %d silent, %d wrong_password, %d healthy.\n\n", nSilent, nWrong, n-nSilent-nWrong)
	b.emit("`%s`: exit status %v, every BMC classified after **%.2f s** (process wall time: startup, and BMCs waiting for one of the %d --parallel slots, included); largest elapsed_ms (one BMC's check) %.0f; CPU %.2f s; peak RSS %.1f MiB.\n\n",
		r.cmd, r.res.ExitCodes, r.res.Wall.Seconds(), b.cfg.parallel, r.out.MaxMS, r.res.CPU().Seconds(), float64(r.res.MaxRSSKiB)/1024)
	var keys []string
	for k := range r.out.Counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var crow [][]string
	for _, k := range keys {
		crow = append(crow, []string{k, strconv.Itoa(r.out.Counts[k])})
	}
	b.emit("%s\n", markdown.Table([]string{"state/reason", "BMCs"}, crow, []bool{false, true}))
	// Expectation, per BMC.
	var wrong []string
	missing := 0
	for name, w := range want {
		ob, ok := r.out.ByName[name]
		if !ok {
			missing++
			continue
		}
		got := ob.State
		if ob.Reason != "" && ob.State != "Connectable" {
			got += "/" + ob.Reason
		}
		if got != w {
			wrong = append(wrong, fmt.Sprintf("%s: want %s, got %s (%s)", name, w, got, trimMsg(ob.Message)))
		}
	}
	sort.Strings(wrong)
	for i, w := range wrong {
		if i == 10 {
			b.emit("- … %d more\n", len(wrong)-10)
			break
		}
		b.emit("- mismatch: %s\n", w)
	}
	for _, nt := range r.note {
		if !strings.HasPrefix(nt, "exit status") {
			b.emit("- %s\n", nt)
		}
	}
	limit := to + time.Second
	b.target(r.res.Wall <= limit && missing == 0, "fault run at %d BMCs: every BMC classified within timeout + 1 s = %v: wall %.2f s, largest elapsed_ms %.0f%s",
		n, limit, r.res.Wall.Seconds(), r.out.MaxMS, map[bool]string{true: fmt.Sprintf(", %d BMCs missing from the output", missing), false: ""}[missing > 0])
	b.target(len(wrong) == 0 && missing == 0, "fault run at %d BMCs: silent → NotResponding/silent (%d), wrong_password → NotAuthenticated/wrong_password (%d), the rest Connectable (%d): %d mismatches, %d missing",
		n, nSilent, nWrong, n-nSilent-nWrong, len(wrong), missing)

	// ipmipower on the same fleet, for comparison.
	var ippc *client
	for _, c := range b.clients() {
		if c.key == "ipmipower" {
			c := c
			ippc = &c
		}
	}
	if ippc == nil || ippc.skip != "" {
		b.emit("\nipmipower: skipped (not installed).\n")
		return nil
	}
	ir := b.runClient(*ippc, s, f, "fault")
	if ir.out == nil {
		b.emit("\nipmipower: did not run.\n")
		return nil
	}
	b.emit("\n`%s` on the same fleet: **%.2f s** wall (it waits out its session timeout, 20 s by default, for the silent BMCs), %d/%d hosts answered on/off, CPU %.2f s, peak RSS %.1f MiB, exit status %v.\n",
		ir.cmd, ir.res.Wall.Seconds(), ir.out.OK, n, ir.res.CPU().Seconds(), float64(ir.res.MaxRSSKiB)/1024, ir.res.ExitCodes)
	b.emit("\nipmipower's messages for the others: %s\n", topErrors(ir.out.Errors, 6))
	for _, nt := range ir.note {
		if strings.HasPrefix(nt, "no result line") {
			b.emit("- %s\n", nt)
		}
	}
	for _, nt := range ir.note {
		if strings.HasPrefix(nt, "run as") {
			b.emit("- %s\n", nt)
		}
	}
	return nil
}

func fatalf(code int, format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench/check: "+format+"\n", args...)
	os.Exit(code)
}

// ---- quirk run ----

// quirkNames are the simulator's vendor quirks the quirk run rotates
// through (docs/interop.md).
var quirkNames = []string{"no_ping", "suite3_only", "opensess_0x01"}

func quirkFleetYAML(n int) (string, map[string]string) {
	var sb strings.Builder
	quirk := map[string]string{}
	fmt.Fprintf(&sb, "# lightsout bench quirk run: every 3rd BMC carries a vendor quirk (%s, in turn)\ncount: %d\nfaults:\n", strings.Join(quirkNames, ", "), n)
	for i := 3; i <= n; i += 3 {
		name := fmt.Sprintf("bmc-%05d", i)
		q := quirkNames[(i/3-1)%len(quirkNames)]
		fmt.Fprintf(&sb, "  %s: {quirk: %s}\n", name, q)
		quirk[name] = q
	}
	return sb.String(), quirk
}

// quirkRunAt checks a fleet where a third of the BMCs carry quirks: every
// BMC must be Connectable and none Degraded; its speed is shown next to
// the quirk-free fleet's (base, the lightsout row of the same size).
func (b *bench) quirkRunAt(n int, base *row) error {
	body, quirk := quirkFleetYAML(n)
	s, f, err := b.newFleet(fmt.Sprintf("quirk%d", n), n, body, false)
	if err != nil {
		return err
	}
	defer b.stopFleet(s)
	ls := client{key: "lightsout-quirk", label: "lightsout check (quirk fleet)",
		argvs: func(f *fleet) ([][]string, string) {
			return [][]string{{b.lsBin, "check", "--inventory", f.Inventory, "-o", "json", "--parallel", strconv.Itoa(b.cfg.parallel)}}, ""
		},
		env:   func(*fleet) []string { return childEnv(nil) },
		parse: parseLightsout,
		show: func(*fleet) string {
			return fmt.Sprintf("lightsout check --inventory DIR/fleet.yaml -o json --parallel %d", b.cfg.parallel)
		},
	}
	r := b.runClient(ls, s, f, "quirk")
	b.emit("\n## Quirk run (%d BMCs: every 3rd carries a vendor quirk: %s, in turn)\n\n", n, strings.Join(quirkNames, ", "))
	if r.out == nil {
		b.target(false, "quirk run: lightsout check did not run")
		return nil
	}
	perQuirk := map[string]int{}
	for _, q := range quirk {
		perQuirk[q]++
	}
	b.emit("Fleet: %d × no_ping, %d × suite3_only, %d × opensess_0x01, %d without quirks.\n\n",
		perQuirk["no_ping"], perQuirk["suite3_only"], perQuirk["opensess_0x01"], n-len(quirk))
	b.emit("`%s`: exit status %v, wall **%.2f s** (%.0f hosts/s), CPU %.2f s (%.0f µs/host), peak RSS %.1f MiB; largest elapsed_ms %.0f.\n\n",
		r.cmd, r.res.ExitCodes, r.res.Wall.Seconds(), r.hostsPerSec(), r.res.CPU().Seconds(), r.cpuPerHostUS(), float64(r.res.MaxRSSKiB)/1024, r.out.MaxMS)
	var wrong []string
	missing := 0
	degraded := map[string]int{} // by quirk ("" none)
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("bmc-%05d", i)
		ob, ok := r.out.ByName[name]
		switch {
		case !ok:
			missing++
		case ob.State != "Connectable" || ob.Reason != "":
			wrong = append(wrong, fmt.Sprintf("%s (%s): %s/%s (%s)", name, nonEmpty(quirk[name], "no quirk"), ob.State, ob.Reason, trimMsg(ob.Message)))
		case slices.Contains(ob.Conditions, "Degraded"):
			degraded[quirk[name]]++
		}
	}
	for i, w := range wrong {
		if i == 10 {
			b.emit("- … %d more\n", len(wrong)-10)
			break
		}
		b.emit("- not Connectable: %s\n", w)
	}
	b.target(len(wrong) == 0 && missing == 0, "quirk run at %d BMCs: every BMC Connectable (none Busy): %d not Connectable, %d missing", n, len(wrong), missing)
	// Degraded (≥ 2 retransmissions in a check) also comes from a loaded
	// machine; a quirk must not add to it: each quirk's share of Degraded
	// BMCs is at most the quirk-free BMCs' share + 1 point.
	noneShare := float64(degraded[""]) / float64(n-len(quirk))
	var shares []string
	worst := 0.0
	for _, q := range quirkNames {
		sh := float64(degraded[q]) / float64(max(perQuirk[q], 1))
		worst = max(worst, sh-noneShare)
		shares = append(shares, fmt.Sprintf("%s %.1f%%", q, 100*sh))
	}
	b.target(worst <= 0.01, "quirk run at %d BMCs: no quirk makes BMCs Degraded: Degraded share %s vs %.1f%% of the quirk-free BMCs", n, strings.Join(shares, ", "), 100*noneShare)
	if base != nil && base.hostsPerSec() > 0 && base.cpuPerHostUS() > 0 {
		b.targets = append(b.targets, fmt.Sprintf("NOTE  quirk run at %d BMCs vs the quirk-free fleet: %.2f× its hosts/s, %.2f× its CPU/host (a first contact: the %d no_ping BMCs each wait out one unanswered ping, ⅓ of the timeout; the server's monitor skips it from the second check on)",
			n, r.hostsPerSec()/base.hostsPerSec(), r.cpuPerHostUS()/base.cpuPerHostUS(), perQuirk["no_ping"]))
	}
	return nil
}

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
