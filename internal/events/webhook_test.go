package events

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/poll"
	"github.com/lightsout/lightsout/internal/store"
)

// receiver is a webhook endpoint on 127.0.0.1 that verifies signatures.
type receiver struct {
	URL    string
	secret []byte
	mu     sync.Mutex
	got    []store.Event
	bad    []string
	calls  int
	// answer decides the status of the nth call (1-based).
	answer func(n int) int
	// hold, when set, blocks every request until closed.
	hold chan struct{}
}

func startReceiver(t *testing.T, secret []byte, answer func(n int) int) *receiver {
	t.Helper()
	rc := &receiver{secret: secret, answer: answer}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: rc, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() {
		rc.mu.Lock()
		if rc.hold != nil {
			select {
			case <-rc.hold:
			default:
				close(rc.hold)
			}
		}
		rc.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	rc.URL = "http://" + ln.Addr().String() + "/hooks/lightsout?token=s3cret"
	return rc
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc.mu.Lock()
	hold := rc.hold
	rc.mu.Unlock()
	if hold != nil {
		<-hold
	}
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.calls++
	status := http.StatusNoContent
	if rc.answer != nil {
		status = rc.answer(rc.calls)
	}
	if status/100 == 2 {
		var e store.Event
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || json.Unmarshal(body, &e) != nil ||
			r.Header.Get(HeaderEvent) != e.Code || r.URL.Query().Get("token") != "s3cret" {
			rc.bad = append(rc.bad, "malformed delivery: "+string(body))
		} else if rc.secret != nil {
			if err := Verify(rc.secret, r.Header.Get(HeaderSignature), r.Header.Get(HeaderTimestamp), body, time.Now(), 5*time.Minute); err != nil {
				rc.bad = append(rc.bad, err.Error())
			}
		} else if r.Header.Get(HeaderSignature) != "" {
			rc.bad = append(rc.bad, "signed without a secret")
		}
		rc.got = append(rc.got, e)
	}
	w.WriteHeader(status)
}

func (rc *receiver) events() ([]store.Event, []string, int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]store.Event(nil), rc.got...), append([]string(nil), rc.bad...), rc.calls
}

func TestWebhookSigned(t *testing.T) {
	secret := []byte("correct horse battery staple")
	rc := startReceiver(t, secret, nil)
	r, _, _ := newRecorder(t, Config{Webhooks: []WebhookConfig{{URL: rc.URL, Secret: secret, MinSeverity: store.SeverityWarning,
		Codes: []string{"oob.*", FleetCorrelated}}}})
	r.Start(context.Background())
	ctx := context.Background()
	r.Record(ctx, store.Event{Code: OOBTimeoutFlood, Source: "web-1", Message: "flood", At: t0})
	r.Record(ctx, store.Event{Code: OOBTimeoutFlood, Source: "web-1", At: t0.Add(time.Minute)}) // a repeat: counted, not sent
	r.Record(ctx, store.Event{Code: OOBStateChanged, Source: "web-1", At: t0})                  // info: below the webhook's severity
	r.Record(ctx, store.Event{Code: AuditCipher0Enabled, Source: "web-1", At: t0})              // not in its codes
	r.Record(ctx, store.Event{Code: OOBAuthRefused, Source: "web-2", At: t0})
	// A webhook delivers in recording order: once the last event recorded
	// is in, any other delivery of these five would be in too.
	poll.Until(t, 10*time.Second, "the delivery of the last event", func() bool {
		got, _, _ := rc.events()
		return len(got) >= 2 && slices.ContainsFunc(got, func(e store.Event) bool { return e.Code == OOBAuthRefused })
	})
	got, bad, calls := rc.events()
	if len(bad) > 0 {
		t.Fatalf("bad deliveries: %v", bad)
	}
	if len(got) != 2 || calls != 2 || got[0].Code != OOBTimeoutFlood || got[0].Message != "flood" || got[0].Count != 1 ||
		got[0].ID == 0 || got[1].Code != OOBAuthRefused || got[1].Severity != store.SeverityCritical {
		t.Fatalf("delivered %+v (%d calls)", got, calls)
	}
	if metric(t, r, "lightsout_webhook_deliveries_total", map[string]string{"result": "delivered"}) != 2 {
		t.Fatal("deliveries not counted")
	}
	// The metric names the webhook by scheme and host only: its path and
	// query may hold a token.
	reg := metric(t, r, "lightsout_webhook_deliveries_total", map[string]string{"webhook": rc.URL})
	if reg != 0 || metric(t, r, "lightsout_webhook_deliveries_total", map[string]string{"webhook": r.hooks[0].name}) != 2 ||
		strings.Contains(r.hooks[0].name, "s3cret") {
		t.Fatalf("webhook label %q", r.hooks[0].name)
	}
}

