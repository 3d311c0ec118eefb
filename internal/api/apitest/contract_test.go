package apitest

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

const tinyDoc = `{"openapi":"3.0.3","info":{"title":"t","version":"1"},"paths":{"/api/v1/x":{"get":{"summary":"x",
"responses":{"200":{"description":"ok","content":{"application/json":{"schema":{"type":"object","properties":{"n":{"type":"integer"}},"required":["n"],"additionalProperties":false}}}}}}}}}`

// TestContractCatchesMismatches: the validator the end-to-end tests run
// under records a body that breaks the schema and an undocumented status,
// and passes a conforming reply and paths outside the document.
func TestContractCatchesMismatches(t *testing.T) {
	var body string
	status := 200
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write([]byte(body))
	})
	srv := httptest.NewServer(nil)
	defer srv.Close()
	var c contract
	if err := c.load(srv.URL, []byte(tinyDoc)); err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = c.wrap(srv.URL, h)
	get := func(path string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	body = `{"n":1}`
	get("/api/v1/x")
	get("/elsewhere")
	if len(c.failures) != 0 || c.checked != 1 {
		t.Fatalf("conforming reply: failures %v, checked %d", c.failures, c.checked)
	}
	body = `{"n":1,"extra":true}`
	get("/api/v1/x")
	status, body = 418, `{}`
	get("/api/v1/x")
	if len(c.failures) != 2 {
		t.Fatalf("want 2 mismatches (extra property, undocumented status), got %v", c.failures)
	}
}
