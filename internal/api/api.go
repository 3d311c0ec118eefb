// Package api serves the management server's REST API under /api/v1, plus
// /metrics (Prometheus), /healthz and the OpenAPI document. It is a thin
// layer over internal/manager: it authenticates the bearer token, gates
// each route by role, decodes strictly (unknown fields are refused), and
// maps errors to stable codes (see docs/api.md). Every route is listed in
// one table (routes), which the embedded OpenAPI document must match.
// Every other path is the web console's (internal/web).
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lightsout/lightsout/internal/agent"
	"github.com/lightsout/lightsout/internal/api/wire"
	"github.com/lightsout/lightsout/internal/authlimit"
	"github.com/lightsout/lightsout/internal/events"
	"github.com/lightsout/lightsout/internal/manager"
	"github.com/lightsout/lightsout/internal/store"
	"github.com/lightsout/lightsout/internal/web"
)

// Body limits.
const (
	MaxBody       = 1 << 20  // every JSON request
	MaxImportBody = 32 << 20 // POST /api/v1/import
)

// Config is what the API serves.
type Config struct {
	Manager  *manager.Manager
	Store    store.Store
	Registry *prometheus.Registry // /metrics; nil: no /metrics
	Logger   *slog.Logger
	// Events serves the live event stream; nil: the stream answers 503.
	Events *events.Recorder
	// Console serves the web console (internal/web) at "/".
	Console bool
	// Agents serves /api/v1/agents; nil: those routes answer 503.
	Agents *agent.Hub
	// AgentAddr is the agent listener's address (nil: none); the
	// console's agents page says agents are not enabled without one.
	AgentAddr net.Addr
	// Self is this instance's name (GET /api/v1/instances).
	Self string
	// Cluster, when set, says which instance checks a machine: check,
	// power and diagnosis requests for machines another instance checks
	// are forwarded to it (forward.go), signed with PeerKey.
	Cluster Cluster
	PeerKey []byte
}

// New returns the API handler of a running server, with the console (its
// parts are the server's: internal/server; the API does not import it).
func New(c Config) http.Handler {
	c.Console = true
	return NewHandler(c)
}

// API is the handler. Build it with NewHandler.
type API struct {
	m   *manager.Manager
	st  store.Store
	reg *prometheus.Registry
	log *slog.Logger
	ops *prometheus.CounterVec
	mux *http.ServeMux
	met http.Handler // /metrics; nil without a registry
	ev  *events.Recorder
	// agents is the agent hub (nil: 503).
	agents    *agent.Hub
	agentAddr net.Addr
	self      string // this instance's name
	cluster   Cluster
	peerKey   []byte
	// lim throttles failed authentications per source address and
	// counts them (lightsout_auth_failures_total), for the API and the
	// console's login.
	lim *authlimit.Limiter
}

// NewHandler builds the handler. It registers lightsout_operations_total on
// cfg.Registry and counts every audited operation (cfg.Manager.OnAudit).
func NewHandler(cfg Config) *API {
	a := &API{m: cfg.Manager, st: cfg.Store, reg: cfg.Registry, log: cfg.Logger, mux: http.NewServeMux(), ev: cfg.Events, agents: cfg.Agents, agentAddr: cfg.AgentAddr, self: cfg.Self, cluster: cfg.Cluster, peerKey: cfg.PeerKey}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	a.ops = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "lightsout_operations_total",
		Help: "Audited operations (power, lifecycle, inventory, tokens) by action and result (ok, refused, failed).",
	}, []string{"action", "result"})
	if a.reg != nil {
		if err := a.reg.Register(a.ops); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				if c, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
					a.ops = c
				}
			}
		}
	}
	if a.reg != nil {
		a.lim = authlimit.New(a.reg)
		// A collector that fails (a store read past its timeout) costs
		// its own series, logged, not the whole scrape's 500.
		a.met = promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{Registry: a.reg,
			ErrorHandling: promhttp.ContinueOnError, ErrorLog: scrapeLog{a.log}})
	} else {
		a.lim = authlimit.New(nil)
	}
	if a.m != nil {
		ops, prev := a.ops, a.m.OnAudit // prev: the server's (power events)
		a.m.OnAudit = func(e store.AuditEntry) {
			ops.WithLabelValues(e.Action, e.Result).Inc()
			if prev != nil {
				prev(e)
			}
		}
	}
	for _, rt := range a.routes() {
		a.mux.Handle(rt.Method+" "+rt.Path, a.wrap(rt))
	}
	if cfg.Console {
		console := web.New(web.Config{Manager: a.m, Store: a.st, Events: a.ev, Agents: a.agents, AgentAddr: a.agentAddr, Logger: a.log, Limiter: a.lim, Self: a.self})
		a.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			if a.isAPIPath(r.URL.Path) {
				a.notFound(w, r)
				return
			}
			console.ServeHTTP(w, r)
		})
	} else {
		a.mux.HandleFunc("/", a.notFound)
	}
	return a
}

// isAPIPath reports whether path is the API's (under /api/, or a route's
// path with another method): those answer in the API's error format, the
// rest belongs to the web console.
func (a *API) isAPIPath(path string) bool {
	if path == "/api" || strings.HasPrefix(path, "/api/") {
		return true
	}
	for _, rt := range a.routes() {
		if matchPath(rt.Path, path) {
			return true
		}
	}
	return false
}

