// Package checkrun is the offline check runner behind `lightsout check
// --host/--inventory`: the targets from an inventory or a host list (every
// password read before any BMC is contacted), one engine and one Redfish
// transport for the run, the probes at most Parallel at once, and the
// printer that streams the observations as a table or records. It is not
// in cmd so that cmd keeps to flags and wiring, and so that the runner can
// be driven without cobra.
package checkrun

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/lightsout/lightsout/internal/guid"
	"github.com/lightsout/lightsout/internal/inventory"
	"github.com/lightsout/lightsout/internal/ipmi"
	"github.com/lightsout/lightsout/internal/probe"
	"github.com/lightsout/lightsout/internal/protocol"
	"github.com/lightsout/lightsout/internal/secret"
	"github.com/lightsout/lightsout/internal/state"
)

// Config is one run's engine and pace.
type Config struct {
	Sockets  int          // UDP sockets the engine spreads BMCs over
	Parallel int          // BMCs checked at once (each BMC sees one request at a time)
	Logger   *slog.Logger // the engine's debug log (retransmissions, handshake steps), or nil
	// CacheDir keeps what Redfish checks learn between runs (probe.RedfishMemo:
	// the System, the authentication and the TLS session per endpoint),
	// sealed in MemoFile with the key in KeyFile; "" keeps nothing.
	CacheDir string
}

// MemoFile and KeyFile are the files of Config.CacheDir: the sealed memo
// of Redfish endpoints, and the key (mode 0600) that seals it.
const (
	MemoFile = "redfish-check.sealed"
	KeyFile  = "check.key"
)

// DefaultCacheDir is $XDG_CACHE_HOME/lightsout (or ~/.cache/lightsout),
// "" when there is no home.
func DefaultCacheDir() string {
	d, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(d, "lightsout")
}

// Runner is one offline run's engine and Redfish transport (certificates
// pinned for this run only: the server keeps pins in its store).
type Runner struct {
	eng      *ipmi.Engine
	rf       *probe.OneShotTransport
	probers  probe.Registry
	parallel int
	memo     *probe.RedfishMemo
	box      *secret.Box
	memoPath string
	cacheDir string
	// Warning says why the run learns nothing between runs, when it
	// cannot ("": it can, or was told not to).
	Warning string
}

