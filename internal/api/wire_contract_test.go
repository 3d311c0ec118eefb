package api

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/lightsout/lightsout/internal/api/wire"
)

// TestWireMatchesOpenAPI holds the API's wire types and the published
// openapi.json together, without a server: each request and response body
// type is filled in every field (every slice one element, every pointer
// set, every map one entry), marshalled, and validated with kin-openapi
// against the schema the document gives that body. A field the Go type
// writes and the document does not name fails (additionalProperties: false,
// or, where the schema does not say so, the test's own walk), as does a
// required property the type never writes, or a wrong JSON type. Enum
// values are set from the schema (a filled string is not a state name).
// The served responses are validated as well, in every apitest server
// (apitest/contract.go); this test covers the fields a test run may never
// see set.
func TestWireMatchesOpenAPI(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(openAPI)
	if err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	type body struct {
		method, path, status string // status "" for the request body
		v                    any
		only                 string // a line that is one of its fields: that one filled
	}
	bodies := []body{
		{"POST", "/api/v1/diag", "", wire.DiagRequest{}, ""},
		{"POST", "/api/v1/diag", "200", wire.DiagLine{}, "DiagResult"},
		{"POST", "/api/v1/diag", "200", wire.DiagLine{}, "Summary"},
		{"POST", "/api/v1/power", "", wire.PowerRequest{}, ""},
		{"POST", "/api/v1/power", "200", wire.PowerLine{}, "Result"},
		{"POST", "/api/v1/power", "200", wire.PowerLine{}, "Summary"},
		{"POST", "/api/v1/allocate", "", wire.AllocateRequest{}, ""},
		{"POST", "/api/v1/check", "", wire.CheckRequest{}, ""},
		{"POST", "/api/v1/check", "200", wire.CheckResponse{}, ""},
		{"POST", "/api/v1/import", "", wire.ImportRequest{}, ""},
		{"POST", "/api/v1/import", "200", wire.ImportResponse{}, ""},
		{"POST", "/api/v1/tokens", "", wire.TokenRequest{}, ""},
		{"POST", "/api/v1/tokens", "201", wire.TokenResponse{}, ""},
		{"GET", "/api/v1/tokens", "200", wire.Tokens{}, ""},
		{"GET", "/api/v1/whoami", "200", wire.WhoAmI{}, ""},
		{"GET", "/api/v1/machines", "200", wire.Machines{}, ""},
		{"GET", "/api/v1/machines/{name}/history", "200", wire.History{}, ""},
		{"POST", "/api/v1/machines/{name}/adopt", "", wire.AdoptRequest{}, ""},
		{"POST", "/api/v1/machines/{name}/replace", "", wire.ReplaceRequest{}, ""},
		{"POST", "/api/v1/machines/{name}/replace", "200", wire.ReplaceResponse{}, ""},
		{"POST", "/api/v1/machines/{name}/accept-certificate", "", wire.AcceptCertificateRequest{}, ""},
		{"GET", "/api/v1/accounts", "200", wire.Accounts{}, ""},
		{"GET", "/api/v1/enclosures", "200", wire.Enclosures{}, ""},
		{"GET", "/api/v1/events", "200", wire.Events{}, ""},
		{"GET", "/api/v1/events/catalogue", "200", wire.EventCatalogue{}, ""},
		{"GET", "/api/v1/audit", "200", wire.Audit{}, ""},
		{"GET", "/api/v1/instances", "200", wire.Instances{}, ""},
		{"GET", "/api/v1/agents", "200", wire.Agents{}, ""},
		{"POST", "/api/v1/agents/tokens", "", wire.JoinTokenRequest{}, ""},
		{"POST", "/api/v1/agents/tokens", "201", wire.JoinToken{}, ""},
		{"POST", "/api/v1/agents/{id}/ops", "", wire.AgentOpRequest{}, ""},
		{"POST", "/api/v1/agents/{id}/diag", "", wire.AgentDiagRequest{}, ""},
		{"POST", "/api/v1/audit/security", "", wire.SecurityAuditRequest{}, ""},
		{"POST", "/api/v1/audit/security", "200", wire.SecurityAuditResponse{}, ""},
		{"GET", "/api/v1/security", "200", wire.SecurityReports{}, ""},
		{"GET", "/api/v1/whoami", "401", wire.ErrorResponse{}, ""},
	}
	for _, b := range bodies {
		name := fmt.Sprintf("%s %s %s %T%s", b.method, b.path, orRequest(b.status), b.v, b.only)
		item := doc.Paths.Find(b.path)
		if item == nil {
			t.Errorf("%s: path not in openapi.json", name)
			continue
		}
		op := item.GetOperation(b.method)
		if op == nil {
			t.Errorf("%s: operation not in openapi.json", name)
			continue
		}
		var content openapi3.Content
		if b.status == "" {
			if op.RequestBody == nil || op.RequestBody.Value == nil {
				t.Errorf("%s: no request body documented", name)
				continue
			}
			content = op.RequestBody.Value.Content
		} else {
			r := op.Responses.Value(b.status)
			if r == nil || r.Value == nil {
				t.Errorf("%s: status not documented", name)
				continue
			}
			content = r.Value.Content
		}
		var schema *openapi3.Schema
		for _, ct := range []string{"application/json", "application/x-ndjson"} {
			if mt := content.Get(ct); mt != nil && mt.Schema != nil {
				schema = mt.Schema.Value
				break
			}
		}
		if schema == nil {
			t.Errorf("%s: no JSON schema documented", name)
			continue
		}
		v := reflect.New(reflect.TypeOf(b.v)).Elem()
		fill(v, map[reflect.Type]bool{})
		if b.only != "" {
			for i := range v.NumField() {
				if v.Type().Field(i).Name != b.only {
					v.Field(i).SetZero()
				}
			}
		}
		raw, err := json.Marshal(v.Interface())
		if err != nil {
			t.Errorf("%s: marshal: %v", name, err)
			continue
		}
		var doc any
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		doc = fitEnums(schema, doc)
		for _, p := range unknownProperties(schema, doc, "") {
			t.Errorf("%s: writes %s, which openapi.json does not name", name, p)
		}
		if err := schema.VisitJSON(doc, openapi3.MultiErrors()); err != nil {
			t.Errorf("%s: does not match openapi.json:\n%v\nJSON: %s", name, err, raw)
		}
	}
}

