package client

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/lightsout/lightsout/internal/api/wire"
	"github.com/lightsout/lightsout/internal/power"
	"github.com/lightsout/lightsout/internal/store"
)

// serve runs h on a loopback port for the test.
func serve(t *testing.T, h http.HandlerFunc) *Client {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &http.Server{Handler: h}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	c, err := New("http://"+ln.Addr().String(), "lso_x")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestErrorsDecoded(t *testing.T) {
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer lso_x" {
			t.Errorf("Authorization %q", r.Header.Get("Authorization"))
		}
		switch r.URL.Path {
		case "/api/v1/machines/web-1":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(404)
			w.Write([]byte(`{"error":{"code":"not_found","message":"no machine named \"web-1\"","field":"name"}}`))
		default:
			http.Error(w, "bad gateway", http.StatusBadGateway)
		}
	})
	_, err := c.Machine(context.Background(), "web-1")
	var ce *Error
	if !errors.As(err, &ce) || ce.Status != 404 || ce.Code != "not_found" || ce.Field != "name" || !errors.Is(err, store.ErrNotFound) {
		t.Errorf("404: %#v", err)
	}
	_, err = c.Summary(context.Background())
	if !errors.As(err, &ce) || ce.Status != 502 || ce.Code != "http_502" {
		t.Errorf("proxy error: %#v", err)
	}
}

func TestStreamTruncated(t *testing.T) {
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.Write([]byte(`{"machine":"a","action":"off","result":"ok","batch":1,"elapsed_ms":1}` + "\n"))
		// no summary: the server went away
	})
	var got []power.Result
	_, err := c.Power(context.Background(), wire.PowerRequest{Action: "off", Machines: []string{"a"}}, func(r power.Result) { got = append(got, r) })
	if !errors.Is(err, ErrTruncated) || len(got) != 1 || got[0].Machine != "a" {
		t.Errorf("truncated stream: %v %+v", err, got)
	}
}

func TestNewRefusesBadURLs(t *testing.T) {
	for _, u := range []string{"", "127.0.0.1:8623", "ftp://x", "http://user:pw@host", "http://h/?q=1"} {
		if _, err := New(u, ""); err == nil {
			t.Errorf("New(%q) accepted", u)
		}
	}
	if _, err := New("http://h", "a\nb"); err == nil {
		t.Error("a token with a line break was accepted")
	}
}

// Nothing listening: the error says what to do.
func TestRefusedSaysStartTheServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c, err := New("http://"+addr, "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Machines(context.Background(), MachineQuery{})
	if err == nil || !strings.Contains(err.Error(), "lightsout server") || !strings.Contains(err.Error(), "--server") {
		t.Errorf("refused: %v", err)
	}
}
