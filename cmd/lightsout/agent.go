package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/lightsout/lightsout/internal/agent"
	"github.com/lightsout/lightsout/internal/api/client"
	"github.com/lightsout/lightsout/internal/hostlink"
	"github.com/lightsout/lightsout/internal/pki"
)

func newAgentCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "agent",
		Short: "The host agent: run it (run), its own view (status), join tokens (token create), revoke, remote ops (op)",
		Long: `The host agent keeps a mutually authenticated TLS connection to each manager's
agent listener (lightsout server --agent-listen) and sends heartbeats. The
manager tracks each agent as Up, Down (no heartbeat for 3 intervals) or
PendingUp (connected, but its certificate is unknown, revoked or expired, its
clock is skewed, or its address is not in the trusted host list); see
'lightsout domain status'. The agent also watches its host link (its own path
to the BMC: in-band, then IPv4 link-local, then IPv6) and renews its
certificates before they expire; 'lightsout agent status' on the host shows
its view, 'lightsout diag --agent NAME' the diagnosis. docs/agent.md.`,
	}
	c.AddCommand(newAgentRunCmd(), newAgentStatusCmd(), newAgentTokenCmd(), newAgentRevokeCmd(), newAgentOpCmd())
	return c
}

func newAgentRunCmd() *cobra.Command {
	var managers []string
	var tokenFile, data, fingerprint, name, logLevel, shutdown string
	var rediscover time.Duration
	var lf linkFlags
	c := &cobra.Command{
		Use:   "run --manager HOST:PORT --data DIR [--join-token-file F] [host link flags]",
		Short: "Run the agent: enroll once with a join token, then stay connected; watch the host link",
		Long: `run enrolls the agent on its first start: it makes its own key (DIR/agent.key,
mode 0600), sends a certificate request with the one-time join token over TLS,
pinning the manager's CA by the fingerprint the token carries (or
--ca-fingerprint), and keeps the certificate it receives. Later runs reuse it.

It then keeps one connection to each manager (--manager, repeatable, plus the
managers sharing their database, rediscovered every --rediscover) and sends
heartbeats, reconnecting with back-off, until interrupted.

Certificates: the agent's certificate and the host link's are renewed over
the connection 30 days before they expire (with a warning event until done).
If a manager refuses the certificate (revoked, unknown, expired), the agent
re-reads --join-token-file: an admin's fresh token there enrolls it again
with a new key, under the same node.

Host link (the agent's own path to its BMC): the in-band device
(/dev/ipmi0) first, then the BMC's link endpoint over IPv4 link-local, then
IPv6; each can be disabled (--no-link when the host has no path to its
BMC). Timeouts are retried and counted, and reported to the manager (flood
detection). The path in use is audited in DIR/audit.log.
'lightsout agent status --data DIR' shows the agent's view.`,
		Example: `  lightsout agent token create --out join.token       # on the manager, admin
  lightsout agent run --manager mgr.example:8624 --join-token-file join.token --data /var/lib/lightsout-agent
  lightsout agent run --manager mgr-a:8624 --manager mgr-b:8624 --data /var/lib/lightsout-agent \
      --link-ipv4 169.254.0.1:443 --link-ipv6 '[fe80::1%usb0]:443' --link-timeout 5s --link-retries 2`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(managers) == 0 || managers[0] == "" {
				return usageErr("--manager HOST:PORT: required")
			}
			if data == "" {
				return usageErr("--data DIR: required")
			}
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return usageErr("--log-level %q: debug, info, warn or error", logLevel)
			}
			if rediscover != 0 && rediscover < time.Second {
				return usageErr("--rediscover %v: at least 1s (negative: never)", rediscover)
			}
			link, err := lf.config()
			if err != nil {
				return err
			}
			cfg := agent.Config{Manager: managers[0], Managers: managers[1:], DataDir: data, CAFingerprint: fingerprint, Name: name,
				Logger:          slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level})),
				ShutdownCommand: strings.Fields(shutdown), Rediscover: rediscover, Link: link, LinkInterval: lf.interval}
			if tokenFile != "" {
				cfg.TokenFile = tokenFile
			}
			if _, err := os.Stat(filepath.Join(data, agent.KeyFile)); err != nil {
				if tokenFile == "" {
					return usageErr("--join-token-file: required until the agent is enrolled (no %s in %s)", agent.KeyFile, data)
				}
				tok, err := readTokenFile(cmd, tokenFile)
				if err != nil {
					return usageErr("--join-token-file: %v", err)
				}
				cfg.JoinToken = tok
			}
			out := cmd.OutOrStdout()
			cfg.OnEvent = func(e string) { fmt.Fprintf(out, "%s agent: %s\n", time.Now().Format(time.RFC3339), e) }
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if err := agent.Run(ctx, cfg); err != nil {
				if errors.Is(err, agent.ErrEnrollRefused) {
					return &exitError{code: 1, err: err}
				}
				return err
			}
			return nil
		},
	}
	fl := c.Flags()
	fl.StringArrayVar(&managers, "manager", nil, "a manager's agent listener, HOST:PORT (repeatable; the first one enrolls the agent)")
	fl.StringVar(&tokenFile, "join-token-file", "", "file holding a one-time join token: read at the first run, and again whenever a manager refuses the agent's certificate")
	fl.StringVar(&data, "data", "", "the agent's data directory (keys, certificates, manager CA, status.json, audit.log)")
	fl.StringVar(&fingerprint, "ca-fingerprint", "", "SHA-256 of the manager's CA certificate, if the token carries none")
	fl.StringVar(&name, "name", "", "name to enroll under (default: the host name)")
	fl.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	fl.StringVar(&shutdown, "shutdown-command", "", "command the os-shutdown op runs, split on spaces and run without a shell (e.g. \"systemctl poweroff\"); empty: the agent does not offer os-shutdown")
	fl.DurationVar(&rediscover, "rediscover", 5*time.Minute, "how often to ask for the managers sharing the database (negative: never)")
	lf.add(fl)
	return c
}