func orRequest(status string) string {
	if status == "" {
		return "request"
	}
	return status
}

var fixedTime = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// fill sets every field of v to a non-zero value; a struct type already
// being filled higher up (a cycle) is left zero.
func fill(v reflect.Value, open map[reflect.Type]bool) {
	if !v.CanSet() || open[v.Type()] {
		return
	}
	switch v.Type() {
	case reflect.TypeOf(time.Time{}):
		v.Set(reflect.ValueOf(fixedTime))
		return
	case reflect.TypeOf(json.RawMessage{}):
		return // embedded JSON of another type (an audit report): left out
	case reflect.TypeOf(time.Duration(0)):
		v.SetInt(int64(time.Second))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString("x")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(1)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(0.5)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(p.Elem(), open)
		v.Set(p)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fill(s.Index(0), open)
		v.Set(s)
	case reflect.Array:
		for i := range v.Len() {
			fill(v.Index(i), open)
		}
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k := reflect.New(v.Type().Key()).Elem()
		fill(k, open)
		e := reflect.New(v.Type().Elem()).Elem()
		fill(e, open)
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.Struct:
		open[v.Type()] = true
		defer delete(open, v.Type())
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), open)
			}
		}
	}
}

// props is a schema's properties, allOf's merged.
func props(s *openapi3.Schema) (openapi3.Schemas, bool) {
	out := openapi3.Schemas{}
	closed := s.AdditionalProperties.Has != nil && !*s.AdditionalProperties.Has
	for k, v := range s.Properties {
		out[k] = v
	}
	for _, a := range s.AllOf {
		if a.Value != nil {
			p, _ := props(a.Value)
			for k, v := range p {
				out[k] = v
			}
		}
	}
	return out, closed || len(out) > 0 && s.AdditionalProperties.Schema == nil
}

// fitEnums replaces each value the schema constrains to an enum by the
// enum's first value.
func fitEnums(s *openapi3.Schema, v any) any {
	if s == nil {
		return v
	}
	if len(s.Enum) > 0 {
		if _, ok := v.(string); ok {
			return s.Enum[0]
		}
	}
	for _, o := range append(append(openapi3.SchemaRefs{}, s.OneOf...), s.AnyOf...) {
		if o.Value != nil {
			v = fitEnums(o.Value, v)
		}
	}
	switch x := v.(type) {
	case map[string]any:
		ps, _ := props(s)
		for k, e := range x {
			if p := ps[k]; p != nil {
				x[k] = fitEnums(p.Value, e)
			} else if ap := s.AdditionalProperties.Schema; ap != nil {
				x[k] = fitEnums(ap.Value, e)
			}
		}
	case []any:
		if s.Items != nil {
			for i, e := range x {
				x[i] = fitEnums(s.Items.Value, e)
			}
		}
	}
	return v
}

// unknownProperties lists the properties of v that s does not name, where
// s names its properties (a free-form object or map is not walked).
func unknownProperties(s *openapi3.Schema, v any, at string) []string {
	if s == nil {
		return nil
	}
	var out []string
	switch x := v.(type) {
	case map[string]any:
		ps, named := props(s)
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if p := ps[k]; p != nil {
				out = append(out, unknownProperties(p.Value, x[k], at+"."+k)...)
			} else if ap := s.AdditionalProperties.Schema; ap != nil {
				out = append(out, unknownProperties(ap.Value, x[k], at+"."+k)...)
			} else if named {
				out = append(out, strings.TrimPrefix(at+"."+k, "."))
			}
		}
	case []any:
		if s.Items != nil && len(x) > 0 {
			out = append(out, unknownProperties(s.Items.Value, x[0], at+"[]")...)
		}
	}
	return out
}
