package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/lightsout/lightsout/internal/agent"
	"github.com/lightsout/lightsout/internal/api"
	"github.com/lightsout/lightsout/internal/audit"
	"github.com/lightsout/lightsout/internal/events"
	"github.com/lightsout/lightsout/internal/exporter"
	"github.com/lightsout/lightsout/internal/inventory"
	"github.com/lightsout/lightsout/internal/server"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
)

type serverFlags struct {
	data       string
	db         string
	listen     string
	interval   time.Duration
	timeout    time.Duration
	confirm    int
	authRetry  time.Duration
	maxBackoff time.Duration
	parallel   int
	fullEvery  int
	suites     string
	logLevel   string

	webhooks       []string
	webhookSecret  string
	webhookMinSev  string
	eventRetention time.Duration
	floodThreshold float64

	auditEvery time.Duration

	agentListen    string
	agentInterval  time.Duration
	agentAllow     []string
	agentAdvertise []string

	channelMetricsMax int

	cluster clusterFlags
}

// defaultListen is the API's default address: loopback only.
const defaultListen = "127.0.0.1:8623"

func newServerCmd() *cobra.Command {
	f := &serverFlags{}
	c := &cobra.Command{
		Use:   "server [--data DIR] [--db postgres://…] [--listen ADDR]",
		Short: "Run the management server: inventory, continuous monitor, power operations, REST API, metrics",
		Long: `server is the manager. It keeps the inventory (machines, OOB accounts, enclosures)
in a database, checks every OOB channel continuously and gently, stores every state
change with its evidence, runs power and lifecycle operations, and serves the web
console (/, log in with an API token), the REST API (/api/v1, OpenAPI at
/api/v1/openapi.json) and Prometheus metrics (/metrics). With --agent-listen it
also accepts host agents over mutual TLS (lightsout agent, domain status).

Agents (docs/agent.md): --agent-allow is the trusted host list (CIDRs; an agent
from elsewhere is refused, or PendingUp with that reason). Managers sharing one
PostgreSQL database need the same password key (copy DATA/secret.key from the
first) and the same agent CA (copy DATA/agent-ca.pem and agent-ca.key); they
split the agents between them: each advertises --agent-advertise (default its
listener's address) and agents rediscover them every 5 minutes.

Scale-out (docs/scale-out.md): several servers on one PostgreSQL database (--db)
split the fleet. Each registers under --name with a lease (--lease) and checks only
machines of its --zone(s) that fall to it; a dead one's machines are taken over, and
check, power and diagnosis of a machine another instance checks are forwarded to it.
All need the same key (--key-file, or DATA/secret.key copied from the first). SQLite
is single-instance: a second server on the same SQLite database is refused.
'lightsout instances' lists them.

Storage: embedded SQLite in --data (default), or PostgreSQL with --db. The data
directory also holds the key that encrypts BMC passwords at rest (secret.key,
mode 0600, created on first start) and, on the first start only, the first admin
API token (admin.token, mode 0600). Keep the key: without it stored passwords
cannot be read.

Monitoring: each channel every --interval (±10% jitter). A NotResponding channel
backs off (doubling, up to --max-backoff). A refused account is retried at most
once per --auth-retry, and at once after its credentials are changed — once per
--auth-retry however many edits; the same credentials re-sent are no change (BMCs
lock accounts after a few failures). Stored passwords are bound to their
account's protocol, address and port (docs/security.md). A change of state is declared after --confirm
consecutive observations (Invalid and NotAuthenticated at once). Never more than
one session and one request at a time per BMC. A healthy BMC gets a light check
(session, GUID, power: 6 datagrams) and every --full-every-th time the full one
(presence ping, auth capabilities, device ID too: 9).

Events (docs/events.md): every state change and problem is an event with a typed
code and severity; repeats within a code's window are counted, not stored again;
events older than --event-retention are deleted. A BMC with more than
--flood-threshold unanswered requests a minute raises oob.timeout_flood; when at
least half of the BMCs sharing a firmware, enclosure or subnet raise the same code,
one fleet.correlated event names what they share. Each --webhook URL receives new
events of at least --webhook-min-severity as a JSON POST, signed with HMAC-SHA256
when --webhook-secret-file is given (the secret is never a flag value).

Security audit (docs/security-audit.md): every --audit-every (default 24h, 0 turns
the schedule off) each Connectable BMC is audited once — cipher suite 0, anonymous
or null user, IPMI 1.5 none/straight/MD2, its vendor's default password — at most 8
at once, spread with jitter; findings make the channel Insecure, a change between
two audits is an audit.drift event. 'lightsout security --run' audits on demand.

Metrics (/metrics, no token): fleet totals, and per channel lightsout_channel_up,
lightsout_channel_state{state}, lightsout_channel_condition{condition} and
lightsout_channel_last_check_timestamp_seconds labelled machine, account,
protocol, group and enclosure — for at most --channel-metrics-max channels (above,
they are off with a warning and lightsout_channel_series_enabled 0). /probe?target=NAME
(operator token) checks one machine now, in blackbox_exporter's style
(probe_success). Alerting rules: deploy/prometheus/.

Example:
  lightsout server --data /var/lib/lightsout
  lightsout import fleet.yaml --token-file /var/lib/lightsout/admin.token
  lightsout machines list --token-file /var/lib/lightsout/admin.token`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runServer(cmd, f) },
	}
	fl := c.Flags()
	fl.StringVar(&f.data, "data", defaultDataDir(), "data directory (SQLite database, key file, first admin token)")
	fl.StringVar(&f.db, "db", "", "PostgreSQL DSN (postgres://user@host/db); default: SQLite in --data")
	fl.StringVar(&f.listen, "listen", defaultListen, "HTTP listen address (API, metrics); loopback unless you say otherwise")
	fl.DurationVar(&f.interval, "interval", state.DefaultSchedule.Interval, "check interval per channel")
	fl.DurationVar(&f.timeout, "timeout", 3*time.Second, "silence after which a BMC is NotResponding")
	fl.IntVar(&f.confirm, "confirm", state.DefaultDamping.Consecutive, "consecutive observations before a state change is declared")
	fl.DurationVar(&f.authRetry, "auth-retry", state.DefaultSchedule.AuthRetry, "least time between attempts on a refused account")
	fl.DurationVar(&f.maxBackoff, "max-backoff", state.DefaultSchedule.MaxBackoff, "longest interval for a NotResponding channel")
	fl.IntVar(&f.parallel, "parallel", 4096, "checks in flight at most")
	fl.IntVar(&f.fullEvery, "full-every", 10, "one check in N of a healthy BMC is full (ping, auth capabilities, device ID); the rest are light")
	fl.StringVar(&f.suites, "cipher-suites", "17,3", "fleet-wide RMCP+ cipher suite allow-list, strongest first (never 0); an account's cipher_suites overrides it")
	fl.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fl.StringVar(&f.agentListen, "agent-listen", "", "agents' mutual-TLS listen address, e.g. 127.0.0.1:8624 (empty: no agent listener)")
	fl.DurationVar(&f.agentInterval, "agent-interval", 10*time.Second, "agents' heartbeat interval; an agent is Down after 3 missed")
	fl.StringSliceVar(&f.agentAllow, "agent-allow", nil, "trusted host list: CIDRs agents may connect from (repeatable or comma-separated; empty: any)")
	fl.StringSliceVar(&f.agentAdvertise, "agent-advertise", nil, "HOST:PORT agents should dial for this manager, handed to agents that rediscover (default: the --agent-listen address)")
	fl.DurationVar(&f.auditEvery, "audit-every", 24*time.Hour, "security audit of each BMC at most this often (0: no scheduled audits)")
	fl.StringArrayVar(&f.webhooks, "webhook", nil, "POST new events to this http(s) URL (repeatable)")
	fl.StringVar(&f.webhookSecret, "webhook-secret-file", "", "file whose first line keys the webhooks' HMAC-SHA256 signature (mode 0600)")
	fl.StringVar(&f.webhookMinSev, "webhook-min-severity", "warning", "send webhooks only events at least this severe: info, warning or critical")
	fl.DurationVar(&f.eventRetention, "event-retention", events.DefaultRetention, "delete events whose last occurrence is older than this")
	fl.IntVar(&f.channelMetricsMax, "channel-metrics-max", exporter.DefaultMaxChannels, "serve per-channel series on /metrics for at most this many channels (10 series each; above it they are off, with a warning; -1: never)")
	fl.Float64Var(&f.floodThreshold, "flood-threshold", events.DefaultFlood.Threshold, "unanswered requests a minute on one BMC that raise oob.timeout_flood")
	f.cluster.add(fl)
	return c
}