// linkFlags configure the host link.
type linkFlags struct {
	off                             bool
	device, ipv4, ipv6, fingerprint string
	noInBand, noIPv4, noIPv6        bool
	timeout, interval               time.Duration
	retries                         int
}

func (f *linkFlags) add(fl *pflag.FlagSet) {
	fl.BoolVar(&f.off, "no-link", false, "do not watch the host link at all")
	fl.StringVar(&f.device, "link-device", hostlink.DefaultDevice, "the in-band IPMI device")
	fl.StringVar(&f.ipv4, "link-ipv4", hostlink.DefaultIPv4, "the BMC's link endpoint over IPv4 link-local, HOST:PORT")
	fl.StringVar(&f.ipv6, "link-ipv6", hostlink.DefaultIPv6, "the BMC's link endpoint over IPv6 (a link-local address needs its %zone), [HOST]:PORT")
	fl.BoolVar(&f.noInBand, "no-inband", false, "do not use the in-band device")
	fl.BoolVar(&f.noIPv4, "no-ipv4", false, "never reach the BMC over IPv4")
	fl.BoolVar(&f.noIPv6, "no-ipv6", false, "never reach the BMC over IPv6")
	fl.StringVar(&f.fingerprint, "link-bmc-fingerprint", "", "SHA-256 the BMC's link certificate must have (empty: any, reported)")
	fl.DurationVar(&f.timeout, "link-timeout", hostlink.DefaultTimeout, "how long one host link request may take (in-band and network)")
	fl.IntVar(&f.retries, "link-retries", hostlink.DefaultRetries, "times a timed-out host link request is retried (0: none)")
	fl.DurationVar(&f.interval, "link-interval", time.Minute, "how often the host link is checked")
}