// New opens the run's engine (its sockets) and Redfish transport.
func New(cfg Config) (*Runner, error) {
	eng, err := ipmi.New(ipmi.Config{Sockets: cfg.Sockets, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	// Redfish: one shared transport; certificates are pinned for this run
	// only (the server keeps pins in its store).
	rf := probe.NewOneShotRedfishTransport()
	r := &Runner{eng: eng, rf: rf, parallel: max(cfg.Parallel, 1), cacheDir: cfg.CacheDir}
	if cfg.CacheDir != "" {
		r.memo = probe.NewRedfishMemo() // read from the cache directory by Run, if it has Redfish targets
	}
	r.probers = probe.NewRegistry(eng, probe.RedfishOneShot(rf, &probe.MemPins{}, r.memo))
	return r, nil
}

// openMemo reads the cache directory's memo into r.memo (creating the
// directory and its key on first use); a failure is r.Warning, and the
// run goes on learning for itself only.
func (r *Runner) openMemo() {
	r.memoPath = filepath.Join(r.cacheDir, MemoFile)
	var err error
	if err = os.MkdirAll(r.cacheDir, 0o700); err != nil {
		r.Warning = fmt.Sprintf("the cache directory: %v; nothing is learned between runs", err)
	} else if r.box, err = secret.LoadOrCreateKey(filepath.Join(r.cacheDir, KeyFile)); err != nil {
		r.Warning = fmt.Sprintf("the cache key: %v; nothing is learned between runs", err)
	} else if err = r.memo.Load(r.memoPath, r.box); err != nil {
		r.Warning = fmt.Sprintf("the Redfish memo: %v", err)
	}
}

// Close closes the engine and the transport's idle connections, and saves
// what the Redfish checks learned (an error says why it could not).
func (r *Runner) Close() error {
	r.rf.CloseIdleConnections()
	r.eng.Close()
	if r.memo == nil || r.box == nil {
		return nil
	}
	if err := r.memo.Save(r.memoPath, r.box); err != nil {
		return fmt.Errorf("saving the Redfish memo: %w", err)
	}
	return nil
}

// Run checks every target, at most Parallel at once, and hands each
// observation to seen as it arrives, from the caller's goroutine: a dead
// BMC never delays the healthy ones. It returns when every target was
// checked or ctx ended.
func (r *Runner) Run(ctx context.Context, targets []probe.Target, seen func(probe.Observation)) {
	if r.memo != nil && r.box == nil && r.Warning == "" {
		for _, t := range targets {
			if t.Protocol == "redfish" {
				r.openMemo()
				break
			}
		}
	}
	results := make(chan probe.Observation, 256)
	go runProbes(ctx, r.probers.Check, targets, r.parallel, results)
	for o := range results {
		seen(o)
	}
}

// runProbes checks every target, at most parallel at once, and closes out.
func runProbes(ctx context.Context, check probe.Prober, targets []probe.Target, parallel int, out chan<- probe.Observation) {
	defer close(out)
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for _, t := range targets {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return
		}
		wg.Add(1)
		go func(t probe.Target) {
			defer wg.Done()
			defer func() { <-sem }()
			out <- check(ctx, t)
		}(t)
	}
	wg.Wait()
}

// Spec is what to check, the flags already validated by the caller: one
// shared account for Hosts (a host list already expanded), or every machine
// of Inventory.
type Spec struct {
	Hosts                    []string // with one account (User, password)
	User, PasswordFile, GUID string
	Name                     string // reported for a single host (default: its address)
	Protocol, RedfishAuth    string // for Hosts
	EnvPassword              bool   // the password from IPMI_PASSWORD, as ipmitool -E
	Inventory                string // else: every machine of this file
	Timeout                  time.Duration
	CipherSuite              int                // pinned suite, 0: negotiate
	Suites                   []ipmi.CipherSuite // allow-list overriding the inventory's
	Privilege                ipmi.Privilege
	PrivilegeSet             bool // Privilege overrides the inventory's
}

// Targets reads every password and resolves every address before any BMC
// is contacted: bad input stops the run with nothing checked. Passwords
// not named by the inventory (or for Hosts without a file) come from
// prompt.
func Targets(ctx context.Context, f Spec, prompt *PasswordSource) ([]probe.Target, error) {
	priv := f.Privilege
	if len(f.Hosts) > 0 {
		defPort := protocol.Protocol(f.Protocol).DefaultPort()
		hosts := f.Hosts
		var err error
		var pass []byte
		switch {
		case f.EnvPassword && f.PasswordFile != "":
			return nil, errors.New("-E (IPMI_PASSWORD) and --password-file (-f) exclude each other")
		case f.EnvPassword:
			v := os.Getenv("IPMI_PASSWORD")
			if v == "" {
				return nil, errors.New("-E: the IPMI_PASSWORD environment variable is not set or empty")
			}
			pass = []byte(v)
		case f.PasswordFile != "":
			if pass, err = inventory.ReadPasswordFile(f.PasswordFile); err != nil {
				return nil, fmt.Errorf("--password-file: %v", err)
			}
		default:
			if pass, err = prompt.Get(); err != nil {
				return nil, err
			}
		}
		var expected guid.GUID
		if f.GUID != "" {
			if expected, err = guid.Parse(f.GUID); err != nil {
				return nil, fmt.Errorf("--guid: %v", err)
			}
		}
		targets := make([]probe.Target, 0, len(hosts))
		for _, h := range hosts {
			addr, err := probe.Resolve(ctx, h, defPort)
			if err != nil {
				return nil, fmt.Errorf("--host %s: %v", h, err)
			}
			t := probe.NewTarget(f.Name, protocol.Account{Protocol: f.Protocol, Address: h, Port: defPort, User: f.User, Password: pass,
				CipherSuite: f.CipherSuite, RedfishAuth: f.RedfishAuth}, f.Timeout) // --redfish-auth checked in runCheck
			t.Addr, t.Suites, t.Privilege, t.Expected = addr, f.Suites, priv, expected
			if t.Name == "" {
				t.Name = h
			}
			targets = append(targets, t)
		}
		return targets, nil
	}
	inv, err := inventory.Load(f.Inventory)
	if err != nil {
		return nil, err
	}
	if len(inv.Machines) == 0 {
		return nil, fmt.Errorf("%s: no machines", f.Inventory)
	}
	targets := make([]probe.Target, 0, len(inv.Machines))
	passwords := &inventory.Passwords{Dir: inv.Dir}
	for _, m := range inv.Machines {
		proto, port := m.EffectiveProtocol(), m.EffectivePort()
		if proto != inventory.ProtocolIPMI && proto != inventory.ProtocolRedfish {
			return nil, fmt.Errorf("%s:%d: machine %q: protocol %q is not supported by check (ipmi or redfish)", f.Inventory, m.Line, m.Name, proto)
		}
		addr, err := probe.Resolve(ctx, m.Address, port)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: machine %q: field \"address\": %v", f.Inventory, m.Line, m.Name, err)
		}
		pass, err := passwords.Of(m)
		if errors.Is(err, inventory.ErrNoPassword) {
			pass, err = prompt.Get()
		}
		if err != nil { // the error names the machine and the file or variable
			return nil, fmt.Errorf("%s:%d: %v", f.Inventory, m.Line, err)
		}
		a := protocol.Account{Protocol: proto, Address: m.Address, Port: port, User: m.User, Password: pass,
			Privilege: m.Privilege, CipherSuite: m.CipherSuite, RedfishAuth: m.RedfishAuth} // validated by Load
		a.CipherSuites, _ = inventory.ParseSuiteList(m.CipherSuites)
		t := probe.NewTarget(m.Name, a, f.Timeout)
		t.Addr = addr
		if f.CipherSuite != 0 {
			t.CipherSuite = f.CipherSuite
		}
		if f.Suites != nil {
			t.Suites = f.Suites
		}
		if m.Privilege == "" || f.PrivilegeSet {
			t.Privilege = priv
		}
		if m.GUID != "" {
			t.Expected, _ = guid.Parse(m.GUID) // validated by Load
		}
		targets = append(targets, t)
	}
	return targets, nil
}

