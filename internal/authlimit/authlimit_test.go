package authlimit

import (
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestLimiter(t *testing.T) {
	l := New(prometheus.NewRegistry())
	a, b := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")
	t0 := time.Unix(1000, 0)
	for i := range DefaultBurst {
		if ok, _ := l.Allow(a, t0); !ok {
			t.Fatalf("refused after %d failures", i)
		}
		l.Fail("bearer", a, t0)
	}
	ok, wait := l.Allow(a, t0)
	if ok || wait != DefaultRefill {
		t.Fatalf("after the burst: %v %v, want refused for %v", ok, wait, DefaultRefill)
	}
	if ok, _ := l.Allow(b, t0); !ok {
		t.Error("another source is throttled too")
	}
	if ok, _ := l.Allow(a, t0.Add(DefaultRefill)); !ok {
		t.Error("still refused after a refill period")
	}
	l.Fail("login", a, t0.Add(DefaultRefill))
	if ok, wait := l.Allow(a, t0.Add(DefaultRefill+time.Second)); ok || wait != DefaultRefill-time.Second {
		t.Errorf("one refill spent: %v %v", ok, wait)
	}
	if n := testutil.ToFloat64(l.Failures.WithLabelValues("bearer")); n != DefaultBurst {
		t.Errorf("bearer failures counted %v", n)
	}
	if n := testutil.ToFloat64(l.Failures.WithLabelValues("login")); n != 1 {
		t.Errorf("login failures counted %v", n)
	}
	if RetryAfter(1500*time.Millisecond) != "2" || RetryAfter(0) != "1" {
		t.Error("RetryAfter rounding")
	}
}
