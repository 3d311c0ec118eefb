// Package server assembles the management server: data directory, key
// file, store, IPMI engine, monitor, manager and the HTTP handler (API,
// metrics). `lightsout server`, the demo and the end-to-end tests all start
// it through New, so they run the same code.
package server

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/lightsout/lightsout/internal/agent"
	"github.com/lightsout/lightsout/internal/audit"
	"github.com/lightsout/lightsout/internal/cluster"
	"github.com/lightsout/lightsout/internal/events"
	"github.com/lightsout/lightsout/internal/events/figures"
	"github.com/lightsout/lightsout/internal/exporter"
	"github.com/lightsout/lightsout/internal/ipmi"
	"github.com/lightsout/lightsout/internal/manager"
	"github.com/lightsout/lightsout/internal/monitor"
	"github.com/lightsout/lightsout/internal/pki"
	"github.com/lightsout/lightsout/internal/probe"
	"github.com/lightsout/lightsout/internal/secret"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
	"github.com/lightsout/lightsout/internal/store/sqlstore"
)

// Config of a server. Zero values take defaults.
type Config struct {
	// DataDir holds the key file, the SQLite database (unless DB is a
	// PostgreSQL DSN) and the first admin token. Created 0700.
	DataDir string
	// DB is a PostgreSQL DSN (postgres://…) or empty for SQLite in DataDir.
	DB string
	// KeyFile overrides DataDir/secret.key.
	KeyFile string

	Schedule state.Schedule
	Damping  state.Damping
	Timeout  time.Duration
	Parallel int
	// FullEvery: one check in FullEvery of a Connectable channel is full;
	// the others are light (monitor.Config.FullEvery).
	FullEvery int
	// CipherSuites is the fleet-wide cipher suite allow-list, strongest
	// first (nil: 17, then 3); an account's own list overrides it.
	CipherSuites []ipmi.CipherSuite
	// Engine configures the IPMI engine (Sockets, Source).
	Engine ipmi.Config
	Logger *slog.Logger
	// OnChange is called after each declared state change is stored (after
	// the event recorder heard of it); it must not block.
	OnChange func(store.Transition)
	// Events configures the event recorder (dedup windows, retention,
	// flood and fleet detection, webhooks); Store and Logger are the
	// server's.
	Events events.Config
	// Audit configures the BMC security audit; Audit.Every 0 (the zero
	// value) schedules none, on-demand audits still run. Logger, Timeout
	// and Emit default to the server's.
	Audit audit.Config
	// AgentListen is the agent listener's address (mutual TLS, separate
	// from the API); empty: no listener (join tokens can still be made).
	AgentListen string
	// Agents configures the agent hub (heartbeat interval, misses, clock
	// skew, version); Store, CA and Logger are the server's.
	Agents agent.HubConfig
	// IncidentEvery is how often incidents are regrouped to raise
	// incident.opened / incident.closed events (default 15 s);
	// IncidentHold how long one must last to open, IncidentGrace how
	// long it must be gone to close (defaults incident.DefaultHold,
	// incident.DefaultGrace).
	IncidentEvery, IncidentHold, IncidentGrace time.Duration
	// ChannelMetricsMax bounds the channels given per-channel series on
	// /metrics (0: exporter.DefaultMaxChannels; negative: none).
	ChannelMetricsMax int
	// Cluster is this instance's membership (docs/scale-out.md): Name
	// (default: the host name), Zones, PeerAddress (its API address for
	// the other instances), Lease. Several instances on one PostgreSQL
	// database split the fleet; the monitor loads only this one's share.
	Cluster cluster.Config
}

// Server is a running management server.
type Server struct {
	Config   Config
	Store    *sqlstore.DB
	Engine   *ipmi.Engine
	Monitor  *monitor.Monitor
	Manager  *manager.Manager
	Registry *prometheus.Registry
	// AdminTokenFile is where the first admin token was written (on the
	// first start only; empty otherwise).
	AdminTokenFile string
	// Events records, deduplicates and fans out events; it runs the flood
	// and fleet detectors over the monitor's checks.
	Events *events.Recorder
	// Audit runs the BMC security audit (scheduled and on demand).
	Audit *audit.Auditor
	// CA is the agent channel's certificate authority (DataDir/agent-ca.*).
	CA *pki.CA
	// Agents tracks the host agents; AgentAddr is its listener's address
	// (nil without Config.AgentListen).
	Agents    *agent.Hub
	AgentAddr net.Addr
	// Redfish is the one HTTP transport of every Redfish check and
	// operation (one connection per BMC at most).
	Redfish *http.Transport
	// RedfishProber checks Redfish channels for the monitor and the
	// diagnosis, keeping their sessions.
	RedfishProber *probe.RedfishProber
	// Node is this instance's membership and share of the fleet.
	Node *cluster.Node
	// PeerKey authenticates the instances to each other (forwarded
	// operations): derived from the secret key, which they all share.
	PeerKey []byte

	// incidents is /metrics' lightsout_incident_open, fed by
	// watchIncidents' groupings.
	incidents *exporter.Incidents

	cancel context.CancelFunc
	done   chan struct{}
	lock   *os.File // SQLite: held while running (lock.go)
}

