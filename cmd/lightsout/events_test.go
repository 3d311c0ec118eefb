package main

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/lightsout/lightsout/internal/poll"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/api/apitest"
	"github.com/lightsout/lightsout/internal/events"
	"github.com/lightsout/lightsout/internal/store"
)

// syncBuffer is a bytes.Buffer safe to read while the command writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestCLIEvents(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("LIGHTSOUT_SERVER", "")
	t.Setenv("LIGHTSOUT_TOKEN", "")
	e := apitest.Start(t, apitest.Options{})
	rec := e.Server.Events
	ctx := context.Background()
	now := time.Now()
	record := func(code, source, msg string, sev store.Severity) {
		t.Helper()
		if _, err := rec.Record(ctx, store.Event{Code: code, Source: source, Message: msg, Severity: sev, At: now}); err != nil {
			t.Fatal(err)
		}
	}
	record(events.OOBNotResponding, "web-1", "web-1 went quiet", "")
	record(events.AuditCipher0Enabled, "web-2", "web-2 takes cipher 0", "")
	record(events.AuditWeakAuth, "web-1", "web-1 offers MD2", "")
	record(events.OOBStateChanged, "web-1", "web-1: Unknown → Connectable", "")

	viewer := func(args ...string) (string, int, error) {
		return as(t, e, store.RoleViewer, append([]string{"events"}, args...)...)
	}
	out, code, err := viewer("--severity", "critical")
	wantExit(t, "--severity critical", out, code, err, 0, "web-2 takes cipher 0")
	if strings.Contains(out, "web-1 went quiet") || strings.Contains(out, "MD2") {
		t.Errorf("--severity critical lists less severe events:\n%s", out)
	}
	out, code, err = viewer("--code", "audit.*", "--source", "web-1", "-o", "json")
	wantExit(t, "--code audit.* --source web-1", out, code, err, 0, `"code":"audit.weak_auth"`)
	if n := strings.Count(strings.TrimSpace(out), "\n") + 1; n != 1 {
		t.Errorf("want 1 event, got %d:\n%s", n, out)
	}
	out, code, err = viewer("--severity", "fatal")
	wantExit(t, "bad --severity", out, code, err, 2, "--severity")
	out, code, err = viewer("--code", "audit*")
	wantExit(t, "bad --code", out, code, err, 2, "--code")

	// --follow: the stored events since --since first, then live ones.
	var buf syncBuffer
	fctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		root := newRoot()
		root.SetOut(&buf)
		root.SetErr(&buf)
		root.SetArgs([]string{"events", "--follow", "--since", "1h", "--severity", "warning", "-o", "json",
			"--server", e.URL, "--token-file", e.TokenFiles[store.RoleViewer]})
		done <- root.ExecuteContext(fctx)
	}()
	waitOut := func(what string) {
		t.Helper()
		if !poll.Wait(10*time.Second, func() bool { return strings.Contains(buf.String(), what) }) {
			t.Fatalf("--follow never printed %q:\n%s", what, buf.String())
		}
	}
	waitOut("web-1 went quiet")
	waitOut("web-1 offers MD2")
	record(events.OOBTimeoutFlood, "db-1", "db-1 floods", "")
	record(events.OOBStateChanged, "db-1", "db-1: info only", "")
	record(events.OOBTimeoutFlood, "db-1", "db-1 floods again", "") // a repeat: printed with its count
	waitOut("db-1 floods again")
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("--follow ended with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("--follow did not stop on cancel")
	}
	var lines []store.Event
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var ev store.Event
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("not a JSON line: %q", l)
		}
		lines = append(lines, ev)
	}
	var got []string
	for _, ev := range lines {
		got = append(got, ev.Source+":"+ev.Message)
		if ev.Message == "db-1 floods again" && ev.Count != 2 {
			t.Errorf("repeat printed with count %d", ev.Count)
		}
	}
	// Oldest first; info below --severity warning is left out.
	want := []string{"web-1:web-1 went quiet", "web-2:web-2 takes cipher 0", "web-1:web-1 offers MD2", "db-1:db-1 floods", "db-1:db-1 floods again"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("--follow printed\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// --follow --out FILE: the file fills as events come (tail -f), while
	// the command still runs; -o yaml is one document per event.
	file := filepath.Join(t.TempDir(), "events.yaml")
	fctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	go func() {
		root := newRoot()
		root.SetOut(io.Discard)
		root.SetErr(io.Discard)
		root.SetArgs([]string{"events", "--follow", "--since", "1h", "--severity", "warning", "-o", "yaml", "--out", file,
			"--server", e.URL, "--token-file", e.TokenFiles[store.RoleViewer]})
		done <- root.ExecuteContext(fctx)
	}()
	var b []byte
	if !poll.Wait(10*time.Second, func() bool {
		b, _ = os.ReadFile(file)
		return strings.Contains(string(b), "message: web-1 offers MD2")
	}) {
		t.Fatalf("--follow --out: the file holds\n%s", b)
	}
	if !strings.HasPrefix(string(b), "---\n") {
		t.Errorf("--out file is not YAML documents:\n%s", b)
	}
	select {
	case err := <-done:
		t.Fatalf("--follow --out ended by itself: %v", err)
	default:
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("--follow --out ended with %v", err)
	}
}

func TestServerEventFlags(t *testing.T) {
	dir := t.TempDir()
	open := writeFile(t, "open.secret", "s3cret\n")
	os.Chmod(open, 0o644)
	good := writeFile(t, "good.secret", "s3cret\n")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--webhook", "ftp://example.com/x"}, "--webhook"},
		{[]string{"--webhook", "example.com/hook"}, "not an http(s) URL"},
		{[]string{"--webhook-secret-file", good}, "no --webhook"},
		{[]string{"--webhook", "https://example.com/x", "--webhook-secret-file", open}, "chmod 600"},
		{[]string{"--webhook", "https://example.com/x", "--webhook-secret-file", dir + "/missing"}, "--webhook-secret-file"},
		{[]string{"--webhook", "https://example.com/x", "--webhook-min-severity", "loud"}, "--webhook-min-severity"},
		{[]string{"--event-retention", "10m"}, "--event-retention"},
		{[]string{"--flood-threshold", "0"}, "--flood-threshold"},
	} {
		out, code, err := runCLI(t, append([]string{"server", "--data", dir, "--listen", "127.0.0.1:0"}, c.args...)...)
		wantExit(t, strings.Join(c.args, " "), out, code, err, 2, c.want)
	}
}