func TestWebhookSignature(t *testing.T) {
	body := []byte(`{"code":"x"}`)
	sig := Sign([]byte("k"), "1700000000", body)
	if !strings.HasPrefix(sig, "sha256=") || len(sig) != 7+64 {
		t.Fatalf("signature %q", sig)
	}
	now := time.Unix(1700000000, 0)
	for _, c := range []struct {
		secret, sig, ts string
		body            []byte
		now             time.Time
		ok              bool
	}{
		{"k", sig, "1700000000", body, now, true},
		{"k", sig, "1700000000", body, now.Add(4 * time.Minute), true},
		{"k", sig, "1700000000", body, now.Add(6 * time.Minute), false}, // replayed late
		{"other", sig, "1700000000", body, now, false},
		{"k", sig, "1700000001", body, now, false}, // timestamp is signed
		{"k", sig, "1700000000", []byte(`{"code":"y"}`), now, false},
		{"k", sig, "nope", body, now, false},
		{"k", "sha256=00", "1700000000", body, now, false},
	} {
		err := Verify([]byte(c.secret), c.sig, c.ts, c.body, c.now, 5*time.Minute)
		if (err == nil) != c.ok {
			t.Errorf("Verify(%+v) = %v", c, err)
		}
	}
}

func TestWebhookRetries(t *testing.T) {
	// 503, then a dropped connection-level failure (429), then 200.
	rc := startReceiver(t, nil, func(n int) int {
		switch n {
		case 1:
			return http.StatusServiceUnavailable
		case 2:
			return http.StatusTooManyRequests
		}
		return http.StatusOK
	})
	r, _, _ := newRecorder(t, Config{Webhooks: []WebhookConfig{{URL: rc.URL, Backoff: 20 * time.Millisecond}}})
	r.Start(context.Background())
	start := time.Now()
	r.Record(context.Background(), store.Event{Code: OOBNotResponding, Source: "web-1", At: t0})
	poll.Until(t, 10*time.Second, "a delivery", func() bool { got, _, _ := rc.events(); return len(got) == 1 })
	// Back-off doubles: 20 ms, then 40 ms.
	if el := time.Since(start); el < 60*time.Millisecond {
		t.Fatalf("delivered after %v: no back-off", el)
	}
	if _, bad, calls := rc.events(); calls != 3 || len(bad) > 0 {
		t.Fatalf("%d calls, %v", calls, bad)
	}
	if metric(t, r, "lightsout_webhook_retries_total", nil) != 2 ||
		metric(t, r, "lightsout_webhook_deliveries_total", map[string]string{"result": "delivered"}) != 1 {
		t.Fatal("retry metrics")
	}
}