// New opens everything and starts the monitor. Stop with Close.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.DataDir == "" {
		return nil, errors.New("server: data directory is required")
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory %s: %w", cfg.DataDir, err)
	}
	keyFile := cfg.KeyFile
	if keyFile == "" {
		keyFile = filepath.Join(cfg.DataDir, "secret.key")
	}
	_, statErr := os.Stat(keyFile)
	newKey := errors.Is(statErr, fs.ErrNotExist)
	box, err := secret.LoadOrCreateKey(keyFile)
	if err != nil {
		return nil, err
	}
	keyBytes, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, err
	}
	peerKey := sha256.Sum256(append([]byte("lightsout instance-to-instance v1\n"), keyBytes...))
	dsn := cfg.DB
	if dsn == "" {
		dsn = filepath.Join(cfg.DataDir, "lightsout.db")
	}
	var lock *os.File
	if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
		if lock, err = lockSQLite(strings.TrimPrefix(dsn, "sqlite:")); err != nil {
			if newKey {
				_ = os.Remove(keyFile)
			}
			return nil, err
		}
	}
	st, err := sqlstore.Open(ctx, sqlstore.Options{DSN: dsn, Box: box})
	if err != nil && lock != nil {
		lock.Close()
	}
	if errors.Is(err, secret.ErrDecrypt) {
		// Another server made this database (several managers share one
		// PostgreSQL): its passwords are sealed with that server's key.
		// A key made just now is of no use; leave room for the right one.
		if newKey {
			_ = os.Remove(keyFile)
		}
		return nil, fmt.Errorf("%w\nremedy: every server sharing a database needs the same key: copy secret.key from the data directory of the server that first used this database to %s (mode 0600), or point --key-file at a copy of it, then start again (docs/scale-out.md)", err, keyFile)
	}
	if err != nil {
		return nil, err
	}
	s := &Server{Config: cfg, Store: st, done: make(chan struct{}), Redfish: probe.NewRedfishTransport(), lock: lock, PeerKey: peerKey[:]}
	fail := func(err error) (*Server, error) {
		s.closeParts()
		return nil, err
	}
	engCfg := cfg.Engine
	if engCfg.ReadCoalesce == 0 {
		engCfg.ReadCoalesce = time.Millisecond // see ipmi.Config.ReadCoalesce
	}
	if s.Engine, err = ipmi.New(engCfg); err != nil {
		return fail(err)
	}
	ecfg := cfg.Events
	ecfg.Store, ecfg.Logger = st, cfg.Logger
	if ecfg.Leader == nil {
		// Beside other instances, fleet findings are the leader's
		// (docs/scale-out.md).
		ecfg.Leader = func() bool { return s.Node == nil || s.Node.Leader() }
	}
	if s.Events, err = events.New(ecfg); err != nil {
		return fail(err)
	}
	// The monitor's one sink is the event recorder (and the caller's
	// OnChange after it).
	var sink monitor.Sink = s.Events
	if onChange := cfg.OnChange; onChange != nil {
		sink = monitor.SinkFunc(func(ctx context.Context, o monitor.Outcome) {
			s.Events.Checked(ctx, o)
			if o.Transition != nil {
				onChange(*o.Transition)
			}
		})
	}
	// The monitor and the diagnosis check a channel with the same probers.
	// The Redfish prober keeps one session per BMC between checks (deleted
	// by Close).
	s.RedfishProber = probe.NewRedfishProber(s.Redfish, st)
	s.RedfishProber.KeepSessions = true
	// Membership: this instance registers; the monitor sees only its
	// share of the fleet (cluster.Node.Store), and every check goes
	// through the node's prober so a hand-over waits for the one in
	// flight.
	unwatched := func(zone string, since time.Time) {
		ectx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		data, _ := json.Marshal(map[string]any{"zone": zone, "since": since})
		if _, err := s.Events.Record(ectx, store.Event{At: since, Code: events.FleetZoneUnwatched, Severity: store.SeverityCritical,
			Source: "zone:" + zone, Data: data,
			Message: fmt.Sprintf("no live lightsout instance serves zone %q: its machines are not checked and their states are stale; start an instance with --zone %s (docs/scale-out.md)", zone, zone)}); err != nil {
			cfg.Logger.Error("event", "code", events.FleetZoneUnwatched, "err", err)
		}
	}
	if s.Node, err = newNode(ctx, st, cfg, unwatched, s.Events); err != nil {
		return fail(err)
	}
	probers := probe.NewRegistry(s.Engine, s.RedfishProber.Check)
	for proto, p := range probers {
		probers[proto] = s.Node.Prober(p)
	}
	s.Monitor = monitor.New(s.Node.Store(st), monitor.Config{
		Schedule: cfg.Schedule, Damping: cfg.Damping, Timeout: cfg.Timeout, Parallel: cfg.Parallel, FullEvery: cfg.FullEvery,
		Suites: cfg.CipherSuites, Probers: probers, Logger: cfg.Logger,
		Sink: sink,
	})
	s.Node.Attach(s.Monitor)
	s.Node.Tick(ctx) // publishes the first view and loads the share it may check at once
	s.Manager = manager.New(st, s.Monitor, s.Engine, cfg.Logger)
	s.Manager.Redfish = s.Redfish
	s.Manager.Suites = cfg.CipherSuites
	s.Manager.Unwatched = s.Node.Unwatched
	s.Manager.Self = s.Node.Name()
	s.Manager.Instances = func() []store.Instance {
		var out []store.Instance
		for _, in := range s.Node.Members().All {
			out = append(out, in)
		}
		return out
	}
	// Alone (SQLite, or the only live member), the monitor checks every
	// channel: incidents come from its broken channels (manager.WholeFleet).
	// A zone no live instance serves is not checked here: its stored
	// states come from the listing.
	s.Manager.WholeFleet = func() bool { return len(s.Node.Members().All) <= 1 && len(s.Node.Unwatched()) == 0 }
	if rs := cfg.Cluster.ZoneRules; len(rs) > 0 {
		s.Manager.ZoneFor = rs.ZoneFor
	}
	s.Manager.Diag.Schedule, s.Manager.Diag.Timeout = cfg.Schedule, cfg.Timeout
	s.Manager.Diag.Probers = probers
	// The Degraded tree's rates and fleet comparison come from the event
	// detectors, which see every check the monitor makes; for a channel
	// they know nothing of yet the executor measures it itself.
	fig := figures.Source{Recorder: s.Events}
	s.Manager.Diag.Rates, s.Manager.Diag.Fleet = fig, fig
	s.Manager.OnAudit = s.Events.Audited
	acfg := cfg.Audit
	if acfg.Logger == nil {
		acfg.Logger = cfg.Logger
	}
	if acfg.Timeout <= 0 {
		acfg.Timeout = cfg.Timeout
	}
	if acfg.Emit == nil {
		acfg.Emit = func(ctx context.Context, e store.Event) error { _, err := s.Events.Record(ctx, e); return err }
	}
	s.Audit = audit.New(st, s.Engine, s.Monitor, acfg)
	if err := s.Audit.Load(ctx); err != nil {
		return fail(err)
	}
	s.Manager.Security = s.Audit
	s.Registry = prometheus.NewRegistry()
	s.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.Registry.MustRegister(s.Monitor.Collectors()...)
	s.Registry.MustRegister(engineCollector{s.Engine}, s.Node.Collector())
	s.Registry.MustRegister(s.Events.Collectors()...)
	s.Registry.MustRegister(s.Audit.Collectors()...)
	// A scrape reads no fleet: the monitor's count turns the per-channel
	// series off above their limit without listing, and the incidents
	// are the latest grouping while no channel changed (issue 19:
	// /metrics at 100,000).
	chm := exporter.NewChannels(s.Manager, cfg.ChannelMetricsMax, cfg.Logger)
	chm.Count = s.Monitor.Len
	s.incidents = exporter.NewIncidents(s.Manager)
	s.incidents.Log = cfg.Logger
	// A scrape groups again only when something a grouping is made of
	// changed (incidentKey: channels, peers' changes, audit, floods,
	// findings, agents); beside other instances a follower's scrape would
	// otherwise list the whole fleet every MaxAge.
	s.incidents.Changes = func() uint64 { return s.incidentKey().hash() }
	if st.Driver() == "postgres" {
		s.incidents.MaxAge = incidentReuseCluster
	}
	s.Registry.MustRegister(chm, s.incidents)

	if tokens, err := st.Tokens(ctx); err != nil {
		return fail(err)
	} else if len(tokens) == 0 {
		f := filepath.Join(cfg.DataDir, "admin.token")
		if _, err := CreateToken(ctx, st, "admin", store.RoleAdmin, f); err != nil {
			return fail(err)
		}
		s.AdminTokenFile = f
	}

	if s.CA, err = pki.LoadOrCreateCA(cfg.DataDir); err != nil {
		return fail(err)
	}
	hcfg := cfg.Agents
	hcfg.Store, hcfg.CA = st, s.CA
	if hcfg.Logger == nil {
		hcfg.Logger = cfg.Logger
	}
	// What agents report (and their state changes) becomes events, with
	// link timeouts feeding the flood detector; certificates issued and
	// link paths are audited. A caller's own hooks still run.
	if own := hcfg.OnEvent; own != nil {
		hcfg.OnEvent = func(e store.Event) { s.Events.AgentEvent(e); own(e) }
	} else {
		hcfg.OnEvent = s.Events.AgentEvent
	}
	if own := hcfg.OnAudit; own != nil {
		hcfg.OnAudit = func(a store.AuditEntry) { s.auditAgent(a); own(a) }
	} else {
		hcfg.OnAudit = s.auditAgent
	}
	if s.Agents, err = agent.NewHub(ctx, hcfg); err != nil {
		return fail(err)
	}
	s.Registry.MustRegister(s.Agents.Collectors()...)
	s.Manager.Agents = s.Agents // power soft's agent fallback (os-shutdown)
	s.Manager.Detectors, s.Manager.AgentList = s.Events, s.Agents
	if cfg.AgentListen != "" {
		ln, err := net.Listen("tcp", cfg.AgentListen)
		if err != nil {
			return fail(fmt.Errorf("agent listener %s: %w", cfg.AgentListen, err))
		}
		s.AgentAddr = ln.Addr()
		go func() {
			if err := s.Agents.Serve(ln); err != nil {
				cfg.Logger.Error("agent listener", "err", err)
			}
		}()
	}

	mctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	s.Events.Start(mctx)
	go func() {
		defer close(s.done)
		adone := make(chan struct{})
		go func() { defer close(adone); _ = s.Audit.Run(mctx) }()
		idone := make(chan struct{})
		go func() { defer close(idone); s.watchIncidents(mctx) }()
		defer func() { <-idone }()
		ndone := make(chan struct{})
		go func() { defer close(ndone); s.Node.Run(mctx) }()
		defer func() { <-ndone }()
		_ = s.Monitor.Run(mctx)
		<-adone
	}()
	return s, nil
}

