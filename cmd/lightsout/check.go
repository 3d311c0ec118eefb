package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/lightsout/lightsout/internal/guid"
	"github.com/lightsout/lightsout/internal/inventory"
	"github.com/lightsout/lightsout/internal/ipmi"
	"github.com/lightsout/lightsout/internal/probe"
	"github.com/lightsout/lightsout/internal/protocol"
	"github.com/lightsout/lightsout/internal/redfish"
	"github.com/lightsout/lightsout/internal/state"
)

type checkFlags struct {
	host, user, passwordFile, guid, name string
	protocol                             string // with --host: ipmi or redfish
	redfishAuth                          string // with --host: auto, session or basic
	inventory                            string
	timeout                              time.Duration
	output, outFile                      string // -o and --out (output.go)
	parallel                             int
	cipherSuite                          int
	cipherSuites                         string
	suites                               []ipmi.CipherSuite // parsed --cipher-suites
	privilege                            string
	privilegeSet                         bool // --privilege given: overrides the inventory's
	sockets                              int
	debug                                bool
	// envPassword (-E): the password from IPMI_PASSWORD, as ipmitool.
	envPassword bool
	// allRows: a terminal shows every row, not only the unhealthy ones.
	allRows bool
	// Through the server (NAME... or --group): check_server.go.
	api   apiFlags
	group string
}