func (f *linkFlags) config() (*hostlink.Config, error) {
	if f.off {
		return nil, nil
	}
	if f.timeout < 10*time.Millisecond || f.timeout > time.Minute {
		return nil, usageErr("--link-timeout %v: from 10ms to 1m", f.timeout)
	}
	if f.retries < 0 || f.retries > 10 {
		return nil, usageErr("--link-retries %d: from 0 to 10", f.retries)
	}
	if f.interval < time.Second {
		return nil, usageErr("--link-interval %v: at least 1s", f.interval)
	}
	for flag, v := range map[string]string{"--link-ipv4": f.ipv4, "--link-ipv6": f.ipv6} {
		if _, _, err := net.SplitHostPort(v); err != nil {
			return nil, usageErr("%s %q: HOST:PORT (%v)", flag, v, err)
		}
	}
	retries := f.retries
	if retries == 0 {
		retries = -1 // hostlink: 0 is its default, negative none
	}
	return &hostlink.Config{Device: f.device, DisableInBand: f.noInBand, IPv4: f.ipv4, IPv6: f.ipv6,
		DisableIPv4: f.noIPv4, DisableIPv6: f.noIPv6, Timeout: f.timeout, Retries: retries,
		BMCFingerprint: strings.ToLower(strings.ReplaceAll(f.fingerprint, ":", ""))}, nil
}

func newAgentStatusCmd() *cobra.Command {
	var data, output, outFile string
	var auditLines int
	c := &cobra.Command{
		Use:   "status --data DIR",
		Short: "The agent's own view (run on the host): its managers, certificates, host link",
		Long: `status reads what the agent running with --data DIR last wrote (DIR/status.json)
and its audit log: each manager it keeps a connection to (Up, Connecting,
Refused with the manager's reason, Untrusted by the pinned CA, Unreachable),
its certificates (days left, renewal errors), the host link (path in use, why
IPv4 failed, timeouts) and the events it holds while no manager is
reachable. It says whether the agent process is still running.

Exit status: 0 when the agent runs, every manager is Up and the link is Up
(or not configured); 1 otherwise; 2 usage.`,
		Example: `  lightsout agent status --data /var/lib/lightsout-agent
  lightsout agent status --data /var/lib/lightsout-agent --audit 20`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if data == "" {
				return usageErr("--data DIR: required (the agent's data directory)")
			}
			if err := checkFormat(output); err != nil {
				return err
			}
			st, err := agent.ReadLocalStatus(data)
			if err != nil {
				return &exitError{code: 1, err: fmt.Errorf("no agent status in %s (has the agent run there?): %w", data, err)}
			}
			running := processAlive(st.PID)
			out := cmd.OutOrStdout()
			if structuredFormat(output) {
				if err := emit(output, out, map[string]any{"running": running, "status": st}); err != nil {
					return err
				}
				if bad := printAgentStatus(io.Discard, st, running); bad > 0 {
					return &exitError{code: 1, err: fmt.Errorf("%d problem(s)", bad)}
				}
				return nil
			}
			bad := printAgentStatus(out, st, running)
			if auditLines > 0 {
				recs, err := agent.ReadAudit(data, auditLines)
				if err == nil {
					fmt.Fprintln(out, "Audit (latest last):")
					for _, r := range recs {
						fmt.Fprintf(out, "  %s  %-24s %s\n", r.At.Local().Format(time.RFC3339), r.Action, r.Detail)
					}
				}
			}
			if bad > 0 {
				return &exitError{code: 1, err: fmt.Errorf("%d problem(s)", bad)}
			}
			return nil
		},
	}
	c.Flags().StringVar(&data, "data", "", "the agent's data directory")
	addOutputFlags(c.Flags(), &output, &outFile)
	c.Flags().IntVar(&auditLines, "audit", 5, "show this many latest audit log lines (0: none)")
	return c
}

// processAlive tells whether a process with pid exists (signal 0).
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	err = p.Signal(syscall.Signal(0))
	return err == nil || errors.Is(err, syscall.EPERM)
}