// Close stops the monitor (checks in flight end, sessions close) and closes
// the engine and the store.
func (s *Server) Close() error {
	if s.cancel != nil {
		s.cancel()
		<-s.done
	}
	if s.Events != nil {
		s.Events.Close() // after the monitor: its last events are stored
	}
	return s.closeParts()
}

func (s *Server) closeParts() error {
	var errs []error
	if s.Node != nil {
		// After the monitor: no check is in flight, so the others may
		// take this instance's share at once.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := s.Node.Close(ctx); err != nil {
			s.Config.Logger.Warn("leaving the instances table", "err", err)
		}
		cancel()
	}
	if s.RedfishProber != nil {
		// Log out of the BMCs (the monitor has stopped).
		ctx, cancel := context.WithTimeout(context.Background(), 2*probe.DefaultTimeout)
		if err := s.RedfishProber.Close(ctx); err != nil {
			s.Config.Logger.Warn("redfish logout at shutdown", "err", err)
		}
		cancel()
	}
	if s.Agents != nil {
		errs = append(errs, s.Agents.Close())
	}
	if s.Engine != nil {
		errs = append(errs, s.Engine.Close())
	}
	if s.Store != nil {
		errs = append(errs, s.Store.Close())
	}
	if s.lock != nil {
		s.lock.Close() // releases the lock
	}
	return errors.Join(errs...)
}

