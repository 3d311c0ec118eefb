package api

import (
	"encoding/json"
	"sort"
	"strings"
	"testing"
)

// TestOpenAPIMatchesRoutes holds the hand-written OpenAPI document and the
// route table together: every route is documented and every documented
// operation is served, with its role, path parameters and error replies.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		OpenAPI string `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.0") {
		t.Errorf("openapi %q, want 3.0.x", doc.OpenAPI)
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths {
		for method, raw := range item {
			if method == "parameters" {
				continue
			}
			key := strings.ToUpper(method) + " " + path
			documented[key] = true
			var op struct {
				Summary   string                     `json:"summary"`
				Responses map[string]json.RawMessage `json:"responses"`
				Security  *[]any                     `json:"security"`
			}
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Errorf("%s: %v", key, err)
				continue
			}
			if op.Summary == "" {
				t.Errorf("%s: no summary", key)
			}
			if _, ok := op.Responses["500"]; !ok {
				t.Errorf("%s: 500 not documented", key)
			}
		}
	}
	a := NewHandler(Config{})
	served := map[string]bool{}
	for _, rt := range a.routes() {
		key := rt.Method + " " + rt.Path
		served[key] = true
		if !documented[key] {
			t.Errorf("%s is served but not in openapi.json", key)
			continue
		}
		var op struct {
			Responses map[string]json.RawMessage `json:"responses"`
			Security  *[]any                     `json:"security"`
		}
		_ = json.Unmarshal(doc.Paths[rt.Path][strings.ToLower(rt.Method)], &op)
		_, has401 := op.Responses["401"]
		_, has403 := op.Responses["403"]
		if rt.Role == public {
			if op.Security == nil || len(*op.Security) != 0 {
				t.Errorf("%s needs no token, but the document does not say security: []", key)
			}
		} else if !has401 || !has403 {
			t.Errorf("%s: 401/403 not documented", key)
		}
		// Path parameters are declared.
		if strings.Contains(rt.Path, "{") {
			var item struct {
				Parameters []json.RawMessage `json:"parameters"`
			}
			b, _ := json.Marshal(doc.Paths[rt.Path])
			_ = json.Unmarshal(b, &item)
			if len(item.Parameters) == 0 {
				t.Errorf("%s: path parameters not declared", key)
			}
		}
	}
	var extra []string
	for k := range documented {
		if !served[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(extra)
	for _, k := range extra {
		t.Errorf("%s is in openapi.json but not served", k)
	}
	// Every $ref resolves.
	var whole map[string]any
	_ = json.Unmarshal(openAPI, &whole)
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if ref, ok := x["$ref"].(string); ok {
				if !resolves(whole, ref) {
					t.Errorf("$ref %s does not resolve", ref)
				}
			}
			for _, y := range x {
				walk(y)
			}
		case []any:
			for _, y := range x {
				walk(y)
			}
		}
	}
	walk(whole)
}

func resolves(doc map[string]any, ref string) bool {
	if !strings.HasPrefix(ref, "#/") {
		return false
	}
	var cur any = doc
	for _, part := range strings.Split(ref[2:], "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return false
		}
		if cur, ok = m[part]; !ok {
			return false
		}
	}
	return true
}

func TestMatchPath(t *testing.T) {
	for _, c := range []struct {
		pattern, path string
		want          bool
	}{
		{"/api/v1/machines/{name}", "/api/v1/machines/web-1", true},
		{"/api/v1/machines/{name}", "/api/v1/machines/", false},
		{"/api/v1/machines/{name}", "/api/v1/machines/a/b", false},
		{"/api/v1/whoami", "/api/v1/whoami", true},
	} {
		if got := matchPath(c.pattern, c.path); got != c.want {
			t.Errorf("matchPath(%q, %q) = %v", c.pattern, c.path, got)
		}
	}
}
