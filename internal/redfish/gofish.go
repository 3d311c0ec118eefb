package redfish

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"

	"github.com/stmcginnis/gofish/schemas"
)

// Gofish returns the client as a gofish schemas.Client bound to ctx, so
// gofish's typed resources (ComputerSystem.Reset, Update, ...) act through
// this client's authentication and errors.
func (c *Client) Gofish(ctx context.Context) schemas.Client { return gofishClient{c, ctx} }

type gofishClient struct {
	c   *Client
	ctx context.Context
}

func (g gofishClient) GetSettings() schemas.ClientSettings { return schemas.ClientSettings{} }

func (g gofishClient) send(method, url string, payload any, hdr map[string]string) (*http.Response, error) {
	r, err := g.c.do(g.ctx, method, url, payload, hdr)
	if r == nil {
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	return &http.Response{StatusCode: r.Status, Header: r.Header, TLS: r.TLS, Body: io.NopCloser(bytes.NewReader(r.Body))}, nil
}

func (g gofishClient) Get(url string) (*http.Response, error) {
	return g.send(http.MethodGet, url, nil, nil)
}
func (g gofishClient) GetWithHeaders(url string, h map[string]string) (*http.Response, error) {
	return g.send(http.MethodGet, url, nil, h)
}
func (g gofishClient) Post(url string, p any) (*http.Response, error) {
	return g.send(http.MethodPost, url, p, nil)
}
func (g gofishClient) PostWithHeaders(url string, p any, h map[string]string) (*http.Response, error) {
	return g.send(http.MethodPost, url, p, h)
}
func (g gofishClient) Patch(url string, p any) (*http.Response, error) {
	return g.send(http.MethodPatch, url, p, nil)
}
func (g gofishClient) PatchWithHeaders(url string, p any, h map[string]string) (*http.Response, error) {
	return g.send(http.MethodPatch, url, p, h)
}
func (g gofishClient) Put(url string, p any) (*http.Response, error) {
	return g.send(http.MethodPut, url, p, nil)
}
func (g gofishClient) PutWithHeaders(url string, p any, h map[string]string) (*http.Response, error) {
	return g.send(http.MethodPut, url, p, h)
}
func (g gofishClient) Delete(url string) (*http.Response, error) {
	return g.send(http.MethodDelete, url, nil, nil)
}
func (g gofishClient) DeleteWithHeaders(url string, h map[string]string) (*http.Response, error) {
	return g.send(http.MethodDelete, url, nil, h)
}

var errMultipart = errors.New("redfish: multipart requests are not supported")

func (g gofishClient) PostMultipart(string, map[string]io.Reader) (*http.Response, error) {
	return nil, errMultipart
}
func (g gofishClient) PostMultipartWithHeaders(string, map[string]io.Reader, map[string]string) (*http.Response, error) {
	return nil, errMultipart
}
