package redfish

import (
	"context"
	"io"
	"net/http"
	"time"
)

// maxHold bounds a given-up request without a deadline of its own (every
// Client request has one: Client.Timeout).
const maxHold = 30 * time.Second

// HoldOnCancel wraps rt so that one HTTP request of ours at a time per BMC
// holds also when a caller gives up. A transport with one connection per
// BMC (probe.NewRedfishTransport: MaxConnsPerHost 1) carries one request
// at a time on it; but a cancelled request makes it close that connection,
// and the next request to the BMC would go out on a new one at once while
// the BMC still works on the abandoned one. Through HoldOnCancel the
// caller gets its context's error at once, and the request itself runs on
// until the BMC answers (its body is read and dropped) or its deadline
// passes, keeping the BMC's connection — and so the BMC's turn — until
// then.
func HoldOnCancel(rt http.RoundTripper) http.RoundTripper {
	if rt == nil {
		rt = http.DefaultTransport
	}
	if _, ok := rt.(holdRT); ok {
		return rt
	}
	return holdRT{rt}
}

type holdRT struct{ rt http.RoundTripper }

type roundTrip struct {
	resp *http.Response
	err  error
}

func (h holdRT) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	if ctx.Done() == nil {
		return h.rt.RoundTrip(req)
	}
	until, ok := ctx.Deadline()
	if !ok {
		until = time.Now().Add(maxHold)
	}
	dctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), until)
	ch := make(chan roundTrip, 1)
	go func() {
		resp, err := h.rt.RoundTrip(req.WithContext(dctx))
		ch <- roundTrip{resp, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			cancel()
			return nil, r.err
		}
		r.resp.Body = &heldBody{ReadCloser: r.resp.Body, cancel: cancel}
		return r.resp, nil
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.err == nil {
				_, _ = io.Copy(io.Discard, io.LimitReader(r.resp.Body, 1<<20))
				r.resp.Body.Close()
			}
			cancel()
		}()
		return nil, ctx.Err()
	}
}

// CloseIdleConnections passes on to the wrapped transport.
func (h holdRT) CloseIdleConnections() {
	if c, ok := h.rt.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// heldBody ends the request's detached context when the body is closed.
type heldBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *heldBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}