func newCheckCmd() *cobra.Command {
	f := &checkFlags{}
	c := &cobra.Command{
		Use:   "check (--host|-H ADDR[:PORT]|HOSTLIST --user|-U USER | --inventory FILE | NAME... | --group G) [--all-rows]",
		Short: "Check BMCs over IPMI 2.0 and say which are Connectable, and why the others are not",
		Long: `check opens an RMCP+ session with each BMC — presence ping, authentication
capabilities, Open Session, RAKP 1-4, Get Device ID, Get System GUID, Chassis
Status, Close Session — and classifies it:

  Connectable       a session opened and the System GUID matched (conditions: Busy,
                    Degraded, Insecure)
  NotResponding     nothing usable came back (silent, port_refused, stalled, ...)
  NotAuthenticated  the BMC answered and refused the account (wrong_password,
                    unknown_user, privilege_too_low, ...)
  Invalid           a session opened but the System GUID is not the registered one

Machines with protocol redfish (or --host with --protocol redfish) are checked
over HTTPS instead: service root (certificate, and whether it offers sessions),
then Systems and the first System (UUID, PowerState) with HTTP Basic — a
one-shot check keeps no session, so it opens none where the service takes
Basic — or, when Basic is refused without a Basic challenge, a session login,
logged out at the end (redfish_auth in the inventory, --redfish-auth with
--host, forces one; docs/redfish.md). Certificates are pinned for the run only.

The cipher suite is negotiated from an allow-list (--cipher-suites, or
cipher_suites in the inventory; default 17, then 3; suite 0 never): the
strongest allowed suite is proposed first; when the BMC refuses it — with an
RMCP+ status, with 0x01 (which is not Busy until every allowed suite was
tried) — check asks the BMC which suites it offers (Get Channel Cipher
Suites, as ipmitool does) and falls back in order; a BMC that answers with
another allowed suite's algorithms (pyghmi) goes on with that suite. The
JSON evidence says which suite was used and why (cipher_suite_why, and
negotiation when more happened). A BMC that offers none of the allowed
suites is NotAuthenticated/no_cipher_suite, with what it offers. A BMC that
never answers the presence ping is checked through Get Channel
Authentication Capabilities and is not Degraded for it; quirks met are
listed in the evidence (docs/interop.md).

Results stream as they arrive: a dead BMC never delays the healthy ones. The
exit status is 0 only if every BMC is Connectable, 1 otherwise, 2 for bad input.

--host takes one BMC or a FreeIPMI host list ('10.0.4.[1-32],bmc-spare',
'bmc-[001-100]'), checked with the same user and password. ipmitool's
spellings work: -H HOST -U USER, -f FILE for the password file, -E for the
password in IPMI_PASSWORD.

On a terminal the table shows only the BMCs that are not Connectable or have
a condition (--all-rows shows every row); it ends with the counts, the reasons
and the failing BMCs by name (the first 20, then how many more).

Passwords are never taken as flag values: --password-file FILE (-f), the
LIGHTSOUT_PASSWORD environment variable (IPMI_PASSWORD with -E), or a prompt
on the terminal. In an
inventory each machine names its password_file or password_env; machines that
name neither use LIGHTSOUT_PASSWORD or the prompt.

An expected GUID (--guid, or guid in the inventory) may be written in RFC 4122,
SMBIOS or IPMI byte order, with or without dashes.

With machine names (or --group G) instead, check asks the management server
to check those machines now and prints their fresh states, with the remedy for
each channel that is not Connectable (operator role). The server is --server
URL, $LIGHTSOUT_SERVER or server: in the CLI config file; the API token comes
from --token-file, $LIGHTSOUT_TOKEN or token_file: in the config file.` + namesHelp,
		Example: `  lightsout check --host 10.0.4.17 --user admin --password-file ~/.bmc-pass
  IPMI_PASSWORD=... lightsout check -H 'bmc-[001-100],spare-1' -U admin -E
  LIGHTSOUT_PASSWORD=... lightsout check --host 10.0.4.17:623 --user admin --guid 4c4c4544-0042-3510-8052-b4c04f4e3232 -o json
  lightsout check --inventory fleet.yaml --timeout 5s
  lightsout check web-1 web-2 --token-file ~/.config/lightsout/ops.token
  lightsout check --group web -o json`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 || f.group != "" {
				return runServerCheck(cmd, f, args)
			}
			return runCheck(cmd, f)
		},
	}
	fl := c.Flags()
	fl.StringVarP(&f.host, "host", "H", "", "BMC address, IPv4/IPv6/hostname with optional :PORT (default port 623), or a FreeIPMI host list ('bmc-[001-100],spare-1')")
	fl.StringVarP(&f.user, "user", "U", "", "BMC user name (with --host)")
	fl.StringVarP(&f.passwordFile, "password-file", "f", "", "file holding the BMC password (with --host)")
	fl.BoolVarP(&f.envPassword, "env-password", "E", false, "take the BMC password from the IPMI_PASSWORD environment variable, as ipmitool -E (with --host)")
	fl.BoolVar(&f.allRows, "all-rows", false, "on a terminal, print every BMC's row (default there: only those not Connectable or with a condition; the summary counts all)")
	fl.StringVar(&f.guid, "guid", "", "expected System GUID, any layout (with --host)")
	fl.StringVar(&f.name, "name", "", "name to report for --host (default: the address)")
	fl.StringVar(&f.protocol, "protocol", "ipmi", "protocol for --host: ipmi (UDP 623) or redfish (HTTPS, default port 443)")
	fl.StringVar(&f.redfishAuth, "redfish-auth", "auto", "Redfish authentication for --host: auto (a session when the service offers one, else HTTP Basic), session or basic")
	fl.StringVar(&f.inventory, "inventory", "", "check every machine in this inventory (.yaml, .yml or .csv; see docs/inventory.md)")
	fl.DurationVar(&f.timeout, "timeout", probe.DefaultTimeout, "declare a BMC NotResponding after this long without a usable reply")
	addOutputFlags(fl, &f.output, &f.outFile)
	fl.IntVar(&f.parallel, "parallel", 10000, "BMCs checked at once (each BMC still sees one request at a time); a silent BMC holds its slot for --timeout")
	fl.IntVar(&f.cipherSuite, "cipher-suite", 0, "pin one RMCP+ cipher suite (no negotiation)")
	fl.StringVar(&f.cipherSuites, "cipher-suites", "", "cipher suites allowed, strongest first, e.g. 17,3 (default 17,3; never 0): the strongest the BMC offers is used (overrides the inventory's cipher_suites)")
	fl.StringVar(&f.privilege, "privilege", "administrator", "privilege level to request: user, operator or administrator")
	fl.IntVar(&f.sockets, "sockets", 2, "UDP sockets the engine spreads BMCs over")
	fl.BoolVar(&f.debug, "debug", false, "log every retransmission and handshake step to stderr (never credentials)")
	fl.StringVar(&f.group, "group", "", "check every machine of this group through the server")
	f.api.add(fl, false)
	return c
}