func TestWebhookFailures(t *testing.T) {
	// A receiver that refuses (400): not retried. One that is down: retried
	// Attempts times, then counted as failed.
	refusing := startReceiver(t, nil, func(int) int { return http.StatusBadRequest })
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	down := "http://" + ln.Addr().String() + "/hook"
	ln.Close()
	r, _, _ := newRecorder(t, Config{Webhooks: []WebhookConfig{
		{URL: refusing.URL, Backoff: time.Millisecond},
		{URL: down, Attempts: 3, Backoff: time.Millisecond},
	}})
	r.Start(context.Background())
	r.Record(context.Background(), store.Event{Code: OOBNotResponding, Source: "web-1", At: t0})
	failed := func(i int) float64 {
		return metric(t, r, "lightsout_webhook_deliveries_total", map[string]string{"webhook": r.hooks[i].name, "result": "failed"})
	}
	poll.Until(t, 10*time.Second, "both failures", func() bool { return failed(0) == 1 && failed(1) == 1 })
	if _, _, calls := refusing.events(); calls != 1 {
		t.Fatalf("a refusal was retried: %d calls", calls)
	}
	if metric(t, r, "lightsout_webhook_retries_total", map[string]string{"webhook": r.hooks[1].name}) != 2 {
		t.Fatal("down receiver: want 2 retries")
	}
}

func TestWebhookNeverBlocks(t *testing.T) {
	rc := startReceiver(t, nil, nil)
	rc.hold = make(chan struct{})
	r, _, _ := newRecorder(t, Config{Webhooks: []WebhookConfig{{URL: rc.URL, Queue: 2, Timeout: 5 * time.Second}}})
	r.Start(context.Background())
	start := time.Now()
	for i := 0; i < 10; i++ {
		if i == 1 {
			poll.Until(t, 10*time.Second, "the first event in flight", func() bool { return len(r.hooks[0].queue) == 0 })
		}
		// Distinct sources: every one is a new event.
		if _, err := r.Record(context.Background(), store.Event{Code: OOBNotResponding, Source: string(rune('a' + i)), At: t0}); err != nil {
			t.Fatal(err)
		}
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("recording waited for the webhook: %v", el)
	}
	// One in flight (held), two queued, seven dropped.
	poll.Until(t, 10*time.Second, "drops counted", func() bool {
		return metric(t, r, "lightsout_webhook_deliveries_total", map[string]string{"result": "dropped"}) == 7
	})
	rc.mu.Lock()
	close(rc.hold)
	rc.mu.Unlock()
	poll.Until(t, 10*time.Second, "3 deliveries", func() bool { got, _, _ := rc.events(); return len(got) == 3 })
}

func TestWebhookConfig(t *testing.T) {
	for _, c := range []WebhookConfig{
		{URL: "ftp://example.com/x"},
		{URL: "example.com/hook"},
		{URL: "http://"},
		{URL: "https://example.com/x", MinSeverity: "fatal"},
		{URL: "https://example.com/x", Codes: []string{"audit*"}},
		{URL: "https://example.com/x", Codes: []string{""}},
	} {
		if err := ValidateWebhook(c); err == nil {
			t.Errorf("%+v accepted", c)
		}
		if _, err := New(Config{Store: openStore(t), Webhooks: []WebhookConfig{c}}); err == nil {
			t.Errorf("New accepted %+v", c)
		}
	}
	if err := ValidateWebhook(WebhookConfig{URL: "https://hooks.example.com/T0/B0/x", MinSeverity: store.SeverityCritical,
		Codes: []string{"audit.*"}}); err != nil {
		t.Fatal(err)
	}
	// A token in a bad URL is not echoed in full.
	err := ValidateWebhook(WebhookConfig{URL: "hooks.example.com/" + strings.Repeat("x", 100)})
	if err == nil || strings.Contains(err.Error(), strings.Repeat("x", 50)) {
		t.Fatalf("error %v", err)
	}
}

func TestReadSecretFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		return p
	}
	if b, err := ReadSecretFile(write("ok", "s3cret value\r\nignored\n", 0o600)); err != nil || string(b) != "s3cret value" {
		t.Fatalf("%q %v", b, err)
	}
	if _, err := ReadSecretFile(write("world", "x\n", 0o644)); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable: %v", err)
	}
	if _, err := ReadSecretFile(write("empty", "\nx\n", 0o600)); err == nil {
		t.Fatal("empty first line accepted")
	}
	if _, err := ReadSecretFile(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("missing file accepted")
	}
}