func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	a.mux.ServeHTTP(w, r)
}

// route is one API operation: its method and path (in ServeMux and
// OpenAPI syntax alike), the least role that may call it ("" for no
// authentication) and its handler.
type route struct {
	Method string
	Path   string
	Role   store.Role
	h      func(w http.ResponseWriter, r *http.Request, actor manager.Actor) error
}

type actorKey struct{}

// wrap authenticates, gates by role, runs the handler and writes its error.
func (a *API) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		var actor manager.Actor
		err := func() error {
			if rt.Role != "" {
				src := authlimit.Source(r)
				if ok, wait := a.lim.Allow(src, time.Now()); !ok {
					sw.Header().Set("Retry-After", authlimit.RetryAfter(wait))
					return &apiError{status: http.StatusTooManyRequests, code: wire.CodeRateLimited,
						msg: "too many failed authentications from " + src.String() + "; try again in " + authlimit.RetryAfter(wait) + " s"}
				}
				var err error
				if actor, err = a.authenticate(r); err != nil {
					var ae *apiError
					if errors.As(err, &ae) && ae.status == http.StatusUnauthorized {
						a.lim.Fail("bearer", src, time.Now())
					}
					return err
				}
				if actor.Role.Rank() < rt.Role.Rank() {
					return &apiError{status: http.StatusForbidden, code: wire.CodeForbidden,
						msg: rt.Method + " " + rt.Path + " needs role " + string(rt.Role) + "; token \"" + actor.Name + "\" has " + string(actor.Role)}
				}
			}
			return rt.h(sw, r.WithContext(context.WithValue(r.Context(), actorKey{}, actor)), actor)
		}()
		if err != nil {
			a.writeError(sw, r, err)
		}
		level := slog.LevelDebug
		if r.Method != http.MethodGet || sw.status >= 500 {
			level = slog.LevelInfo
		}
		a.log.Log(r.Context(), level, "api", "method", r.Method, "path", r.URL.Path, "status", sw.code(),
			"actor", actor.Name, "ms", time.Since(start).Milliseconds())
	})
}

// authenticate resolves the bearer token to its (unrevoked) owner.
func (a *API) authenticate(r *http.Request) (manager.Actor, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return manager.Actor{}, unauthorized("no API token: send the header Authorization: Bearer TOKEN")
	}
	scheme, tok, ok := strings.Cut(h, " ")
	tok = strings.TrimSpace(tok)
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return manager.Actor{}, unauthorized("the Authorization header must be: Bearer TOKEN")
	}
	t, err := a.st.TokenByHash(r.Context(), manager.HashToken(tok))
	if errors.Is(err, store.ErrNotFound) {
		return manager.Actor{}, unauthorized("unknown API token")
	}
	if err != nil {
		return manager.Actor{}, err
	}
	if t.Revoked {
		return manager.Actor{}, unauthorized("the API token \"" + t.Name + "\" was revoked")
	}
	return manager.Actor{Name: t.Name, Role: t.Role}, nil
}

func unauthorized(msg string) error {
	return &apiError{status: http.StatusUnauthorized, code: wire.CodeUnauthorized, msg: msg}
}

func (a *API) healthz(w http.ResponseWriter, r *http.Request) {
	if p, ok := a.st.(interface{ Ping(context.Context) error }); ok {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		if err := p.Ping(ctx); err != nil {
			a.log.Error("healthz: database", "err", err)
			writeJSON(w, http.StatusServiceUnavailable, wire.ErrorResponse{Error: wire.ErrorBody{
				Code: wire.CodeUnavailable, Message: "the database does not answer"}})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// notFound answers paths no route serves, and methods a path does not
// take, in the API's error format.
func (a *API) notFound(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, rt := range a.routes() {
		if matchPath(rt.Path, r.URL.Path) {
			allow = append(allow, rt.Method)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		a.writeError(w, r, &apiError{status: http.StatusMethodNotAllowed, code: wire.CodeMethodNotAllowed,
			msg: r.Method + " is not allowed on " + r.URL.Path + "; use " + strings.Join(allow, ", ")})
		return
	}
	a.writeError(w, r, &apiError{status: http.StatusNotFound, code: wire.CodeNotFound,
		msg: "no such route: " + r.Method + " " + r.URL.Path + " (see /api/v1/openapi.json)"})
}

// matchPath reports whether path fits the pattern's segments ({x} matches
// any one non-empty segment).
func matchPath(pattern, path string) bool {
	ps, xs := strings.Split(pattern, "/"), strings.Split(path, "/")
	if len(ps) != len(xs) {
		return false
	}
	for i := range ps {
		if strings.HasPrefix(ps[i], "{") {
			if xs[i] == "" {
				return false
			}
			continue
		}
		if ps[i] != xs[i] {
			return false
		}
	}
	return true
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) code() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

// Unwrap lets http.ResponseController reach Flush.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// scrapeLog hands promhttp's gathering errors to the server's log.
type scrapeLog struct{ log *slog.Logger }

func (l scrapeLog) Println(v ...any) {
	l.log.Warn("metrics: a collector failed; the scrape goes on without its series", "err", fmt.Sprint(v...))
}