// PasswordSource supplies the shared password: LIGHTSOUT_PASSWORD, or one
// prompt on the terminal (asked once, whoever asks).
type PasswordSource struct {
	once sync.Once
	pass []byte
	err  error
}

// Get returns the password, asking for it the first time.
func (p *PasswordSource) Get() ([]byte, error) {
	p.once.Do(func() {
		if v, ok := os.LookupEnv("LIGHTSOUT_PASSWORD"); ok && v != "" {
			p.pass = []byte(v)
			return
		}
		tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
		if err != nil || !term.IsTerminal(int(tty.Fd())) {
			p.err = errors.New("no password: use --password-file FILE (or password_file/password_env in the inventory), or set LIGHTSOUT_PASSWORD")
			return
		}
		defer tty.Close()
		fmt.Fprint(tty, "BMC password: ")
		p.pass, p.err = term.ReadPassword(int(tty.Fd()))
		fmt.Fprintln(tty)
		if p.err == nil && len(p.pass) == 0 {
			p.err = errors.New("empty password")
		}
	})
	return p.pass, p.err
}

// Printer streams observations as a table or records (JSON lines, YAML
// documents), with a progress line on a terminal; `check` through the
// server prints its results with it too.
type Printer struct {
	out, tty io.Writer
	progress bool
	total    int
	done     int
	// Counts counts the observations by state.
	Counts   map[state.OOB]int
	reasons  map[state.Reason]int
	records  func(any) error // -o json or yaml; nil for a table
	wide     bool            // -o wide: more columns
	lastDraw time.Time
	started  time.Time
	// rowsOnTTY: rows and the progress line share a terminal.
	rowsOnTTY bool
	// Quiet: print only the rows of BMCs not Connectable or with a
	// condition (a terminal without --all-rows); hidden counts them.
	Quiet  bool
	hidden int
	// failing names the BMCs not Connectable, in arrival order.
	failing []string
}

// MaxFailingNamed is how many failing BMCs check's summary names before
// "and N more".
const MaxFailingNamed = 20

// NewPrinter prints to out, the progress line (when progress) to tty:
// records, when not nil, writes each observation as a record (-o json or
// yaml); else a table, with more columns when wide. total is how many
// observations will come.
func NewPrinter(out, tty io.Writer, records func(any) error, wide, progress bool, total int) *Printer {
	p := &Printer{out: out, tty: tty, records: records, progress: progress, total: total,
		Counts: map[state.OOB]int{}, reasons: map[state.Reason]int{}, started: time.Now()}
	if f, ok := out.(*os.File); ok && progress {
		p.rowsOnTTY = term.IsTerminal(int(f.Fd()))
	}
	switch {
	case records != nil:
	case wide:
		p.wide = true
		fmt.Fprintf(out, "%-20s %-8s %-21s %-17s %-17s %-36s %-5s %8s %-5s %-14s %5s  %s\n", "NAME", "PROTOCOL", "HOST", "STATE", "REASON", "GUID", "POWER", "MS", "SUITE", "FAILED-STAGE", "TRIES", "DETAIL")
	default:
		fmt.Fprintf(out, "%-20s %-21s %-17s %-17s %-36s %-5s %8s  %s\n", "NAME", "HOST", "STATE", "REASON", "GUID", "POWER", "MS", "DETAIL")
	}
	return p
}

