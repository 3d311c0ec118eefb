package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestClientGoneLoggedAtDebug: an error caused by the client going away
// (its request's context cancelled) is logged at debug, not as an internal
// error; the same error while the client is still there is an internal
// error.
func TestClientGoneLoggedAtDebug(t *testing.T) {
	var buf bytes.Buffer
	a := NewHandler(Config{Logger: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := httptest.NewRequest("POST", "/api/v1/check", nil).WithContext(ctx)
	a.writeError(httptest.NewRecorder(), r, fmt.Errorf("store: %w", context.Canceled))
	if out := buf.String(); strings.Contains(out, "level=ERROR") || !strings.Contains(out, "level=DEBUG") {
		t.Errorf("a client that went away was logged as:\n%s", out)
	}
	buf.Reset()
	r = httptest.NewRequest("POST", "/api/v1/check", nil)
	a.writeError(httptest.NewRecorder(), r, errors.Join(errors.New("boom"), context.Canceled))
	if !strings.Contains(buf.String(), "level=ERROR") {
		t.Errorf("a cancellation while the client is there is not an internal error in the log:\n%s", buf.String())
	}
}
