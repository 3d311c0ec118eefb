package redfish

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
)

// SessionEntry is one open session of a Redfish service, as the session
// census reads it from the SessionService.
type SessionEntry struct {
	URI  string `json:"uri"`
	ID   string `json:"id,omitempty"`
	User string `json:"user,omitempty"`
	// Client is the address the session was opened from, when the service
	// says (ClientOriginIPAddress, Session v1_3_0 and later).
	Client string `json:"client,omitempty"`
	// Created is when it was opened, when the service says (CreatedTime).
	Created string `json:"created,omitempty"`
	// Ours: the session this client is logged in with.
	Ours bool `json:"ours,omitempty"`
	// Err: the member could not be read (it may have ended meanwhile).
	Err string `json:"error,omitempty"`
}

// MaxCensus bounds the sessions one census reads one by one.
const MaxCensus = 64

// Sessions is the session census: the sessions collection at path
// (DefaultSessions when ""), then each member, at most MaxCensus of them
// (total counts every member listed). It needs credentials (Basic, or a
// session: the client's own is marked Ours).
func (c *Client) Sessions(ctx context.Context, path string) (entries []SessionEntry, total int, err error) {
	if path == "" {
		path = DefaultSessions
	}
	var coll struct {
		Members []Link
	}
	if err := c.Get(ctx, path, "SessionCollection", &coll); err != nil {
		return nil, 0, err
	}
	ours := sameURI(c.location)
	for _, m := range coll.Members {
		if m.ID == "" {
			continue
		}
		total++
		if len(entries) == MaxCensus {
			continue
		}
		e := SessionEntry{URI: m.ID, Ours: c.mode == AuthSession && ours(m.ID)}
		var s struct {
			ID                    string `json:"Id"`
			UserName              string
			ClientOriginIPAddress string
			CreatedTime           string
		}
		if err := c.Get(ctx, m.ID, "Session", &s); err != nil {
			var he *HTTPError
			if errors.As(err, &he) && he.Status == http.StatusNotFound {
				total-- // ended between the two reads
				continue
			}
			e.Err = err.Error()
		}
		e.ID, e.User, e.Client, e.Created = s.ID, s.UserName, s.ClientOriginIPAddress, s.CreatedTime
		entries = append(entries, e)
	}
	return entries, total, nil
}

// sameURI matches a session URI against ours, ignoring a trailing slash,
// a scheme and host, and case (services differ in all three).
func sameURI(ours string) func(string) bool {
	norm := func(s string) string {
		if u, err := url.Parse(s); err == nil && u.IsAbs() {
			s = u.RequestURI()
		}
		return strings.ToLower(strings.TrimSuffix(s, "/"))
	}
	o := norm(ours)
	return func(s string) bool { return o != "" && norm(s) == o }
}

// SameSession reports whether two session URIs name the same session
// (ignoring a trailing slash, a scheme and host, and case).
func SameSession(a, b string) bool { return sameURI(a)(b) }
