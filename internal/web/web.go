// Package web serves the management server's console: server-rendered HTML
// pages (html/template, assets embedded, no external resources, almost no
// JavaScript) over the manager, mounted by the API handler at "/". Users
// log in with an API token (same tokens and roles as the API); the console
// keeps a random session ID in an HttpOnly, SameSite=Strict cookie mapped
// in memory to the token's name and role (never the token itself), and
// every POST form carries the session's CSRF token.
package web

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/lightsout/lightsout/internal/agent"
	"github.com/lightsout/lightsout/internal/authlimit"
	"github.com/lightsout/lightsout/internal/events"
	"github.com/lightsout/lightsout/internal/manager"
	"github.com/lightsout/lightsout/internal/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// CookieName is the session cookie.
const CookieName = "lightsout_session"

// SessionTTL is how long a console session lasts after login.
var SessionTTL = 12 * time.Hour

// RowsTTL is how long the machine table's rows are reused before they are
// rebuilt from the manager (the table of a large fleet pages in memory).
var RowsTTL = 2 * time.Second

// PageSize is the machine table's rows per page.
const PageSize = 100

// Config is what the console serves.
type Config struct {
	Manager *manager.Manager
	Store   store.Store
	Events  *events.Recorder // nil: no live events
	Agents  *agent.Hub       // nil: no agent hub
	// AgentAddr is the agent listener's address; nil: none (the agents
	// page says agents are not enabled).
	AgentAddr net.Addr
	Logger    *slog.Logger
	// Limiter throttles failed logins per source address and counts
	// them (nil: a limiter of its own, not registered).
	Limiter *authlimit.Limiter
	// Self is this instance's name among those sharing the database
	// (the instances page marks it).
	Self string
}

// Console is the web console's handler. Build it with New.
type Console struct {
	m      *manager.Manager
	st     store.Store
	ev     *events.Recorder
	hub    *agent.Hub
	agAddr net.Addr
	log    *slog.Logger
	mux    *http.ServeMux
	pages  map[string]*template.Template

	mu       sync.Mutex
	sessions map[string]*session

	rowsMu sync.Mutex
	rows   *rowSet

	lim  *authlimit.Limiter
	self string
}

type session struct {
	ID      string
	Name    string
	Role    store.Role
	CSRF    string
	hash    []byte // the token's stored hash: revocation ends the session
	expires time.Time
}

// Operator reports whether the session may run operator actions.
func (s *session) Operator() bool { return s.Role.Rank() >= store.RoleOperator.Rank() }

// Admin reports whether the session is an admin's.
func (s *session) Admin() bool { return s.Role.Rank() >= store.RoleAdmin.Rank() }

