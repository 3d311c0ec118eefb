package events

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/lightsout/lightsout/internal/store"
)

// Webhook headers. The signature is HMAC-SHA256 over the timestamp, a dot
// and the body, keyed with the shared secret, hex-encoded after "sha256=":
//
//	X-Lightsout-Signature: sha256=hex(HMAC-SHA256(secret, timestamp + "." + body))
//
// A receiver recomputes it, compares in constant time, and refuses
// timestamps far from its clock (replays).
const (
	HeaderSignature = "X-Lightsout-Signature"
	HeaderTimestamp = "X-Lightsout-Timestamp"
	HeaderEvent     = "X-Lightsout-Event"
	HeaderDelivery  = "X-Lightsout-Delivery"
)

// WebhookConfig is one webhook receiver. Zero fields take defaults.
type WebhookConfig struct {
	// URL receives a POST of each new event (JSON, the event object as
	// the API lists it). http or https.
	URL string
	// Secret keys the HMAC-SHA256 signature; empty: unsigned.
	Secret []byte
	// MinSeverity: only events at least this severe (default: all).
	MinSeverity store.Severity
	// Codes: only events matching one of these ("oob.timeout_flood",
	// "audit.*"); empty: all.
	Codes []string
	// Queue bounds events waiting for delivery (default 1000); beyond it
	// new events are dropped and counted.
	Queue int
	// Attempts per event (default 6), the first retry after Backoff
	// (default 1s), doubling up to MaxBackoff (default 1m). Each attempt
	// may take Timeout (default 10s).
	Attempts   int
	Backoff    time.Duration
	MaxBackoff time.Duration
	Timeout    time.Duration
	// Client overrides the HTTP client (tests); it must not follow
	// redirects.
	Client *http.Client
}

// ReadSecretFile reads a webhook secret: the file's first line, which must
// not be empty. A file others may read is refused.
func ReadSecretFile(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Mode().Perm()&0o004 != 0 {
		return nil, fmt.Errorf("%s: the secret file is readable by everyone (mode %04o); chmod 600 it", path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	line = strings.TrimRight(line, "\r")
	if strings.TrimSpace(line) == "" {
		return nil, fmt.Errorf("%s: the secret file's first line is empty", path)
	}
	return []byte(line), nil
}

// Sign is the signature header value for body sent at ts (Unix seconds).
func Sign(secret []byte, ts string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a signature header for body and its timestamp header, and
// that the timestamp is within maxSkew of now. Receivers written in Go can
// use it.
func Verify(secret []byte, sig, ts string, body []byte, now time.Time, maxSkew time.Duration) error {
	n, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return errors.New("bad timestamp")
	}
	if d := now.Sub(time.Unix(n, 0)); d > maxSkew || d < -maxSkew {
		return fmt.Errorf("timestamp %s is %v from now", ts, d.Round(time.Second))
	}
	if !hmac.Equal([]byte(Sign(secret, ts, body)), []byte(sig)) {
		return errors.New("signature does not match")
	}
	return nil
}

type webhook struct {
	cfg   WebhookConfig
	name  string // scheme://host, for metrics and logs (the path may hold a token)
	queue chan store.Event
	met   *recorderMetrics
	log   *slog.Logger
	cl    *http.Client
}

// ValidateWebhook checks a webhook's URL, severity and code patterns.
func ValidateWebhook(c WebhookConfig) error {
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%s is not an http(s) URL", redact(c.URL))
	}
	if c.MinSeverity != "" {
		if _, err := store.ParseSeverity(string(c.MinSeverity)); err != nil {
			return err
		}
	}
	for _, p := range c.Codes {
		if p == "" || (strings.Contains(p, "*") && !strings.HasSuffix(p, ".*")) {
			return fmt.Errorf("code pattern %q: want a code or a family (audit.*)", p)
		}
	}
	return nil
}

func newWebhook(c WebhookConfig, met *recorderMetrics, log *slog.Logger) (*webhook, error) {
	if err := ValidateWebhook(c); err != nil {
		return nil, err
	}
	u, _ := url.Parse(c.URL)
	if c.Queue <= 0 {
		c.Queue = 1000
	}
	if c.Attempts <= 0 {
		c.Attempts = 6
	}
	if c.Backoff <= 0 {
		c.Backoff = time.Second
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = time.Minute
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	cl := c.Client
	if cl == nil {
		cl = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	return &webhook{cfg: c, name: u.Scheme + "://" + u.Host, queue: make(chan store.Event, c.Queue), met: met, log: log, cl: cl}, nil
}

// redact keeps scheme and host of a URL for messages.
func redact(s string) string {
	if u, err := url.Parse(s); err == nil && u.Host != "" {
		return u.Scheme + "://" + u.Host + "/…"
	}
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return strconv.Quote(s)
}

func (h *webhook) wants(e store.Event) bool {
	if !e.Severity.AtLeast(h.cfg.MinSeverity) {
		return false
	}
	if len(h.cfg.Codes) == 0 {
		return true
	}
	for _, p := range h.cfg.Codes {
		if store.MatchCode(p, e.Code) {
			return true
		}
	}
	return false
}

// offer queues e for delivery without blocking.
func (h *webhook) offer(e store.Event) {
	if !h.wants(e) {
		return
	}
	select {
	case h.queue <- e:
	default:
		h.met.deliveries.WithLabelValues(h.name, "dropped").Inc()
		h.log.Warn("webhook: queue full, event dropped", "webhook", h.name, "code", e.Code, "source", e.Source)
	}
}

func (h *webhook) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			if n := len(h.queue); n > 0 {
				h.met.deliveries.WithLabelValues(h.name, "dropped").Add(float64(n))
				h.log.Warn("webhook: stopping with undelivered events", "webhook", h.name, "events", n)
			}
			return
		case e := <-h.queue:
			h.deliver(ctx, e)
		}
	}
}

