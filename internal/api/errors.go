package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/lightsout/lightsout/internal/api/wire"
	"github.com/lightsout/lightsout/internal/inventory"
	"github.com/lightsout/lightsout/internal/manager"
	"github.com/lightsout/lightsout/internal/power"
	"github.com/lightsout/lightsout/internal/store"
)

// apiError is an error the handlers raise themselves, already classified.
type apiError struct {
	status int
	code   string
	field  string
	msg    string
}

func (e *apiError) Error() string { return e.msg }

// invalid is a 400 invalid_field naming field.
func invalid(field, format string, a ...any) error {
	return &apiError{status: http.StatusBadRequest, code: wire.CodeInvalidField, field: field,
		msg: field + ": " + fmt.Sprintf(format, a...)}
}

func notFound(field, format string, a ...any) error {
	return &apiError{status: http.StatusNotFound, code: wire.CodeNotFound, field: field, msg: fmt.Sprintf(format, a...)}
}

// classify maps an error to its HTTP status and body. Unknown errors are
// internal: logged by the caller, not detailed to the client.
func classify(err error) (int, wire.ErrorBody) {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.status, wire.ErrorBody{Code: ae.code, Message: ae.msg, Field: ae.field}
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return http.StatusRequestEntityTooLarge, wire.ErrorBody{Code: wire.CodeTooLarge,
			Message: fmt.Sprintf("the request body is larger than %d bytes", mbe.Limit)}
	}
	if errors.Is(err, manager.ErrForbidden) {
		b := wire.ErrorBody{Code: wire.CodeForbidden, Message: err.Error()}
		var fe *store.FieldError
		if errors.As(err, &fe) {
			b.Field = fe.Field
		}
		return http.StatusForbidden, b
	}
	var ies inventory.Errors
	if errors.As(err, &ies) && len(ies) > 0 {
		b := wire.ErrorBody{Code: wire.CodeInvalidField, Field: ies[0].Field, Line: ies[0].Line, Message: ies[0].Error()}
		if len(ies) > 1 {
			b.Message += fmt.Sprintf(" (and %d more %s)", len(ies)-1, plural(len(ies)-1, "problem", "problems"))
		}
		for _, e := range ies {
			b.Errors = append(b.Errors, wire.FieldProblem{Line: e.Line, Machine: e.Machine, Enclosure: e.Enclosure,
				Field: e.Field, Reason: reasonOf(e)})
		}
		return http.StatusBadRequest, b
	}
	var ife *inventory.FieldError
	if errors.As(err, &ife) {
		return http.StatusBadRequest, wire.ErrorBody{Code: wire.CodeInvalidField, Field: ife.Field, Line: ife.Line,
			Message: ife.Error(), Errors: []wire.FieldProblem{{Line: ife.Line, Machine: ife.Machine,
				Enclosure: ife.Enclosure, Field: ife.Field, Reason: reasonOf(ife)}}}
	}
	var fe *store.FieldError
	if errors.As(err, &fe) {
		b := wire.ErrorBody{Code: wire.CodeInvalidField, Field: fe.Field, Line: fe.Line, Message: fe.Error()}
		status := http.StatusBadRequest
		switch {
		case errors.Is(fe, store.ErrConflict):
			status, b.Code = http.StatusConflict, wire.CodeConflict
		case errors.Is(fe, store.ErrNotFound):
			status, b.Code = http.StatusNotFound, wire.CodeNotFound
		}
		if fe.Line > 0 {
			b.Errors = []wire.FieldProblem{{Line: fe.Line, Machine: fe.Record, Field: fe.Field, Reason: fe.Reason}}
		}
		return status, b
	}
	if errors.Is(err, power.ErrRefused) {
		return http.StatusConflict, wire.ErrorBody{Code: wire.CodeRefused, Message: err.Error()}
	}
	if errors.Is(err, store.ErrNotFound) {
		return http.StatusNotFound, wire.ErrorBody{Code: wire.CodeNotFound, Message: err.Error()}
	}
	if errors.Is(err, store.ErrConflict) {
		return http.StatusConflict, wire.ErrorBody{Code: wire.CodeConflict, Message: err.Error()}
	}
	return http.StatusInternalServerError, wire.ErrorBody{Code: wire.CodeInternal,
		Message: "internal error; the server log has the details"}
}

// reasonOf is an inventory problem's reason with the value it quotes.
func reasonOf(e *inventory.FieldError) string {
	if e.Value != "" {
		return fmt.Sprintf("%q %s", e.Value, e.Reason)
	}
	return e.Reason
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, body := classify(err)
	if status >= 500 && clientGone(r, err) {
		// The client went away (disconnect, its own timeout): nothing is
		// wrong here, and nobody reads the reply.
		a.log.Debug("api: client gone", "method", r.Method, "path", r.URL.Path, "err", err)
		return
	}
	if status >= 500 {
		a.log.Error("api: internal error", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="lightsout"`)
	}
	writeJSON(w, status, wire.ErrorResponse{Error: body})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		http.Error(w, `{"error":{"code":"internal","message":"cannot encode the response"}}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// decode reads exactly one JSON object of type T from the body (at most
// limit bytes), refusing unknown fields, with errors that name the field.
func decode(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return badRequest("", "the body holds more than one JSON value; send one object")
	}
	return nil
}

func badRequest(field, msg string) error {
	return &apiError{status: http.StatusBadRequest, code: wire.CodeBadRequest, field: field, msg: msg}
}

// jsonError turns a json.Decoder error into a bad_request naming the field
// (when the decoder says which) and the reason.
func jsonError(err error) error {
	var mbe *http.MaxBytesError
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &mbe):
		return err
	case errors.Is(err, io.EOF):
		return badRequest("", "the request body is empty; send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("", "the JSON body ends too early")
	case errors.As(err, &se):
		return badRequest("", fmt.Sprintf("the body is not valid JSON at byte %d: %v", se.Offset, se))
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			return badRequest("", fmt.Sprintf("the body must be a JSON object, not %s", te.Value))
		}
		return badRequest(field, fmt.Sprintf("field %q: got %s, want %s", field, te.Value, jsonKind(te.Type.Kind().String())))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return badRequest(field, fmt.Sprintf("unknown field %q", field))
	}
	return badRequest("", "the body is not the JSON expected: "+strings.TrimPrefix(err.Error(), "json: "))
}

func jsonKind(k string) string {
	switch k {
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "an integer"
	case "float32", "float64":
		return "a number"
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "slice", "array":
		return "an array"
	case "map", "struct":
		return "an object"
	case "ptr":
		return "a value"
	}
	return k
}

// clientGone reports whether err comes from the request's own context
// ending: the client disconnected (or gave up) while the request ran.
func clientGone(r *http.Request, err error) bool {
	return r.Context().Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded))
}
