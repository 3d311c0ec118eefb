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
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/lightsout/lightsout/internal/checkrun"
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
	// cacheDir: what Redfish checks learn between runs ("": nothing).
	cacheDir string
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
What a Redfish check learns is kept for the next run (--cache-dir, sealed):
a BMC that took HTTP Basic is then checked with one request, GET of its
System, over a resumed TLS session, and only if it presents the same
certificate; anything unexpected falls back to the full check.

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
	fl.StringVar(&f.redfishAuth, "redfish-auth", "auto", "Redfish authentication for --host: auto (HTTP Basic, a session login when Basic is refused without a Basic challenge), session or basic")
	fl.StringVar(&f.inventory, "inventory", "", "check every machine in this inventory (.yaml, .yml or .csv; see docs/inventory.md)")
	fl.DurationVar(&f.timeout, "timeout", probe.DefaultTimeout, "declare a BMC NotResponding after this long without a usable reply")
	addOutputFlags(fl, &f.output, &f.outFile)
	fl.IntVar(&f.parallel, "parallel", 10000, "BMCs checked at once (each BMC still sees one request at a time); a silent BMC holds its slot for --timeout")
	fl.IntVar(&f.cipherSuite, "cipher-suite", 0, "pin one RMCP+ cipher suite (no negotiation)")
	fl.StringVar(&f.cipherSuites, "cipher-suites", "", "cipher suites allowed, strongest first, e.g. 17,3 (default 17,3; never 0): the strongest the BMC offers is used (overrides the inventory's cipher_suites)")
	fl.StringVar(&f.privilege, "privilege", "administrator", "privilege level to request: user, operator or administrator")
	fl.IntVar(&f.sockets, "sockets", 2, "UDP sockets the engine spreads BMCs over")
	fl.BoolVar(&f.debug, "debug", false, "log every retransmission and handshake step to stderr (never credentials)")
	fl.StringVar(&f.cacheDir, "cache-dir", checkrun.DefaultCacheDir(), "keep what Redfish checks learn between runs here (each endpoint's System, authentication and TLS session, sealed; docs/redfish.md); '' keeps nothing")
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
	// some memory for less garbage-collection CPU. GOGC in the
	// environment still wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	cfg := checkrun.Config{Sockets: f.sockets, Parallel: f.parallel, CacheDir: f.cacheDir}
	if f.debug {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	run, err := checkrun.New(cfg)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	defer func() {
		if err := run.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "warning:", err)
		}
	}()
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	out := cmd.OutOrStdout()
	progress := term.IsTerminal(int(os.Stderr.Fd())) && len(targets) > 1
	p := newCheckPrinter(out, f.output, progress, len(targets))
	p.Quiet = !f.allRows && rowsTerminal(out)
	run.Run(ctx, targets, p.Add)
	if run.Warning != "" {
		fmt.Fprintln(os.Stderr, "warning:", run.Warning)
	}
	p.Finish()
	if ctx.Err() != nil {
		return &exitError{code: 130, err: errors.New("interrupted")}
	}
	if p.Counts[state.Connectable] != len(targets) {
		return &exitError{code: 1, err: fmt.Errorf("%d of %d BMCs not Connectable", len(targets)-p.Counts[state.Connectable], len(targets))}
	}
	return nil
}

// buildTargets checks the flags that say what to check, then has checkrun
// read every password and resolve every address before any BMC is
// contacted: bad input stops the run with nothing checked.
func buildTargets(ctx context.Context, f *checkFlags, priv ipmi.Privilege) ([]probe.Target, error) {
	switch {
	case f.host != "" && f.inventory != "":
		return nil, errors.New("--host and --inventory exclude each other")
	case f.host == "" && f.inventory == "":
		return nil, errors.New("nothing to check: give --host ADDR --user USER, or --inventory FILE (see --help)")
	}
	spec := checkrun.Spec{User: f.user, PasswordFile: f.passwordFile, GUID: f.guid, Name: f.name, Protocol: f.protocol,
		RedfishAuth: f.redfishAuth, EnvPassword: f.envPassword, Inventory: f.inventory, Timeout: f.timeout,
		CipherSuite: f.cipherSuite, Suites: f.suites, Privilege: priv, PrivilegeSet: f.privilegeSet}
	if f.host != "" {
		if f.user == "" {
			return nil, errors.New("--user (-U) is required with --host")
		}
		if !protocol.Protocol(f.protocol).Known() {
			return nil, fmt.Errorf("--protocol %q: want ipmi or redfish", f.protocol)
		}
		hosts, err := expandNames("--host", []string{f.host})
		if err != nil {
			return nil, err
		}
		if len(hosts) > 1 && (f.name != "" || f.guid != "") {
			return nil, fmt.Errorf("--name and --guid name one BMC; --host %q names %d (use an inventory for per-BMC names and GUIDs)", f.host, len(hosts))
		}
		spec.Hosts, spec.Inventory = hosts, ""
		return checkrun.Targets(ctx, spec, &checkrun.PasswordSource{})
	}
	if f.envPassword {
		return nil, errors.New("-E goes with --host; an inventory names password_env per machine")
	}
	if f.user != "" || f.passwordFile != "" || f.guid != "" || f.name != "" {
		return nil, errors.New("--user, --password-file, --guid and --name go with --host; an inventory names them per machine")
	}
	return checkrun.Targets(ctx, spec, &checkrun.PasswordSource{})
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

// newCheckPrinter is check's printer for -o FORMAT (table, wide, json,
// yaml), the progress line on stderr.
func newCheckPrinter(out io.Writer, format string, progress bool, total int) *checkrun.Printer {
	var records func(any) error
	if structuredFormat(format) {
		records = newRecordWriter(format, out).write
	}
	return checkrun.NewPrinter(out, os.Stderr, records, format == formatWide, progress, total)
}

// rowsTerminal reports whether w (where rows go) is a terminal (a
// variable: tests pretend).
var rowsTerminal = func(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