// errPermanent: the receiver refused the event; retrying will not help.
var errPermanent = errors.New("refused")

func (h *webhook) deliver(ctx context.Context, e store.Event) {
	body, err := json.Marshal(e)
	if err != nil {
		h.met.deliveries.WithLabelValues(h.name, "failed").Inc()
		return
	}
	wait := h.cfg.Backoff
	for attempt := 1; ; attempt++ {
		err := h.post(ctx, e, body)
		if err == nil {
			h.met.deliveries.WithLabelValues(h.name, "delivered").Inc()
			return
		}
		if ctx.Err() != nil {
			h.met.deliveries.WithLabelValues(h.name, "dropped").Inc()
			return
		}
		if errors.Is(err, errPermanent) || attempt >= h.cfg.Attempts {
			h.met.deliveries.WithLabelValues(h.name, "failed").Inc()
			h.log.Warn("webhook: delivery failed", "webhook", h.name, "code", e.Code, "source", e.Source,
				"attempts", attempt, "err", err)
			return
		}
		h.met.retries.WithLabelValues(h.name).Inc()
		h.log.Debug("webhook: retrying", "webhook", h.name, "in", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			h.met.deliveries.WithLabelValues(h.name, "dropped").Inc()
			return
		case <-t.C:
		}
		wait = min(wait*2, h.cfg.MaxBackoff)
	}
}

func (h *webhook) post(ctx context.Context, e store.Event, body []byte) error {
	actx, cancel := context.WithTimeout(ctx, h.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, h.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: %v", errPermanent, err)
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "lightsout-webhook")
	req.Header.Set(HeaderEvent, e.Code)
	req.Header.Set(HeaderDelivery, strconv.FormatInt(e.ID, 10))
	req.Header.Set(HeaderTimestamp, ts)
	if len(h.cfg.Secret) > 0 {
		req.Header.Set(HeaderSignature, Sign(h.cfg.Secret, ts, body))
	}
	resp, err := h.cl.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL may hold a token: do not log it
		}
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode >= 500:
		return fmt.Errorf("receiver answered %d", resp.StatusCode)
	default:
		return fmt.Errorf("%w: receiver answered %d", errPermanent, resp.StatusCode)
	}
}
