package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/lightsout/lightsout/internal/agent"
	"github.com/lightsout/lightsout/internal/pki"
)

func newAgentCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "agent",
		Short: "The host agent: enroll and run it (run), make join tokens (token create), revoke one (revoke)",
		Long: `The host agent keeps a mutually authenticated TLS connection to the manager's
agent listener (lightsout server --agent-listen) and sends heartbeats. The
manager tracks each agent as Up, Down (no heartbeat for 3 intervals) or
PendingUp (connected, but its certificate is unknown or revoked, or its clock
is skewed); see 'lightsout domain status' and docs/agent.md.`,
	}
	c.AddCommand(newAgentRunCmd(), newAgentTokenCmd(), newAgentRevokeCmd(), newAgentOpCmd())
	return c
}

func newAgentRunCmd() *cobra.Command {
	var manager, tokenFile, data, fingerprint, name, logLevel, shutdown string
	c := &cobra.Command{
		Use:   "run --manager HOST:PORT --data DIR [--join-token-file F]",
		Short: "Run the agent: enroll once with a join token, then stay connected",
		Long: `run enrolls the agent on its first start: it makes its own key (DIR/agent.key,
mode 0600), sends a certificate request with the one-time join token over TLS,
pinning the manager's CA by the fingerprint the token carries (or
--ca-fingerprint), and keeps the certificate it receives. Later runs reuse it;
the token is no longer needed. It then keeps one connection to the manager and
sends heartbeats, reconnecting with back-off, until interrupted.`,
		Example: `  lightsout agent token create --token-file admin.token > join.token
  lightsout agent run --manager mgr.example:8624 --join-token-file join.token --data /var/lib/lightsout-agent`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if manager == "" {
				return usageErr("--manager HOST:PORT: required")
			}
			if data == "" {
				return usageErr("--data DIR: required")
			}
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return usageErr("--log-level %q: debug, info, warn or error", logLevel)
			}
			cfg := agent.Config{Manager: manager, DataDir: data, CAFingerprint: fingerprint, Name: name,
				Logger:          slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level})),
				ShutdownCommand: strings.Fields(shutdown)}
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
			cfg.OnEvent = func(e string) { fmt.Fprintf(out, "%s agent %s: %s\n", time.Now().Format(time.RFC3339), manager, e) }
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
	fl.StringVar(&manager, "manager", "", "the manager's agent listener, HOST:PORT")
	fl.StringVar(&tokenFile, "join-token-file", "", "file holding the one-time join token (first run only)")
	fl.StringVar(&data, "data", "", "the agent's data directory (key, certificate, manager CA)")
	fl.StringVar(&fingerprint, "ca-fingerprint", "", "SHA-256 of the manager's CA certificate, if the token carries none")
	fl.StringVar(&name, "name", "", "name to enroll under (default: the host name)")
	fl.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	fl.StringVar(&shutdown, "shutdown-command", "", "command the os-shutdown op runs, split on spaces and run without a shell (e.g. \"systemctl poweroff\"); empty: the agent does not offer os-shutdown")
	return c
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
			cl, err := f.client(cmd)
			if err != nil {
				return err
			}
			st, err := cl.RevokeAgent(cmd.Context(), id)
			if err != nil {
				return apiErr(err)
			}
			if f.json() {
				return jsonLines(cmd.OutOrStdout(), st)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "agent %d (%s): %s, %s\n", st.ID, st.Name, st.State, st.Reason)
			return nil
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
  bmc-check          whether the in-band IPMI device (/dev/ipmi0) exists
  os-shutdown        the agent's configured shutdown command (admin)
  restart-link       acknowledged only (the host link comes later)

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
			if f.json() {
				if err := jsonLines(cmd.OutOrStdout(), res); err != nil {
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
		Short: "One line per agent: state, flags, node ID, version, address, last heartbeat",
		Long: `status lists every agent, one line each:

  I  Up: heartbeats arrive
  O  Down: no heartbeat for 3 intervals (or the connection closed)
  i  PendingUp: connected, but authentication fails (unknown or revoked
     certificate, clock skew): the reason follows

then A (nothing queued) or a (the agent runs another version than the
manager), the node ID, the agent's version, its address, its last heartbeat
and, for O and i, the reason.

Exit status: 0 when every agent is Up, 1 otherwise.` + serverHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.checkOutput(); err != nil {
				return err
			}
			cl, err := f.client(cmd)
			if err != nil {
				return err
			}
			as, err := cl.Agents(cmd.Context())
			if err != nil {
				return apiErr(err)
			}
			notUp := printDomain(cmd.OutOrStdout(), f.json(), as.Agents)
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

func printDomain(out io.Writer, asJSON bool, as []agent.Status) (notUp int) {
	for _, a := range as {
		if a.State != agent.Up {
			notUp++
		}
	}
	if asJSON {
		_ = jsonLines(out, as...)
		return notUp
	}
	fmt.Fprintln(out, "Management Domain Status: Agents")
	for _, a := range as {
		flag := "A"
		if a.VersionSkew {
			flag = "a"
		}
		hb := "never"
		if !a.LastHeartbeat.IsZero() {
			hb = ago(a.LastHeartbeat)
		}
		line := fmt.Sprintf("%s %s 0x%04x %-10s %-15s %-12s %s", stateLetter(a.State), flag, a.ID, orDefault(a.Version, "-"),
			orDefault(a.Address, "-"), a.Name, hb)
		if a.Reason != "" && a.State != agent.Up {
			line += "  " + a.Reason
		}
		fmt.Fprintln(out, line)
	}
	return notUp
}