// New builds the console.
func New(cfg Config) *Console {
	c := &Console{m: cfg.Manager, st: cfg.Store, ev: cfg.Events, hub: cfg.Agents, agAddr: cfg.AgentAddr, log: cfg.Logger, mux: http.NewServeMux(),
		sessions: map[string]*session{}, pages: map[string]*template.Template{}, lim: cfg.Limiter, self: cfg.Self}
	if c.lim == nil {
		c.lim = authlimit.New(nil)
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		panic(err)
	}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		c.pages[base] = template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n))
	}
	static, _ := fs.Sub(staticFS, "static")
	c.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	c.mux.HandleFunc("GET /login", c.loginPage)
	c.mux.HandleFunc("POST /login", c.login)
	c.mux.Handle("POST /logout", c.auth(store.RoleViewer, c.logout))
	c.mux.Handle("GET /{$}", c.auth(store.RoleViewer, c.overview))
	c.mux.Handle("GET /machines", c.auth(store.RoleViewer, c.machines))
	c.mux.Handle("GET /machines/{name}", c.auth(store.RoleViewer, c.machine))
	c.mux.Handle("GET /machines/{name}/live", c.auth(store.RoleViewer, c.machineLive))
	c.mux.Handle("POST /machines/{name}/check", c.auth(store.RoleOperator, c.checkNow))
	c.mux.Handle("GET /machines/{name}/power", c.auth(store.RoleOperator, c.powerConfirm))
	c.mux.Handle("POST /machines/{name}/power", c.auth(store.RoleOperator, c.power))
	c.mux.Handle("POST /machines/{name}/diagnose", c.auth(store.RoleOperator, c.diagnose))
	c.mux.Handle("POST /machines/{name}/diagnose/stream", c.auth(store.RoleOperator, c.diagnoseStream))
	c.mux.Handle("POST /incidents/diagnose", c.auth(store.RoleOperator, c.diagnoseIncident))
	c.mux.Handle("POST /incidents/diagnose/stream", c.auth(store.RoleOperator, c.diagnoseIncidentStream))
	c.mux.Handle("GET /events", c.auth(store.RoleViewer, c.eventsPage))
	c.mux.Handle("GET /events/stream", c.auth(store.RoleViewer, c.eventStream))
	c.mux.Handle("GET /security", c.auth(store.RoleViewer, c.security))
	c.mux.Handle("GET /enclosures", c.auth(store.RoleViewer, c.enclosures))
	c.mux.Handle("GET /enclosures/{name}", c.auth(store.RoleViewer, c.enclosure))
	c.mux.Handle("GET /agents", c.auth(store.RoleViewer, c.agents))
	c.mux.Handle("GET /instances", c.auth(store.RoleViewer, c.instances))
	c.mux.Handle("/", c.auth(store.RoleViewer, func(w http.ResponseWriter, r *http.Request, s *session) error {
		return &httpError{http.StatusNotFound, "No such page: " + r.URL.Path}
	}))
	return c
}

func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	if r.Method == http.MethodPost && !sameOrigin(r) {
		// Cross-site form posts (login CSRF included) are refused
		// before anything else; the CSRF token guards the rest.
		http.Error(w, "cross-origin form posts are refused", http.StatusForbidden)
		return
	}
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Content-Type-Options", "nosniff")
	c.mux.ServeHTTP(w, r)
}

// sameOrigin reports whether a request's Origin (or, without one, its
// Referer) names this host; requests with neither (non-browser clients)
// pass.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		o = r.Header.Get("Referer")
	}
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

// httpError is an error page with a status.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

// pageData is what every page template gets.
type pageData struct {
	Title  string
	Nav    string
	S      *session
	Notice string
	Error  string
	Data   any
}

func (c *Console) render(w http.ResponseWriter, status int, name string, d pageData) {
	t, ok := c.pages[name]
	if !ok {
		http.Error(w, "no template "+name, http.StatusInternalServerError)
		return
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, d); err != nil {
		c.log.Error("console: render", "page", name, "err", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// auth resolves the session (redirecting to the login page without one),
// gates the role, checks the CSRF token of POSTs and renders the
// handler's error.
func (c *Console) auth(min store.Role, h func(http.ResponseWriter, *http.Request, *session) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := c.session(r)
		if s == nil {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			c.render(w, http.StatusUnauthorized, "login", pageData{Title: "Log in", Error: "Your session has ended: log in again."})
			return
		}
		if r.Method == http.MethodPost {
			if err := r.ParseForm(); err != nil {
				c.fail(w, s, &httpError{http.StatusBadRequest, "The form could not be read."})
				return
			}
			if subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf")), []byte(s.CSRF)) != 1 {
				c.fail(w, s, &httpError{http.StatusForbidden, "The form's CSRF token is missing or wrong: reload the page and try again."})
				return
			}
		}
		if s.Role.Rank() < min.Rank() {
			c.fail(w, s, &httpError{http.StatusForbidden, "This needs role " + string(min) + "; you are " + s.Name + " (" + string(s.Role) + ")."})
			return
		}
		if err := h(w, r, s); err != nil {
			c.fail(w, s, err)
		}
	})
}

func (c *Console) fail(w http.ResponseWriter, s *session, err error) {
	status, msg := http.StatusInternalServerError, err.Error()
	var he *httpError
	var fe *store.FieldError
	switch {
	case errors.As(err, &he):
		status = he.status
	case errors.Is(err, store.ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, manager.ErrForbidden):
		status = http.StatusForbidden
	case errors.As(err, &fe):
		status = http.StatusBadRequest
	default:
		c.log.Error("console", "err", err)
	}
	c.render(w, status, "error", pageData{Title: http.StatusText(status), S: s, Error: msg})
}