func runCheck(cmd *cobra.Command, f *checkFlags) error {
	if err := checkFormat(f.output); err != nil {
		return err
	}
	if f.timeout <= 0 {
		return usageErr("--timeout %v: must be positive", f.timeout)
	}
	if f.parallel < 1 {
		return usageErr("--parallel %d: must be at least 1", f.parallel)
	}
	f.privilegeSet = cmd.Flags().Changed("privilege")
	priv, err := ipmi.ParsePrivilege(f.privilege)
	if err != nil {
		return usageErr("--privilege: %v", err)
	}
	if f.cipherSuite != 0 && !ipmi.CipherSuite(f.cipherSuite).Supported() {
		return usageErr("--cipher-suite %d: not supported (use 3 or 17)", f.cipherSuite)
	}
	if _, err := redfish.ParseAuth(f.redfishAuth); err != nil {
		return usageErr("--redfish-auth: %v", err)
	}
	if f.cipherSuites != "" {
		l, err := inventory.ParseSuiteList(strings.Split(f.cipherSuites, ","))
		if err != nil {
			return usageErr("--cipher-suites %q: %v", f.cipherSuites, err)
		}
		f.suites = toSuites(l)
	}
	targets, err := buildTargets(cmd.Context(), f, priv)
	if err != nil {
		return &exitError{code: 2, err: err}
	}

	// A check is short-lived and allocation-heavy at fleet scale: trade
	// some memory for less garbage-collection CPU.
	debug.SetGCPercent(400)
	cfg := ipmi.Config{Sockets: f.sockets}
	if f.debug {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	eng, err := ipmi.New(cfg)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	defer eng.Close()
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	out := cmd.OutOrStdout()
	progress := term.IsTerminal(int(os.Stderr.Fd())) && len(targets) > 1
	p := newPrinter(out, os.Stderr, f.output, progress, len(targets))
	p.quiet = !f.allRows && rowsTerminal(out)
	results := make(chan probe.Observation, 256)
	// Redfish: one shared transport; certificates are pinned for this run
	// only (the server keeps pins in its store).
	rf := probe.NewRedfishTransport()
	defer rf.CloseIdleConnections()
	probers := probe.NewRegistry(eng, probe.Redfish(rf, &probe.MemPins{}))
	go runProbes(ctx, probers.Check, targets, f.parallel, results)
	for o := range results {
		p.add(o)
	}
	p.finish()
	if ctx.Err() != nil {
		return &exitError{code: 130, err: errors.New("interrupted")}
	}
	if p.counts[state.Connectable] != len(targets) {
		return &exitError{code: 1, err: fmt.Errorf("%d of %d BMCs not Connectable", len(targets)-p.counts[state.Connectable], len(targets))}
	}
	return nil
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

// buildTargets validates every input and reads every password before any
// BMC is contacted: bad input stops the run with nothing checked.
func buildTargets(ctx context.Context, f *checkFlags, priv ipmi.Privilege) ([]probe.Target, error) {
	switch {
	case f.host != "" && f.inventory != "":
		return nil, errors.New("--host and --inventory exclude each other")
	case f.host == "" && f.inventory == "":
		return nil, errors.New("nothing to check: give --host ADDR --user USER, or --inventory FILE (see --help)")
	}
	prompt := &passwordSource{}
	if f.host != "" {
		if f.user == "" {
			return nil, errors.New("--user (-U) is required with --host")
		}
		if !protocol.Protocol(f.protocol).Known() {
			return nil, fmt.Errorf("--protocol %q: want ipmi or redfish", f.protocol)
		}
		defPort := protocol.Protocol(f.protocol).DefaultPort()
		hosts, err := expandNames("--host", []string{f.host})
		if err != nil {
			return nil, err
		}
		if len(hosts) > 1 && (f.name != "" || f.guid != "") {
			return nil, fmt.Errorf("--name and --guid name one BMC; --host %q names %d (use an inventory for per-BMC names and GUIDs)", f.host, len(hosts))
		}
		var pass []byte
		switch {
		case f.envPassword && f.passwordFile != "":
			return nil, errors.New("-E (IPMI_PASSWORD) and --password-file (-f) exclude each other")
		case f.envPassword:
			v := os.Getenv("IPMI_PASSWORD")
			if v == "" {
				return nil, errors.New("-E: the IPMI_PASSWORD environment variable is not set or empty")
			}
			pass = []byte(v)
		case f.passwordFile != "":
			if pass, err = inventory.ReadPasswordFile(f.passwordFile); err != nil {
				return nil, fmt.Errorf("--password-file: %v", err)
			}
		default:
			if pass, err = prompt.get(); err != nil {
				return nil, err
			}
		}
		var expected guid.GUID
		if f.guid != "" {
			if expected, err = guid.Parse(f.guid); err != nil {
				return nil, fmt.Errorf("--guid: %v", err)
			}
		}
		targets := make([]probe.Target, 0, len(hosts))
		for _, h := range hosts {
			addr, err := probe.Resolve(ctx, h, defPort)
			if err != nil {
				return nil, fmt.Errorf("--host %s: %v", h, err)
			}
			t := probe.NewTarget(f.name, protocol.Account{Protocol: f.protocol, Address: h, Port: defPort, User: f.user, Password: pass,
				CipherSuite: f.cipherSuite, RedfishAuth: f.redfishAuth}, f.timeout) // --redfish-auth checked in runCheck
			t.Addr, t.Suites, t.Privilege, t.Expected = addr, f.suites, priv, expected
			if t.Name == "" {
				t.Name = h
			}
			targets = append(targets, t)
		}
		return targets, nil
	}
	if f.envPassword {
		return nil, errors.New("-E goes with --host; an inventory names password_env per machine")
	}
	if f.user != "" || f.passwordFile != "" || f.guid != "" || f.name != "" {
		return nil, errors.New("--user, --password-file, --guid and --name go with --host; an inventory names them per machine")
	}
	inv, err := inventory.Load(f.inventory)
	if err != nil {
		return nil, err
	}
	if len(inv.Machines) == 0 {
		return nil, fmt.Errorf("%s: no machines", f.inventory)
	}
	targets := make([]probe.Target, 0, len(inv.Machines))
	passwords := &inventory.Passwords{Dir: inv.Dir}
	for _, m := range inv.Machines {
		proto, port := m.EffectiveProtocol(), m.EffectivePort()
		if proto != inventory.ProtocolIPMI && proto != inventory.ProtocolRedfish {
			return nil, fmt.Errorf("%s:%d: machine %q: protocol %q is not supported by check (ipmi or redfish)", f.inventory, m.Line, m.Name, proto)
		}
		addr, err := probe.Resolve(ctx, m.Address, port)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: machine %q: field \"address\": %v", f.inventory, m.Line, m.Name, err)
		}
		pass, err := passwords.Of(m)
		if errors.Is(err, inventory.ErrNoPassword) {
			pass, err = prompt.get()
		}
		if err != nil { // the error names the machine and the file or variable
			return nil, fmt.Errorf("%s:%d: %v", f.inventory, m.Line, err)
		}
		a := protocol.Account{Protocol: proto, Address: m.Address, Port: port, User: m.User, Password: pass,
			Privilege: m.Privilege, CipherSuite: m.CipherSuite, RedfishAuth: m.RedfishAuth} // validated by Load
		a.CipherSuites, _ = inventory.ParseSuiteList(m.CipherSuites)
		t := probe.NewTarget(m.Name, a, f.timeout)
		t.Addr = addr
		if f.cipherSuite != 0 {
			t.CipherSuite = f.cipherSuite
		}
		if f.suites != nil {
			t.Suites = f.suites
		}
		if m.Privilege == "" || f.privilegeSet {
			t.Privilege = priv
		}
		if m.GUID != "" {
			t.Expected, _ = guid.Parse(m.GUID) // validated by Load
		}
		targets = append(targets, t)
	}
	return targets, nil
}