func defaultDataDir() string {
	if d := os.Getenv("LIGHTSOUT_DATA"); d != "" {
		return d
	}
	if os.Geteuid() == 0 {
		return "/var/lib/lightsout"
	}
	if d, err := os.UserConfigDir(); err == nil {
		return d + "/lightsout"
	}
	return ".lightsout"
}

func (f *serverFlags) config(log *slog.Logger) (server.Config, error) {
	if f.interval < time.Second {
		return server.Config{}, usageErr("--interval %v: must be at least 1s", f.interval)
	}
	if f.timeout <= 0 || f.timeout > time.Minute {
		return server.Config{}, usageErr("--timeout %v: must be between 0 and 1m", f.timeout)
	}
	if f.confirm < 1 || f.confirm > 100 {
		return server.Config{}, usageErr("--confirm %d: must be 1-100", f.confirm)
	}
	if f.authRetry < time.Minute {
		return server.Config{}, usageErr("--auth-retry %v: must be at least 1m (account lockout)", f.authRetry)
	}
	if f.fullEvery < 1 {
		return server.Config{}, usageErr("--full-every %d: must be at least 1", f.fullEvery)
	}
	if f.parallel < 1 {
		return server.Config{}, usageErr("--parallel %d: must be at least 1", f.parallel)
	}
	suites, err := inventory.ParseSuiteList(strings.Split(f.suites, ","))
	if err != nil || len(suites) == 0 {
		if err == nil {
			err = errors.New("is empty")
		}
		return server.Config{}, usageErr("--cipher-suites %q: %v", f.suites, err)
	}
	if f.data == "" {
		return server.Config{}, usageErr("--data: required")
	}
	sch := state.DefaultSchedule
	sch.Interval, sch.AuthRetry = f.interval, f.authRetry
	if f.maxBackoff > 0 {
		sch.MaxBackoff = f.maxBackoff
	}
	ev, err := f.eventsConfig()
	if err != nil {
		return server.Config{}, err
	}
	if f.auditEvery != 0 && f.auditEvery < time.Hour {
		return server.Config{}, usageErr("--audit-every %v: 0 (off) or at least 1h (each audit tries logins that must fail)", f.auditEvery)
	}
	if f.agentInterval < 100*time.Millisecond || f.agentInterval > 10*time.Minute {
		return server.Config{}, usageErr("--agent-interval %v: from 100ms to 10m", f.agentInterval)
	}
	hub := agent.HubConfig{Interval: f.agentInterval}
	for _, a := range f.agentAllow {
		p, err := netip.ParsePrefix(a)
		if err != nil {
			if ip, ierr := netip.ParseAddr(a); ierr == nil {
				p = netip.PrefixFrom(ip, ip.BitLen())
			} else {
				return server.Config{}, usageErr("--agent-allow %q: a CIDR (10.0.0.0/8) or an address", a)
			}
		}
		hub.Allow = append(hub.Allow, p.Masked())
	}
	for _, a := range f.agentAdvertise {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return server.Config{}, usageErr("--agent-advertise %q: HOST:PORT", a)
		}
		hub.Advertise = append(hub.Advertise, a)
	}
	cfg := server.Config{DataDir: f.data, DB: f.db, Schedule: sch, Damping: state.Damping{Consecutive: f.confirm},
		Timeout: f.timeout, Parallel: f.parallel, Logger: log, Events: ev, Audit: audit.Config{Every: f.auditEvery},
		AgentListen: f.agentListen, Agents: hub, FullEvery: f.fullEvery, CipherSuites: toSuites(suites),
		ChannelMetricsMax: channelMax(f.channelMetricsMax)}
	if err := f.cluster.apply(&cfg, f.listen); err != nil {
		return server.Config{}, err
	}
	return cfg, nil
}