func (s *session) actor() manager.Actor { return manager.Actor{Name: s.Name, Role: s.Role} }

// session returns the request's live session, or nil. A session whose
// token was revoked (or deleted) since login ends.
func (c *Console) session(r *http.Request) *session {
	ck, err := r.Cookie(CookieName)
	if err != nil || ck.Value == "" {
		return nil
	}
	c.mu.Lock()
	s, ok := c.sessions[ck.Value]
	if ok && time.Now().After(s.expires) {
		delete(c.sessions, ck.Value)
		ok = false
	}
	c.mu.Unlock()
	if !ok {
		return nil
	}
	t, err := c.st.TokenByHash(r.Context(), s.hash)
	if err != nil || t.Revoked {
		if err == nil || errors.Is(err, store.ErrNotFound) {
			c.mu.Lock()
			delete(c.sessions, s.ID)
			c.mu.Unlock()
		}
		return nil
	}
	return s
}

func randomID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (c *Console) newSession(name string, role store.Role, hash []byte) *session {
	s := &session{ID: randomID(), Name: name, Role: role, CSRF: randomID(), hash: hash, expires: time.Now().Add(SessionTTL)}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	for id, o := range c.sessions {
		if now.After(o.expires) {
			delete(c.sessions, id)
		}
	}
	c.sessions[s.ID] = s
	return s
}

func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") ||
		strings.HasPrefix(next, "/api/") || strings.HasPrefix(next, "/login") {
		return "/"
	}
	return next
}

type loginData struct{ Next string }

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, http.StatusOK, "login", pageData{Title: "Log in", Data: loginData{Next: safeNext(r.URL.Query().Get("next"))}})
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		c.render(w, http.StatusBadRequest, "login", pageData{Title: "Log in", Error: "The form could not be read."})
		return
	}
	next := safeNext(r.PostForm.Get("next"))
	tok := strings.TrimSpace(r.PostForm.Get("token"))
	bad := func(status int, msg string) {
		c.render(w, status, "login", pageData{Title: "Log in", Error: msg, Data: loginData{Next: next}})
	}
	if tok == "" {
		bad(http.StatusBadRequest, "Paste an API token.")
		return
	}
	src := authlimit.Source(r)
	if ok, wait := c.lim.Allow(src, time.Now()); !ok {
		w.Header().Set("Retry-After", authlimit.RetryAfter(wait))
		bad(http.StatusTooManyRequests, "Too many failed logins from your address: try again in "+authlimit.RetryAfter(wait)+" s.")
		return
	}
	hash := manager.HashToken(tok)
	t, err := c.st.TokenByHash(r.Context(), hash)
	if errors.Is(err, store.ErrNotFound) || err == nil && t.Revoked {
		c.lim.Fail("login", src, time.Now())
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		bad(http.StatusUnauthorized, "Unknown API token.")
		return
	case err != nil:
		c.log.Error("console: login", "err", err)
		bad(http.StatusInternalServerError, "The token could not be checked: "+err.Error())
		return
	case t.Revoked:
		bad(http.StatusUnauthorized, "The API token \""+t.Name+"\" was revoked.")
		return
	}
	s := c.newSession(t.Name, t.Role, hash)
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: s.ID, Path: "/", HttpOnly: true, Secure: r.TLS != nil,
		SameSite: http.SameSiteStrictMode, Expires: s.expires})
	c.log.Info("console: login", "actor", t.Name, "role", t.Role)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, s *session) error {
	c.mu.Lock()
	delete(c.sessions, s.ID)
	c.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", HttpOnly: true, Secure: r.TLS != nil,
		SameSite: http.SameSiteStrictMode, MaxAge: -1})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
	return nil
}

// ctxTimeout bounds page work that talks to BMCs.
func ctxTimeout(r *http.Request, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), d)
}