func (p *Printer) Add(o probe.Observation) {
	p.done++
	p.Counts[o.State]++
	if o.Reason != "" {
		p.reasons[o.Reason]++
	}
	if o.State != state.Connectable {
		p.failing = append(p.failing, o.Name)
	}
	if p.Quiet && p.records == nil && o.State == state.Connectable && len(o.Conditions) == 0 {
		p.hidden++
		p.drawProgress(false)
		return
	}
	if p.rowsOnTTY {
		p.clearProgress()
	}
	if p.records != nil {
		_ = p.records(o)
	} else {
		st := string(o.State)
		for _, c := range o.Conditions {
			st += "+" + string(c)
		}
		g := o.GUID
		if g == "" {
			g = "-"
		}
		pw := o.Evidence.Power
		if pw == "" {
			pw = "-"
		}
		r := string(o.Reason)
		if r == "" {
			r = "-"
		}
		if p.wide {
			dash := func(s string) string {
				if s == "" || s == "0" {
					return "-"
				}
				return s
			}
			fmt.Fprintf(p.out, "%-20s %-8s %-21s %-17s %-17s %-36s %-5s %8.1f %-5s %-14s %5s  %s\n", o.Name, dash(o.Protocol), o.Host, st, r, g, pw, o.ElapsedMS,
				dash(strconv.Itoa(o.Evidence.CipherSuite)), dash(o.Evidence.FailedStage), dash(strconv.Itoa(o.Evidence.Attempts)), o.Message)
		} else {
			fmt.Fprintf(p.out, "%-20s %-21s %-17s %-17s %-36s %-5s %8.1f  %s\n", o.Name, o.Host, st, r, g, pw, o.ElapsedMS, o.Message)
		}
	}
	p.drawProgress(false)
}

func (p *Printer) clearProgress() {
	if p.progress && !p.lastDraw.IsZero() {
		fmt.Fprint(p.tty, "\r\033[K")
	}
}

// drawProgress redraws the progress line: after every row when rows go to
// the same terminal (the row erased it), else at most five times a second.
func (p *Printer) drawProgress(force bool) {
	if !p.progress {
		return
	}
	if !force && !p.rowsOnTTY && time.Since(p.lastDraw) < 200*time.Millisecond {
		return
	}
	if !p.rowsOnTTY {
		p.clearProgress()
	}
	p.lastDraw = time.Now()
	fmt.Fprintf(p.tty, "checked %d/%d · %s · %.1fs", p.done, p.total, p.summary(), time.Since(p.started).Seconds())
}

func (p *Printer) summary() string {
	var parts []string
	for _, s := range []state.OOB{state.Connectable, state.NotResponding, state.NotAuthenticated, state.Invalid} {
		if n := p.Counts[s]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, s))
		}
	}
	return strings.Join(parts, ", ")
}

func (p *Printer) Finish() {
	p.clearProgress()
	if p.records != nil {
		return
	}
	fmt.Fprintf(p.out, "\n%d BMCs in %.1fs: %s\n", p.done, time.Since(p.started).Seconds(), p.summary())
	if len(p.reasons) > 0 {
		rs := make([]string, 0, len(p.reasons))
		for r, n := range p.reasons {
			rs = append(rs, fmt.Sprintf("%s %d", r, n))
		}
		sort.Strings(rs)
		fmt.Fprintf(p.out, "reasons: %s\n", strings.Join(rs, ", "))
	}
	if n := len(p.failing); n > 0 {
		names := p.failing
		more := ""
		if n > MaxFailingNamed {
			names, more = names[:MaxFailingNamed], fmt.Sprintf(" and %d more", n-MaxFailingNamed)
		}
		fmt.Fprintf(p.out, "not Connectable (%d): %s%s\n", n, strings.Join(names, ", "), more)
	}
	if p.hidden > 0 {
		fmt.Fprintf(p.out, "%d Connectable %s without conditions not shown (--all-rows shows every row)\n", p.hidden, Plural(p.hidden, "row", "rows"))
	}
}

// Plural is one when n is 1, else many.
func Plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
