package api_test

import (
	"encoding/json"
	"sort"
	"strings"
	"testing"

	"github.com/lightsout/lightsout/internal/api/apitest"
	"github.com/lightsout/lightsout/internal/sim"
	"github.com/lightsout/lightsout/internal/store"
)

// hostile values for a string field: markup with a newline, a NUL, a
// right-to-left override, and an overlong value.
var hostile = map[string]string{
	"markup":   "<script>alert(1)</script> x\ny",
	"nul":      "a\x00b",
	"rlo":      "abc\u202edef",
	"overlong": strings.Repeat("a", 5000),
}

// baseline bodies: a valid request per operation, so that the hostile
// field is the only thing wrong. Operations without one are sent the
// hostile field alone.
var baseline = map[string]string{
	"POST /api/v1/machines":                `{"name":"walk-1","account":{"address":"127.0.0.9","user":"u","password":"p"}}`,
	"PATCH /api/v1/machines/{name}":        `{}`,
	"POST /api/v1/accounts":                `{"machine":"bmc-00001","address":"127.0.0.9","user":"u","password":"p"}`,
	"PATCH /api/v1/accounts/{id}":          `{}`,
	"POST /api/v1/enclosures":              `{"name":"walk-e","address":"127.0.0.8","slots":2}`,
	"PATCH /api/v1/enclosures/{name}":      `{}`,
	"POST /api/v1/allocate":                `{"group":"g","machines":["bmc-00001"]}`,
	"POST /api/v1/machines/{name}/replace": `{"spare":"bmc-00002"}`,
	"POST /api/v1/tokens":                  `{"name":"walk-t","role":"viewer"}`,
	"POST /api/v1/check":                   `{"machines":["bmc-00001"]}`,
	"POST /api/v1/power":                   `{"action":"status","machines":["bmc-00001"]}`,
	"POST /api/v1/diag":                    `{"machines":["bmc-00001"]}`,
	"POST /api/v1/audit/security":          `{"machines":["bmc-00001"]}`,
	"POST /api/v1/import":                  `{"format":"yaml","content":"machines: []\n"}`,
}

// pathValues fill path parameters with existing objects.
var pathValues = map[string]string{"{name}": "bmc-00001", "{id}": "1"}

// skipped fields are not stored and not names: free-form secrets and
// content parsed with its own line-numbered errors.
var skipped = map[string]bool{"password": true, "content": true, "passwords": true, "enclosure_passwords": true,
	"fingerprint": true, "guid": true}

// TestHostileValues walks every operation of the served OpenAPI document
// that takes a JSON body and sends, for each string field (and each list
// of strings) of its schema, hostile values: each must be refused with 400
// naming the field, and nothing stored (the inventory export and the token
// list are unchanged).
func TestHostileValues(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, apitest.Options{Subnet: 82, Fleet: sim.Config{Count: 3, Seed: 19}})
	e.ImportFleet(t)
	st, doc := raw(t, e, "", "GET", "/api/v1/openapi.json", "")
	if st != 200 {
		t.Fatal(st)
	}
	var d struct {
		Paths      map[string]map[string]json.RawMessage
		Components struct{ Schemas map[string]json.RawMessage }
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatal(err)
	}
	type schema struct {
		Ref        string `json:"$ref"`
		Type       string
		Properties map[string]json.RawMessage
		Items      *struct {
			Type string
			Ref  string `json:"$ref"`
		}
	}
	resolve := func(raw json.RawMessage) schema {
		var s schema
		_ = json.Unmarshal(raw, &s)
		for s.Ref != "" {
			name := strings.TrimPrefix(s.Ref, "#/components/schemas/")
			s = schema{}
			_ = json.Unmarshal(d.Components.Schemas[name], &s)
		}
		return s
	}
	snapshot := func() string {
		_, exp := raw(t, e, store.RoleAdmin, "GET", "/api/v1/export?format=yaml", "")
		_, toks := raw(t, e, store.RoleAdmin, "GET", "/api/v1/tokens", "")
		return string(exp) + string(toks)
	}
	if st, b := raw(t, e, store.RoleAdmin, "POST", "/api/v1/enclosures", `{"name":"walk-enc","address":"127.0.0.7","slots":2}`); st != 201 {
		t.Fatalf("enclosure: %d %s", st, b)
	}
	before := snapshot()
	paths := make([]string, 0, len(d.Paths))
	for p := range d.Paths {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	walked := 0
	for _, p := range paths {
		for method, raw0 := range d.Paths[p] {
			var op struct {
				RequestBody struct {
					Content map[string]struct{ Schema json.RawMessage }
				} `json:"requestBody"`
			}
			if method == "parameters" || json.Unmarshal(raw0, &op) != nil {
				continue
			}
			body, ok := op.RequestBody.Content["application/json"]
			if !ok {
				continue
			}
			key := strings.ToUpper(method) + " " + p
			url := p
			if strings.HasPrefix(p, "/api/v1/enclosures/") {
				url = strings.ReplaceAll(url, "{name}", "walk-enc")
			}
			for k, v := range pathValues {
				url = strings.ReplaceAll(url, k, v)
			}
			s := resolve(body.Schema)
			fields := map[string]string{} // field path → "string" or "list"
			for name, fr := range s.Properties {
				fs := resolve(fr)
				switch {
				case fs.Type == "string":
					fields[name] = "string"
				case fs.Type == "array" && fs.Items != nil && fs.Items.Type == "string":
					fields[name] = "list"
				case fs.Type == "object" && name == "account":
					for sub, sr := range fs.Properties {
						if resolve(sr).Type == "string" {
							fields[name+"."+sub] = "string"
						}
					}
				}
			}
			for field, kind := range fields {
				if skipped[field[strings.LastIndex(field, ".")+1:]] {
					continue
				}
				for hname, hv := range hostile {
					var b map[string]any
					base := baseline[key]
					if base == "" {
						base = "{}"
					}
					_ = json.Unmarshal([]byte(base), &b)
					var v any = hv
					if kind == "list" {
						v = []string{hv}
					}
					if top, sub, nested := strings.Cut(field, "."); nested {
						m, _ := b[top].(map[string]any)
						if m == nil {
							m = map[string]any{}
						}
						m[sub] = v
						b[top] = m
					} else {
						b[field] = v
					}
					js, _ := json.Marshal(b)
					walked++
					st, resp := raw(t, e, store.RoleAdmin, strings.ToUpper(method), url, string(js))
					var er struct {
						Error struct{ Code, Field, Message string }
					}
					_ = json.Unmarshal(resp, &er)
					if st != 400 || (er.Error.Field != field && er.Error.Field != strings.TrimPrefix(field, "account.")) {
						t.Errorf("%s field %s = %s: %d field %q (%s), want 400 naming the field", key, field, hname, st, er.Error.Field, er.Error.Message)
					}
				}
			}
		}
	}
	if walked < 50 {
		t.Errorf("walked only %d (operation, field, value) cases", walked)
	}
	if after := snapshot(); after != before {
		t.Errorf("hostile requests changed what is stored:\nbefore %s\nafter %s", before, after)
	}
	t.Logf("%d hostile requests", walked)
}