// The API token rules are manager's (manager.NewToken, HashToken,
// CreateToken); these names stay for the server's callers.
const TokenPrefix = manager.TokenPrefix

var (
	NewToken    = manager.NewToken
	HashToken   = manager.HashToken
	CreateToken = manager.CreateToken
)

// DefaultName is an instance's name when none is given: the host name and
// four hex digits of the data directory's path, so two servers on one host
// (each with its own data directory) differ, and a restart keeps its name.
func DefaultName(dataDir string) string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "lightsout"
	}
	h = strings.NewReplacer(" ", "-", ",", "-", "\t", "-").Replace(h)
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		abs = dataDir
	}
	sum := sha256.Sum256([]byte(abs))
	return fmt.Sprintf("%s-%x", h, sum[:2])
}

// MaxCheckTimeouts is the longest a check may last, in --timeout units:
// scale-out cuts a check there (cluster.Config.MaxCheck), and the lease
// must be longer (docs/scale-out.md).
const MaxCheckTimeouts = 6

// newNode registers this instance (cluster.Config defaults: DefaultName,
// the default zone, the engine's source address).
func newNode(ctx context.Context, st *sqlstore.DB, cfg Config, onUnwatched func(string, time.Time), rec *events.Recorder) (*cluster.Node, error) {
	cc := cfg.Cluster
	if cc.FleetZones == nil {
		cc.FleetZones = st.Zones
	}
	if cc.OnUnwatched == nil {
		cc.OnUnwatched = onUnwatched
	}
	if cc.Name == "" {
		cc.Name = DefaultName(cfg.DataDir)
	}
	if cc.MaxCheck == 0 {
		// A check is a handful of exchanges, each allowed Timeout of
		// silence (probe/ipmi.go): cut there, it ends before a fenced
		// instance's lease can lapse.
		t := cfg.Timeout
		if t <= 0 {
			t = probe.DefaultTimeout
		}
		cc.MaxCheck = MaxCheckTimeouts * t
	}
	// SQLite is one instance's (the data directory's lock): nobody can
	// take over, so a slow renewal must not stop the monitor.
	cc.Alone = st.Driver() == "sqlite"
	if cc.Source == "" && cfg.Engine.Source.IsValid() {
		cc.Source = cfg.Engine.Source.String()
	}
	if cc.Logger == nil {
		cc.Logger = cfg.Logger
	}
	if st.Driver() == "postgres" && cc.Digests == nil {
		// Fleet detectors over the whole fleet: every instance shares, at
		// its heartbeat, what they need of the sources it checks, and
		// feeds the others' into its own (docs/scale-out.md).
		rec.ShareDigests(true)
		limit := sqlstore.NotifyMax - len(cc.Name)
		cc.Digests = func() [][]byte { return events.MarshalDigests(rec.TakeDigests(), limit) }
		cc.OnDigests = func(b []byte) {
			ds, err := events.UnmarshalDigests(b)
			if err != nil {
				cc.Logger.Warn("cluster: a peer's digests do not parse", "err", err)
				return
			}
			rec.Remote(ds)
		}
		cc.Resync = rec.Resync
	}
	n, err := cluster.New(st, cc)
	if err != nil {
		return nil, err
	}
	if err := n.Start(ctx); err != nil {
		return nil, err
	}
	return n, nil
}

