package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/lightsout/lightsout/internal/api"
	"github.com/lightsout/lightsout/internal/server"
	"github.com/lightsout/lightsout/internal/state"
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
	logLevel   string
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
change with its evidence, runs power and lifecycle operations, and serves the REST
API (/api/v1, OpenAPI at /api/v1/openapi.json) and Prometheus metrics (/metrics).

Storage: embedded SQLite in --data (default), or PostgreSQL with --db. The data
directory also holds the key that encrypts BMC passwords at rest (secret.key,
mode 0600, created on first start) and, on the first start only, the first admin
API token (admin.token, mode 0600). Keep the key: without it stored passwords
cannot be read.

Monitoring: each channel every --interval (±10% jitter). A NotResponding channel
backs off (doubling, up to --max-backoff). A refused account is retried at most
once per --auth-retry, and at once after its credentials are edited (BMCs lock
accounts after a few failures). A change of state is declared after --confirm
consecutive observations (Invalid and NotAuthenticated at once). Never more than
one session and one request at a time per BMC.

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
	fl.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
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
	if f.parallel < 1 {
		return server.Config{}, usageErr("--parallel %d: must be at least 1", f.parallel)
	}
	if f.data == "" {
		return server.Config{}, usageErr("--data: required")
	}
	sch := state.DefaultSchedule
	sch.Interval, sch.AuthRetry = f.interval, f.authRetry
	if f.maxBackoff > 0 {
		sch.MaxBackoff = f.maxBackoff
	}
	return server.Config{DataDir: f.data, DB: f.db, Schedule: sch, Damping: state.Damping{Consecutive: f.confirm},
		Timeout: f.timeout, Parallel: f.parallel, Logger: log}, nil
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
	httpSrv := &http.Server{Handler: api.New(srv), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			cfg.Logger.Error("http server", "err", err)
		}
	}()
	return srv, httpSrv, ln, nil
}
