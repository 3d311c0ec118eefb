package redfish

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// oneShotReadBuf sizes GetOn's reader of the answer.
const oneShotReadBuf = 1024

// GetOn sends GET path on conn, a TLS connection opened (and its
// handshake done) for this one request, with the client's credentials,
// reads the answer and closes conn. It is Do for a check that sends one
// request to a BMC: no net/http transport (its two goroutines per
// connection, its connection pool, a trace per request), one write for
// the request, and the connection closed without a close_notify
// (Connection: close, the answer read to its end). Errors are Do's: a
// status outside 2xx is an *HTTPError, no answer before the deadline a
// *NoReplyError (Answered: the TLS handshake was done).
func (c *Client) GetOn(ctx context.Context, conn *tls.Conn, path string) (*Response, error) {
	defer conn.NetConn().Close()
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	u, err := url.Parse(path)
	if err != nil || u.Host != "" || !strings.HasPrefix(u.Path, "/") {
		return nil, fmt.Errorf("GET %q: not a path on the service", path)
	}
	host := strings.TrimPrefix(strings.TrimPrefix(c.Base, "https://"), "http://")
	var b strings.Builder
	b.Grow(256)
	b.WriteString("GET ")
	b.WriteString(u.RequestURI())
	b.WriteString(" HTTP/1.1\r\nHost: ")
	b.WriteString(host)
	b.WriteString("\r\nUser-Agent: lightsout\r\nAccept: application/json\r\nOData-Version: 4.0\r\n")
	switch c.mode {
	case AuthSession:
		b.WriteString("X-Auth-Token: ")
		b.WriteString(c.token)
		b.WriteString("\r\n")
	case AuthBasic:
		b.WriteString("Authorization: Basic ")
		b.WriteString(base64.StdEncoding.EncodeToString([]byte(c.User + ":" + string(c.Password))))
		b.WriteString("\r\n")
	}
	b.WriteString("Connection: close\r\n\r\n")
	if strings.ContainsAny(host, "\r\n") {
		return nil, fmt.Errorf("GET %s: the service's address %q is not a host", u.Path, host)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.NetConn().SetDeadline(time.Now()) })
	defer stop()
	_ = conn.SetDeadline(deadline)
	fail := func(err error) error {
		if ctx.Err() != nil {
			return fmt.Errorf("GET %s: %w", u.Path, ctx.Err())
		}
		return noReply(http.MethodGet, u.Path, err, true, true)
	}
	if _, err := io.WriteString(conn, b.String()); err != nil {
		return nil, fail(err)
	}
	// A small reader (one check holds it across the network wait, a
	// thousand checks at once: fresh memory is page faults): header
	// lines longer than it are read in pieces (net/textproto).
	resp, err := http.ReadResponse(bufio.NewReaderSize(conn, oneShotReadBuf), nil)
	if err != nil {
		return nil, fail(err)
	}
	var body []byte
	if n := resp.ContentLength; n >= 0 && n <= MaxBody {
		// The announced length read into a buffer of that size (io.ReadAll
		// grows one by doubling); a body shorter than announced is an error.
		body = make([]byte, n)
		_, err = io.ReadFull(resp.Body, body)
	} else {
		body, err = io.ReadAll(io.LimitReader(resp.Body, MaxBody))
	}
	resp.Body.Close()
	if err != nil {
		return nil, fail(err)
	}
	st := conn.ConnectionState()
	r := &Response{Status: resp.StatusCode, Header: resp.Header, TLS: &st, Body: body}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		he := &HTTPError{Method: http.MethodGet, URL: u.Path, Status: resp.StatusCode,
			RetryAfter: resp.Header.Get("Retry-After"), Allow: resp.Header.Get("Allow"),
			Challenge: strings.Join(resp.Header.Values("WWW-Authenticate"), ", ")}
		he.parse(body)
		return r, he
	}
	return r, nil
}
