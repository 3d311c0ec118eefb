package apitest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// contract validates every response the server gives a test against the
// OpenAPI document the server serves (GET /api/v1/openapi.json), with
// kin-openapi: the status must be documented for the operation and a JSON
// body must match the documented schema. Streams (NDJSON, Server-Sent
// Events) are checked for status and content type only. Paths outside the
// document (the web console, unknown routes) are not checked. Mismatches
// fail the test when it ends.
type contract struct {
	mu       sync.Mutex
	router   routers.Router
	failures map[string]int // "METHOD path status: reason" → count
	checked  int
}

// load reads the served document and builds the router for base.
func (c *contract) load(base string, doc []byte) error {
	l := openapi3.NewLoader()
	d, err := l.LoadFromData(doc)
	if err != nil {
		return fmt.Errorf("openapi.json: %w", err)
	}
	if err := d.Validate(context.Background()); err != nil {
		return fmt.Errorf("openapi.json is not a valid OpenAPI document: %w", err)
	}
	d.Servers = openapi3.Servers{{URL: base}}
	r, err := gorillamux.NewRouter(d)
	if err != nil {
		return fmt.Errorf("openapi.json: %w", err)
	}
	c.mu.Lock()
	c.router = r
	c.mu.Unlock()
	return nil
}

// wrap returns h with every response teed and validated.
func (c *contract) wrap(base string, h http.Handler) http.Handler {
	u, _ := url.Parse(base)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		router := c.router
		c.mu.Unlock()
		if router == nil {
			h.ServeHTTP(w, r)
			return
		}
		// Route on a copy carrying the base URL's scheme and host.
		rr := r.Clone(r.Context())
		rr.URL.Scheme, rr.URL.Host = u.Scheme, u.Host
		route, params, err := router.FindRoute(rr)
		if err != nil {
			h.ServeHTTP(w, r) // not in the document: not the API's
			return
		}
		tw := &teeWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(tw, r)
		c.check(rr, route, params, tw)
	})
}

func (c *contract) check(r *http.Request, route *routers.Route, params map[string]string, tw *teeWriter) {
	ct, _, _ := mime.ParseMediaType(tw.Header().Get("Content-Type"))
	opts := &openapi3filter.Options{IncludeResponseStatus: true, AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}
	if ct != "application/json" || tw.truncated {
		opts.ExcludeResponseBody = true
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route, Options: opts},
		Status:                 tw.status,
		Header:                 tw.Header(),
		Body:                   io.NopCloser(bytes.NewReader(tw.body.Bytes())),
		Options:                opts,
	}
	err := openapi3filter.ValidateResponse(context.Background(), in)
	if err == nil && ct != "application/json" && tw.status < 300 && tw.body.Len() > 0 {
		// A stream: its content type must be the documented one.
		if resp := route.Operation.Responses.Status(tw.status); resp != nil && resp.Value != nil && resp.Value.Content.Get(ct) == nil {
			err = fmt.Errorf("content type %q is not documented", ct)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.checked++
	if err != nil {
		msg := err.Error()
		if i := strings.Index(msg, "\n"); i > 0 { // kin-openapi appends the schema and the value
			msg = msg[:i]
		}
		key := fmt.Sprintf("%s %s → %d: %s", r.Method, route.Path, tw.status, msg)
		if c.failures == nil {
			c.failures = map[string]int{}
		}
		c.failures[key]++
	}
}

// report fails t with every mismatch seen.
func (c *contract) report(t testing.TB) {
	c.mu.Lock()
	defer c.mu.Unlock()
	keys := make([]string, 0, len(c.failures))
	for k := range c.failures {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.Errorf("API response breaks the OpenAPI document (%d×): %s", c.failures[k], k)
	}
}

// maxTee bounds the copy of a response kept for validation.
const maxTee = 8 << 20

// teeWriter passes a response through and keeps a copy of it.
type teeWriter struct {
	http.ResponseWriter
	status    int
	wrote     bool
	body      bytes.Buffer
	truncated bool
}

func (w *teeWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *teeWriter) Write(b []byte) (int, error) {
	w.wrote = true
	if w.body.Len()+len(b) <= maxTee {
		w.body.Write(b)
	} else {
		w.truncated = true
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush and deadlines.
func (w *teeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush, for handlers that assert http.Flusher.
func (w *teeWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