func toSuites(l []int) []ipmi.CipherSuite {
	if l == nil {
		return nil
	}
	out := make([]ipmi.CipherSuite, len(l))
	for i, n := range l {
		out[i] = ipmi.CipherSuite(n)
	}
	return out
}

// passwordSource supplies the shared password: LIGHTSOUT_PASSWORD, or one
// prompt on the terminal.
type passwordSource struct {
	once sync.Once
	pass []byte
	err  error
}

func (p *passwordSource) get() ([]byte, error) {
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

// printer streams observations as a table or JSON lines, with a progress
// line on a terminal.
type printer struct {
	out, tty io.Writer
	format   string
	progress bool
	total    int
	done     int
	counts   map[state.OOB]int
	reasons  map[state.Reason]int
	rw       *recordWriter // -o json or yaml; nil for a table
	wide     bool          // -o wide: more columns
	lastDraw time.Time
	started  time.Time
	// rowsOnTTY: rows and the progress line share a terminal.
	rowsOnTTY bool
	// quiet: print only the rows of BMCs not Connectable or with a
	// condition (a terminal without --all-rows); hidden counts them.
	quiet  bool
	hidden int
	// failing names the BMCs not Connectable, in arrival order.
	failing []string
}

// MaxFailingNamed is how many failing BMCs check's summary names before
// "and N more".
const MaxFailingNamed = 20

// rowsTerminal reports whether w (where rows go) is a terminal (a
// variable: tests pretend).
var rowsTerminal = func(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func newPrinter(out, tty io.Writer, format string, progress bool, total int) *printer {
	p := &printer{out: out, tty: tty, format: format, progress: progress, total: total,
		counts: map[state.OOB]int{}, reasons: map[state.Reason]int{}, started: time.Now()}
	if f, ok := out.(*os.File); ok && progress {
		p.rowsOnTTY = term.IsTerminal(int(f.Fd()))
	}
	switch {
	case structuredFormat(format):
		p.rw = newRecordWriter(format, out)
	case format == formatWide:
		p.wide = true
		fmt.Fprintf(out, "%-20s %-8s %-21s %-17s %-17s %-36s %-5s %8s %-5s %-14s %5s  %s\n", "NAME", "PROTOCOL", "HOST", "STATE", "REASON", "GUID", "POWER", "MS", "SUITE", "FAILED-STAGE", "TRIES", "DETAIL")
	default:
		fmt.Fprintf(out, "%-20s %-21s %-17s %-17s %-36s %-5s %8s  %s\n", "NAME", "HOST", "STATE", "REASON", "GUID", "POWER", "MS", "DETAIL")
	}
	return p
}

func (p *printer) add(o probe.Observation) {
	p.done++
	p.counts[o.State]++
	if o.Reason != "" {
		p.reasons[o.Reason]++
	}
	if o.State != state.Connectable {
		p.failing = append(p.failing, o.Name)
	}
	if p.quiet && p.rw == nil && o.State == state.Connectable && len(o.Conditions) == 0 {
		p.hidden++
		p.drawProgress(false)
		return
	}
	if p.rowsOnTTY {
		p.clearProgress()
	}
	if p.rw != nil {
		_ = p.rw.write(o)
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

func (p *printer) clearProgress() {
	if p.progress && !p.lastDraw.IsZero() {
		fmt.Fprint(p.tty, "\r\033[K")
	}
}

// drawProgress redraws the progress line: after every row when rows go to
// the same terminal (the row erased it), else at most five times a second.
func (p *printer) drawProgress(force bool) {
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

func (p *printer) summary() string {
	var parts []string
	for _, s := range []state.OOB{state.Connectable, state.NotResponding, state.NotAuthenticated, state.Invalid} {
		if n := p.counts[s]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, s))
		}
	}
	return strings.Join(parts, ", ")
}

func (p *printer) finish() {
	p.clearProgress()
	if p.rw != nil {
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
		fmt.Fprintf(p.out, "%d Connectable %s without conditions not shown (--all-rows shows every row)\n", p.hidden, plural(p.hidden, "row", "rows"))
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
