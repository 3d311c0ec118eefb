package redfish

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// HTTPError is an answer with a status other than 2xx: the service spoke,
// and said no. It carries what the service said about why.
type HTTPError struct {
	Method string
	URL    string // path of the request
	Status int
	// Code and Message are the Redfish error object's "code" and
	// "message"; MessageIDs and Messages are its @Message.ExtendedInfo.
	Code       string
	Message    string
	MessageIDs []string
	Messages   []string
	// RetryAfter is the Retry-After header as sent ("" when none).
	RetryAfter string
	// Allow is the Allow header (405 answers).
	Allow string
	// Challenge is the WWW-Authenticate header (401 answers): DSP0266
	// wants it from a service that takes HTTP Basic.
	Challenge string
}

// BasicChallenged: a 401 whose WWW-Authenticate offers HTTP Basic — the
// service takes Basic and refused these credentials (a 401 without it is
// a service that does not take Basic, or not here).
func (e *HTTPError) BasicChallenged() bool {
	if e.Status != 401 {
		return false
	}
	for _, part := range strings.Split(e.Challenge, ",") {
		if f := strings.Fields(part); len(f) > 0 && strings.EqualFold(f[0], "basic") {
			return true
		}
	}
	return false
}

func (e *HTTPError) Error() string {
	s := fmt.Sprintf("%s %s: HTTP %d", e.Method, e.URL, e.Status)
	if m := e.Detail(); m != "" {
		s += ": " + m
	}
	return s
}

// Detail is the most specific text the service gave: the first extended
// message, else the error message, else the code.
func (e *HTTPError) Detail() string {
	var parts []string
	if e.Message != "" {
		parts = append(parts, e.Message)
	}
	for i, m := range e.Messages {
		if m != "" && m != e.Message {
			id := ""
			if i < len(e.MessageIDs) {
				id = " (" + e.MessageIDs[i] + ")"
			}
			parts = append(parts, m+id)
		}
	}
	if len(parts) == 0 {
		if len(e.MessageIDs) > 0 {
			return strings.Join(e.MessageIDs, ", ")
		}
		return e.Code
	}
	return strings.Join(parts, "; ")
}

// errorBody is the Redfish error response (DSP0266 §9.6 "Error responses").
type errorBody struct {
	Error struct {
		Code         string `json:"code"`
		Message      string `json:"message"`
		ExtendedInfo []struct {
			MessageID string `json:"MessageId"`
			Message   string `json:"Message"`
		} `json:"@Message.ExtendedInfo"`
	} `json:"error"`
	// Some services put ExtendedInfo at the top level.
	ExtendedInfo []struct {
		MessageID string `json:"MessageId"`
		Message   string `json:"Message"`
	} `json:"@Message.ExtendedInfo"`
}

// parseError fills e from a Redfish error body; anything that does not
// parse is kept as the message (shortened).
func (e *HTTPError) parse(body []byte) {
	var b errorBody
	if len(body) == 0 {
		return
	}
	if err := json.Unmarshal(body, &b); err != nil {
		s := strings.TrimSpace(string(body))
		if len(s) > 200 {
			s = s[:200] + "…"
		}
		e.Message = s
		return
	}
	e.Code, e.Message = b.Error.Code, b.Error.Message
	for _, x := range append(b.Error.ExtendedInfo, b.ExtendedInfo...) {
		e.MessageIDs = append(e.MessageIDs, x.MessageID)
		e.Messages = append(e.Messages, x.Message)
	}
}

// BodyError is an answer (2xx) whose body is not the resource it should
// be: malformed JSON, or a required property missing.
type BodyError struct {
	Resource string // ServiceRoot, ComputerSystemCollection, ComputerSystem, Session
	URL      string
	Err      error
}

func (e *BodyError) Error() string {
	return fmt.Sprintf("%s at %s: %v", e.Resource, e.URL, e.Err)
}

func (e *BodyError) Unwrap() error { return e.Err }

// NoReplyError is a request that got no HTTP answer before its deadline.
// Connected says the TCP connection was accepted; Answered that the
// service had already spoken on it (TLS handshake done, or an earlier
// answer on a kept-alive connection): with Answered it stalled, without
// it nothing at the HTTP or TLS level answered at all.
type NoReplyError struct {
	Method    string
	URL       string
	Connected bool
	Answered  bool
	Err       error
}

func (e *NoReplyError) Error() string {
	what := "no answer"
	switch {
	case e.Answered:
		what = "no reply after the service had answered on the connection"
	case e.Connected:
		what = "TCP connection accepted, then no TLS answer"
	}
	return fmt.Sprintf("%s %s: %s: %v", e.Method, e.URL, what, e.Err)
}

func (e *NoReplyError) Unwrap() error { return e.Err }

// ErrNoSessionService says a session login is impossible: the service
// root links no SessionService, or session creation answered 404, 405
// or 501.
var ErrNoSessionService = errors.New("the Redfish service offers no session login")

// AuthCause is what a refusal's message says about why.
type AuthCause int

const (
	CauseUnknown AuthCause = iota
	CauseWrongPassword
	CauseUnknownUser
	CauseLocked
)

// Cause reads why a 401/403 was given from the service's words (the
// MessageIds of @Message.ExtendedInfo, then the messages). It names a
// cause only when the service does; "incorrect user name or password"
// names none.
func (e *HTTPError) Cause() AuthCause {
	texts := make([]string, 0, 2*len(e.MessageIDs)+2)
	for _, id := range e.MessageIDs {
		// "Base.1.8.AccountLocked" → "accountlocked"
		if i := strings.LastIndexByte(id, '.'); i >= 0 {
			id = id[i+1:]
		}
		texts = append(texts, strings.ToLower(id))
	}
	texts = append(texts, strings.ToLower(e.Code))
	for _, m := range append([]string{e.Message}, e.Messages...) {
		texts = append(texts, strings.ToLower(m))
	}
	has := func(words ...string) bool {
		for _, t := range texts {
			for _, w := range words {
				if strings.Contains(t, w) {
					return true
				}
			}
		}
		return false
	}
	switch {
	case has("accountlocked", "account locked", "account is locked", "lockedout", "locked out", "lockout",
		"accountdisabled", "account disabled", "account is disabled", "user is disabled", "usernotenabled"):
		return CauseLocked
	case has("nosuchuser", "no such user", "usernotfound", "user not found", "unknown user", "accountnotfound",
		"invalidusername", "user does not exist", "account does not exist"):
		return CauseUnknownUser
	case has("invalidpassword", "incorrectpassword", "wrongpassword", "passwordincorrect", "password is incorrect",
		"incorrect password", "invalid password", "wrong password"):
		return CauseWrongPassword
	}
	return CauseUnknown
}