func printAgentStatus(out io.Writer, st agent.LocalStatus, running bool) (bad int) {
	run := fmt.Sprintf("running (pid %d)", st.PID)
	if !running {
		run = fmt.Sprintf("NOT running (pid %d gone); status as of %s", st.PID, st.Updated.Local().Format(time.RFC3339))
		bad++
	}
	fmt.Fprintf(out, "Agent %s %s: %s\n", st.Name, st.Version, run)
	fmt.Fprintf(out, "Trusted manager CA: %s\n", orDefault(st.CAFingerprint, "none (not enrolled)"))
	fmt.Fprintln(out, "Managers:")
	for _, m := range st.Managers {
		line := fmt.Sprintf("  %-11s %-22s since %s", m.State, m.Address, ago(m.Since))
		if m.NodeID != 0 {
			line += fmt.Sprintf("  node 0x%04x", m.NodeID)
		}
		if !m.LastAck.IsZero() {
			line += "  last ack " + ago(m.LastAck)
		}
		if m.Discovered {
			line += "  (rediscovered)"
		}
		if m.Reason != "" {
			line += "  " + m.Reason
		}
		if m.State != agent.MgrUp {
			bad++
		}
		fmt.Fprintln(out, line)
	}
	fmt.Fprintln(out, "Certificates:")
	for _, c := range st.Certs {
		line := fmt.Sprintf("  %-6s %-9s", c.Kind, c.State)
		if !c.NotAfter.IsZero() {
			line += fmt.Sprintf(" until %s (%d days)", c.NotAfter.Local().Format("2006-01-02"), c.DaysLeft)
		}
		if c.RenewError != "" {
			line += "  renewal failing: " + c.RenewError
		}
		if c.State == agent.CertExpired || c.State == agent.CertMissing && c.Kind == "agent" {
			bad++
		}
		fmt.Fprintln(out, line)
	}
	if l := st.Link; l != nil {
		line := fmt.Sprintf("Host link: %s", l.State)
		if l.Path != "" {
			line += fmt.Sprintf(" over %s at %s", l.Path, l.Address)
		}
		if l.IPv4Failed {
			line += " (IPv4 failed: " + l.Reason + ")"
		} else if l.Reason != "" {
			line += ": " + l.Reason
		}
		if l.Timeouts > 0 {
			line += fmt.Sprintf("; %d timeouts (%.1f/min)", l.Timeouts, l.TimeoutRate)
		}
		fmt.Fprintln(out, line)
		if l.State != agent.LinkUp {
			bad++
			if l.Remedy != "" {
				fmt.Fprintln(out, "  remedy: "+l.Remedy)
			}
		}
	} else {
		fmt.Fprintln(out, "Host link: not checked (none configured, or not yet)")
	}
	if st.Queued > 0 || st.Dropped > 0 {
		fmt.Fprintf(out, "Queued for a manager: %d events (%d dropped)\n", st.Queued, st.Dropped)
	}
	return bad
}

func newAgentTokenCmd() *cobra.Command {
	c := &cobra.Command{Use: "token", Short: "Agent join tokens"}
	f := &apiFlags{}
	var ttl, outFile string
	create := &cobra.Command{
		Use:   "create [--ttl 24h] [--out FILE]",
		Short: "Make a one-time join token for one agent (admin)",
		Long: `create makes a one-time join token (stored hashed on the server) that enrolls one
agent before it expires. The token embeds the manager's CA fingerprint, which
the agent pins. It is printed once, or written to --out (mode 0600).` + serverHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if ttl != "" {
				if d, err := time.ParseDuration(ttl); err != nil || d <= 0 || d > 720*time.Hour {
					return usageErr("--ttl %q: a duration from 1s to 720h", ttl)
				}
			}
			cl, err := f.client(cmd)
			if err != nil {
				return err
			}
			jt, err := cl.CreateJoinToken(cmd.Context(), ttl)
			if err != nil {
				return apiErr(err)
			}
			if outFile != "" {
				if err := pki.WriteFile(outFile, []byte(jt.Token+"\n"), 0o600); err != nil {
					return &exitError{code: 1, err: fmt.Errorf("--out: %w", err)}
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "join token written to %s (expires %s)\n", outFile, jt.ExpiresAt.Local().Format(time.RFC3339))
				return nil
			}
			fmt.Fprintln(cmd.OutOrStdout(), jt.Token)
			fmt.Fprintf(cmd.ErrOrStderr(), "one-time join token, expires %s; CA fingerprint %s\n", jt.ExpiresAt.Local().Format(time.RFC3339), jt.CAFingerprint)
			return nil
		},
	}
	f.add(create.Flags(), false)
	create.Flags().StringVar(&ttl, "ttl", "", "lifetime (default 24h, at most 720h)")
	create.Flags().StringVar(&outFile, "out", "", "write the token to this new file (0600) instead of stdout")
	c.AddCommand(create)
	return c
}

