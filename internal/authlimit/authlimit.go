// Package authlimit throttles failed authentications (API bearer tokens,
// web console logins) per source address, and counts each failure.
//
// Each source address has a bucket of Burst failures that refills at one
// per Refill; while it is empty, authentication from that address is
// refused before any token is looked up, with the time until the next
// attempt is allowed (the Retry-After of the reply). A successful
// authentication takes nothing from the bucket. The limiter is pure state
// with the time passed in, safe for concurrent use.
package authlimit

import (
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults: 10 failures at once, then one every 6 s (10 a minute).
const (
	DefaultBurst  = 10
	DefaultRefill = 6 * time.Second
	// maxSources bounds the table; full buckets are dropped first.
	maxSources = 65536
)

// Limiter is the per-address failure budget.
type Limiter struct {
	Burst  int
	Refill time.Duration
	// Failures counts every failed authentication by kind ("bearer",
	// "login"); nil: not counted.
	Failures *prometheus.CounterVec

	mu sync.Mutex
	m  map[netip.Addr]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

// New returns a limiter with the defaults and its failure counter,
// lightsout_auth_failures_total{kind}, registered on reg (nil: none).
func New(reg prometheus.Registerer) *Limiter {
	l := &Limiter{Burst: DefaultBurst, Refill: DefaultRefill, m: map[netip.Addr]*bucket{},
		Failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lightsout_auth_failures_total",
			Help: "Failed authentications (kind bearer: API token; login: web console), each counted, throttled or not.",
		}, []string{"kind"})}
	if reg != nil {
		if err := reg.Register(l.Failures); err != nil {
			if are, ok := err.(prometheus.AlreadyRegisteredError); ok {
				if c, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
					l.Failures = c
				}
			}
		}
	}
	return l
}

// Source is the address a request comes from (its TCP peer; forwarding
// headers are not trusted).
func Source(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

// refill brings b up to now (l.mu held).
func (l *Limiter) refill(b *bucket, now time.Time) {
	if l.Refill > 0 && now.After(b.at) {
		b.tokens += float64(now.Sub(b.at)) / float64(l.Refill)
		if b.tokens > float64(l.Burst) {
			b.tokens = float64(l.Burst)
		}
	}
	b.at = now
}

// Allow says whether src may try to authenticate at now; when not, it
// returns how long until it may.
func (l *Limiter) Allow(src netip.Addr, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.m[src]
	if !ok {
		return true, 0
	}
	l.refill(b, now)
	if b.tokens >= 1 {
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) * float64(l.Refill))
}

// Fail records a failed authentication of kind from src at now.
func (l *Limiter) Fail(kind string, src netip.Addr, now time.Time) {
	if l.Failures != nil {
		l.Failures.WithLabelValues(kind).Inc()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[netip.Addr]*bucket{}
	}
	b, ok := l.m[src]
	if !ok {
		if len(l.m) >= maxSources {
			l.prune(now)
		}
		b = &bucket{tokens: float64(l.Burst), at: now}
		l.m[src] = b
	}
	l.refill(b, now)
	b.tokens--
	if b.tokens < 0 {
		b.tokens = 0
	}
}

// prune drops the buckets that have refilled (l.mu held); if none has, it
// drops any one, so the table stays bounded.
func (l *Limiter) prune(now time.Time) {
	for a, b := range l.m {
		l.refill(b, now)
		if b.tokens >= float64(l.Burst) {
			delete(l.m, a)
		}
	}
	if len(l.m) >= maxSources {
		for a := range l.m {
			delete(l.m, a)
			break
		}
	}
}

// RetryAfter is the Retry-After header value for d: whole seconds, at
// least 1.
func RetryAfter(d time.Duration) string {
	s := int((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return strconv.Itoa(s)
}