// channelMax maps the flag to server.Config.ChannelMetricsMax (where 0 is
// the default): 0 and below mean none.
func channelMax(n int) int {
	if n <= 0 {
		return -1
	}
	return n
}

// eventsConfig validates the event flags and reads the webhook secret.
func (f *serverFlags) eventsConfig() (events.Config, error) {
	var c events.Config
	if f.eventRetention < time.Hour {
		return c, usageErr("--event-retention %v: must be at least 1h", f.eventRetention)
	}
	if f.floodThreshold <= 0 {
		return c, usageErr("--flood-threshold %g: must be positive", f.floodThreshold)
	}
	sev, err := store.ParseSeverity(f.webhookMinSev)
	if err != nil {
		return c, usageErr("--webhook-min-severity %v", err)
	}
	var secret []byte
	if f.webhookSecret != "" {
		if len(f.webhooks) == 0 {
			return c, usageErr("--webhook-secret-file: no --webhook to sign for")
		}
		if secret, err = events.ReadSecretFile(f.webhookSecret); err != nil {
			return c, usageErr("--webhook-secret-file %v", err)
		}
	}
	for _, u := range f.webhooks {
		c.Webhooks = append(c.Webhooks, events.WebhookConfig{URL: u, Secret: secret, MinSeverity: sev})
	}
	c.Retention = f.eventRetention
	c.Flood.Threshold = f.floodThreshold
	for _, w := range c.Webhooks {
		if err := events.ValidateWebhook(w); err != nil {
			return c, usageErr("--webhook %v", err)
		}
	}
	return c, nil
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return l, usageErr("--log-level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

func runServer(cmd *cobra.Command, f *serverFlags) error {
	lvl, err := parseLevel(f.logLevel)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: lvl}))
	cfg, err := f.config(log)
	if err != nil {
		return err
	}
	// A long-running server holding tens of thousands of small channel
	// records: collect at 50 % heap growth (the default is 100 %), which
	// keeps RSS per channel near the live data for a few % more GC CPU
	// (bench/monitor). GOGC in the environment still wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, httpSrv, ln, err := startServer(ctx, cfg, f.listen)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "lightsout server: API on http://%s/api/v1, metrics on http://%s/metrics, data in %s\n", ln.Addr(), ln.Addr(), cfg.DataDir)
	if srv.AdminTokenFile != "" {
		fmt.Fprintf(out, "first start: admin API token written to %s (mode 0600); use it with --token-file\n", srv.AdminTokenFile)
	}
	fmt.Fprintf(out, "lightsout server: web console on http://%s/ (log in with an API token)\n", ln.Addr())
	if srv.AgentAddr != nil {
		fmt.Fprintf(out, "lightsout server: agents on %s (mutual TLS), CA fingerprint %s\n", srv.AgentAddr, srv.CA.Fingerprint)
	}
	<-ctx.Done()
	fmt.Fprintln(out, "lightsout server: stopping")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = httpSrv.Shutdown(sctx)
	return srv.Close()
}

// startServer opens the server and serves its API on listen.
func startServer(ctx context.Context, cfg server.Config, listen string) (*server.Server, *http.Server, net.Listener, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, nil, nil, &exitError{code: 1, err: fmt.Errorf("--listen %s: %w", listen, err)}
	}
	srv, err := server.New(ctx, cfg)
	if err != nil {
		ln.Close()
		return nil, nil, nil, &exitError{code: 1, err: err}
	}
	httpSrv := &http.Server{Handler: api.New(api.Config{Manager: srv.Manager, Store: srv.Store, Registry: srv.Registry, Logger: srv.Config.Logger,
		Events: srv.Events, Agents: srv.Agents, AgentAddr: srv.AgentAddr,
		Self: srv.Node.Name(), Cluster: srv.Node, PeerKey: srv.PeerKey}), ReadHeaderTimeout: 10 * time.Second}
	httpSrv.RegisterOnShutdown(srv.Events.CloseSubscribers) // end event streams, or Shutdown waits for them
	go func() {
		if err := httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			cfg.Logger.Error("http server", "err", err)
		}
	}()
	return srv, httpSrv, ln, nil
}