func newAgentRevokeCmd() *cobra.Command {
	f := &apiFlags{}
	c := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an agent's certificates: it becomes PendingUp, \"certificate revoked\" (admin)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(strings.TrimPrefix(args[0], "0x"), 0, 64)
			if strings.HasPrefix(args[0], "0x") {
				id, err = strconv.ParseInt(args[0][2:], 16, 64)
			}
			if err != nil || id < 1 {
				return usageErr("ID %q: the agent's node ID (as 'domain status' shows it)", args[0])
			}
			return callAPI(cmd, f, func(cl *client.Client, ctx context.Context) (agent.Status, error) {
				return cl.RevokeAgent(ctx, id)
			}, func(out io.Writer, st agent.Status) {
				fmt.Fprintf(out, "agent %d (%s): %s, %s\n", st.ID, st.Name, st.State, st.Reason)
			})
		},
	}
	f.add(c.Flags(), true)
	return c
}

func newAgentOpCmd() *cobra.Command {
	f := &apiFlags{}
	c := &cobra.Command{
		Use:   "op ID OP",
		Short: "Run a remote operation through an agent: " + strings.Join(agent.Ops, ", ") + " (operator; os-shutdown admin)",
		Long: `op asks an Up agent to run one allowlisted operation and prints its answer:

  collect-inventory  hostname, OS, kernel, CPUs, memory
  bmc-check          the in-band device (/dev/ipmi0) and a fresh host link check
  os-shutdown        the agent's configured shutdown command (admin)
  restart-link       re-run the host link's path selection (in-band, IPv4, IPv6)
  renew-certs        renew the agent's and the host link's certificates now
  refresh-trust      re-read the trusted manager CA and rediscover the managers

It is refused when the agent is not Up (the reason gives its state) or does
not report the op among its capabilities. Every op is audited.
Exit status: 0 when the agent ran it, 1 otherwise.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil || id < 1 {
				return usageErr("ID %q: the agent's node ID (as 'domain status' shows it)", args[0])
			}
			if !agent.IsOp(args[1]) {
				return usageErr("OP %q: one of %s", args[1], strings.Join(agent.Ops, ", "))
			}
			cl, err := f.client(cmd)
			if err != nil {
				return err
			}
			res, err := cl.AgentOp(cmd.Context(), id, args[1])
			if err != nil {
				return apiErr(err)
			}
			if f.structured() {
				if err := emit(f.output, cmd.OutOrStdout(), res); err != nil {
					return err
				}
			} else {
				status := "ok"
				if !res.OK {
					status = "failed: " + res.Error
				}
				fmt.Fprintf(cmd.OutOrStdout(), "agent %d (%s) %s: %s\n", res.AgentID, res.Agent, res.Op, status)
				if len(res.Result) > 0 {
					fmt.Fprintf(cmd.OutOrStdout(), "%s\n", res.Result)
				}
			}
			if !res.OK {
				return errors.New(res.Op + " failed on agent " + res.Agent + ": " + res.Error)
			}
			return nil
		},
	}
	f.add(c.Flags(), true)
	return c
}

func newDomainCmd() *cobra.Command {
	c := &cobra.Command{Use: "domain", Short: "The management domain: the agents this manager tracks"}
	f := &apiFlags{}
	status := &cobra.Command{
		Use:   "status",
		Short: "One line per agent: state, flags, node ID, version, address, last heartbeat, host link, certificate",
		Long: `status lists every agent, one line each:

  I  Up: heartbeats arrive
  O  Down: no heartbeat for 3 intervals (or the connection closed)
  i  PendingUp: connected, but authentication fails (unknown or revoked
     certificate, clock skew): the reason follows

then A, or a when the agent runs another version than the manager (version
skew), the node ID, the agent's version, its address, name, last heartbeat,
its host link (link:ipv4, link:ipv6! when IPv4 failed, link:Down,
link:CertExpired, link:- when not reported), its certificate's remaining life
(cert:300d, cert:EXPIRED), the messages queued for it, and, for O and i, the
reason.

Exit status: 0 when every agent is Up, 1 otherwise.` + serverHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			as, err := fetch(cmd, f, (*client.Client).Agents)
			if err != nil {
				return err
			}
			notUp := printDomain(cmd.OutOrStdout(), f.output, as.Agents)
			if notUp > 0 {
				return &exitError{code: 1, err: fmt.Errorf("%d of %d agents not Up", notUp, len(as.Agents))}
			}
			return nil
		},
	}
	f.add(status.Flags(), true)
	c.AddCommand(status)
	return c
}

// stateLetter is the rmcdomainstatus-like first column.
func stateLetter(s string) string {
	switch s {
	case agent.Up:
		return "I"
	case agent.PendingUp:
		return "i"
	}
	return "O"
}

// linkColumn is the host link in a few characters: "link:ipv4", "link:ipv6!"
// (IPv4 failed), "link:Down", "link:-" (not reported).
func linkColumn(l *agent.LinkStatus) string {
	switch {
	case l == nil:
		return "link:-"
	case l.State == agent.LinkUp && l.IPv4Failed:
		return "link:" + l.Path + "!"
	case l.State == agent.LinkUp:
		return "link:" + l.Path
	}
	return "link:" + l.State
}

// certColumn is the agent certificate's remaining life.
func certColumn(notAfter time.Time) string {
	if notAfter.IsZero() {
		return "cert:-"
	}
	d := time.Until(notAfter)
	if d <= 0 {
		return "cert:EXPIRED"
	}
	return fmt.Sprintf("cert:%dd", int(d.Hours()/24))
}

func printDomain(out io.Writer, format string, as []agent.Status) (notUp int) {
	for _, a := range as {
		if a.State != agent.Up {
			notUp++
		}
	}
	if structuredFormat(format) {
		_ = emit(format, out, as...)
		return notUp
	}
	fmt.Fprintln(out, "Management Domain Status: Agents (S: I Up, O Down, i PendingUp; V: A the manager's version, a another)")
	fmt.Fprintf(out, "%s %s %-6s %-10s %-15s %-12s %-9s %-18s %s\n", "S", "V", "NODE", "VERSION", "ADDRESS", "NAME", "HEARTBEAT", "LINK", "CERT")
	for _, a := range as {
		flag := "A"
		if a.VersionSkew {
			flag = "a"
		}
		hb := "never"
		if !a.LastHeartbeat.IsZero() {
			hb = ago(a.LastHeartbeat)
		}
		line := fmt.Sprintf("%s %s 0x%04x %-10s %-15s %-12s %-9s %-18s %s", stateLetter(a.State), flag, a.ID, orDefault(a.Version, "-"),
			orDefault(a.Address, "-"), a.Name, hb, linkColumn(a.Link), certColumn(a.CertNotAfter))
		if a.Queued > 0 {
			line += fmt.Sprintf("  %d queued", a.Queued)
		}
		if a.Reason != "" && a.State != agent.Up {
			line += "  " + a.Reason
		}
		fmt.Fprintln(out, line)
	}
	return notUp
}