// engineCollector exports the engine's session and packet counters.
type engineCollector struct{ e *ipmi.Engine }

var (
	descSessionsOpen = prometheus.NewDesc("lightsout_ipmi_sessions_open", "RMCP+ sessions open now.", nil, nil)
	descPackets      = prometheus.NewDesc("lightsout_ipmi_packets_total", "RMCP+ datagrams by kind.", []string{"kind"}, nil)
	descSessions     = prometheus.NewDesc("lightsout_ipmi_sessions_total", "RMCP+ sessions opened and closed.", []string{"event"}, nil)
)

func (c engineCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descSessionsOpen
	ch <- descPackets
	ch <- descSessions
}

func (c engineCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.e.Stats()
	ch <- prometheus.MustNewConstMetric(descSessionsOpen, prometheus.GaugeValue, float64(st.SessionsOpen))
	for k, v := range map[string]uint64{"sent": st.Sent, "received": st.Received, "retransmitted": st.Retransmits,
		"malformed": st.Malformed, "bad_auth": st.BadAuth, "unreachable": st.Unreachable} {
		ch <- prometheus.MustNewConstMetric(descPackets, prometheus.CounterValue, float64(v), k)
	}
	ch <- prometheus.MustNewConstMetric(descSessions, prometheus.CounterValue, float64(st.SessionsOpened), "opened")
	ch <- prometheus.MustNewConstMetric(descSessions, prometheus.CounterValue, float64(st.SessionsClosed), "closed")
}

// auditAgent stores an audit entry of the agent hub (a certificate issued,
// a host link path reported) without holding up the agent's connection.
func (s *Server) auditAgent(a store.AuditEntry) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Store.Audit(ctx, &a); err != nil {
			s.Config.Logger.Error("audit", "action", a.Action, "target", a.Target, "err", err)
		}
	}()
}
